// The watch supervisor against a scripted API: it must relist on 410 Gone,
// resume from the last resourceVersion after errors, restart a quiet watch, re-open
// at once a watch the client library ended for idleness, and back off only on errors.

import { PassThrough } from 'node:stream';
import test from 'ava';
import { type ApiClient, type WatchEvent, watchInactivityTimeoutMs } from '../../src/cluster/api.js';
import { ListWatch, type ListWatchOptions, quietLeftMs, watchEnd } from '../../src/cluster/list-watch.js';
import { createLogger } from '../../src/log.js';

type Obj = { metadata: { name: string; resourceVersion: string } };
const obj = (name: string, rv: number): Obj => ({ metadata: { name, resourceVersion: String(rv) } });

/** An API whose watches are scripted: each watch() call takes the next script. */
function scriptedApi(
  scripts: ((emit: (e: WatchEvent<Obj>) => void, done: (err: unknown) => void) => void)[],
) {
  const calls = { lists: 0, watches: [] as string[] };
  const api: ApiClient = {
    server: 'https://test',
    async list<T>() {
      calls.lists++;
      return { items: [obj('a', 10)] as T[], resourceVersion: `${10 * calls.lists}` };
    },
    async watch<T>(
      _path: string,
      query: Record<string, string | number | boolean>,
      onEvent: (e: WatchEvent<T>) => void,
      done: (err: unknown) => void,
    ) {
      calls.watches.push(String(query.resourceVersion));
      const script = scripts.shift();
      if (script) setTimeout(() => script(onEvent as never, done), 5);
      return () => {};
    },
  };
  return { api, calls };
}

const quietLog = createLogger({ stream: new PassThrough(), json: true });

/** A ListWatch of /things on `api` that ignores what it sees unless `o` says otherwise. */
function things(api: ApiClient, o: Partial<ListWatchOptions<Obj>> = {}): ListWatch<Obj> {
  return new ListWatch<Obj>({
    api,
    log: quietLog,
    name: 'things',
    path: '/things',
    query: {},
    onReplace: () => {},
    onEvent: () => {},
    ...o,
  });
}

/** Resolves once `n` watches were opened (or after 10 s, for the assertions to report). */
async function watchesOpened(calls: { watches: string[] }, n: number): Promise<void> {
  const until = Date.now() + 10_000;
  while (calls.watches.length < n && Date.now() < until) await new Promise((r) => setTimeout(r, 10));
}

test('relists on 410 Gone and resumes from the last resourceVersion after an error', async (t) => {
  const events: string[] = [];
  const { api, calls } = scriptedApi([
    (emit, done) => {
      emit({ type: 'ADDED', object: obj('b', 11) });
      done(Object.assign(new Error('connection reset'), { statusCode: undefined }));
    },
    (emit) => emit({ type: 'ERROR', object: { code: 410, message: 'too old' } as never }),
    (emit) => emit({ type: 'MODIFIED', object: obj('b', 25) }),
  ]);
  let replaced = 0;
  const lw = things(api, {
    initialBackoffMs: 5,
    onReplace: () => replaced++,
    onEvent: (type, o) => events.push(`${type} ${o.metadata.name}@${o.metadata.resourceVersion}`),
  });
  lw.start();
  await lw.synced;
  // Wait for the script's end (the third watch's event), not for a fixed time: a loaded machine is slow.
  for (let i = 0; i < 400 && !events.includes('MODIFIED b@25'); i++)
    await new Promise((r) => setTimeout(r, 25));
  await lw.stop();
  t.deepEqual(events, ['ADDED b@11', 'MODIFIED b@25']);
  // First watch from the list's version, the second resumes after the event, the third after relisting.
  t.deepEqual(calls.watches, ['10', '11', '20']);
  t.is(calls.lists, 2);
  t.is(replaced, 2);
});

test('a consumer that throws is logged at error with the object, and later events still arrive', async (t) => {
  const out = new PassThrough();
  let logged = '';
  out.on('data', (d) => {
    logged += String(d);
  });
  const seen: string[] = [];
  const { api } = scriptedApi([
    (emit) => {
      emit({ type: 'ADDED', object: obj('bad', 11) });
      emit({ type: 'ADDED', object: obj('good', 12) });
    },
  ]);
  const lw = things(api, {
    log: createLogger({ stream: out, json: true }),
    onEvent: (_type, o) => {
      if (o.metadata.name === 'bad') throw new Error('store bug');
      seen.push(o.metadata.name);
    },
  });
  lw.start();
  await lw.synced;
  for (let i = 0; i < 400 && seen.length === 0; i++) await new Promise((r) => setTimeout(r, 25));
  await lw.stop();
  t.deepEqual(seen, ['good']);
  t.regex(logged, /"level":"error".*handling ADDED of things bad failed/);
  t.regex(logged, /store bug/);
});

test('restarts a watch that stays quiet longer than the watchdog allows', async (t) => {
  const { api, calls } = scriptedApi([() => {}, () => {}, () => {}]);
  const lw = things(api, { quietTimeoutMs: 100 });
  lw.start();
  // Waits for the restarts rather than a fixed time: a loaded machine runs timers late.
  await watchesOpened(calls, 3);
  await lw.stop();
  t.true(calls.watches.length >= 3, `${calls.watches.length} watches in 10 s`);
  t.is(calls.lists, 1, 'a quiet watch is resumed, not relisted');
});

test('a watch fed bookmarks more often than the watchdog allows is never restarted', async (t) => {
  let feeding: NodeJS.Timeout | undefined;
  const { api, calls } = scriptedApi([
    (emit) => {
      let rv = 11;
      feeding = setInterval(() => emit({ type: 'BOOKMARK', object: obj('', rv++) }), 50);
    },
  ]);
  // A second of quiet allowed, a bookmark every 50 ms: a timer late by most of a second
  // (a loaded machine) still does not expire it.
  const lw = things(api, { quietTimeoutMs: 1000 });
  lw.start();
  // Four watchdog periods: the deadline must move with each bookmark, not expire at the first.
  await new Promise((r) => setTimeout(r, 4000));
  clearInterval(feeding);
  t.deepEqual(calls.watches, ['10'], 'one watch, still open');
  // Then quiet: the same timer now expires and the watch resumes from the last bookmark.
  await watchesOpened(calls, 2);
  await lw.stop();
  t.is(calls.watches.length, 2);
  t.true(Number(calls.watches[1]) > 11, `resumed at ${calls.watches[1]}`);
});

test('quietLeftMs: the time left until a watch has been quiet too long', (t) => {
  t.is(quietLeftMs(1000, 300, 1000), 300);
  t.is(quietLeftMs(1000, 300, 1250), 50, 'activity at 1000 moves the deadline to 1300');
  t.is(quietLeftMs(1000, 300, 1300), 0);
  t.is(quietLeftMs(1000, 300, 5000), 0, 'never negative');
});

test("the client keeps a silent watch open past the server's longest watch and the quiet watchdog", (t) => {
  // list-watch.ts asks the server for timeoutSeconds of at most 599 and restarts after 5 quiet minutes;
  // a shorter client timeout re-opens every watch of a quiet cluster (and a TLS session) each time.
  t.true(watchInactivityTimeoutMs > 600_000);
  t.true(watchInactivityTimeoutMs > 5 * 60_000);
  // That the watch really ends after its inactivity timeout, and how: test/unit/watch-stream.test.ts.
});

/** What the watch (src/cluster/watch.ts) passes to `done` after its inactivity timeout. */
const idleTimeout = () => new DOMException('The operation was aborted due to timeout', 'TimeoutError');
const failure = () => Object.assign(new Error('connection reset'), { statusCode: undefined });

test('watchEnd: normal close, idle timeout, 410 and real errors', (t) => {
  t.is(watchEnd(null).kind, 'closed');
  t.is(watchEnd(undefined).kind, 'closed');
  t.is(watchEnd(idleTimeout()).kind, 'idle');
  t.is(watchEnd(Object.assign(new Error('Gone'), { statusCode: 410 })).kind, 'gone');
  t.is(watchEnd(Object.assign(new Error('Internal Server Error'), { statusCode: 500 })).kind, 'error');
  t.is(watchEnd(failure()).kind, 'error');
});

test('a watch ended for idleness is re-opened at once from its resourceVersion', async (t) => {
  const idle = (_emit: unknown, done: (err: unknown) => void) => done(idleTimeout());
  const { api, calls } = scriptedApi([idle, idle, idle, idle, idle, idle]);
  // Any backoff at all would hold the second watch back far longer than this test runs.
  const lw = things(api, { initialBackoffMs: 60_000 });
  lw.start();
  await watchesOpened(calls, 7);
  await lw.stop();
  t.deepEqual(calls.watches, ['10', '10', '10', '10', '10', '10', '10']);
  t.is(calls.lists, 1);
});

test('backoff is for errors only and starts over after a healthy watch', async (t) => {
  const out = new PassThrough();
  const lines: { message: string; attempt?: number }[] = [];
  out.on('data', (d: Buffer) => {
    for (const l of d.toString().split('\n')) if (l) lines.push(JSON.parse(l));
  });
  const fail = (_emit: unknown, done: (err: unknown) => void) => done(failure());
  const { api, calls } = scriptedApi([
    fail,
    fail,
    (_emit, done) => done(idleTimeout()),
    fail,
    fail,
    (emit, done) => {
      emit({ type: 'MODIFIED', object: obj('a', 11) });
      done(failure());
    },
    fail,
  ]);
  const lw = things(api, { log: createLogger({ stream: out, json: true }), initialBackoffMs: 4 });
  lw.start();
  await watchesOpened(calls, 8);
  await lw.stop();
  const attempts = lines.filter((l) => l.message.includes('failed, resuming')).map((l) => l.attempt);
  // The idle end and the watch that delivered an event both reset the count.
  t.deepEqual(attempts, [0, 1, 0, 1, 0, 1]);
  t.deepEqual(calls.watches, ['10', '10', '10', '10', '10', '10', '11', '11']);
  t.false(
    lines.some((l) => /idle|timeout/i.test(JSON.stringify(l)) && l.message.includes('failed')),
    'an idle end is not logged as a failure',
  );
});

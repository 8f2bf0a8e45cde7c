// The watch supervisor against a scripted API: it must relist on 410 Gone,
// resume from the last resourceVersion after errors, and restart a quiet watch.

import { PassThrough } from 'node:stream';
import test from 'ava';
import type { ApiClient, WatchEvent } from '../../src/cluster/api.js';
import { ListWatch } from '../../src/cluster/list-watch.js';
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
  const lw = new ListWatch<Obj>({
    api,
    log: quietLog,
    name: 'things',
    path: '/things',
    query: {},
    initialBackoffMs: 5,
    onReplace: () => replaced++,
    onEvent: (type, o) => events.push(`${type} ${o.metadata.name}@${o.metadata.resourceVersion}`),
  });
  lw.start();
  await lw.synced;
  await new Promise((r) => setTimeout(r, 300));
  await lw.stop();
  t.deepEqual(events, ['ADDED b@11', 'MODIFIED b@25']);
  // First watch from the list's version, the second resumes after the event, the third after relisting.
  t.deepEqual(calls.watches, ['10', '11', '20']);
  t.is(calls.lists, 2);
  t.is(replaced, 2);
});

test('restarts a watch that stays quiet longer than the watchdog allows', async (t) => {
  const { api, calls } = scriptedApi([() => {}, () => {}, () => {}]);
  const lw = new ListWatch<Obj>({
    api,
    log: quietLog,
    name: 'things',
    path: '/things',
    query: {},
    quietTimeoutMs: 100,
    onReplace: () => {},
    onEvent: () => {},
  });
  lw.start();
  await new Promise((r) => setTimeout(r, 450));
  await lw.stop();
  t.true(calls.watches.length >= 3, `${calls.watches.length} watches`);
  t.is(calls.lists, 1, 'a quiet watch is resumed, not relisted');
});

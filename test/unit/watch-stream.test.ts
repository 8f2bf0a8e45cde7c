// kproxy's own list/watch requests against a scripted HTTP server on loopback: events
// split anywhere in the stream, how a watch ends (server close, HTTP 410, inactivity,
// abort, refused connection) in the shapes list-watch.ts reads, and the credentials
// each request carries (a token file re-read after it rotates).
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import test from 'ava';
import { ApiError, clientOver, type WatchEvent } from '../../src/cluster/api.js';
import { ownTransport, RereadFile, rereadAfterMs } from '../../src/cluster/connection.js';
import { watchEnd } from '../../src/cluster/list-watch.js';
import { LineSplitter } from '../../src/cluster/watch.js';

type Handler = (req: IncomingMessage, res: ServerResponse) => void;

async function serve(t: { teardown(f: () => void): void }, handler: Handler) {
  const server = createServer(handler);
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  t.teardown(() => {
    server.closeAllConnections();
    server.close();
  });
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
}

const plain = { prepare: async () => ({ headers: {} }) };

/** Opens a watch; resolves with its events and what `done` got, once it ends. */
function watchUntilDone(server: string, timeoutMs = 60_000, afterOpen?: (abort: () => void) => void) {
  const events: WatchEvent<Record<string, unknown>>[] = [];
  let calls = 0;
  const ended = new Promise<unknown>((resolve) => {
    clientOver(plain, server, timeoutMs)
      .watch<Record<string, unknown>>(
        '/api/v1/services',
        { resourceVersion: '5' },
        (e) => events.push(e),
        (err) => {
          calls++;
          setTimeout(() => resolve(err), 50); // a second call would land before this
        },
      )
      .then((abort) => afterOpen?.(abort));
  });
  return { events, ended, calls: () => calls };
}

test('LineSplitter: lines split across chunks come out whole; blank lines are skipped', (t) => {
  const s = new LineSplitter();
  t.deepEqual(s.push('{"a":'), []);
  t.deepEqual(s.push('1}\n\n{"b"'), ['{"a":1}']);
  t.deepEqual(s.push(':2}\n{"c":3}\n{"d"'), ['{"b":2}', '{"c":3}']);
  t.deepEqual(s.end(), ['{"d"']);
  t.deepEqual(s.end(), []);
});

test('events arrive in order, slimmed, however the stream is cut; the server closing is a normal end', async (t) => {
  let url = '';
  const server = await serve(t, (req, res) => {
    url = req.url ?? '';
    res.writeHead(200, { 'content-type': 'application/json' });
    const lines = [
      { type: 'ADDED', object: { metadata: { name: 'a', resourceVersion: '6', managedFields: [{}] } } },
      { type: 'BOOKMARK', object: { metadata: { resourceVersion: '7' } } },
      { type: 'ERROR', object: { kind: 'Status', code: 410, message: 'too old resource version' } },
    ]
      .map((l) => JSON.stringify(l))
      .join('\n');
    // Cut mid-line and mid-character ("é" is two bytes).
    const bytes = Buffer.from(`${lines.replace('"a"', '"é"')}\n`);
    res.write(bytes.subarray(0, 20));
    setTimeout(() => res.write(bytes.subarray(20, 61)), 20);
    setTimeout(() => res.end(bytes.subarray(61)), 40);
  });
  const w = watchUntilDone(server);
  t.is(await w.ended, null);
  t.is(w.calls(), 1);
  t.regex(url, /^\/api\/v1\/services\?watch=true&resourceVersion=5$/);
  t.deepEqual(
    w.events.map((e) => e.type),
    ['ADDED', 'BOOKMARK', 'ERROR'],
  );
  t.deepEqual(
    w.events[0]?.object,
    { metadata: { name: 'é', resourceVersion: '6' } },
    'managedFields dropped',
  );
  t.is(
    (w.events[2]?.object as { code?: number } | undefined)?.code,
    410,
    'a 410 in the stream is an ERROR event',
  );
});

test('an HTTP 410 ends the watch with an ApiError of that status: list-watch relists', async (t) => {
  const server = await serve(t, (_req, res) => {
    res.writeHead(410, { 'content-type': 'application/json' });
    res.end('{"kind":"Status","code":410,"reason":"Expired"}');
  });
  const w = watchUntilDone(server);
  const err = await w.ended;
  t.true(err instanceof ApiError);
  t.is((err as ApiError).statusCode, 410);
  t.regex((err as Error).message, /410 .*Expired/);
  t.is(watchEnd(err).kind, 'gone');
  t.is(w.calls(), 1);
});

test('a watch that sends nothing for the inactivity timeout ends as idle, not as a failure', async (t) => {
  const server = await serve(t, (_req, res) => {
    res.writeHead(200);
    res.write(`${JSON.stringify({ type: 'ADDED', object: { metadata: { name: 'a' } } })}\n`);
  });
  const started = Date.now();
  const w = watchUntilDone(server, 300);
  const err = await w.ended;
  t.is((err as Error).name, 'TimeoutError');
  t.is(watchEnd(err).kind, 'idle');
  t.is(w.events.length, 1);
  t.true(Date.now() - started >= 300);
  t.is(w.calls(), 1);
});

test('the abort function ends the watch once, and the server sees the connection close', async (t) => {
  let closed!: () => void;
  const serverSawClose = new Promise<void>((r) => {
    closed = r;
  });
  const server = await serve(t, (req, res) => {
    res.writeHead(200);
    res.write('\n');
    req.socket.on('close', closed);
  });
  const w = watchUntilDone(server, 60_000, (abort) => setTimeout(abort, 50));
  const err = await w.ended;
  t.is((err as Error).name, 'AbortError');
  await serverSawClose;
  t.is(w.calls(), 1);
});

test('a refused connection ends the watch with the cause, after the watch call resolved', async (t) => {
  // A port that was just free: nothing listens there now.
  const probe = createServer();
  await new Promise<void>((r) => probe.listen(0, '127.0.0.1', r));
  const { port } = probe.address() as AddressInfo;
  await new Promise((r) => probe.close(r));
  const w = watchUntilDone(`http://127.0.0.1:${port}`);
  const err = (await w.ended) as { cause?: { code?: string } };
  t.is(err.cause?.code, 'ECONNREFUSED');
  t.is(watchEnd(err).kind, 'error');
});

test('RereadFile: re-read after a minute, the last good content kept if the file is briefly gone', (t) => {
  let now = 0;
  const files = new Map([['/tok', 'one']]);
  const read = (p: string) => {
    const v = files.get(p);
    if (v === undefined) throw new Error('ENOENT');
    return Buffer.from(v);
  };
  const f = new RereadFile('/tok', 'token file', () => now, read);
  t.is(f.get().toString(), 'one');
  files.set('/tok', 'two');
  now = rereadAfterMs - 1;
  t.is(f.get().toString(), 'one', 'not re-read within the minute');
  now = rereadAfterMs;
  t.is(f.get().toString(), 'two');
  files.delete('/tok');
  now = 2 * rereadAfterMs;
  t.is(f.get().toString(), 'two');
  t.throws(() => new RereadFile('/gone', 'token file', () => 0, read).get(), {
    message: 'cannot read token file /gone: ENOENT',
  });
});

test('requests carry the token of a token file, re-read after it rotates, over one kept-alive agent', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'kproxy-token-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const tokenFile = join(dir, 'token');
  writeFileSync(tokenFile, 'first\n');
  const seen: (string | undefined)[] = [];
  const server = await serve(t, (req, res) => {
    seen.push(req.headers.authorization);
    res.end(JSON.stringify({ items: [], metadata: { resourceVersion: '1' } }));
  });
  let now = 1_000;
  const cfg = {
    server,
    origin: 'test',
    insecure: true,
    auth: { kind: 'tokenFile' as const, file: tokenFile },
  };
  const transport = ownTransport(cfg, () => now);
  const client = clientOver(transport, server);
  await client.list('/api/v1/services', {});
  writeFileSync(tokenFile, 'second\n');
  await client.list('/api/v1/services', {});
  now += rereadAfterMs;
  await client.list('/api/v1/services', {});
  t.deepEqual(seen, ['Bearer first', 'Bearer first', 'Bearer second']);
  const [a, b] = [await transport.prepare(), await transport.prepare()];
  t.is(a.dispatcher, b.dispatcher, 'unchanged TLS material: one agent, connections reused');
});

test('basic auth and impersonation headers; a missing token file fails at start, naming it', async (t) => {
  const base = { server: 'https://h:1', origin: 'test', insecure: false };
  const basic = await ownTransport({
    ...base,
    auth: { kind: 'basic', username: 'ann', password: 'pw' },
    impersonate: 'bob',
  }).prepare();
  t.deepEqual(basic.headers, {
    authorization: `Basic ${Buffer.from('ann:pw').toString('base64')}`,
    'impersonate-user': 'bob',
  });
  t.throws(() => ownTransport({ ...base, auth: { kind: 'tokenFile', file: '/nonexistent/token' } }), {
    message: /^cannot read token file \/nonexistent\/token: ENOENT/,
  });
  t.throws(() => ownTransport({ ...base, ca: { file: '/nonexistent/ca.crt' }, auth: { kind: 'none' } }), {
    message: /^cannot read certificate-authority \/nonexistent\/ca.crt/,
  });
});

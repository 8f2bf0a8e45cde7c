// A kubeconfig user with an exec credential plugin is still served: kproxy hands
// it to @kubernetes/client-node (api-plugin.ts), which runs the plugin and sends
// its token. Against a scripted HTTP server on loopback.
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import test from 'ava';
import { apiClient, loadKubeConfig } from '../../src/cluster/api.js';

test('an exec plugin user lists and watches through client-node with the token the plugin prints', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'kproxy-exec-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const seen: (string | undefined)[] = [];
  const server = createServer((req, res) => {
    seen.push(req.headers.authorization);
    if (req.url?.includes('watch=true')) {
      res.writeHead(200);
      res.end(`${JSON.stringify({ type: 'ADDED', object: { metadata: { name: 'a' } } })}\n`);
    } else
      res.end(JSON.stringify({ items: [{ metadata: { name: 'a' } }], metadata: { resourceVersion: '3' } }));
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  t.teardown(() => server.close());
  const plugin = join(dir, 'plugin.sh');
  const credential = {
    apiVersion: 'client.authentication.k8s.io/v1',
    kind: 'ExecCredential',
    status: { token: 'from-the-plugin' },
  };
  writeFileSync(plugin, `#!/bin/sh\necho '${JSON.stringify(credential)}'\n`);
  chmodSync(plugin, 0o755);
  const kubeconfig = join(dir, 'kubeconfig');
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  writeFileSync(
    kubeconfig,
    `clusters: [{name: c, cluster: {server: "${url}", insecure-skip-tls-verify: true}}]
users: [{name: u, user: {exec: {apiVersion: client.authentication.k8s.io/v1, command: ${plugin}}}}]
contexts: [{name: x, context: {cluster: c, user: u}}]
current-context: x
`,
  );
  const cfg = loadKubeConfig(kubeconfig);
  t.is(cfg.plugin, 'exec');
  const client = apiClient(cfg);
  const list = await client.list<{ metadata: { name: string } }>('/api/v1/services', {});
  t.deepEqual(
    list.items.map((i) => i.metadata.name),
    ['a'],
  );
  const ended = new Promise<unknown>((resolve) => {
    void client.watch('/api/v1/services', { resourceVersion: '3' }, () => {}, resolve);
  });
  t.is(await ended, null);
  t.deepEqual(seen, ['Bearer from-the-plugin', 'Bearer from-the-plugin']);
});

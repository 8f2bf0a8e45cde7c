// One IPVS sync against fake hosts that keep state the way the kernel does
// (virtual servers, kube-ipvs0's addresses, ipsets): what is applied, in which
// order, and that a second sync changes nothing. And the daemon's dry run in
// IPVS mode. The real kernel is in test/vm/ipvs.test.ts.
import { PassThrough } from 'node:stream';
import test from 'ava';
import type { IptablesHost } from '../../src/backends/iptables-lib/host.js';
import { fakeIpvsNode } from '../../src/backends/ipvs/fake.js';
import { ipvsMode } from '../../src/backends/ipvs/mode.js';
import { syncIpvs } from '../../src/backends/ipvs/sync.js';
import { ClusterStore } from '../../src/cluster/store.js';
import { defaultOptions } from '../../src/config/options.js';
import { Proxier } from '../../src/daemon/proxier.js';
import { createLogger } from '../../src/log.js';
import { nodeContext } from '../../src/model/node.js';
import { endpoint, service, slice, slicePort, snapshot, svcPort } from '../helpers/builders.js';

const log = createLogger({ stream: new PassThrough(), json: false });

/** The in-memory IPVS node (src/backends/ipvs/fake.ts), with its IPv4 hosts as a sync takes them. */
function fakeKernel() {
  const k = fakeIpvsNode(['192.168.0.2']);
  const ctx = { ipvs: k.ipvs, link: k.link, iptables: k.iptables.get('IPv4') as IptablesHost, log };
  return { ...k, ctx };
}

const objects = (endpoints: string[], withService = true) =>
  snapshot(
    withService
      ? [
          service('ns1/web', {
            type: 'NodePort',
            clusterIP: '10.96.0.10',
            ports: [svcPort('http', 80, 'TCP', { nodePort: 30080 })],
          }),
        ]
      : [],
    [
      slice(
        'ns1/web',
        endpoints.map((ip) => endpoint(ip)),
        { ports: [slicePort('http', 8080)] },
      ),
    ],
  );
const node = nodeContext('node-a', undefined, { addresses: ['192.168.0.2'] });
const options = { ...defaultOptions(), proxyMode: 'ipvs' as const };

test('a sync binds addresses first, then ipvsadm, ipset and iptables; a second sync writes no IPVS or ipset change', async (t) => {
  const k = fakeKernel();
  const { ctx } = k;
  const first = await syncIpvs(
    { snapshot: objects(['10.244.1.2', '10.244.1.3']), options, node, family: 'IPv4' },
    ctx,
  );
  t.deepEqual(k.calls, [
    'bind 10.96.0.10',
    'ipvsadm 6',
    'ipset restore',
    'iptables-restore *nat',
    'iptables-restore *filter',
  ]);
  t.like(first.plan, { servicesAdded: 2, serversAdded: 4 });
  t.deepEqual([...k.ipvs.servers.keys()].sort(), ['TCP/10.96.0.10:80', 'TCP/192.168.0.2:30080']);
  t.true(k.ipvs.sets.get('KUBE-NODE-PORT-TCP')?.entries.has('30080'));

  k.calls.length = 0;
  const second = await syncIpvs(
    { snapshot: objects(['10.244.1.2', '10.244.1.3']), options, node, family: 'IPv4' },
    ctx,
  );
  t.is(second.restoreInput.ipvs, '');
  t.is(second.restoreInput.ipset, '');
  t.false(
    k.calls.some((c) => !c.startsWith('iptables-restore')),
    k.calls.join(', '),
  );
});

test('a Service removed: its virtual servers go before its address leaves kube-ipvs0', async (t) => {
  const k = fakeKernel();
  const { ctx } = k;
  await syncIpvs({ snapshot: objects(['10.244.1.2']), options, node, family: 'IPv4' }, ctx);
  k.calls.length = 0;
  const r = await syncIpvs({ snapshot: objects([], false), options, node, family: 'IPv4' }, ctx);
  t.like(r.plan, { servicesDeleted: 2 });
  const order = k.calls.filter((c) => !c.startsWith('iptables'));
  t.deepEqual(order, ['ipvsadm 2', 'ipset restore', 'unbind 10.96.0.10']);
  t.is(k.ipvs.servers.size, 0);
  t.is(k.link.devices.get('kube-ipvs0')?.size, 0);
});

test("the daemon's dry run in IPVS mode logs the IPVS state's diff and never needs a kernel", async (t) => {
  const out = new PassThrough();
  let text = '';
  out.on('data', (d: Buffer) => {
    text += d;
  });
  const dryLog = createLogger({ stream: out, json: false });
  const store = new ClusterStore(dryLog, () => {});
  const s = objects(['10.244.1.2']);
  store.replaceServices([...s.services]);
  store.replaceSlices([...s.endpointSlices]);
  const proxier = new Proxier({
    store,
    options: { ...options, hostnameOverride: 'node-a', nodeIPs: ['192.168.0.2'] },
    log: dryLog,
    mode: ipvsMode,
    settings: { options, ipvs: { scheduler: 'rr', strictARP: false, excludeCIDRs: [] } },
  });
  await proxier.sync('change');
  await new Promise((r) => setImmediate(r));
  t.regex(text, /dry run: IPv4 rule changes/);
  t.regex(text, /\+-A -t 10\.96\.0\.10:80 -s rr/);
  t.regex(text, /\+-A -t 192\.168\.0\.2:30080 -s rr/);
});

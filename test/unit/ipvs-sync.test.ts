// One IPVS sync against fake hosts that keep state the way the kernel does
// (virtual servers, kube-ipvs0's addresses, ipsets): what is applied, in which
// order, and that a second sync changes nothing. And the daemon's dry run in
// IPVS mode. The real kernel is in test/vm/ipvs.test.ts.
import { PassThrough } from 'node:stream';
import test from 'ava';
import type { IptablesHost } from '../../src/backends/iptables-lib/host.js';
import type { IpvsHost } from '../../src/backends/ipvs/host.js';
import {
  formatTable,
  parseIpvsadmSave,
  rsKey,
  splitHostPort,
  type VirtualServer,
  vsKey,
} from '../../src/backends/ipvs/ipvsadm.js';
import type { LinkHost } from '../../src/backends/ipvs/link.js';
import { ipvsMode } from '../../src/backends/ipvs/mode.js';
import { syncIpvs } from '../../src/backends/ipvs/sync.js';
import { ClusterStore } from '../../src/cluster/store.js';
import { defaultOptions } from '../../src/config/options.js';
import { Proxier } from '../../src/daemon/proxier.js';
import { createLogger } from '../../src/log.js';
import { nodeContext } from '../../src/model/node.js';
import { endpoint, service, slice, slicePort, snapshot, svcPort } from '../helpers/builders.js';

const log = createLogger({ stream: new PassThrough(), json: false });

/** ipvsadm, ipset and kube-ipvs0 in memory; every call is recorded in `calls`. */
function fakeKernel() {
  const calls: string[] = [];
  const servers = new Map<string, VirtualServer>();
  const sets = new Map<string, { type: string; entries: Set<string> }>();
  const dummy = new Set<string>();
  const apply = (line: string) => {
    const a = line.split(' ');
    const proto = ({ '-t': 'TCP', '-u': 'UDP', '--sctp-service': 'SCTP' } as const)[a[1] as '-t'];
    const addr = splitHostPort(a[2] as string);
    if (!addr) throw new Error(`bad line ${line}`);
    const key = vsKey({ protocol: proto, ...addr });
    const vs = servers.get(key);
    const rs = a[3] === '-r' ? splitHostPort(a[4] as string) : undefined;
    const weight = Number(a[a.indexOf('-w') + 1]);
    if (a[0] === '-A')
      servers.set(key, {
        ...parseIpvsadmSave(`${line}\n`).servers.get(key),
        realServers: [],
      } as VirtualServer);
    else if (a[0] === '-D') servers.delete(key);
    else if (a[0] === '-a' && vs && rs) vs.realServers.push({ ...rs, weight, forward: 'm' });
    else if (a[0] === '-e' && vs && rs) {
      for (const r of vs.realServers) if (rsKey(r) === rsKey(rs)) r.weight = weight;
    } else if (a[0] === '-d' && vs && rs) {
      vs.realServers = vs.realServers.filter((r) => rsKey(r) !== rsKey(rs));
    } else throw new Error(`fake ipvsadm cannot apply ${line}`);
  };
  const ipvs: IpvsHost = {
    async save() {
      return formatTable(servers.values());
    },
    async listConnections() {
      return '';
    },
    async apply(lines) {
      if (lines.length) calls.push(`ipvsadm ${lines.length}`);
      for (const l of lines) apply(l);
    },
    async setTimeouts() {},
    async ipsetSave() {
      return [...sets]
        .map(([n, s]) => [`create ${n} ${s.type}`, ...[...s.entries].map((e) => `add ${n} ${e}`)].join('\n'))
        .join('\n');
    },
    async ipsetRestore(input) {
      if (input) calls.push('ipset restore');
      for (const line of input.split('\n').filter(Boolean)) {
        const [cmd, name, value] = line.split(' ') as [string, string, string];
        if (cmd === 'create') sets.set(name, { type: value, entries: new Set() });
        else if (cmd === 'add') sets.get(name)?.entries.add(value);
        else if (cmd === 'del') sets.get(name)?.entries.delete(value);
      }
    },
    async ipsetDestroy(name) {
      return sets.delete(name);
    },
  };
  const link: LinkHost = {
    async ensureDummy() {
      return false;
    },
    async deleteLink() {
      return true;
    },
    async addresses() {
      return { onDevice: [...dummy], elsewhere: ['192.168.0.2', '127.0.0.1'] };
    },
    async bind(ips) {
      if (ips.length) calls.push(`bind ${ips.join(' ')}`);
      for (const ip of ips) dummy.add(ip);
    },
    async unbind(ips) {
      if (ips.length) calls.push(`unbind ${ips.join(' ')}`);
      for (const ip of ips) dummy.delete(ip);
    },
    close() {},
  };
  const tables = {
    nat: '*nat\n:OUTPUT ACCEPT [0:0]\nCOMMIT\n',
    filter: '*filter\n:INPUT ACCEPT [0:0]\nCOMMIT\n',
  };
  const iptables = {
    flavour: 'legacy',
    family: 'IPv4',
    async save(table: 'nat' | 'filter') {
      return tables[table];
    },
    async restore(input: string) {
      calls.push(`iptables-restore ${input.split('\n')[0]}`);
    },
    async run() {
      return { exitCode: 0, stdout: '', stderr: '' };
    },
  } as unknown as IptablesHost;
  return { calls, servers, sets, dummy, ipvs, link, iptables };
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
  const ctx = { ipvs: k.ipvs, link: k.link, iptables: k.iptables, log };
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
  t.deepEqual([...k.servers.keys()].sort(), ['TCP/10.96.0.10:80', 'TCP/192.168.0.2:30080']);
  t.true(k.sets.get('KUBE-NODE-PORT-TCP')?.entries.has('30080'));

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
  const ctx = { ipvs: k.ipvs, link: k.link, iptables: k.iptables, log };
  await syncIpvs({ snapshot: objects(['10.244.1.2']), options, node, family: 'IPv4' }, ctx);
  k.calls.length = 0;
  const r = await syncIpvs({ snapshot: objects([], false), options, node, family: 'IPv4' }, ctx);
  t.like(r.plan, { servicesDeleted: 2 });
  const order = k.calls.filter((c) => !c.startsWith('iptables'));
  t.deepEqual(order, ['ipvsadm 2', 'ipset restore', 'unbind 10.96.0.10']);
  t.is(k.servers.size, 0);
  t.is(k.dummy.size, 0);
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

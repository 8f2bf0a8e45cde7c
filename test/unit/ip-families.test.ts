// `kproxy run`'s IP families without --ip-family, as upstream kube-proxy decides
// them (cmd/kube-proxy/app/server.go detectNodeIPs, server_linux.go
// platformCheckSupported): primary from a specific bind address, else the node's
// first address, else IPv4; the other family too when the mode can program it.
import { PassThrough } from 'node:stream';
import type { V1Node } from '@kubernetes/client-node';
import test from 'ava';
import { resolveDaemonConfig } from '../../src/config/daemon-config.js';
import {
  chooseIPFamilies,
  describeChoice,
  type FamilyInputs,
  FamilyUnsupportedError,
  nodeMatters,
} from '../../src/config/ip-families.js';
import { defaultOptions, type ProxyOptions } from '../../src/config/options.js';
import { daemonFamilies } from '../../src/daemon/ip-families-probe.js';
import { createLogger } from '../../src/log.js';
import type { IPFamily } from '../../src/util/ip.js';

const both = { IPv4: undefined, IPv6: undefined };
const noV6 = { IPv4: undefined, IPv6: 'ip6tables: exit code 3' };
const noV4 = { IPv4: 'iptables: exit code 3', IPv6: undefined };

const inputs = (o: Partial<FamilyInputs>): FamilyInputs => ({
  bindAddress: '0.0.0.0',
  nodeAddresses: undefined,
  nodeSource: 'Node n1',
  unsupported: both,
  mode: 'iptables',
  ...o,
});

const rows: [string, Partial<FamilyInputs>, IPFamily | undefined, IPFamily[], RegExp][] = [
  ['no node, bind unspecified', {}, 'IPv4', ['IPv4', 'IPv6'], /by default \(no Node n1/],
  ['bind :: is unspecified too', { bindAddress: '::' }, 'IPv4', ['IPv4', 'IPv6'], /by default/],
  ['node with no address', { nodeAddresses: [] }, 'IPv4', ['IPv4', 'IPv6'], /Node n1 has no address/],
  [
    'node IPv4 only',
    { nodeAddresses: ['10.0.0.5'] },
    'IPv4',
    ['IPv4', 'IPv6'],
    /Node n1's address 10\.0\.0\.5/,
  ],
  ['node IPv6 only', { nodeAddresses: ['fd00::5'] }, 'IPv6', ['IPv4', 'IPv6'], /Node n1's address fd00::5/],
  [
    'dual node, IPv4 first',
    { nodeAddresses: ['10.0.0.5', 'fd00::5'] },
    'IPv4',
    ['IPv4', 'IPv6'],
    /10\.0\.0\.5/,
  ],
  ['dual node, IPv6 first', { nodeAddresses: ['fd00::5', '10.0.0.5'] }, 'IPv6', ['IPv4', 'IPv6'], /fd00::5/],
  [
    'bind IPv4 beats an IPv6 node',
    { bindAddress: '10.0.0.9', nodeAddresses: ['fd00::5'] },
    'IPv4',
    ['IPv4', 'IPv6'],
    /bind address 10\.0\.0\.9/,
  ],
  [
    'bind IPv6 beats an IPv4 node',
    { bindAddress: 'fd00::9', nodeAddresses: ['10.0.0.5'] },
    'IPv6',
    ['IPv4', 'IPv6'],
    /bind address fd00::9/,
  ],
  [
    'IPv4-mapped bind is IPv4',
    { bindAddress: '::ffff:10.0.0.9' },
    'IPv4',
    ['IPv4', 'IPv6'],
    /bind address 10\.0\.0\.9/,
  ],
  [
    'IPv4 node, no ip6tables',
    { nodeAddresses: ['10.0.0.5'], unsupported: noV6 },
    'IPv4',
    ['IPv4'],
    /10\.0\.0\.5/,
  ],
  ['IPv6 node, no iptables', { nodeAddresses: ['fd00::5'], unsupported: noV4 }, 'IPv6', ['IPv6'], /fd00::5/],
  ['no node, no ip6tables', { unsupported: noV6 }, 'IPv4', ['IPv4'], /by default/],
  [
    'Node unread, both usable: no primary',
    { nodeAddresses: 'unread' },
    undefined,
    ['IPv4', 'IPv6'],
    /iptables can program both families here/,
  ],
  [
    'Node unread, bind IPv6',
    { nodeAddresses: 'unread', bindAddress: 'fd00::9' },
    'IPv6',
    ['IPv4', 'IPv6'],
    /bind address fd00::9/,
  ],
  [
    'Node unread, no ip6tables',
    { nodeAddresses: 'unread', unsupported: noV6 },
    'IPv4',
    ['IPv4'],
    /by default/,
  ],
];

for (const [name, o, primary, families, reason] of rows) {
  test(`families: ${name}`, (t) => {
    const c = chooseIPFamilies(inputs(o));
    t.is(c.primary, primary);
    t.deepEqual(c.families, families);
    t.regex(c.reason, reason);
    t.is(c.secondaryUnsupported !== undefined, families.length === 1);
  });
}

test('families: the unsupported secondary family is named with why', (t) => {
  const c = chooseIPFamilies(inputs({ nodeAddresses: ['10.0.0.5'], unsupported: noV6 }));
  t.deepEqual(c.secondaryUnsupported, { family: 'IPv6', why: 'ip6tables: exit code 3' });
  t.is(
    describeChoice(c),
    "proxying IPv4 (single-stack), primary family IPv4 from Node n1's address 10.0.0.5",
  );
});

test('families: the start-up line of a dual-stack node', (t) => {
  const c = chooseIPFamilies(inputs({ nodeAddresses: ['fd00::5', '10.0.0.5'] }));
  t.is(
    describeChoice(c),
    "proxying IPv4 and IPv6 (dual-stack), primary family IPv6 from Node n1's address fd00::5",
  );
});

test('families: the Node is read only when it can change the choice', (t) => {
  t.false(nodeMatters({ bindAddress: '0.0.0.0', unsupported: both }, false), 'both usable: both proxied');
  t.true(nodeMatters({ bindAddress: '0.0.0.0', unsupported: noV6 }, false));
  t.true(nodeMatters({ bindAddress: '::', unsupported: noV4 }, false));
  t.false(
    nodeMatters({ bindAddress: '10.0.0.9', unsupported: noV6 }, false),
    'a specific bind address decides',
  );
  t.false(nodeMatters({ bindAddress: '0.0.0.0', unsupported: noV6 }, true), '--node-ip decides');
  t.false(
    nodeMatters({ bindAddress: '0.0.0.0', unsupported: { IPv4: 'x', IPv6: 'y' } }, false),
    'none: stops anyway',
  );
});

test('families: an unsupported primary family stops start-up, as upstream', (t) => {
  const err = t.throws(() => chooseIPFamilies(inputs({ nodeAddresses: ['fd00::5'], unsupported: noV6 })), {
    instanceOf: FamilyUnsupportedError,
  });
  t.regex(
    err?.message ?? '',
    /^no iptables support for the primary IP family IPv6, from Node n1's address fd00::5: ip6tables: exit code 3;/,
  );
  t.throws(
    () => chooseIPFamilies(inputs({ nodeAddresses: 'unread', unsupported: { IPv4: 'x', IPv6: 'y' } })),
    {
      instanceOf: FamilyUnsupportedError,
      message: 'no iptables support for IPv4 (x) nor for IPv6 (y)',
    },
  );
  // A specific bind address of the unsupported family decides even against the node.
  t.throws(() =>
    chooseIPFamilies(inputs({ bindAddress: '10.0.0.9', nodeAddresses: ['fd00::5'], unsupported: noV4 })),
  );
});

// --- the side-effect layer, over stubs ------------------------------------------------

function logged() {
  const stream = new PassThrough();
  const lines: string[] = [];
  stream.on('data', (d: Buffer) => lines.push(...d.toString().trim().split('\n')));
  const log = createLogger({ stream, json: true });
  return { log, messages: () => lines.map((l) => (JSON.parse(l) as { message: string }).message) };
}

const node = (addresses: [string, string][]): V1Node => ({
  metadata: { name: 'n1' },
  status: { addresses: addresses.map(([type, address]) => ({ type, address })) },
});

function world(o: {
  nodes?: V1Node[];
  unsupported?: Record<IPFamily, string | undefined>;
  failures?: number;
}) {
  const calls = { list: 0, probe: [] as IPFamily[] };
  let failures = o.failures ?? 0;
  return {
    calls,
    mode: {
      name: 'nftables' as const,
      async familyUnsupported(f: IPFamily) {
        calls.probe.push(f);
        return (o.unsupported ?? both)[f];
      },
    },
    api: {
      async list<T>(path: string, query: Record<string, string>) {
        calls.list++;
        if (failures-- > 0) throw new Error('connect ECONNREFUSED');
        if (path !== '/api/v1/nodes' || query.fieldSelector !== 'metadata.name=n1')
          throw new Error(`bad list ${path}`);
        return { items: (o.nodes ?? []) as T[], resourceVersion: '1' };
      },
    },
  };
}

const proxy = (o: Partial<ProxyOptions> = {}): ProxyOptions => ({
  ...defaultOptions(),
  hostnameOverride: 'n1',
  ...o,
});
const daemon = (bindAddress = '0.0.0.0', dryRun = false) => ({
  bindAddress,
  iptablesFlavour: 'auto' as const,
  dryRun,
});

test('daemon families: an IPv6 Node on a kernel without the ip6 family stops start-up', async (t) => {
  const w = world({
    nodes: [node([['InternalIP', 'fd00::5']])],
    unsupported: { IPv4: undefined, IPv6: 'nft: no ip6' },
  });
  const { log } = logged();
  await t.throwsAsync(daemonFamilies(proxy(), { ...w, daemon: daemon(), log }), {
    instanceOf: FamilyUnsupportedError,
  });
});

test('daemon families: both families usable: dual-stack without asking the API server', async (t) => {
  const w = world({ nodes: [node([['InternalIP', 'fd00::5']])] });
  const { log, messages } = logged();
  const p = await daemonFamilies(proxy(), { ...w, daemon: daemon(), log });
  t.deepEqual(p.ipFamilies, ['IPv4', 'IPv6']);
  t.is(w.calls.list, 0, 'the primary family would change nothing');
  t.deepEqual(w.calls.probe, ['IPv4', 'IPv6']);
  t.deepEqual(messages(), ['proxying IPv4 and IPv6 (dual-stack): nftables can program both families here']);
});

test('daemon families: one family usable: the Node read once, InternalIP before ExternalIP', async (t) => {
  const w = world({
    nodes: [
      node([
        ['ExternalIP', '203.0.113.5'],
        ['InternalIP', 'fd00::5'],
      ]),
    ],
    unsupported: noV4,
  });
  const { log, messages } = logged();
  const p = await daemonFamilies(proxy(), { ...w, daemon: daemon(), log });
  t.deepEqual(p.ipFamilies, ['IPv6']);
  t.is(w.calls.list, 1);
  t.deepEqual(messages(), [
    'no nftables support for IPv4 here (iptables: exit code 3): running single-stack',
    "proxying IPv6 (single-stack), primary family IPv6 from Node n1's address fd00::5",
  ]);
});

test('daemon families: secondary unsupported is said once, then single-stack', async (t) => {
  const w = world({ nodes: [node([['InternalIP', '10.0.0.5']])], unsupported: noV6 });
  const { log, messages } = logged();
  const p = await daemonFamilies(proxy(), { ...w, daemon: daemon(), log });
  t.deepEqual(p.ipFamilies, ['IPv4']);
  t.deepEqual(messages(), [
    'no nftables support for IPv6 here (ip6tables: exit code 3): running single-stack',
    "proxying IPv4 (single-stack), primary family IPv4 from Node n1's address 10.0.0.5",
  ]);
});

test('daemon families: --ip-family is kept as given, nothing asked', async (t) => {
  const w = world({ unsupported: noV6 });
  const { log, messages } = logged();
  const given = proxy({ ipFamilies: ['IPv6'], ipFamiliesGiven: true });
  t.is(await daemonFamilies(given, { ...w, daemon: daemon(), log }), given);
  t.is(w.calls.list, 0);
  t.deepEqual(w.calls.probe, []);
  t.deepEqual(messages(), ['proxying IPv6, as --ip-family says']);
});

test('daemon families: --node-ip or a specific bind address needs no Node', async (t) => {
  const w = world({ nodes: [node([['InternalIP', '10.0.0.5']])] });
  const { log, messages } = logged();
  const p = await daemonFamilies(proxy({ nodeIPs: ['fd00::7'] }), { ...w, daemon: daemon(), log });
  t.deepEqual(p.ipFamilies, ['IPv4', 'IPv6']);
  await daemonFamilies(proxy(), { ...w, daemon: daemon('fd00::9'), log });
  t.is(w.calls.list, 0);
  t.deepEqual(messages(), [
    "proxying IPv4 and IPv6 (dual-stack), primary family IPv6 from --node-ip's address fd00::7",
    'proxying IPv4 and IPv6 (dual-stack), primary family IPv6 from the bind address fd00::9',
  ]);
});

test('daemon families: an API server that does not answer is retried, then the Node counts as unknown', async (t) => {
  const lookup = { attempts: 3, delayMs: 1 };
  const late = world({ nodes: [node([['InternalIP', 'fd00::5']])], failures: 2, unsupported: noV4 });
  const { log, messages } = logged();
  const p = await daemonFamilies(proxy(), { ...late, daemon: daemon(), log, lookup });
  t.is(late.calls.list, 3);
  t.deepEqual(p.ipFamilies, ['IPv6']);
  t.regex(messages().at(-1) ?? '', /primary family IPv6 from Node n1's address fd00::5/);

  const down = world({ failures: 99, unsupported: noV6 });
  const q = await daemonFamilies(proxy(), { ...down, daemon: daemon(), log, lookup });
  t.is(down.calls.list, 3);
  t.deepEqual(q.ipFamilies, ['IPv4']);
  t.true(
    messages().some((m) => /cannot read Node n1 to choose the IP families: connect ECONNREFUSED/.test(m)),
  );
  t.regex(messages().at(-1) ?? '', /primary family IPv4 by default \(no Node n1/);
});

test('daemon families: only --ip-family counts as given', (t) => {
  const none = resolveDaemonConfig({});
  t.false(none.proxy.ipFamiliesGiven);
  t.deepEqual(none.proxy.ipFamilies, ['IPv4'], 'the one-shot commands keep IPv4');
  const given = resolveDaemonConfig({ 'ip-family': 'IPv6' });
  t.true(given.proxy.ipFamiliesGiven);
  t.deepEqual(given.proxy.ipFamilies, ['IPv6']);
  const file = resolveDaemonConfig(
    { config: 'kp.yaml' },
    'apiVersion: kubeproxy.config.k8s.io/v1alpha1\nkind: KubeProxyConfiguration\nbindAddress: fd00::9\n',
  );
  t.false(file.proxy.ipFamiliesGiven);
  t.is(file.daemon.bindAddress, 'fd00::9');
});

test('daemon families: the dry run asks no kernel (it runs without capabilities) and renders both families', async (t) => {
  // Probes that would refuse, as they do without CAP_NET_ADMIN.
  const w = world({ unsupported: { IPv4: 'needs CAP_NET_ADMIN', IPv6: 'needs CAP_NET_ADMIN' } });
  const { log, messages } = logged();
  const p = await daemonFamilies(proxy(), { ...w, daemon: daemon('0.0.0.0', true), log });
  t.deepEqual(p.ipFamilies, ['IPv4', 'IPv6']);
  t.deepEqual(w.calls.probe, []);
  t.true(messages().some((m) => m.startsWith('dry run: the kernel is not asked')));
});

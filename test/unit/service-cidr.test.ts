// Service CIDRs from ServiceCIDR objects (a file, or the daemon's watch) and from
// --service-cidrs, up to nftables mode's "drop unallocated ClusterIPs" rule.
import { PassThrough } from 'node:stream';
import type { V1ServiceCIDR } from '@kubernetes/client-node';
import test from 'ava';
import { desiredNftables } from '../../src/backends/nftables/desired.js';
import type { ApiClient } from '../../src/cluster/api.js';
import { loadObjects } from '../../src/cluster/load.js';
import { serviceCIDRsOf, validateServiceCIDR } from '../../src/cluster/service-cidr.js';
import { ClusterStore } from '../../src/cluster/store.js';
import { optionsFromFlags } from '../../src/config/from-flags.js';
import { defaultOptions, OptionError } from '../../src/config/options.js';
import { serviceCIDRWatch } from '../../src/daemon/service-cidr-watch.js';
import { createLogger } from '../../src/log.js';
import { freeAddressIn } from '../../src/util/ip.js';
import { node, service, snapshot, svcPort } from '../helpers/builders.js';

const cidrObject = (name: string, cidrs: unknown, rv = '1', ready = true): V1ServiceCIDR => ({
  apiVersion: 'networking.k8s.io/v1',
  kind: 'ServiceCIDR',
  metadata: { name, resourceVersion: rv },
  spec: { cidrs: cidrs as string[] },
  status: { conditions: [{ type: 'Ready', status: ready ? 'True' : 'False' } as never] },
});

function capture() {
  const out = new PassThrough();
  let text = '';
  out.on('data', (d: Buffer) => {
    text += d.toString();
  });
  return { log: createLogger({ stream: out, json: false }), text: () => text };
}

test('a ServiceCIDR is valid with CIDRs of either family; a bad CIDR names the field', (t) => {
  t.deepEqual(validateServiceCIDR(cidrObject('kubernetes', ['10.96.0.0/12', 'fd00:10:96::/112'])), []);
  t.deepEqual(validateServiceCIDR(cidrObject('extra', ['10.100.0.0/33'])), [
    {
      object: 'ServiceCIDR extra',
      field: 'spec.cidrs[0]',
      reason: '"10.100.0.0/33" is not a valid CIDR',
    },
  ]);
  t.is(validateServiceCIDR(cidrObject('', ['10.96.0.0/12']))[0]?.field, 'metadata.name');
  t.is(validateServiceCIDR(cidrObject('x', '10.96.0.0/12'))[0]?.reason, 'must be a list');
});

test('service CIDRs: flag and objects together, canonical, each once, in a stable order', (t) => {
  const objects = [cidrObject('b', ['10.100.0.0/16']), cidrObject('a', ['10.96.0.0/12', 'fd00:10:96::/112'])];
  t.deepEqual(serviceCIDRsOf(['10.96.0.1/12', 'FD00:10:96:0::/112'], objects), [
    '10.100.0.0/16',
    '10.96.0.0/12',
    'fd00:10:96::/112',
  ]);
  t.deepEqual(serviceCIDRsOf([], [...objects].reverse()), serviceCIDRsOf([], objects));
  t.deepEqual(serviceCIDRsOf([]), []);
});

test('an unallocated address of a service CIDR, for kproxy verify: from the top, never network or broadcast', (t) => {
  t.is(freeAddressIn('10.96.0.0/16', new Set()), '10.96.255.254');
  t.is(freeAddressIn('10.96.0.0/30', new Set(['10.96.0.2'])), '10.96.0.1');
  t.is(freeAddressIn('10.96.0.0/30', new Set(['10.96.0.2', '10.96.0.1'])), undefined);
  t.is(freeAddressIn('fd00:10:96::/112', new Set(['fd00:10:96::fffe'])), 'fd00:10:96::fffd');
  t.is(freeAddressIn('nope', new Set()), undefined);
});

test('a file: networking.k8s.io v1 and v1beta1 ServiceCIDRs are read; a bad one is skipped with its reason', (t) => {
  const file = JSON.stringify({
    apiVersion: 'v1',
    kind: 'List',
    items: [
      cidrObject('kubernetes', ['10.96.0.0/16']),
      { ...cidrObject('old', ['10.97.0.0/16']), apiVersion: 'networking.k8s.io/v1beta1' },
      { ...cidrObject('alpha', ['10.98.0.0/16']), apiVersion: 'networking.k8s.io/v1alpha1' },
      cidrObject('bad', ['nope']),
    ],
  });
  const { snapshot: s, problems, ignoredKinds } = loadObjects(file);
  t.deepEqual(
    s.serviceCIDRs?.map((o) => o.metadata?.name),
    ['kubernetes', 'old'],
  );
  t.deepEqual(problems, [
    { object: 'ServiceCIDR bad', field: 'spec.cidrs[0]', reason: '"nope" is not a valid CIDR' },
  ]);
  t.deepEqual([...ignoredKinds], [['ServiceCIDR networking.k8s.io/v1alpha1', 1]]);
});

test('the store: a change of ranges asks for a sync, a status update does not', (t) => {
  const changes: string[] = [];
  const store = new ClusterStore(capture().log, (kind) => changes.push(kind));
  store.replaceServiceCIDRs([cidrObject('kubernetes', ['10.96.0.0/16'])]);
  store.serviceCIDREvent('MODIFIED', cidrObject('kubernetes', ['10.96.0.0/16'], '2', false));
  t.deepEqual(changes, ['servicecidr']);
  store.serviceCIDREvent('ADDED', cidrObject('extra', ['10.100.0.0/16']));
  store.serviceCIDREvent('ADDED', cidrObject('bad', ['10.100.0.0/99']));
  t.deepEqual(changes, ['servicecidr', 'servicecidr']);
  const taken = store.take().snapshot.serviceCIDRs ?? [];
  t.deepEqual(serviceCIDRsOf([], taken), ['10.100.0.0/16', '10.96.0.0/16']);
  store.serviceCIDREvent('DELETED', cidrObject('extra', ['10.100.0.0/16']));
  t.deepEqual(serviceCIDRsOf([], store.take().snapshot.serviceCIDRs), ['10.96.0.0/16']);
  t.is(changes.length, 3);
});

test('--service-cidrs: canonical CIDRs, or an error naming the flag', (t) => {
  t.deepEqual(optionsFromFlags({ 'service-cidrs': '10.96.0.5/16, fd00::/108' }).serviceCIDRs, [
    '10.96.0.0/16',
    'fd00::/108',
  ]);
  t.deepEqual(optionsFromFlags({}).serviceCIDRs, []);
  const err = t.throws(() => optionsFromFlags({ 'service-cidrs': '10.96.0.0' }), { instanceOf: OptionError });
  t.regex(err?.message ?? '', /^--service-cidrs: "10.96.0.0" is not a valid CIDR/);
});

const dropRule = (s: ReturnType<typeof snapshot>, flag: string[], family: 'IPv4' | 'IPv6') =>
  desiredNftables(s, { ...defaultOptions(), serviceCIDRs: flag }, node(), family)
    .table.chains.get('cluster-ips-check')
    ?.rules.find((r) => r.includes('unallocated'));

test('nftables: the drop rule holds the flag and object CIDRs of its family; none, no rule', (t) => {
  const s = {
    ...snapshot([service('shop/web', { clusterIP: '10.96.0.10', ports: [svcPort('p80', 80)] })]),
    serviceCIDRs: [cidrObject('kubernetes', ['10.96.0.0/16', 'fd00:10:96::/112'])],
  };
  t.is(
    dropRule(s, ['10.100.0.0/16'], 'IPv4'),
    'ip daddr { 10.100.0.0/16, 10.96.0.0/16 } drop comment "Drop traffic to unallocated ClusterIPs"',
  );
  t.is(
    dropRule(s, [], 'IPv6'),
    'ip6 daddr { fd00:10:96::/112 } drop comment "Drop traffic to unallocated ClusterIPs"',
  );
  t.is(dropRule({ ...s, serviceCIDRs: [] }, [], 'IPv4'), undefined);
  t.is(dropRule({ ...s, serviceCIDRs: [] }, ['fd00::/108'], 'IPv4'), undefined, 'no CIDR of this family');
});

/** An API whose list answers with `status` (or the objects) and whose watch never ends. */
function fakeApi(answer: number | V1ServiceCIDR[]) {
  const calls = { lists: 0 };
  const api: ApiClient = {
    server: 'https://test',
    async list<T>() {
      calls.lists++;
      if (typeof answer === 'number')
        throw Object.assign(new Error(`GET: ${answer}`), { statusCode: answer });
      return { items: answer as T[], resourceVersion: '5' };
    },
    async watch() {
      return () => {};
    },
  };
  return { api, calls };
}

test('the daemon watch: listed objects reach the store before the first sync may start', async (t) => {
  const changes: string[] = [];
  const store = new ClusterStore(capture().log, (kind) => changes.push(kind));
  const { api } = fakeApi([cidrObject('kubernetes', ['10.96.0.0/16'])]);
  const w = serviceCIDRWatch(api, store, capture().log);
  w.watch.start();
  await w.ready;
  t.deepEqual(serviceCIDRsOf([], store.take().snapshot.serviceCIDRs), ['10.96.0.0/16']);
  t.deepEqual(changes, ['servicecidr']);
  await w.watch.stop();
});

/** A started watch whose lists fail with `status`, after `ms`: what it logged and how often it listed. */
async function failingWatch(status: number, ms: number) {
  const out = capture();
  const { api, calls } = fakeApi(status);
  const w = serviceCIDRWatch(api, new ClusterStore(out.log, () => {}), out.log);
  w.watch.start();
  await w.ready; // the first sync is not held back
  await new Promise((r) => setTimeout(r, ms));
  await w.watch.stop();
  return { lists: calls.lists, logged: out.text() };
}

test('the daemon watch: an API server without ServiceCIDRs (404) ends the watch and holds nothing back', async (t) => {
  const { lists, logged } = await failingWatch(404, 800);
  t.is(lists, 1, 'no retry once the server said it has no such resource');
  t.regex(logged, /serves no networking\.k8s\.io\/v1 ServiceCIDRs/);
});

test('the daemon watch: a role without servicecidrs (403) holds nothing back, says what is missing once, and retries', async (t) => {
  const { lists, logged } = await failingWatch(403, 1500);
  t.true(lists >= 2, `${lists} lists`);
  t.is(logged.match(/not allowed to list servicecidrs/g)?.length, 1);
});

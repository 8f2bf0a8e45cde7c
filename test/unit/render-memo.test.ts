import test from 'ava';
import { defaultIptablesConfig, type IptablesConfig } from '../../src/backends/iptables/config.js';
import { type RenderedIptables, renderIptables } from '../../src/backends/iptables/render.js';
import { ChainMerger, iptablesRenderMemo } from '../../src/backends/iptables/render-memo.js';
import type { IpvsConfig } from '../../src/backends/ipvs/config.js';
import { type DesiredIpvs, ipvsRenderMemo, renderIpvs } from '../../src/backends/ipvs/render.js';
import {
  cidrDetector,
  defaultNftablesConfig,
  type NftablesConfig,
} from '../../src/backends/nftables/config.js';
import { type RenderedNftables, renderNftables } from '../../src/backends/nftables/render.js';
import { FragmentMerger, nftRenderMemo } from '../../src/backends/nftables/render-memo.js';
import { emptyTable, type NftChain, type NftSet } from '../../src/backends/nftables/table.js';
import { buildProxyModel } from '../../src/model/build.js';
import { ModelCache } from '../../src/model/cache.js';
import type { ProxyModel } from '../../src/model/types.js';
import type { IPFamily } from '../../src/util/ip.js';
import { randomStory, seededRandom } from '../helpers/random-cluster.js';

const families: IPFamily[] = ['IPv4', 'IPv6'];
const seeds = Array.from({ length: 20 }, (_, i) => i + 1);

/** Everything a render gives, Maps in their order: equal text means equal output. */
const mapsInOrder = (_: string, v: unknown) => (v instanceof Map || v instanceof Set ? [...v] : v);
/**
 * A memoized render may patch the last table (nftables) or ruleset (iptables) in
 * place, where entries go last: compared as content (chains, sets and elements by
 * name or key; rules in order).
 */
const byName = (_: string, v: unknown) =>
  v instanceof Map ? [...v].sort((a, b) => (String(a[0]) < String(b[0]) ? -1 : 1)) : v;
const iptablesText = (r: RenderedIptables) =>
  JSON.stringify({ ruleset: r.ruleset, jumps: r.jumps, chainsByServicePort: r.chainsByServicePort }, byName);
const nftText = (r: RenderedNftables) =>
  JSON.stringify({ table: r.table, chainsByServicePort: r.chainsByServicePort }, byName);
const ipvsText = (r: DesiredIpvs) => JSON.stringify(r, mapsInOrder);

/** Configs vary by seed; a low large-cluster threshold makes endpoint counts cross it. */
function configs(
  seed: number,
  family: IPFamily,
): { ipt: IptablesConfig; nft: NftablesConfig; ipvs: IpvsConfig } {
  const r = seededRandom(seed * 7919);
  const podCidr = family === 'IPv4' ? '10.0.0.0/16' : 'fd01::/64';
  const nodeIP = family === 'IPv4' ? '192.168.0.2' : 'fd00::2';
  const masqueradeAll = r() < 0.3;
  const ipt: IptablesConfig = {
    ...defaultIptablesConfig,
    family,
    masqueradeAll,
    localDetector: r() < 0.7 ? { ifLocal: ['-s', podCidr], ifNotLocal: ['!', '-s', podCidr] } : undefined,
    localhostNodePorts: family === 'IPv4' && r() < 0.5,
    nodePortAddresses: r() < 0.3 ? [nodeIP] : undefined,
    nodeIP,
    nfacct: r() < 0.5,
    largeClusterEndpointsThreshold: 4 + Math.floor(r() * 10),
  };
  const nft: NftablesConfig = {
    ...defaultNftablesConfig,
    family,
    masqueradeAll,
    localDetector: r() < 0.7 ? cidrDetector(family, podCidr) : undefined,
    nodePortAddresses: r() < 0.5 ? [nodeIP] : undefined,
    nodeIP,
    // Both layouts: the flat one (the daemon's default) patches its shared chains too.
    layout: seed % 2 === 0 ? 'upstream' : 'flat',
  };
  const ipvs: IpvsConfig = {
    family,
    scheduler: r() < 0.3 ? 'mh' : 'rr',
    masqueradeBit: 14,
    masqueradeAll,
    localDetector: ipt.localDetector,
    randomFully: true,
    nodeIP,
    nodePortCIDRs: undefined,
    excludeCIDRs: [],
  };
  return { ipt, nft, ipvs };
}

/** IPVS' render input: NodePorts on the node's address, which is also its only local address. */
const ipvsInput = (model: ProxyModel, config: IpvsConfig) => ({
  model,
  config,
  nodePortIPs: config.nodeIP ? [config.nodeIP] : [],
  localAddresses: new Set(config.nodeIP ? [config.nodeIP] : []),
});

test('rendering with the memo gives exactly the full render after every random change', (t) => {
  let reused = 0;
  const patched = { flat: 0, upstream: 0, iptables: 0 };
  for (const seed of seeds) {
    const caches = new Map(families.map((f) => [f, new ModelCache(f)]));
    const iptMemos = new Map(families.map((f) => [f, iptablesRenderMemo()]));
    const nftMemos = new Map(families.map((f) => [f, nftRenderMemo()]));
    const ipvsMemos = new Map(families.map((f) => [f, ipvsRenderMemo()]));
    for (const { step, store, snapshot, changes, node } of randomStory(seed, 30)) {
      for (const family of families) {
        const at = `seed ${seed} step ${step} ${family}`;
        const { ipt, nft, ipvs } = configs(seed, family);
        const model = (caches.get(family) as ModelCache).update(store.index(), node, changes.services);
        const full = buildProxyModel(snapshot, node, family);
        const iptMemo = iptablesRenderMemo();
        const fromMemo = renderIptables(model, ipt, iptMemos.get(family));
        if (fromMemo.delta) patched.iptables++;
        t.is(iptablesText(fromMemo), iptablesText(renderIptables(full, ipt, iptMemo)), `iptables, ${at}`);
        t.is(iptMemo.stats.reused, 0);
        const nftMemo = nftMemos.get(family);
        const nftOut = renderNftables(model, nft, nftMemo);
        if (nftOut.delta) patched[nft.layout]++;
        t.is(nftText(nftOut), nftText(renderNftables(full, nft)), `nftables, ${at}`);
        t.is(
          ipvsText(renderIpvs(ipvsInput(model, ipvs), ipvsMemos.get(family))),
          ipvsText(renderIpvs(ipvsInput(full, ipvs))),
          `ipvs, ${at}`,
        );
        reused += nftMemo?.stats.reused ?? 0;
      }
    }
  }
  t.true(reused > 1000, `fragments reused: ${reused}`);
  // Most renders patched the last table (ruleset) rather than merging every fragment.
  t.true(
    patched.flat > 300 && patched.upstream > 300 && patched.iptables > 1000,
    `patched renders: ${JSON.stringify(patched)}`,
  );
});

test('only the ports whose model entry changed are rendered again', (t) => {
  for (const seed of [101, 102, 103]) {
    const cache = new ModelCache('IPv4');
    const iptMemo = iptablesRenderMemo();
    const nftMemo = nftRenderMemo();
    const { ipt, nft } = configs(seed, 'IPv4');
    const fixed = { ...ipt, largeClusterEndpointsThreshold: 1e9 };
    let seen = new Set<object>();
    for (const { store, changes, node } of randomStory(seed, 30)) {
      const model = cache.update(store.index(), node, changes.services);
      const fresh = model.servicePorts.filter((sp) => !seen.has(sp)).length;
      renderIptables(model, fixed, iptMemo);
      renderNftables(model, nft, nftMemo);
      t.deepEqual(iptMemo.stats, { rendered: fresh, reused: model.servicePorts.length - fresh });
      t.deepEqual(nftMemo.stats, iptMemo.stats);
      // What the model says changed can be found in the memo: the old fragments and the new.
      for (const sp of [...cache.lastDelta.removed, ...cache.lastDelta.added]) {
        if (seen.has(sp) || model.servicePorts.includes(sp)) t.not(iptMemo.peek(sp), undefined);
      }
      seen = new Set(model.servicePorts);
    }
  }
});

test('a change of config renders every port again', (t) => {
  const story = randomStory(7, 1);
  story.next();
  const { value } = story.next();
  if (!value) return t.fail('story ended early');
  const model = buildProxyModel(value.snapshot, value.node, 'IPv4');
  const memo = iptablesRenderMemo();
  const { ipt } = configs(7, 'IPv4');
  renderIptables(model, ipt, memo);
  renderIptables(model, ipt, memo);
  t.is(memo.stats.rendered, 0);
  const changed = renderIptables(model, { ...ipt, masqueradeAll: !ipt.masqueradeAll }, memo);
  t.is(memo.stats.rendered, model.servicePorts.length);
  t.is(
    iptablesText(changed),
    iptablesText(renderIptables(model, { ...ipt, masqueradeAll: !ipt.masqueradeAll })),
  );
});

test('merging never writes into a fragment: a chain or set two fragments share is copied first', (t) => {
  const into = new Map([['KUBE-SERVICES', ['-j A']]]);
  const one = new Map([
    ['KUBE-SERVICES', ['-j B']],
    ['KUBE-SVC-X', ['-j C']],
  ]);
  const two = new Map([['KUBE-SVC-X', ['-j D']]]);
  const merger = new ChainMerger(into);
  merger.add(one);
  merger.add(two);
  t.deepEqual(
    [...into],
    [
      ['KUBE-SERVICES', ['-j A', '-j B']],
      ['KUBE-SVC-X', ['-j C', '-j D']],
    ],
  );
  t.deepEqual(one.get('KUBE-SVC-X'), ['-j C']);

  const table = emptyTable('ip', 'kube-proxy');
  const affinity: NftSet = { name: 'aff', kind: 'set', type: 'ipv4_addr', elements: new Map() };
  const chain: NftChain = { name: 'svc', rules: ['a'] };
  const first = {
    chains: new Map([['svc', chain]]),
    sets: new Map([['aff', affinity]]),
    elements: [],
    key: 'a',
    owned: [],
  };
  const second = {
    chains: new Map([['svc', { name: 'svc', rules: ['b'] }]]),
    sets: new Map(),
    elements: [['aff', { key: '10.0.0.1' }] as const],
    key: 'a',
    owned: [],
  };
  const nft = new FragmentMerger(table);
  nft.add(first);
  nft.add(second);
  t.deepEqual(table.chains.get('svc')?.rules, ['a', 'b']);
  t.deepEqual([...(table.sets.get('aff')?.elements.keys() ?? [])], ['10.0.0.1']);
  t.deepEqual(chain.rules, ['a']);
  t.is(affinity.elements.size, 0);
});

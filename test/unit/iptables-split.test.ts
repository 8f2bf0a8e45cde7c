import test from 'ava';
import { defaultIptablesConfig } from '../../src/backends/iptables/config.js';
import { renderIptables } from '../../src/backends/iptables/render.js';
import { tokenize } from '../../src/backends/iptables-lib/canonical.js';
import { clusterCidrDetector } from '../../src/backends/iptables-lib/local-detector.js';
import { planTable, type TableState } from '../../src/backends/iptables-lib/plan.js';
import type { Ruleset } from '../../src/backends/iptables-lib/ruleset.js';
import {
  chainsMentioned,
  prefetchCalls,
  restoreCalls,
  splitRestore,
} from '../../src/backends/iptables-lib/split.js';
import type { ClusterSnapshot } from '../../src/cluster/snapshot.js';
import { buildProxyModel } from '../../src/model/build.js';
import { nodeContext } from '../../src/model/node.js';
import { generateCluster } from '../helpers/generate-cluster.js';

const cfg = { ...defaultIptablesConfig, localDetector: clusterCidrDetector('10.244.0.0/16') };
const render = (s: ClusterSnapshot) =>
  renderIptables(buildProxyModel(s, nodeContext('node-a', s.nodes[0]), 'IPv4'), cfg);

const builtinChains = ['PREROUTING', 'INPUT', 'FORWARD', 'OUTPUT', 'POSTROUTING'];
const targets = new Set(['ACCEPT', 'DROP', 'RETURN', 'REJECT', 'DNAT', 'SNAT', 'MASQUERADE', 'MARK']);

/** A table as iptables-restore --noflush sees it: chain -> rules. */
type Kernel = Map<string, string[]>;

function kernelOf(state?: TableState): Kernel {
  const k: Kernel = new Map(builtinChains.map((c) => [c, []]));
  for (const [chain, rules] of state?.chains ?? []) k.set(chain, [...rules]);
  return k;
}

const jumpOf = (rule: string): string | undefined => {
  const t = tokenize(rule);
  const i = t.findIndex((x) => x === '-j' || x === '-g');
  const target = i >= 0 ? t[i + 1] : undefined;
  return target && !targets.has(target) ? target : undefined;
};

/**
 * Applies one restore call the way iptables-restore --noflush does, all or
 * nothing, and throws where the kernel would refuse it: a jump to a chain that
 * does not exist, a rule deleted that is not there, a chain deleted that is not
 * empty or still jumped to.
 */
function applyCall(kernel: Kernel, lines: readonly string[]): Kernel {
  const k: Kernel = new Map([...kernel].map(([c, r]) => [c, [...r]]));
  for (const line of lines) {
    if (line === '-S') continue; // a listing: reads only
    const decl = /^:(\S+) /.exec(line);
    if (decl) {
      k.set(decl[1] as string, []);
      continue;
    }
    const m = /^-([AIDX]) (\S+)(?: (.*))?$/.exec(line);
    if (!m) throw new Error(`unknown line ${line}`);
    const [, op, chain, rest = ''] = m as unknown as [string, string, string, string?];
    const rules = k.get(chain);
    if (!rules) throw new Error(`${line}: no chain ${chain}`);
    if (op === 'X') {
      if (rules.length > 0) throw new Error(`${line}: chain not empty`);
      for (const [c, rs] of k)
        if (rs.some((r) => jumpOf(r) === chain)) throw new Error(`${line}: ${c} jumps to it`);
      k.delete(chain);
      continue;
    }
    const rule = op === 'I' ? rest.replace(/^\d+ /, '') : rest;
    if (op === 'D') {
      const i = rules.indexOf(rule);
      if (i < 0) throw new Error(`${line}: no such rule`);
      rules.splice(i, 1);
      continue;
    }
    const target = jumpOf(rule);
    if (target && !k.has(target)) throw new Error(`${line}: no chain ${target} to jump to`);
    if (op === 'A') rules.push(rule);
    else rules.unshift(rule);
  }
  return k;
}

const sorted = (k: Kernel) => [...k.entries()].sort(([a], [b]) => a.localeCompare(b));
/** Chains a call declares, edits or deletes. */
const chainsOf = (call: readonly string[]) =>
  new Set(
    call.filter((l) => l !== '-S').map((l) => (/^:(\S+)/.exec(l) ?? /^-[AIDX] (\S+)/.exec(l))?.[1] as string),
  );

/**
 * Runs the calls one by one from `start` and checks every intermediate state:
 * valid (applyCall did not throw), and every chain that exists holds either its
 * rules from before or its final rules (never a flushed, half-refilled chain).
 */
function checkCalls(
  t: import('ava').ExecutionContext,
  start: Kernel,
  single: readonly string[],
  calls: string[][],
  max: number,
): void {
  const final = applyCall(start, single);
  let k = start;
  calls.forEach((call, i) => {
    t.true(chainsOf(call).size <= max, `call ${i} touches ${chainsOf(call).size} chains`);
    k = applyCall(k, call);
    for (const [chain, rules] of k) {
      const ok =
        JSON.stringify(rules) === JSON.stringify(start.get(chain)) ||
        JSON.stringify(rules) === JSON.stringify(final.get(chain)) ||
        (rules.length === 0 && !final.has(chain));
      if (!ok) t.fail(`after call ${i}, ${chain} is neither as before nor as wanted`);
    }
  });
  t.deepEqual(sorted(k), sorted(final), 'the calls together do what the single input does');
  t.deepEqual(
    calls
      .flat()
      .filter((l) => !l.startsWith(':') && l !== '-S')
      .sort(),
    single.filter((l) => !l.startsWith(':')).sort(),
    'no rule line is lost or added',
  );
}

function firstSyncPlan(rs: Ruleset, jumps: ReturnType<typeof render>['jumps']) {
  return planTable({
    desired: rs.nat,
    current: { chains: new Map() },
    jumps: jumps.filter((j) => j.table === 'nat'),
    normalize: (r) => r,
    deleteStale: true,
  });
}

test('an input within the limit is one call, unchanged', (t) => {
  const r = render(generateCluster({ services: 5, endpointsPerService: 2 }));
  const plan = firstSyncPlan(r.ruleset, r.jumps);
  t.deepEqual(splitRestore(plan.lines, 1000), [plan.lines]);
  t.deepEqual(splitRestore(plan.lines, Number.POSITIVE_INFINITY), [plan.lines]);
  t.deepEqual(splitRestore([], 10), []);
});

test('a first sync is split into valid calls: endpoints, services, KUBE-SERVICES, then hooks', (t) => {
  const r = render(generateCluster({ services: 300, endpointsPerService: 3 }));
  const plan = firstSyncPlan(r.ruleset, r.jumps);
  const calls = splitRestore(plan.lines, 100);
  t.true(calls.length > 10);
  checkCalls(t, kernelOf(), plan.lines, calls, 100);

  // Each chain first appears in the call that declares it, after every chain it jumps to.
  const callOf = (prefix: string, last: boolean) => {
    const idx = calls.map((c, i) => (c.some((l) => l.startsWith(prefix)) ? i : -1)).filter((i) => i >= 0);
    return last ? Math.max(...idx) : Math.min(...idx);
  };
  t.true(callOf(':KUBE-SEP-', true) <= callOf(':KUBE-SVC-', false));
  t.true(callOf(':KUBE-SVC-', true) <= callOf(':KUBE-EXT-', false));
  t.true(callOf(':KUBE-EXT-', true) <= callOf(':KUBE-NODEPORTS ', false));
  t.true(callOf(':KUBE-NODEPORTS ', true) <= callOf(':KUBE-SERVICES ', false));
  t.is(callOf('-I PREROUTING ', false), calls.length - 1, 'the hooks come last');
  // A chain is never cut in two: its declaration and all its rules are in one call.
  const svc = calls.findIndex((c) => c.some((l) => l.startsWith(':KUBE-SERVICES ')));
  t.is(
    calls[svc]?.filter((l) => l.startsWith('-A KUBE-SERVICES ')).length,
    r.ruleset.nat.chains.get('KUBE-SERVICES')?.length,
  );
});

test('changes to a loaded table: stale chains are emptied, then deleted, after everything else', (t) => {
  const before = generateCluster({ services: 200, endpointsPerService: 3 });
  const grown = generateCluster({ services: 260, endpointsPerService: 3 });
  // 60 Services gone, 60 new ones, and every endpoint of the first 30 kept ones moved.
  const after: ClusterSnapshot = {
    ...grown,
    services: grown.services.slice(60),
    endpointSlices: grown.endpointSlices.slice(60).map((s, i) =>
      i < 30
        ? {
            ...s,
            endpoints: (s.endpoints ?? []).map((e, j) => ({ ...e, addresses: [`10.250.${i}.${j + 1}`] })),
          }
        : s,
    ),
  };
  const old = render(before).ruleset.nat;
  const plan = planTable({
    desired: render(after).ruleset.nat,
    current: old,
    normalize: (r) => r,
    deleteStale: true,
  });
  t.true(plan.chainsDeleted > 100);
  const calls = splitRestore(plan.lines, 50);
  checkCalls(t, kernelOf(old), plan.lines, calls, 50);
  const firstStale = calls.findIndex(
    (c) => c.every((l) => l.startsWith(':')) || c.some((l) => l.startsWith('-X ')),
  );
  t.true(firstStale > 0);
  for (const c of calls.slice(firstStale)) {
    t.true(
      c.every((l) => l.startsWith(':') || l.startsWith('-X ')),
      'only deletions after the first one',
    );
  }
  // Emptied in calls of their own before any -X, since stale chains jump to each other.
  const firstX = calls.findIndex((c) => c.some((l) => l.startsWith('-X ')));
  t.true(calls.slice(firstX).every((c) => c.every((l) => l.startsWith('-X '))));

  // With room for all stale chains, they are emptied and deleted in one call.
  const roomy = splitRestore(plan.lines, 400);
  checkCalls(t, kernelOf(old), plan.lines, roomy, 400);
  const lastCall = roomy[roomy.length - 1] as string[];
  t.true(lastCall.some((l) => l.startsWith(':')) && lastCall.some((l) => l.startsWith('-X ')));
});

test('rule-by-rule edits of KUBE-SERVICES come after the chains their new rules jump to', (t) => {
  const before = generateCluster({ services: 100, endpointsPerService: 2 });
  const after = generateCluster({ services: 140, endpointsPerService: 2 });
  const old = render(before).ruleset.nat;
  const plan = planTable({
    desired: render(after).ruleset.nat,
    current: old,
    normalize: (r) => r,
    deleteStale: true,
  });
  t.true(plan.lines.some((l) => l.startsWith('-I KUBE-SERVICES 1 ')));
  const calls = splitRestore(plan.lines, 20);
  checkCalls(t, kernelOf(old), plan.lines, calls, 20);
});

test('an input it does not understand, or with a loop, stays one call', (t) => {
  const many = Array.from({ length: 5 }, (_, i) => `:C${i} - [0:0]`);
  t.deepEqual(splitRestore([...many, '-F C1'], 2), [[...many, '-F C1']]);
  const loop = [':A - [0:0]', ':B - [0:0]', ':C - [0:0]', '-A A -j B', '-A B -j A', '-A C -j ACCEPT'];
  t.deepEqual(splitRestore(loop, 1), [loop]);
});

test('restoreCalls: legacy and small inputs are one call; a large nft input lists the table first', (t) => {
  const r = render(generateCluster({ services: 300, endpointsPerService: 3 }));
  const plan = firstSyncPlan(r.ruleset, r.jumps);
  const names = chainsMentioned(plan.lines);
  t.true(names > 1000, `${names} chains`);
  t.deepEqual(restoreCalls(plan.lines, 'legacy', 0), [plan.lines]);
  t.deepEqual(restoreCalls(plan.lines.slice(0, 50), 'nft', 0), [plan.lines.slice(0, 50)]);
  t.deepEqual(restoreCalls([], 'nft', 0), []);
  // Into a big table a listing costs more than it saves for this many chains.
  t.deepEqual(restoreCalls(plan.lines, 'nft', 41_000), [plan.lines]);

  const calls = restoreCalls(plan.lines, 'nft', 0);
  t.deepEqual(calls, prefetchCalls(plan.lines));
  t.is(calls.length, 2);
  const [main, hooks] = calls as [string[], string[]];
  t.is(main[0], '-S', 'the listing comes before anything naming a chain');
  t.is(main.filter((l) => l === '-S').length, 1);
  t.false(main.some((l) => /^-[AI] (PREROUTING|INPUT|FORWARD|OUTPUT|POSTROUTING) /.test(l)));
  t.true(hooks.length > 0);
  t.true(hooks.every((l) => /^-I (PREROUTING|OUTPUT|POSTROUTING) /.test(l)));
  checkCalls(t, kernelOf(), plan.lines, calls, Number.POSITIVE_INFINITY);
  // The rest keeps the plan's order.
  t.deepEqual(
    main.slice(1),
    plan.lines.filter((l) => !hooks.includes(l)),
  );
  t.deepEqual(prefetchCalls([':A - [0:0]', '-A A -j RETURN']), [['-S', ':A - [0:0]', '-A A -j RETURN']]);
});

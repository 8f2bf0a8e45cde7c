// Fault tests' common ground: the backends they run kproxy with, the e2e node
// serving the web Service, and whether the node namespace's kernel holds exactly
// what kproxy wants for the API server's objects. `kproxy diff --against` of a dump
// taken now, with the objects the API server holds now, answers that: kproxy's
// chains and rules (iptables) or table (nftables), lost and doubled ones alike.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { ExecutionContext } from 'ava';
import type { ApiServer, StartOptions } from './apiserver.js';
import { runCli } from './cli.js';
import { rest } from './cluster-api.js';
import { e2eSetup, waitForAnswer, webService, webSlice } from './e2e.js';
import type { AgentOptions } from './kproxy-agent.js';
import type { Flavour } from './kproxy-node.js';
import type { PodNs, Topology } from './netns.js';
import { systemBinary } from './root.js';

export type Backend = { mode: 'iptables'; flavour: Flavour } | { mode: 'nftables' };

/** How startAgent runs kproxy for a backend. */
export function agentFor(b: Backend, extraArgs: string[] = []): AgentOptions {
  return b.mode === 'nftables'
    ? { flavour: 'nft', extraArgs: ['--proxy-mode', 'nftables', ...extraArgs] }
    : { flavour: b.flavour, extraArgs };
}

/** A test title's name for a backend. */
export const backendName = (b: Backend): string =>
  b.mode === 'nftables' ? 'nftables' : `iptables (${b.flavour})`;

export interface WebNodeOptions {
  agentArgs?: string[];
  /** The agent's environment (a fault tool's). */
  env?: Record<string, string>;
  api?: StartOptions;
}

/**
 * The e2e node with pods a and b, the web Service (10.96.0.10) served by a alone,
 * and kproxy running for `b`; resolves once a answers through the Service.
 */
export async function webNode(t: ExecutionContext, b: Backend, o: WebNodeOptions = {}) {
  const s = await e2eSetup(t, [{ name: 'a' }, { name: 'b' }], o.api);
  const [a, other] = s.topo.pods as [PodNs, PodNs];
  await s.k.apply(webService());
  await s.k.apply(webSlice([a]));
  const agent = s.startAgent({ ...agentFor(b, o.agentArgs), ...(o.env ? { env: o.env } : {}) });
  await waitForAnswer(s.topo, '10.96.0.10', a.name);
  await agent.waitForLog(/"synced IPv4 rules"/); // the whole sync, canaries included, is done
  return { ...s, a, b: other, agent, kernelVsDesired: () => kernelVsDesired(s.topo, s.api, b) };
}

function tool(name: string): string {
  const p = systemBinary(name);
  if (!p) throw new Error(`${name} is not installed (Debian packages iptables, nftables)`);
  return p;
}

/** The node's dump as `--against` reads it. */
export async function kernelDump(topo: Topology, b: Backend): Promise<string> {
  const cmd =
    b.mode === 'nftables'
      ? [tool('nft'), 'list', 'table', 'ip', 'kube-proxy']
      : [tool(`iptables-${b.flavour}-save`)];
  return (await topo.exec(topo.node.ns, cmd)).stdout;
}

/** The dump without what changes by itself: comments (dates) and packet counters. */
export function stableDump(dump: string): string {
  return dump
    .split('\n')
    .filter((l) => !l.startsWith('#'))
    .map((l) => l.replace(/\[\d+:\d+\]/g, '[]').replace(/packets \d+ bytes \d+/g, ''))
    .join('\n');
}

const kinds = [
  ['v1', 'Service', '/api/v1/services'],
  ['discovery.k8s.io/v1', 'EndpointSlice', '/apis/discovery.k8s.io/v1/endpointslices'],
  ['v1', 'Node', '/api/v1/nodes'],
  ['networking.k8s.io/v1', 'ServiceCIDR', '/apis/networking.k8s.io/v1/servicecidrs'],
] as const;

/** What the API server holds now, as the `kind: List` that `--from-file` reads. */
async function objectsFile(api: ApiServer, path: string): Promise<void> {
  const r = rest(api);
  const items = [];
  for (const [apiVersion, kind, at] of kinds) {
    for (const o of await r.list<object>(at)) items.push({ apiVersion, kind, ...o });
  }
  writeFileSync(path, JSON.stringify({ apiVersion: 'v1', kind: 'List', items }));
}

/** The unified diff from the kernel to the desired rules ('' when they are the same). */
export async function kernelVsDesired(topo: Topology, api: ApiServer, b: Backend): Promise<string> {
  const dir = mkdtempSync(join(tmpdir(), 'kpt-dump-'));
  try {
    const dump = join(dir, 'dump');
    writeFileSync(dump, await kernelDump(topo, b));
    await objectsFile(api, join(dir, 'objects.json'));
    const r = await runCli(
      'diff',
      '--from-file',
      join(dir, 'objects.json'),
      '--hostname-override',
      topo.node.name,
      '--cluster-cidr',
      topo.clusterCidr,
      '--ip-family',
      'IPv4',
      '--proxy-mode',
      b.mode,
      '--against',
      dump,
    );
    if (r.code > 1) throw new Error(`kproxy diff failed (exit ${r.code}): ${r.stderr}`);
    return r.stdout;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** The agent's "synced IPv4 rules" log lines (JSON) after `from` characters of its log. */
export function syncRecords(log: string, from = 0): Record<string, unknown>[] {
  return log
    .slice(from)
    .split('\n')
    .filter((l) => l.includes('"synced IPv4 rules"'))
    .map((l) => JSON.parse(l) as Record<string, unknown>);
}

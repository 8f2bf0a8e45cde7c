// 1,000 objects kproxy cannot use beside valid ones (issue 14, Faults). The API
// server validates Services as strictly as kproxy does, so the bad objects are
// EndpointSlices it accepts and a proxy cannot use: no kubernetes.io/service-name
// label, or an empty one. Half exist before kproxy starts (its first list), half
// arrive while it runs (its watch). Every valid Service stays served, each bad
// object gets exactly one log line, and kproxy stays small and idle.
import test from 'ava';
import { endpoint, service, slice, slicePort, svcPort } from '../helpers/builders.js';
import { e2eSetup, eventually, port, waitForAnswer } from '../helpers/e2e.js';
import type { Kube } from '../helpers/kube.js';
import type { PodNs } from '../helpers/netns.js';

const bad = 1000;
const valid = 20;
const vip = (i: number) => `10.96.1.${i + 1}`;

/** Slice `bad-i`: no service-name label (even i) or an empty one (odd i). */
const badSlice = (i: number, ip: string) =>
  slice('shop/none', [endpoint(ip, { ready: true })], {
    name: `bad-${i}`,
    ports: [slicePort('p80', port)],
    labels: i % 2 === 0 ? { app: 'bad' } : { 'kubernetes.io/service-name': '' },
  });

async function createAll(k: Kube, objects: object[]): Promise<void> {
  for (let i = 0; i < objects.length; i += 20) {
    await Promise.all(objects.slice(i, i + 20).map((o) => k.create(o)));
  }
}

/** One sample of a Prometheus text exposition (unlabelled series). */
const sample = (text: string, name: string): number =>
  Number(new RegExp(`^${name} (\\S+)$`, 'm').exec(text)?.[1] ?? Number.NaN);

test.serial('1,000 unusable EndpointSlices: every valid Service served, one log line each', async (t) => {
  t.timeout(8 * 60_000); // generous: a loaded machine starts etcd and the API server slowly
  const { topo, k, startAgent } = await e2eSetup(t, [{ name: 'a' }, { name: 'b' }]);
  const pods = topo.pods as [PodNs, PodNs];
  const owner = (i: number) => pods[i % 2] as PodNs;
  const badOnes = Array.from({ length: bad }, (_, i) => badSlice(i, owner(i).ip));
  await createAll(k, badOnes.slice(0, bad / 2));
  for (let i = 0; i < valid; i++) {
    await k.apply(service(`shop/svc-${i}`, { clusterIP: vip(i), ports: [svcPort('p80', 80)] }));
    await k.apply(
      slice(`shop/svc-${i}`, [endpoint(owner(i).ip, { ready: true })], { ports: [slicePort('p80', port)] }),
    );
  }
  const agent = startAgent({ flavour: 'nft', extraArgs: ['--iptables-sync-period', '5s'] });
  for (let i = 0; i < valid; i++) await waitForAnswer(topo, vip(i), owner(i).name);
  await createAll(k, badOnes.slice(bad / 2));

  /** Log lines per bad slice, by its number. */
  const logged = () => {
    const lines = new Map<number, string[]>();
    for (const l of agent.logs().split('\n')) {
      const m = /EndpointSlice shop\/bad-(\d+):/.exec(l);
      if (m) lines.set(Number(m[1]), [...(lines.get(Number(m[1])) ?? []), l]);
    }
    return lines;
  };
  t.true(await eventually(async () => logged().size === bad, 120_000), `${logged().size} bad slices logged`);
  // A few periodic syncs later: still one line each, not one per sync.
  await new Promise((res) => setTimeout(res, 12_000));
  const lines = logged();
  const counts = new Map<number, number>();
  for (const l of lines.values()) counts.set(l.length, (counts.get(l.length) ?? 0) + 1);
  t.deepEqual([...counts], [[1, bad]], 'log lines per bad slice -> how many slices');
  t.regex(lines.get(0)?.[0] ?? '', /kubernetes\.io\/service-name\\?"\]: is missing/);
  t.regex(lines.get(1)?.[0] ?? '', /kubernetes\.io\/service-name\\?"\]: is missing/);

  for (let i = 0; i < valid; i++) await waitForAnswer(topo, vip(i), owner(i).name, 10_000);

  // Small and idle: generous bounds, not a benchmark (docs/benchmarks.md has figures).
  const before = (await agent.get(10249, '/metrics')).body;
  await new Promise((res) => setTimeout(res, 10_000));
  const after = (await agent.get(10249, '/metrics')).body;
  const rssMiB = sample(after, 'process_resident_memory_bytes') / 2 ** 20;
  const cpuS = sample(after, 'process_cpu_seconds_total') - sample(before, 'process_cpu_seconds_total');
  t.log(`RSS ${rssMiB.toFixed(0)} MiB; CPU ${cpuS.toFixed(2)} s over 10 s idle`);
  t.true(rssMiB < 400, `RSS ${rssMiB} MiB`);
  t.true(cpuS < 3, `CPU ${cpuS} s in 10 s with nothing changing`);
  t.is(await agent.stop(), 0);
});

// The soak's cluster objects (scripts/soak.ts): the bulk namespace's Deployments,
// pinned to the fake Nodes kproxy does not serve, and their Services; the web
// Deployment behind its ClusterIP; a readiness loop that marks the bulk pods
// Ready (they have no server, so no probe would); and each churn op in the API.
import {
  type Cluster,
  clusterIpService,
  deployment,
  deploymentPath,
  NS,
  settled,
} from '../test/helpers/cluster.js';
import type { PodObj, Rest } from '../test/helpers/cluster-api.js';
import { type App, type Op, WEB, type World } from './soak-plan.js';

const BULK = 'bulk';
/** The web Service's ClusterIP, which the client stream sends to. */
export const VIP = '10.96.0.10';
const GRACE = 2;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

// The bulk namespace: Deployments pinned to the other fake Nodes, pods marked Ready by us.

function bulkDeployment(name: string, app: App, node: string) {
  const d = deployment({ name, replicas: app.replicas, grace: GRACE, version: `v${app.version}` });
  d.metadata.namespace = BULK;
  Object.assign(d.spec.template.spec, { nodeName: node });
  return d;
}

const bulkPath = (kind: 'deployments' | 'services', name: string) =>
  kind === 'deployments'
    ? `/apis/apps/v1/namespaces/${BULK}/deployments/${name}`
    : `/api/v1/namespaces/${BULK}/services/${name}`;

function bulkServiceObj(name: string, selects: string) {
  const s = clusterIpService(name, '');
  s.metadata.namespace = BULK;
  s.spec.selector = { app: selects };
  const { clusterIP: _, ...spec } = s.spec;
  return { ...s, spec };
}

/** What a readiness probe would do for the bulk pods: Ready once kwok gave them an IP. */
export function startBulkReadiness(r: Rest): { stop(): Promise<void>; errors: string[] } {
  let running = true;
  const errors: string[] = [];
  const loop = (async () => {
    while (running) {
      try {
        const pods = await r.list<PodObj>(`/api/v1/namespaces/${BULK}/pods`);
        const due = pods.filter(
          (p) =>
            p.status?.podIP &&
            !p.metadata.deletionTimestamp &&
            !p.status.conditions?.some((c) => c.type === 'Ready' && c.status === 'True'),
        );
        const now = new Date().toISOString();
        const cond = (type: string) => ({ type, status: 'True', reason: 'Soak', lastTransitionTime: now });
        await Promise.all(
          due.map((p) =>
            r
              .patch(`/api/v1/namespaces/${BULK}/pods/${p.metadata.name}/status`, {
                status: { conditions: [cond('ContainersReady'), cond('Ready')] },
              })
              .catch((e: Error) => {
                if (!/: (404|409) /.test(e.message) && errors.length < 20) errors.push(e.message);
              }),
          ),
        );
      } catch (e) {
        if (running && errors.length < 20) errors.push(String(e));
      }
      await sleep(300);
    }
  })();
  return {
    errors,
    async stop() {
      running = false;
      await loop;
    },
  };
}

async function inBatches<T>(items: T[], size: number, f: (x: T) => Promise<unknown>): Promise<void> {
  for (let i = 0; i < items.length; i += size) await Promise.all(items.slice(i, i + size).map(f));
}

/** Creates the world in the API and waits until every pod of it is Ready. */
export async function createWorld(c: Cluster, w: World): Promise<void> {
  await c.r.apply(`/api/v1/namespaces/${BULK}`, {
    apiVersion: 'v1',
    kind: 'Namespace',
    metadata: { name: BULK },
  });
  const others = c.nodes.slice(1).map((n) => n.name);
  const nodeOf = (name: string) => others[Number(name.replace(/\D/g, '')) % others.length] as string;
  await inBatches([...w.bulk], 10, ([name, app]) =>
    c.r.apply(bulkPath('deployments', name), bulkDeployment(name, app, nodeOf(name))),
  );
  await inBatches([...w.services], 20, ([name, selects]) =>
    c.r.apply(bulkPath('services', name), bulkServiceObj(name, selects)),
  );
  await c.r.apply(`/api/v1/namespaces/${NS}/services/${WEB}`, clusterIpService(WEB, VIP));
  await c.r.apply(deploymentPath(WEB), webDeployment(w.web));
  const want = [...w.bulk.values()].reduce((n, a) => n + a.replicas, 0);
  await c.until(
    `${want} bulk pods Ready and web settled`,
    async () => (await bulkReady(c.r)) === want && (await settled(c.r, WEB, w.web.replicas)),
    600_000,
  );
}

const webDeployment = (a: App) =>
  deployment({ name: WEB, replicas: a.replicas, grace: GRACE, version: `v${a.version}` });

async function bulkReady(r: Rest): Promise<number> {
  const pods = await r.list<PodObj>(`/api/v1/namespaces/${BULK}/pods`);
  return pods.filter(
    (p) =>
      !p.metadata.deletionTimestamp &&
      p.status?.conditions?.some((c) => c.type === 'Ready' && c.status === 'True'),
  ).length;
}

export async function applyToApi(c: Cluster, w: World, op: Op): Promise<void> {
  if (op.kind === 'replace-service') {
    await c.r.remove(bulkPath('services', op.remove));
    await c.r.apply(bulkPath('services', op.add), bulkServiceObj(op.add, op.selects));
    return;
  }
  if (op.app === WEB) return void (await c.r.apply(deploymentPath(WEB), webDeployment(w.web)));
  const node = (
    await c.r.get<{ spec: { template: { spec: { nodeName: string } } } }>(bulkPath('deployments', op.app))
  ).spec.template.spec.nodeName;
  await c.r.apply(bulkPath('deployments', op.app), bulkDeployment(op.app, w.bulk.get(op.app) as App, node));
}

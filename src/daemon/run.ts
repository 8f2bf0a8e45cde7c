// `kproxy run`: the node agent. Serves health and metrics from the first moment,
// watches Services, EndpointSlices and its Node (and ServiceCIDRs in nftables
// mode), and keeps the kernel in step
// through a bounded-frequency sync loop until SIGTERM, when it finishes the sync
// in flight and exits, leaving the rules in place for its successor.
import type { V1EndpointSlice, V1Node, V1Service } from '@kubernetes/client-node';
import { firstLine } from '../backends/common/errors.js';
import { type ModeSettings, type ModeSyncer, modeFor, type ProxyMode } from '../backends/mode.js';
import { type ApiClient, apiClient, loadKubeConfig } from '../cluster/api.js';
import { ListWatch } from '../cluster/list-watch.js';
import { headlessLabel, serviceProxyNameLabel } from '../cluster/snapshot.js';
import { ClusterStore } from '../cluster/store.js';
import type { DaemonOptions } from '../config/daemon-options.js';
import { OptionError, type ProxyOptions } from '../config/options.js';
import type { Logger } from '../log.js';
import { ChangeTracker } from './changes.js';
import { DebugRules } from './debug-rules.js';
import { ProxyHealth, startHealthServer } from './health.js';
import type { RunningServer } from './http-server.js';
import { daemonFamilies } from './ip-families-probe.js';
import { removeLeftovers } from './leftovers.js';
import { createMetrics, type KproxyMetrics } from './metrics.js';
import { startMetricsServer } from './metrics-server.js';
import { nfacctReader } from './nfacct-metrics.js';
import { applyNodeSettings } from './node-settings.js';
import { Proxier } from './proxier.js';
import { BoundedFrequencyRunner } from './runner.js';
import { serviceCIDRWatch } from './service-cidr-watch.js';
import { serviceHealthServers } from './service-health.js';

/** kube-proxy's informer selector: Services another proxy serves, and headless ones, are not ours. */
export const proxyLabelSelector = `!${serviceProxyNameLabel},!${headlessLabel}`;

export interface Agent {
  /** Resolves when the first sync after the initial lists is done. */
  firstSync: Promise<void>;
  healthPort: number | undefined;
  metricsPort: number | undefined;
  /** Graceful stop: watches end, the sync in flight finishes, servers close; rules stay. */
  stop(): Promise<void>;
}

function apiFor(daemon: DaemonOptions) {
  try {
    return apiClient(loadKubeConfig(daemon.kubeconfig || undefined));
  } catch (err) {
    const where = daemon.kubeconfig
      ? `--kubeconfig ${daemon.kubeconfig}`
      : 'in-cluster or default kubeconfig';
    throw new OptionError(`${where}: ${firstLine((err as Error).message)}`);
  }
}
/** Health and metrics, served before anything else (also while the API server is unreachable). */
async function startServers(
  proxy: ProxyOptions,
  daemon: DaemonOptions,
  log: Logger,
  parts: { metrics: KproxyMetrics; health: ProxyHealth; debug: DebugRules },
) {
  const { metrics, health, debug } = parts;
  const servers: RunningServer[] = [];
  const bind = async (what: string, addr: string, start: () => Promise<RunningServer>) => {
    if (addr === '') return undefined;
    try {
      const s = await start();
      servers.push(s);
      log.info(`serving ${what} on ${addr}`, { port: s.port });
      return s.port;
    } catch (err) {
      if (daemon.bindAddressHardFail) throw err;
      log.error(`cannot serve ${what} on ${addr}: ${(err as Error).message}`);
      return undefined;
    }
  };
  const healthPort = await bind('health', daemon.healthzBindAddress, () =>
    startHealthServer(daemon.healthzBindAddress, health, { onProbe: metrics.healthProbe }),
  );
  const metricsPort = await bind('metrics', daemon.metricsBindAddress, () =>
    startMetricsServer(daemon.metricsBindAddress, { metrics, proxyMode: proxy.proxyMode, debugRules: debug }),
  );
  return { servers, healthPort, metricsPort };
}

/**
 * What shapes the mode's rules. The dry run renders for this namespace's kernel as
 * a sync would (iptables: nfacct where nfnetlink_acct answers), asking it without
 * changing anything, so that the diffs it logs are what a sync would apply.
 */
export async function agentSettings(
  mode: Pick<ProxyMode, 'peekKernel'>,
  proxy: ProxyOptions,
  daemon: Pick<DaemonOptions, 'dryRun' | 'ipvs'>,
  log: Logger,
): Promise<ModeSettings> {
  const kernel = daemon.dryRun ? await mode.peekKernel?.(log) : undefined;
  return { options: proxy, ipvs: daemon.ipvs, ...(kernel ? { kernel } : {}) };
}

/**
 * The families to proxy (ip-families-probe.ts), the node's sysctls and OOM score,
 * then the mode's syncer. IPVS mode checks the kernel and tools first and stops
 * start-up with what is missing; it never falls back to iptables. A dry run
 * touches no kernel (it only asks which families it could program).
 */
async function openSyncer(
  mode: ProxyMode,
  given: ProxyOptions,
  parts: { daemon: DaemonOptions; api: ApiClient; log: Logger; servers: readonly RunningServer[] },
): Promise<{ proxy: ProxyOptions; settings: ModeSettings; syncer: ModeSyncer | undefined }> {
  const { daemon, api, log, servers } = parts;
  try {
    const proxy = await daemonFamilies(given, { mode, daemon, api, log });
    const settings = await agentSettings(mode, proxy, daemon, log);
    if (daemon.dryRun) return { proxy, settings, syncer: undefined };
    await applyNodeSettings(daemon, log);
    await removeLeftovers(mode, proxy.ipFamilies, log);
    // No stateDir: the daemon holds what it applied in memory.
    const syncer = await mode.open({ settings, log, flavour: daemon.iptablesFlavour, daemon: true });
    return { proxy, settings, syncer };
  } catch (err) {
    // Start-up failed: close the servers so the process can exit with the error.
    await Promise.all(servers.map((s) => s.stop()));
    throw err;
  }
}

/** The watches of Services, EndpointSlices and this Node (and ServiceCIDRs when the mode reads them), started. */
function startWatches(
  api: ReturnType<typeof apiFor>,
  proxy: ProxyOptions,
  log: Logger,
  parts: { mode: ProxyMode; changes: ChangeTracker; store: ClusterStore },
) {
  const { changes, store } = parts;
  const watches = [
    new ListWatch<V1Service>({
      api,
      log,
      name: 'services',
      path: '/api/v1/services',
      query: { labelSelector: proxyLabelSelector },
      onReplace: (items) => {
        changes.servicesListed(items);
        store.replaceServices(items);
      },
      onEvent: (type, obj) => {
        changes.serviceEvent(type, obj);
        store.serviceEvent(type, obj);
      },
    }),
    new ListWatch<V1EndpointSlice>({
      api,
      log,
      name: 'endpointslices',
      path: '/apis/discovery.k8s.io/v1/endpointslices',
      query: { labelSelector: proxyLabelSelector },
      onReplace: (items) => {
        changes.slicesListed(items);
        store.replaceSlices(items);
      },
      onEvent: (type, obj) => {
        changes.sliceEvent(type, obj);
        store.sliceEvent(type, obj);
      },
    }),
    new ListWatch<V1Node>({
      api,
      log,
      name: 'node',
      path: '/api/v1/nodes',
      query: { fieldSelector: `metadata.name=${proxy.hostnameOverride}` },
      onReplace: (items) => store.replaceNodes(items),
      onEvent: (type, obj) => store.nodeEvent(type, obj),
    }),
  ];
  // Only the nftables mode has a rule that reads them (as upstream: iptables and IPVS ignore them).
  const cidrs = parts.mode.watchesServiceCIDRs ? serviceCIDRWatch(api, store, log) : undefined;
  const all = cidrs ? [...watches, cidrs.watch] : watches;
  for (const w of all) w.start();
  return { watches, cidrs, all };
}

export async function startAgent(given: ProxyOptions, daemon: DaemonOptions, log: Logger): Promise<Agent> {
  // A bad kubeconfig stops start-up before anything listens or touches the kernel.
  const api = apiFor(daemon);
  const mode = modeFor(given.proxyMode);
  // upstream exports its nfacct counters (iptables mode) when nfnetlink_acct answers.
  const counted = mode.metrics.nfacctCounters && !daemon.dryRun;
  const nfacct = counted ? await nfacctReader(log) : undefined;
  const metrics = createMetrics({ modeMetrics: mode.metrics, ...(nfacct ? { nfacct: nfacct.read } : {}) });
  const debug = new DebugRules();
  // No family counts as updated until the families are known (below).
  const health = new ProxyHealth({ healthTimeoutMs: 2 * daemon.syncPeriodMs });
  const { servers, healthPort, metricsPort } = await startServers(given, daemon, log, {
    metrics,
    health,
    debug,
  });
  const { proxy, settings, syncer } = await openSyncer(mode, given, { daemon, api, log, servers });
  const families = proxy.ipFamilies;
  // As upstream's SyncLoop: each family's proxier counts as updated when its loop starts.
  for (const family of families) health.updated(family);

  // --dry-run programs nothing, so it opens no health-check node port either: a load
  // balancer must not send traffic here on kproxy's word while another proxy (or none)
  // holds the rules, and the ports may be that proxy's own.
  const serviceHealth = daemon.dryRun
    ? undefined
    : serviceHealthServers({ families, options: proxy, log, proxyHealthy: () => health.isHealthy() });

  let runner: BoundedFrequencyRunner | undefined;
  const changes = new ChangeTracker({ families, metrics, health });
  // Only this node's Node changes every Service's rules: other Nodes' are no global change.
  const store = new ClusterStore(
    log,
    (kind) => {
      if (kind === 'node') changes.nodeChanged();
      runner?.request();
    },
    { nodeName: proxy.hostnameOverride },
  );

  const proxier = new Proxier({
    store,
    options: proxy,
    log,
    mode,
    settings,
    ...(syncer ? { syncer } : {}),
    changes,
    metrics,
    health,
    debug,
    ...(serviceHealth ? { afterSync: serviceHealth.afterSync } : {}),
  });

  log.info(`watching the API server at ${api.server}`, {
    node: proxy.hostnameOverride,
    mode: proxy.proxyMode,
  });
  const { watches, cidrs, all } = startWatches(api, proxy, log, { mode, changes, store });

  let resolveFirst!: () => void;
  const firstSync = new Promise<void>((r) => {
    resolveFirst = r;
  });
  // No sync before Services and EndpointSlices were listed once: a partial view
  // would delete the rules of everything not yet seen. This Node's list is awaited
  // too (its addresses and topology labels shape the rules: a first sync without
  // them is followed by a full one when they come), and the service CIDRs' first
  // list when it is tried.
  const started = Promise.all([...watches.map((w) => w.synced), cidrs?.ready]).then(() => {
    log.info('initial list of Services, EndpointSlices and this Node done; starting the sync loop');
    runner = new BoundedFrequencyRunner({
      minIntervalMs: daemon.minSyncPeriodMs,
      maxIntervalMs: daemon.syncPeriodMs,
      run: async (reason) => {
        await proxier.sync(reason);
        resolveFirst();
      },
    });
    changes.loopStarted();
    runner.start();
  });

  return {
    firstSync,
    healthPort,
    metricsPort,
    async stop() {
      await Promise.all(all.map((w) => w.stop()));
      await Promise.race([started, Promise.resolve()]);
      await runner?.stop();
      await Promise.all([...servers.map((s) => s.stop()), serviceHealth?.stop()]);
      syncer?.close();
      nfacct?.close();
    },
  };
}

// The watch of ServiceCIDR objects (networking.k8s.io/v1), which only the nftables
// mode reads (its "drop traffic to unallocated ClusterIPs" rule). They are not worth
// stalling the node for: `ready` resolves after the first list whether it worked or
// not, so the first sync has them when they can be had and is never held back by an
// API server that does not serve them (before 1.33: the watch ends) or a role that
// does not grant them (403: it keeps trying, and says what is missing).
import type { V1ServiceCIDR } from '@kubernetes/client-node';
import type { ApiClient } from '../cluster/api.js';
import { ListWatch } from '../cluster/list-watch.js';
import type { ClusterStore } from '../cluster/store.js';
import type { Logger } from '../log.js';

export const serviceCIDRsPath = '/apis/networking.k8s.io/v1/servicecidrs';

export interface ServiceCIDRWatch {
  watch: ListWatch<V1ServiceCIDR>;
  /** Resolves after the first list, listed or failed. */
  ready: Promise<void>;
}

export function serviceCIDRWatch(api: ApiClient, store: ClusterStore, log: Logger): ServiceCIDRWatch {
  let listFailed!: () => void;
  const failedOnce = new Promise<void>((r) => {
    listFailed = r;
  });
  let told = false;
  const failed = (err: unknown) => {
    listFailed();
    const status = (err as { statusCode?: number }).statusCode;
    if (status === 404) {
      log.info(
        'the API server serves no networking.k8s.io/v1 ServiceCIDRs (Kubernetes before 1.33): ' +
          'service CIDRs come from --service-cidrs only',
      );
      void watch.stop(); // not awaited: this runs inside the watch's own list
    } else if (status === 403 && !told) {
      told = true;
      log.error(
        'not allowed to list servicecidrs (networking.k8s.io): give the ClusterRole list and watch on them ' +
          '(daemonset/base/clusterrole.yaml); until then service CIDRs come from --service-cidrs only',
      );
    }
  };
  // The list call is observed, not changed: ListWatch still retries as it always does.
  const observed: ApiClient = {
    server: api.server,
    watch: api.watch.bind(api),
    async list<T>(path: string, query: Record<string, string>, signal?: AbortSignal) {
      try {
        return await api.list<T>(path, query, signal);
      } catch (err) {
        failed(err);
        throw err;
      }
    },
  };
  const watch: ListWatch<V1ServiceCIDR> = new ListWatch<V1ServiceCIDR>({
    api: observed,
    log,
    name: 'servicecidrs',
    path: serviceCIDRsPath,
    query: {},
    onReplace: (items) => store.replaceServiceCIDRs(items),
    onEvent: (type, obj) => store.serviceCIDREvent(type, obj),
  });
  return { watch, ready: Promise.race([watch.synced, failedOnce]) };
}

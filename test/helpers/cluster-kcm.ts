// The real kube-controller-manager (built by scripts/test-infra/build-k8s.sh with
// K8S_EXTRA=kube-controller-manager), running only the controllers a Deployment
// behind a Service needs: deployment -> replicaset -> pods, the endpointslice
// controller that turns pods into EndpointSlices, and the garbage collector that
// deletes a deleted Deployment's ReplicaSets and pods.
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import type { ApiServer } from './apiserver.js';
import { k8sBinDir } from './apiserver.js';
import { type Component, startComponent } from './cluster-process.js';

export const KCM_CONTROLLERS = [
  'deployment-controller',
  'replicaset-controller',
  'endpointslice-controller',
  'garbage-collector-controller',
];

export function kcmBinary(): string {
  return join(k8sBinDir(), 'kube-controller-manager');
}

export function startKcm(api: ApiServer, dir: string): Component {
  const bin = kcmBinary();
  if (!existsSync(bin)) {
    throw new Error(
      `missing ${bin}: build it with K8S_EXTRA="kube-controller-manager kube-proxy" scripts/test-infra/build-k8s.sh`,
    );
  }
  return startComponent(
    'kube-controller-manager',
    bin,
    [
      // The admin kubeconfig (system:masters) for everything: no service-account
      // tokens, so no token controller and no ServiceAccount admission are needed.
      `--kubeconfig=${api.kubeconfigPath}`,
      '--use-service-account-credentials=false',
      `--controllers=${KCM_CONTROLLERS.join(',')}`,
      '--leader-elect=false',
      // No serving endpoint (nothing scrapes it), so no port to clash with other tests.
      '--secure-port=0',
      // Slices follow pods at once rather than in batches: the tests watch every step.
      '--endpointslice-updates-batch-period=0s',
      '--concurrent-deployment-syncs=2',
      '--concurrent-replicaset-syncs=2',
      '--v=2',
    ],
    join(dir, 'kube-controller-manager.log'),
  );
}

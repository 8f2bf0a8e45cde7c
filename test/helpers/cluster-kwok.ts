// kwok (sigs.k8s.io/kwok) plays the kubelet of the fake Nodes: it marks them
// Ready, starts their pods (phase Running, a pod IP from the Node's podCIDR) and
// deletes terminating pods once their grace period is over. Its behaviour is the
// list of Stages below (the kwok binary ships none; kwokctl normally supplies them).
//
// One departure from kwok's stock stages: a started pod is NOT marked Ready here.
// The pod network (cluster-pods.ts) marks it Ready once a server listens on its
// IP, as a kubelet's readiness probe would, so an endpoint is never ready before
// something answers at it.
import { existsSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { ApiServer } from './apiserver.js';
import { type Component, startComponent } from './cluster-process.js';

export const KWOK_VERSION = process.env.KWOK_VERSION ?? '0.8.0';

export function kwokBinary(): string {
  const dir = process.env.KPROXY_CACHE ?? '/var/cache/kproxy';
  return join(dir, 'kwok', KWOK_VERSION, 'kwok');
}

/** A kwok Stage: `selectors` are jq requirements, `body` the rest of its spec (YAML at 2 spaces). */
function stage(name: string, kind: 'Node' | 'Pod', selectors: string[], body: string): string {
  const matches = selectors.map((m) => `    - jq: {${m}}`).join('\n');
  return `apiVersion: kwok.x-k8s.io/v1alpha1
kind: Stage
metadata: {name: ${name}}
spec:
  resourceRef: {apiGroup: v1, kind: ${kind}}
  selector:
    matchExpressions:
${matches}
${body}`;
}

// Nodes: Ready as soon as kwok sees them, and kept Ready (no heartbeat stage is
// needed: no node lifecycle controller runs to notice a stale one).
const nodeReady = stage(
  'node-ready',
  'Node',
  [`key: '.status.conditions.[] | select( .type == "Ready" ) | .status', operator: NotIn, values: ['True']`],
  `  next:
    statusTemplate: |
      {{ $now := Now }}
      conditions:
      - type: Ready
        status: "True"
        reason: KubeletReady
        message: kwok plays this node's kubelet
        lastHeartbeatTime: {{ $now | Quote }}
        lastTransitionTime: {{ $now | Quote }}
      allocatable: {cpu: 1k, memory: 1Ti, pods: 1k}
      capacity: {cpu: 1k, memory: 1Ti, pods: 1k}
      nodeInfo:
        architecture: amd64
        operatingSystem: linux
        kubeletVersion: kwok
        containerRuntimeVersion: kwok
      phase: Running
`,
);

// A bound pod starts: Running, its IP from the node's podCIDR, containers
// running but not ready (see the header).
const podStart = stage(
  'pod-start',
  'Pod',
  [
    `key: '.metadata.deletionTimestamp', operator: DoesNotExist`,
    `key: '.status.podIP', operator: DoesNotExist`,
  ],
  `  next:
    statusTemplate: |
      {{ $now := Now }}
      conditions:
      - {type: PodScheduled, status: "True", lastTransitionTime: {{ $now | Quote }}}
      - {type: Initialized, status: "True", lastTransitionTime: {{ $now | Quote }}}
      - {type: ContainersReady, status: "False", reason: WaitingForServer, lastTransitionTime: {{ $now | Quote }}}
      - {type: Ready, status: "False", reason: WaitingForServer, lastTransitionTime: {{ $now | Quote }}}
      containerStatuses:
      {{ range .spec.containers }}
      - name: {{ .name | Quote }}
        image: {{ .image | Quote }}
        ready: false
        restartCount: 0
        started: true
        state: {running: {startedAt: {{ $now | Quote }}}}
      {{ end }}
      {{ with NodeIPsWith .spec.nodeName }}
      hostIP: {{ index . 0 | Quote }}
      hostIPs: [{ip: {{ index . 0 | Quote }}}]
      {{ end }}
      {{ with PodIPsWith .spec.nodeName false .metadata.uid .metadata.name .metadata.namespace }}
      podIP: {{ index . 0 | Quote }}
      podIPs: [{ip: {{ index . 0 | Quote }}}]
      {{ end }}
      phase: Running
      startTime: {{ $now | Quote }}
`,
);

// A deleted pod stays Terminating until its deletionTimestamp (deletion time plus
// the grace period), then goes away, as a kubelet deletes it once its containers
// have exited: the delay is the time left until deletionTimestamp (kwok takes the
// smaller of duration and jitter, and reads a timestamp as "until then").
const podDelete = stage(
  'pod-delete',
  'Pod',
  [`key: '.metadata.deletionTimestamp', operator: Exists`],
  `  delay:
    durationMilliseconds: 86400000
    jitterDurationFrom: {jq: {expression: '.metadata.deletionTimestamp'}}
  next:
    delete: true
`,
);

export const kwokStages = [nodeReady, podStart, podDelete].join('\n---\n');

export function startKwok(api: ApiServer, dir: string): Component {
  const config = join(dir, 'kwok.yaml');
  writeFileSync(config, kwokStages);
  const bin = kwokBinary();
  if (!existsSync(bin)) {
    throw new Error(
      `missing ${bin}: build it with scripts/test-infra/build-kwok.sh (a few minutes the first time)`,
    );
  }
  return startComponent(
    'kwok',
    bin,
    [
      '--kubeconfig',
      api.kubeconfigPath,
      '--config',
      config,
      '--manage-all-nodes',
      '--cidr',
      '10.244.250.0/24',
    ],
    join(dir, 'kwok.log'),
  );
}

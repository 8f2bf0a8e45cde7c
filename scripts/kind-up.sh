#!/usr/bin/env bash
# One command from nothing to kproxy serving Services on a kind cluster:
#
#   1. a kind cluster without kube-proxy (networking.kubeProxyMode: none), one
#      control-plane node and two workers;
#   2. the kproxy image (docker build) loaded into its nodes (kind load);
#   3. daemonset/ (the chosen overlay) applied, the DaemonSet rolled out;
#   4. a smoke test: a 2-replica Deployment behind a Service, and requests to the
#      Service by its DNS name from a pod, answered by both replicas.
#
# With "dry-run" the cluster keeps kube-proxy, kproxy runs beside it without
# touching the kernel, and the smoke test checks that kproxy logged the rules it
# would write for the smoke test's Service.
#
# Usage: scripts/kind-up.sh [iptables|ipvs|nftables|dry-run] [--print]
#   --print   print the kind config and the manifests it would apply, change
#             nothing (needs kubectl only)
#
# Environment:
#   KPROXY_MODE          the overlay when no argument is given (default iptables)
#   KIND_CLUSTER_NAME    cluster name (default kproxy); an existing one is reused
#   KPROXY_IMAGE         image to build and load (default kproxy:dev)
#   KIND_NODE_IMAGE      kindest/node image (default: the kind release's own)
#   KPROXY_SKIP_SMOKE=1  stop after the rollout
#
# Needs docker (with a running engine), kind and kubectl 1.21 or newer. Running it
# again is fine: it reuses the cluster, rebuilds and reloads the image, re-applies.
set -euo pipefail

# ---------------------------------------------------------------- arguments
print_only=0
mode="${KPROXY_MODE:-iptables}"
for arg in "$@"; do
  case "$arg" in
    --print) print_only=1 ;;
    -h | --help)
      sed -n '2,28p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'
      exit 0
      ;;
    -*)
      echo "kind-up.sh: unknown option $arg (see --help)" >&2
      exit 2
      ;;
    *) mode="$arg" ;;
  esac
done
case "$mode" in
  iptables | ipvs | nftables | dry-run) ;;
  *)
    echo "kind-up.sh: unknown mode \"$mode\": one of iptables, ipvs, nftables, dry-run" >&2
    exit 2
    ;;
esac

# ---------------------------------------------------------------- what it needs
# Checked before anything else, with bash builtins only, so that the message
# names every missing tool at once.
declare -A where=(
  [docker]="a container engine and its CLI: https://docs.docker.com/engine/install/ (the engine must be running)"
  [kind]="https://kind.sigs.k8s.io/docs/user/quick-start/#installation (or: go install sigs.k8s.io/kind@latest)"
  [kubectl]="version 1.21 or newer: https://kubernetes.io/docs/tasks/tools/#kubectl"
)
needed=(kubectl)
((print_only)) || needed=(docker kind kubectl)
missing=()
for tool in "${needed[@]}"; do
  command -v "$tool" >/dev/null 2>&1 || missing+=("$tool")
done
if ((${#missing[@]} > 0)); then
  echo "kind-up.sh: missing ${missing[*]}; install:" >&2
  for tool in "${missing[@]}"; do echo "  $tool: ${where[$tool]}" >&2; done
  exit 1
fi
# kubectl's built-in kustomize must know `resources:` directories and `patches:`.
kubectl_minor="$(kubectl version --client -o json 2>/dev/null |
  sed -n 's/^ *"minor": *"\([0-9]*\).*/\1/p' | head -n 1)"
if [[ -z "$kubectl_minor" ]] || ((kubectl_minor < 21)); then
  echo "kind-up.sh: kubectl $(command -v kubectl) is too old (minor version '${kubectl_minor:-unknown}');" \
    "install kubectl 1.21 or newer: ${where[kubectl]}" >&2
  exit 1
fi
if ! ((print_only)) && ! docker info >/dev/null 2>&1; then
  echo "kind-up.sh: docker is installed but its engine does not answer (docker info failed):" \
    "start the Docker daemon, or give this user access to it" >&2
  exit 1
fi

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd -P)"
cluster="${KIND_CLUSTER_NAME:-kproxy}"
image="${KPROXY_IMAGE:-kproxy:dev}"
context="kind-$cluster"
ds=kproxy label=k8s-app=kproxy
if [[ "$mode" == dry-run ]]; then ds=kproxy-dry-run label=k8s-app=kproxy-dry-run; fi
log() { printf '[kind-up] %s\n' "$*" >&2; }

# ---------------------------------------------------------------- kind's config
# kind's v1alpha4 Cluster. kind's default pod subnet, which is the clusterCIDR of
# daemonset/base/kube-proxy-config.yaml. No kube-proxy, except for a dry run,
# which watches beside it.
proxy_line='  kubeProxyMode: "none"'
[[ "$mode" == dry-run ]] && proxy_line='  # kube-proxy stays: kproxy watches beside it in dry-run mode'
kind_config="kind: Cluster
apiVersion: kind.x-k8s.io/v1alpha4
networking:
$proxy_line
  podSubnet: \"10.244.0.0/16\"
nodes:
  - role: control-plane
  - role: worker
  - role: worker"

# ---------------------------------------------------------------- the manifests
# The chosen overlay with this image and this cluster's control-plane endpoint:
# kind's nodes reach the API server at <cluster>-control-plane:6443 without any
# Service proxy, as kind's own CNI does. (The dry-run overlay uses the kubernetes
# Service instead: kube-proxy runs there.)
work="$(mktemp -d "${TMPDIR:-/tmp}/kproxy-kind-up.XXXXXX")"
trap 'rm -rf "$work"' EXIT
work="$(cd "$work" && pwd -P)"
overlay="$repo/daemonset/overlays/$mode"
# kustomize wants a relative path: up to / from $work, then down to the overlay.
up="${work//[^\/]/}"
up="${up//\//../}"
image_name="$image" image_tag=""
if [[ "${image##*/}" == *:* ]]; then
  image_name="${image%:*}"
  image_tag="${image##*:}"
fi
{
  echo "apiVersion: kustomize.config.k8s.io/v1beta1"
  echo "kind: Kustomization"
  echo "resources:"
  echo "  - ${up}${overlay#/}"
  echo "images:"
  echo "  - name: kproxy"
  echo "    newName: $image_name"
  if [[ -n "$image_tag" ]]; then echo "    newTag: \"$image_tag\""; fi
  if [[ "$mode" != dry-run ]]; then
    echo "patches:"
    echo "  - target: {kind: DaemonSet, name: kproxy}"
    echo "    patch: |-"
    echo "      apiVersion: apps/v1"
    echo "      kind: DaemonSet"
    echo "      metadata: {name: kproxy}"
    echo "      spec:"
    echo "        template:"
    echo "          spec:"
    echo "            containers:"
    echo "              - name: kproxy"
    echo "                env:"
    echo "                  - name: KUBERNETES_SERVICE_HOST"
    echo "                    value: $cluster-control-plane"
  fi
} >"$work/kustomization.yaml"
kubectl kustomize "$work" >"$work/manifests.yaml"

if ((print_only)); then
  echo "# kind config (kind create cluster --name $cluster --config -)"
  echo "$kind_config"
  echo "---"
  echo "# manifests (kubectl apply -f -)"
  cat "$work/manifests.yaml"
  exit 0
fi

# ---------------------------------------------------------------- cluster
if kind get clusters 2>/dev/null | grep -qx "$cluster"; then
  log "reusing kind cluster $cluster"
  if [[ "$mode" != dry-run ]] &&
    kubectl --context "$context" -n kube-system get daemonset kube-proxy >/dev/null 2>&1; then
    log "cluster $cluster runs kube-proxy: two proxies would fight over the same chains;" \
      "delete it (scripts/kind-down.sh), use another KIND_CLUSTER_NAME, or the dry-run mode"
    exit 1
  fi
else
  log "creating kind cluster $cluster ($([[ "$mode" == dry-run ]] && echo "with" || echo "without") kube-proxy, 1 control plane + 2 workers)"
  node_image=()
  if [[ -n "${KIND_NODE_IMAGE:-}" ]]; then node_image=(--image "$KIND_NODE_IMAGE"); fi
  kind create cluster --name "$cluster" "${node_image[@]}" --config - <<<"$kind_config"
fi

# ---------------------------------------------------------------- image
log "building $image"
docker build -t "$image" "$repo"
log "loading $image into the nodes of $cluster"
kind load docker-image "$image" --name "$cluster"

# ---------------------------------------------------------------- kproxy
existed=0
if kubectl --context "$context" -n kube-system get daemonset "$ds" >/dev/null 2>&1; then existed=1; fi
log "applying daemonset/overlays/$mode"
kubectl --context "$context" apply -f "$work/manifests.yaml"
if ((existed)); then
  # Same image tag, new image: the pods only pick it up when they restart.
  kubectl --context "$context" -n kube-system rollout restart "daemonset/$ds"
fi
log "waiting for DaemonSet $ds"
if ! kubectl --context "$context" -n kube-system rollout status "daemonset/$ds" --timeout=180s; then
  kubectl --context "$context" -n kube-system get pods -l "$label" -o wide >&2 || true
  kubectl --context "$context" -n kube-system logs -l "$label" --tail=20 --prefix >&2 || true
  log "DaemonSet $ds did not become ready (pods and their last log lines above)"
  exit 1
fi

if [[ "${KPROXY_SKIP_SMOKE:-}" == 1 ]]; then
  log "done (smoke test skipped)"
  exit 0
fi

# ---------------------------------------------------------------- smoke test
# Nodes become Ready once the CNI (kindnet) runs, CoreDNS once it reaches the API
# server through the kubernetes Service: both need a working Service proxy.
log "waiting for the nodes and CoreDNS"
kubectl --context "$context" wait --for=condition=Ready nodes --all --timeout=180s
kubectl --context "$context" -n kube-system rollout status deployment/coredns --timeout=180s

ns=kproxy-smoke
agnhost=registry.k8s.io/e2e-test-images/agnhost:2.53
log "smoke test: Deployment echo (2 x agnhost netexec) behind Service echo in namespace $ns"
kubectl --context "$context" apply -f - <<EOF
apiVersion: v1
kind: Namespace
metadata:
  name: $ns
---
apiVersion: apps/v1
kind: Deployment
metadata:
  name: echo
  namespace: $ns
spec:
  replicas: 2
  selector:
    matchLabels: {app: echo}
  template:
    metadata:
      labels: {app: echo}
    spec:
      containers:
        - name: echo
          image: $agnhost
          args: [netexec, --http-port=8080]
          ports: [{containerPort: 8080}]
          readinessProbe:
            httpGet: {path: /healthz, port: 8080}
---
apiVersion: v1
kind: Service
metadata:
  name: echo
  namespace: $ns
spec:
  selector: {app: echo}
  ports: [{name: http, port: 80, targetPort: 8080}]
EOF
kubectl --context "$context" -n "$ns" rollout status deployment/echo --timeout=180s

if [[ "$mode" == dry-run ]]; then
  # kube-proxy serves the Service; kproxy only says what it would write for it.
  log "waiting for kproxy's dry-run log to show the rules for $ns/echo"
  for _ in $(seq 60); do
    if kubectl --context "$context" -n kube-system logs -l "$label" --tail=-1 2>/dev/null |
      grep -q "$ns/echo:http"; then
      log "smoke test passed: kproxy logged the rules it would write for $ns/echo; watch it with:" \
        "kubectl --context $context -n kube-system logs -l $label -f"
      exit 0
    fi
    sleep 2
  done
  log "smoke test FAILED: no rule for $ns/echo in kproxy's dry-run log within 2 minutes"
  exit 1
fi

# 20 requests by name (DNS through the kube-dns Service, then the echo Service):
# each answers with the name of the pod that served it.
url="http://echo.$ns.svc.cluster.local/hostname"
log "requesting $url from a pod"
kubectl --context "$context" -n "$ns" delete pod smoke-client --ignore-not-found --wait=true >/dev/null
answers="$(kubectl --context "$context" -n "$ns" run smoke-client --rm -i --restart=Never \
  --image="$agnhost" --pod-running-timeout=3m --command -- \
  sh -c "for i in \$(seq 20); do curl -fsS --max-time 5 --retry 5 --retry-connrefused $url; echo; done")"
pods="$(kubectl --context "$context" -n "$ns" get pods -l app=echo -o jsonpath='{.items[*].metadata.name}')"
served=0
for pod in $pods; do
  n="$(grep -cx "$pod" <<<"$answers" || true)"
  log "  $pod answered $n of 20"
  if ((n > 0)); then served=$((served + 1)); fi
done
if ((served < 2)); then
  log "smoke test FAILED: expected answers from both echo pods; got:"
  echo "$answers" >&2
  exit 1
fi
log "smoke test passed: the Service answered by name from both of its pods"
log "kproxy ($mode) runs on every node of $cluster; logs:" \
  "kubectl --context $context -n kube-system logs -l $label -f"

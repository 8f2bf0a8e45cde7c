#!/usr/bin/env bash
# Step 4 of the offline kind cluster: every step before it (each cached), then
# `kind create cluster` with the local node image, in the kind engine's network
# namespace, and a check that every node registers with the API server.
#
#   scripts/kind-offline/create-cluster.sh [NAME]   # default kproxy-offline
#   scripts/kind-offline/create-cluster.sh --delete [NAME]
#
# The cluster has kind-up.sh's shape: one control plane, two workers, no kube-proxy.
# kubectl: scripts/kind-offline/docker-daemon.sh run kubectl --context kind-NAME ...
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd -P)"
run() { bash "$here/docker-daemon.sh" run "$@"; }
log() { printf '[create-cluster] %s\n' "$*" >&2; }

if [[ "${1:-}" == --delete ]]; then
  run kind delete cluster --name "${2:-kproxy-offline}"
  exit 0
fi
name="${1:-kproxy-offline}"

t() { # t LABEL CMD...: run a step, print its time
  local s=$SECONDS
  "${@:2}"
  log "$1: $((SECONDS - s)) s"
}
t "kind CLI" bash "$here/build-kind.sh" >/dev/null
t "engine" bash "$here/docker-daemon.sh" start >/dev/null
t "node binaries" bash "$here/build-node-binaries.sh" >/dev/null
t "images" bash "$here/build-images.sh" >/dev/null
image="$(bash "$here/build-node-image.sh")"

if run kind get clusters 2>/dev/null | grep -qx "$name"; then
  log "cluster $name exists; delete it with: $0 --delete $name"
else
  s=$SECONDS
  run kind create cluster --name "$name" --image "$image" --retain --config - <<'YAML'
kind: Cluster
apiVersion: kind.x-k8s.io/v1alpha4
networking:
  kubeProxyMode: "none"
  podSubnet: "10.244.0.0/16"
nodes:
  - role: control-plane
  - role: worker
  - role: worker
YAML
  log "kind create cluster: $((SECONDS - s)) s"
fi
run kubectl --context "kind-$name" get nodes -o wide

#!/usr/bin/env bash
# Deletes the kind cluster scripts/kind-up.sh made (nodes, their containers and
# the kubeconfig context kind-<name>). The kproxy image stays in docker.
#
# Usage: scripts/kind-down.sh
# Environment:
#   KIND_CLUSTER_NAME   cluster name (default kproxy, as kind-up.sh)
#
# Needs: docker (a running engine) and kind. (kubectl is not needed to delete a
# cluster; kind-up.sh needs it.)
set -euo pipefail

case "${1:-}" in
  "") ;;
  -h | --help)
    sed -n '2,10p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'
    exit 0
    ;;
  *)
    echo "kind-down.sh: no arguments expected (the cluster name comes from KIND_CLUSTER_NAME)" >&2
    exit 2
    ;;
esac

declare -A where=(
  [docker]="a container engine and its CLI: https://docs.docker.com/engine/install/ (the engine must be running)"
  [kind]="https://kind.sigs.k8s.io/docs/user/quick-start/#installation (or: go install sigs.k8s.io/kind@latest)"
)
missing=()
for tool in docker kind; do
  command -v "$tool" >/dev/null 2>&1 || missing+=("$tool")
done
if ((${#missing[@]} > 0)); then
  echo "kind-down.sh: missing ${missing[*]}; install:" >&2
  for tool in "${missing[@]}"; do echo "  $tool: ${where[$tool]}" >&2; done
  exit 1
fi
if ! docker info >/dev/null 2>&1; then
  echo "kind-down.sh: docker is installed but its engine does not answer (docker info failed):" \
    "start the Docker daemon, or give this user access to it" >&2
  exit 1
fi

cluster="${KIND_CLUSTER_NAME:-kproxy}"
if ! kind get clusters 2>/dev/null | grep -qx "$cluster"; then
  echo "[kind-down] no kind cluster named $cluster: nothing to do" >&2
  exit 0
fi
echo "[kind-down] deleting kind cluster $cluster" >&2
kind delete cluster --name "$cluster"

#!/usr/bin/env bash
# Step 2 of the offline kind cluster: the image tier's docker engine
# (scripts/image/docker-daemon.sh), a second instance for kind:
#   - its own socket (/run/kproxy-kind-docker.sock, KPROXY_KIND_DOCKER_SOCK) and data
#     root ($KPROXY_CACHE/kind/docker), so kind's images stay apart from the image tier's;
#   - in a network namespace of its own (kproxy-kind): the "kind" bridge network and
#     the ports kind publishes live there, not on the host. kind, kubectl and
#     scripts/kind-up.sh run in it too (`ip netns exec kproxy-kind ...`, or `run` below);
#   - runc-wrapper.sh as its default runtime: kind asks for --privileged, which this
#     sandbox cannot grant whole (no CAP_SYS_RESOURCE in its bounding set).
#
#   scripts/kind-offline/docker-daemon.sh start|stop|socket
#   scripts/kind-offline/docker-daemon.sh run CMD...   # CMD in the namespace, DOCKER_HOST set,
#       and docker, kind and kubectl first on PATH ($KPROXY_CACHE/kind/path: this
#       machine has an unrelated /usr/local/bin/docker first on PATH, and kind runs
#       `docker` by name)
#
# kind mounts the host's /lib/modules into its nodes, and docker creates a missing
# bind source: this host has none, so `start` notes that and `stop` removes the
# empty directory again.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd -P)"
CACHE="${KPROXY_CACHE:-/var/cache/kproxy}"
sock="${KPROXY_KIND_DOCKER_SOCK:-/run/kproxy-kind-docker.sock}"
netns="${KPROXY_KIND_NETNS:-kproxy-kind}"
runtime_dir="$CACHE/kind/runtime"
ip=/usr/sbin/ip
path_dir="$CACHE/kind/path"
modules_mark="$CACHE/kind/.lib-modules-created"

helper() {
  KPROXY_CACHE="$CACHE/kind" KPROXY_DOCKER_SOCK="$sock" KPROXY_DOCKERD_NETNS="$netns" \
    KPROXY_DOCKERD_ARGS="--add-runtime kproxy-runc=$runtime_dir/runc-wrapper --default-runtime kproxy-runc" \
    bash "$here/../image/docker-daemon.sh" "$@"
}

case "${1:-}" in
  start)
    if [[ ! -e "/run/netns/$netns" ]]; then
      "$ip" netns add "$netns"
      "$ip" -n "$netns" link set lo up
    fi
    # A copy at a fixed path: the engine keeps calling it, whichever worktree started it.
    mkdir -p "$runtime_dir"
    install -m 0755 "$here/runc-wrapper.sh" "$runtime_dir/runc-wrapper.tmp"
    mv -f "$runtime_dir/runc-wrapper.tmp" "$runtime_dir/runc-wrapper"
    [[ -e /lib/modules ]] || touch "$modules_mark"
    mkdir -p "$path_dir"
    ln -sfn /usr/bin/docker "$path_dir/docker"
    ln -sfn "$CACHE/kind/kind-${KIND_VERSION:-0.33.0}/kind" "$path_dir/kind"
    ln -sfn "$CACHE/k8s/${K8S_VERSION:-1.37.2}/kubectl" "$path_dir/kubectl"
    helper start
    ;;
  stop)
    helper stop
    if [[ -e "/run/netns/$netns" ]]; then "$ip" netns delete "$netns"; fi
    if [[ -f "$modules_mark" ]]; then
      rmdir /lib/modules 2>/dev/null || true
      rm -f "$modules_mark"
    fi
    ;;
  socket) echo "$sock" ;;
  run)
    shift
    PATH="$path_dir:$PATH" DOCKER_HOST="unix://$sock" exec /usr/bin/nsenter "--net=/run/netns/$netns" "$@"
    ;;
  *)
    echo "usage: $0 start|stop|socket|run CMD..." >&2
    exit 2
    ;;
esac

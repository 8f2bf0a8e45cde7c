#!/usr/bin/env bash
# scripts/kind-up.sh, unchanged, against the offline kind cluster: in the kind engine's
# namespace, with the offline node image, and with the kproxy image built by the image
# tier (scripts/image/prepare.sh) brought in, since the kind engine cannot build it
# (no network for npm ci): docker-prebuilt.sh stands in for `docker build`.
#
#   scripts/kind-offline/up.sh [kind-up.sh arguments]
#
# Environment: KIND_CLUSTER_NAME (kproxy-offline), KPROXY_IMAGE (kproxy:test, which must
# be in the image tier's engine or already in the kind engine), and kind-up.sh's own.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd -P)"
CACHE="${KPROXY_CACHE:-/var/cache/kproxy}"
image="${KPROXY_IMAGE:-kproxy:test}"
kind_docker=(/usr/bin/docker -H "unix://$(bash "$here/docker-daemon.sh" socket)")
log() { printf '[kind-offline/up] %s\n' "$*" >&2; }

bash "$here/docker-daemon.sh" start >/dev/null
node_image="$(bash "$here/build-node-image.sh")"

if ! "${kind_docker[@]}" image inspect "$image" >/dev/null 2>&1; then
  img_engine="$(bash "$here/../image/docker-daemon.sh" start)"
  log "bringing $image over from the image tier's engine"
  /usr/bin/docker -H "unix://$(bash "$here/../image/docker-daemon.sh" socket)" save "$image" |
    "${kind_docker[@]}" load >/dev/null
  if [[ "$img_engine" == started ]]; then bash "$here/../image/docker-daemon.sh" stop; fi
fi

shim="$CACHE/kind/path-prebuilt"
mkdir -p "$shim"
install -m 0755 "$here/docker-prebuilt.sh" "$shim/docker"
bash "$here/docker-daemon.sh" run env PATH="$shim:$CACHE/kind/path:$PATH" \
  KIND_CLUSTER_NAME="${KIND_CLUSTER_NAME:-kproxy-offline}" KIND_NODE_IMAGE="$node_image" \
  KPROXY_IMAGE="$image" bash "$here/../kind-up.sh" "$@"

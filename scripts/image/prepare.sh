#!/usr/bin/env bash
# Everything the image tier (test/image) needs before its tests run: the test docker
# engine, the stand-ins for the Dockerfile's FROM images, and the shipping
# Dockerfile built as it stands into kproxy:test (KPROXY_TEST_IMAGE overrides the tag).
# Idempotent; a warm run is docker's layer cache checking the context.
#
#   scripts/image/prepare.sh   # prints the daemon's state: "started" or "running"
#
# The build uses the host's network (--network host): the test engine has no
# bridge, and npm and apt reach their registries as the host does.
set -euo pipefail

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd -P)"
image="${KPROXY_TEST_IMAGE:-kproxy:test}"
log="${KPROXY_CACHE:-/var/cache/kproxy}/image/build.log"
say() { printf 'image: %s\n' "$*" >&2; }

state="$(bash "$repo/scripts/image/docker-daemon.sh" start)"
sock="$(bash "$repo/scripts/image/docker-daemon.sh" socket)"
bash "$repo/scripts/image/base-images.sh"

mkdir -p "$(dirname "$log")"
t0=$(date +%s)
docker=(/usr/bin/docker -H "unix://$sock")
# The build stage gets its own tag, so that pruning untagged images below keeps its
# layers (npm ci's above all) as the next build's cache. The classic builder: its
# cache needs nothing more, and --network host is all the build asks of it.
build() { DOCKER_BUILDKIT=0 "${docker[@]}" build --network host "$@" "$repo" >>"$log" 2>&1; }
: >"$log"
if ! build --target build -t "$image-build" || ! build -t "$image"; then
  # No stale image left under the name: the image tests then fail saying it is missing.
  "${docker[@]}" image rm "$image" >/dev/null 2>&1 || true
  say "docker build of $repo/Dockerfile failed; last lines of $log:"
  tail -n 30 "$log" >&2
  exit 1
fi
# Earlier builds' images and stand-ins, now untagged.
"${docker[@]}" image prune --force >/dev/null
size="$("${docker[@]}" image inspect -f '{{.Size}}' "$image")"
say "built $image in $(($(date +%s) - t0)) s: $((size / 1000000)) MB"
echo "$state"

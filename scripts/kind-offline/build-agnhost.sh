#!/usr/bin/env bash
# The smoke test's image, registry.k8s.io/e2e-test-images/agnhost:2.53, as a local
# stand-in (agnhost is not on the Go module proxy): agnhost/main.go (netexec's
# /hostname and /healthz only) on the node image's Debian tree, which has the sh,
# curl and seq that kind-up.sh's client pod runs. Loaded into the kind engine;
# kind-up.sh's `kind load` is for kproxy only, so this loads it into the cluster's
# nodes too when KIND_CLUSTER_NAME names one.
#
#   scripts/kind-offline/build-agnhost.sh   # prints the image name
set -euo pipefail

CACHE="${KPROXY_CACHE:-/var/cache/kproxy}"
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd -P)"
name=registry.k8s.io/e2e-test-images/agnhost:2.53
docker=(/usr/bin/docker -H "unix://$(bash "$here/docker-daemon.sh" socket)")
bin="$CACHE/kind/bin/agnhost-stand-in"
key="$(cat "$here/agnhost/main.go" "$0" | sha256sum | cut -c1-16)"

if [[ "$("${docker[@]}" image inspect -f '{{index .Config.Labels "kproxy.agnhost.key"}}' "$name" 2>/dev/null)" != "$key" ]]; then
  # shellcheck source=scripts/test-infra/go-env.sh
  . "$here/../test-infra/go-env.sh"
  (cd "$here/agnhost" && nice -n 10 go build -trimpath -ldflags "-s -w" -o "$bin" .)
  rootfs="$(bash "$here/build-rootfs.sh")"
  dir="$(mktemp -d)"
  trap 'rm -rf "$dir"' EXIT
  mkdir -p "$dir/root"
  tar -C "$dir/root" -xzf "$rootfs"
  install -m 0755 "$bin" "$dir/root/agnhost"
  tar -C "$dir/root" --numeric-owner -c . | "${docker[@]}" import \
    --change 'ENTRYPOINT ["/agnhost"]' --change "LABEL kproxy.agnhost.key=$key" - "$name" >/dev/null
fi
if [[ -n "${KIND_CLUSTER_NAME:-}" ]]; then
  bash "$here/docker-daemon.sh" run kind load docker-image "$name" --name "$KIND_CLUSTER_NAME" >&2
fi
echo "$name"

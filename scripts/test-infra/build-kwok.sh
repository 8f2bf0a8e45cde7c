#!/usr/bin/env bash
# Build kwok (sigs.k8s.io/kwok, the `kwok` binary that plays the kubelet for fake
# nodes and pods) from the Go module proxy into a cache directory outside the
# repository. Idempotent: exits at once when the binary is already there.
#
#   scripts/test-infra/build-kwok.sh           # prints the binary directory
#
# Environment:
#   KPROXY_CACHE   cache root (default /var/cache/kproxy)
#   KWOK_VERSION   sigs.k8s.io/kwok version without "v" (default 0.8.0)
#
# Output: $KPROXY_CACHE/kwok/$KWOK_VERSION/kwok
# GOMODCACHE and GOCACHE are shared with build-k8s.sh (most modules are the same).
set -euo pipefail

KWOK_VERSION="${KWOK_VERSION:-0.8.0}"
CACHE="${KPROXY_CACHE:-/var/cache/kproxy}"
OUT="$CACHE/kwok/$KWOK_VERSION"

if [[ -x "$OUT/kwok" ]]; then
  echo "$OUT"
  exit 0
fi

# shellcheck source=scripts/test-infra/go-env.sh
. "$(dirname "${BASH_SOURCE[0]}")/go-env.sh"

# kwok's go.mod has no replace directives, so `go install pkg@version` builds it
# with exactly the dependency versions it was released with.
go_install_cached "$OUT" "-s -w" "" "sigs.k8s.io/kwok/cmd/kwok@v$KWOK_VERSION"
echo "$OUT"

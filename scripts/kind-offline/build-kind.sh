#!/usr/bin/env bash
# Step 1 of the offline kind cluster: the kind CLI (sigs.k8s.io/kind) from the Go
# module proxy. Idempotent: exits at once when the binary is already there.
#
#   scripts/kind-offline/build-kind.sh          # prints the binary's directory
#
# Environment:
#   KPROXY_CACHE   cache root (default /var/cache/kproxy)
#   KIND_VERSION   sigs.k8s.io/kind version without "v" (default 0.33.0)
#
# Output: $KPROXY_CACHE/kind/kind-$KIND_VERSION/kind. The module (with kind's own
# node-image files under images/base/files) stays in the shared GOMODCACHE, where
# build-node-image.sh reads them.
set -euo pipefail

KIND_VERSION="${KIND_VERSION:-0.33.0}"
CACHE="${KPROXY_CACHE:-/var/cache/kproxy}"
OUT="$CACHE/kind/kind-$KIND_VERSION"

if [[ -x "$OUT/kind" ]]; then
  echo "$OUT"
  exit 0
fi

# shellcheck source=scripts/test-infra/go-env.sh
. "$(dirname "${BASH_SOURCE[0]}")/../test-infra/go-env.sh"

# kind's go.mod has no replace directives: `go install pkg@version` builds it with
# the dependency versions it was released with.
go_install_cached "$OUT" "-s -w" "" "sigs.k8s.io/kind@v$KIND_VERSION"
echo "$OUT"

# Sourced by the build scripts beside it (build-k8s.sh, build-kwok.sh): one Go
# environment for every test-infrastructure build, so they share the module and
# build caches under $CACHE. Expects CACHE to be set; checks that go is there.
# shellcheck shell=bash
command -v go >/dev/null || { echo "$(basename "$0"): 'go' not found in PATH" >&2; exit 1; }
export GOPATH="$CACHE/go"
export GOMODCACHE="$CACHE/go/mod"
export GOCACHE="$CACHE/go/build"
# -modcacherw: let `rm -rf $KPROXY_CACHE` work without chmod first.
export GOFLAGS="-p=2 -modcacherw -buildvcs=false"
export CGO_ENABLED=0
# Never download another Go toolchain unless the caller asked for one.
export GOTOOLCHAIN="${GOTOOLCHAIN:-local}"

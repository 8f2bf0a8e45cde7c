# Sourced by the build scripts beside it (build-k8s.sh, build-kwok.sh) and by
# scripts/kind-offline/: one Go environment for every test-infrastructure build, so
# they share the module and build caches under $CACHE, and one cached `go install`
# (go_install_cached). Expects CACHE to be set; checks that go is there.
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

# go_install_cached OUTDIR LDFLAGS TAGS PKG@VERSION...: `go install` the packages
# into OUTDIR, skipped when every binary is there already (named, as go names them,
# by the package's last path element, a major-version suffix like /v2 left out).
# Built into OUTDIR/.bin first, so an interrupted build leaves no binary under its
# final name; under `nice`, as the machine is shared. Logs to stderr.
go_install_cached() {
  local out="$1" ld="$2" tags="$3"
  shift 3
  local p missing=0
  for p in "$@"; do
    p="${p%@*}"
    [[ "$p" =~ /v[0-9]+$ ]] && p="${p%/*}"
    [[ -x "$out/${p##*/}" ]] || missing=1
  done
  ((missing)) || return 0
  local start=$SECONDS tmp="$out/.bin" who
  who="$(basename "$0" .sh)"
  rm -rf "$tmp"
  mkdir -p "$tmp"
  printf '[%s] building %s (tags: %s)\n' "$who" "$*" "${tags:-none}" >&2
  GOBIN="$tmp" nice -n 10 go install -trimpath -tags "$tags" -ldflags "$ld" "$@"
  mv -f "$tmp"/* "$out/"
  rm -rf "$tmp"
  printf '[%s] built in %s s\n' "$who" "$((SECONDS - start))" >&2
}

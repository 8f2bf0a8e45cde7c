#!/usr/bin/env bash
# Proves that CI passes on a machine that has none of what earlier runs installed:
# purges the Debian packages the tests install, points every cache at an empty
# directory, clones the repository, runs the README's two Quick start commands, then
# `CI=true bash .ci/run`, and prints the times and the final "tests:" line.
#
#   scripts/fresh-machine-check.sh --yes [--keep-cache] [--keep-packages]
#
# Destructive on purpose (it purges packages from this machine), hence --yes.
# --keep-cache reuses ${KPROXY_CACHE:-/var/cache/kproxy} (the Go builds, the IPVS VM
# image, the image tier's Debian tarball and docker data) to check only the package
# install path quickly; without it, every
# build runs cold, as on a new machine (expect 30-50 minutes on 2 cores).
# See docs/testing-fresh-machine.md.
set -euo pipefail

yes=0 keep_cache=0 keep_packages=0
for arg in "$@"; do
  case "$arg" in
    --yes) yes=1 ;;
    --keep-cache) keep_cache=1 ;;
    --keep-packages) keep_packages=1 ;;
    *) echo "fresh-machine-check: unknown argument $arg" >&2; exit 2 ;;
  esac
done
[ "$(id -u)" -eq 0 ] || { echo "fresh-machine-check: run as root (CI runs as root)" >&2; exit 2; }
[ "$yes" -eq 1 ] || { echo "fresh-machine-check: purges Debian packages from this machine; pass --yes" >&2; exit 2; }

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd -P)"
work="$(mktemp -d /var/tmp/kproxy-fresh.XXXXXX)"
log() { printf 'fresh-machine-check: %s\n' "$*" >&2; }

# What a new machine of this kind already has (the base image): never purged.
base=(curl iproute2 openssl python3 python3-venv)
if [ "$keep_packages" -eq 0 ]; then
  mapfile -t test_pkgs < <(bash "$repo/scripts/install-test-deps.sh" --packages)
  # The IPVS VM's host tools (scripts/ipvs-vm/fetch.sh) come on top.
  test_pkgs+=(qemu-system-x86)
  purge=()
  for p in "${test_pkgs[@]}"; do
    [[ " ${base[*]} " == *" $p "* ]] && continue
    dpkg-query -W -f='${db:Status-Status}' "$p" 2>/dev/null | grep -qx installed && purge+=("$p")
  done
  # The image tier's docker engine runs from docker.io, and a running one would be
  # reused (with its images) by the run below: stop it before its package goes.
  bash "$repo/scripts/image/docker-daemon.sh" stop
  if [ ${#purge[@]} -gt 0 ]; then
    log "purging ${purge[*]}"
    DEBIAN_FRONTEND=noninteractive apt-get purge -y -qq "${purge[@]}" >/dev/null
    DEBIAN_FRONTEND=noninteractive apt-get autoremove --purge -y -qq >/dev/null
  fi
  for f in /usr/sbin/nft /usr/sbin/iptables-legacy-restore /usr/sbin/conntrack /usr/sbin/ipset /usr/sbin/ipvsadm \
    /usr/sbin/dockerd /usr/sbin/debootstrap; do
    [ ! -e "$f" ] || { log "ERROR: $f is still there after the purge"; exit 1; }
  done
fi

if [ "$keep_cache" -eq 0 ]; then
  export KPROXY_CACHE="$work/cache"
  mkdir -p "$KPROXY_CACHE"
  # The image tier's engine keeps its images in the cache: a new one for the new cache.
  bash "$repo/scripts/image/docker-daemon.sh" stop
fi
# npm's cache too: a new machine downloads every package.
export npm_config_cache="$work/npm-cache"
log "cache: ${KPROXY_CACHE:-/var/cache/kproxy}; work dir: $work"

git clone -q "$repo" "$work/kproxy"
cd "$work/kproxy"

# The README's Quick start: the first command, then (below) CI's run of the second.
quick_start="$(awk '/^## Quick start/{q=1} q&&/^```sh/{b=1;next} b&&/^```/{exit} b' README.md)"
first="$(sed -n 1p <<<"$quick_start")"
second="$(sed -n 2p <<<"$quick_start")"
if [ -z "$first" ] || [ -z "$second" ]; then log "ERROR: README has no two-command Quick start"; exit 1; fi
log "quick start 1: $first"
t0=$(date +%s)
# `kproxy diff` exits 1 when there are changes (as diff(1) does): the Quick start's
# diff against an empty kernel always has some. 2 and above is a failure.
first_status=0
bash -c "$first" >"$work/quick-start.out" 2>&1 || first_status=$?
if [ "$first_status" -gt 1 ] || ! grep -q '^+' "$work/quick-start.out"; then
  log "ERROR: quick start command 1 failed (exit $first_status):"; tail -20 "$work/quick-start.out" >&2; exit 1
fi
t1=$(date +%s)
log "quick start 1 passed in $((t1 - t0)) s ($(grep -c '^+' "$work/quick-start.out" || true) added lines printed)"

# The second command is what .ci/run runs (npm test); CI runs .ci/run.
[ "$second" = "npm test" ] || log "note: Quick start's second command is '$second', .ci/run runs npm test"
set +e
CI=true bash .ci/run 2>&1 | tee "$work/ci.log"
status=${PIPESTATUS[0]}
set -e
t2=$(date +%s)
summary="$(grep -E '^tests: [0-9]+ passed, [0-9]+ failed$' "$work/ci.log" | tail -1)"
log "README command 1: $((t1 - t0)) s; .ci/run: $((t2 - t1)) s (exit $status); ${summary:-no tests: line}"
log "logs kept in $work (remove it when done)"
[ "$status" -eq 0 ] && [ -n "$summary" ]

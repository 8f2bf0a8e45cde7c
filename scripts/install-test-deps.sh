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
)

missing=()
for cmd in "${!need[@]}"; do
  command -v "$cmd" >/dev/null 2>&1 || PATH="$PATH:/usr/sbin:/sbin" command -v "$cmd" >/dev/null 2>&1 || missing+=("${need[$cmd]}")
done
if [ ${#missing[@]} -eq 0 ]; then
  exit 0
fi
mapfile -t pkgs < <(printf '%s\n' "${missing[@]}" | sort -u)
if [ "$(id -u)" -ne 0 ]; then
  echo "install-test-deps: missing Debian packages: ${pkgs[*]} (run as root, or: sudo apt-get install ${pkgs[*]})" >&2
  exit 1
fi
echo "install-test-deps: installing ${pkgs[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq >/dev/null
apt-get install -y -qq --no-install-recommends "${pkgs[@]}" >/dev/null

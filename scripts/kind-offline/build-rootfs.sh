#!/usr/bin/env bash
# Step 3b of the offline kind cluster: the node image's Debian bookworm root file
# system, by debootstrap (minbase, as the image tier's base) with the packages
# kind's base image installs, plus Debian's runc and CNI plugins. Cached as a
# tarball keyed by the package list; build-node-image.sh adds the rest.
#
#   scripts/kind-offline/build-rootfs.sh     # prints the tarball's path
#
# Environment: KPROXY_CACHE, KPROXY_DEBIAN_MIRROR (http://deb.debian.org/debian).
set -euo pipefail

CACHE="${KPROXY_CACHE:-/var/cache/kproxy}"
mirror="${KPROXY_DEBIAN_MIRROR:-http://deb.debian.org/debian}"
suite=bookworm
# kind's base image packages (images/base/Dockerfile in sigs.k8s.io/kind), less the
# storage ones (nfs-common, open-iscsi, e2fsprogs: no volumes here), plus runc and
# containernetworking-plugins (kind builds both from source).
packages=(
  systemd dbus
  conntrack iptables nftables iproute2 ethtool util-linux mount kmod
  libseccomp2 pigz fuse-overlayfs
  bash ca-certificates curl jq procps
  runc containernetworking-plugins
)
key="$(printf '%s\n' "$suite" "${packages[@]}" | sha256sum | cut -c1-12)"
out="$CACHE/kind/rootfs/debian-$suite-node-$key.tar.gz"
if [[ -f "$out" ]]; then
  echo "$out"
  exit 0
fi

start=$SECONDS
mkdir -p "$CACHE/kind/rootfs"
root="$(mktemp -d "$CACHE/kind/rootfs/.root.XXXXXX")"
trap 'rm -rf "$root"' EXIT
log="$CACHE/kind/rootfs/debootstrap.log"
echo "[build-rootfs] debootstrap --variant=minbase $suite with ${#packages[@]} packages (a few minutes)" >&2
include="$(IFS=,; echo "${packages[*]}")"
if ! nice -n 10 /usr/sbin/debootstrap --variant=minbase --include="$include" "$suite" "$root" "$mirror" >"$log" 2>&1; then
  echo "[build-rootfs] debootstrap failed; last lines of $log:" >&2
  tail -n 20 "$log" >&2
  exit 1
fi
# No package caches or lists in the image (debuerreotype's clean-up, as the image tier).
rm -rf "$root"/var/cache/apt/archives/*.deb "$root"/var/lib/apt/lists/*
tar -C "$root" --numeric-owner -czf "$out.tmp" .
mv -f "$out.tmp" "$out"
echo "[build-rootfs] $(du -h "$out" | cut -f1) in $((SECONDS - start)) s" >&2
echo "$out"

#!/usr/bin/env bash
# Fetch and cache everything the IPVS test VM needs, from Debian's archive only
# (apt-get download), into ${KPROXY_CACHE:-/var/cache/kproxy}/ipvs-vm/.
#
#   kernel/vmlinux            uncompressed kernel (PVH direct boot, fast under TCG)
#   kernel/modroot/lib/modules/<ver>/   netfilter/IPVS/9p/veth/... subset, module
#                             signatures stripped (see below), depmod run
#   root/                     guest userland (busybox, ipvsadm, ipset, iptables,
#                             iproute2, kmod, conntrack, nftables, bash, libs)
#   manifest.txt              package versions that went in
#   fetch.stamp               written last; its presence = cache complete
#
# Idempotent: if fetch.stamp matches this script's configuration, it exits at
# once without touching the network. Any edit of this script (or bumping
# FETCH_VERSION) forces a rebuild. Also installs the host tools run.sh needs (qemu etc.).
set -euo pipefail

FETCH_VERSION=1
CACHE="${KPROXY_CACHE:-/var/cache/kproxy}/ipvs-vm"
KERNEL_META=linux-image-amd64
USER_PKGS=(busybox-static ipvsadm ipset iptables iproute2 kmod conntrack bash nftables netbase libstdc++6)
# Module paths (relative to lib/modules/<ver>/, extended regex) copied into the
# VM; their modules.dep dependencies are added automatically.
MODULE_RE='^kernel/(net/netfilter/|net/ipv4/netfilter/|net/ipv6/netfilter/|net/bridge/|net/9p/|fs/9p/|fs/netfs/|fs/fscache/|drivers/virtio/|drivers/char/virtio_console\.ko|net/ipv4/[^/]+\.ko|net/ipv6/[^/]+\.ko|drivers/net/(veth|dummy|tun|macvlan|virtio_net|ipvlan/ipvlan|vxlan/vxlan)\.ko|lib/libcrc32c\.ko|crypto/crc32c_generic\.ko|arch/x86/crypto/crc32c-intel\.ko|net/sched/(sch_|cls_|act_)[a-z_]+\.ko|net/packet/)'
# host binary (absolute: never a PATH lookup, which npm shadows) -> Debian package
HOST_TOOLS=(/usr/bin/qemu-system-x86_64:qemu-system-x86 /usr/bin/cpio:cpio /usr/sbin/depmod:kmod
            /usr/bin/xz:xz-utils /usr/bin/readelf:binutils /usr/bin/dpkg-deb:dpkg)

log() { printf 'ipvs-vm fetch: %s\n' "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }

# any edit of this script invalidates the cache
STAMP_WANT="v=$FETCH_VERSION script=$(sha256sum < "${BASH_SOURCE[0]}" | cut -c1-16)"

host_tools_ok() {
  local t
  for t in "${HOST_TOOLS[@]}"; do [[ -x "${t%%:*}" ]] || return 1; done
}

if [[ -f "$CACHE/fetch.stamp" ]] && [[ "$(cat "$CACHE/fetch.stamp")" == "$STAMP_WANT" ]] \
   && [[ -f "$CACHE/kernel/vmlinux" && -x "$CACHE/root/usr/sbin/ipvsadm" ]] && host_tools_ok; then
  log "cache up to date: $CACHE ($(du -sh "$CACHE" 2>/dev/null | cut -f1))"
  exit 0
fi

[[ $(id -u) == 0 ]] || die "must run as root (apt-get)"

APT_UPDATED=0
apt_update_once() {
  if [[ $APT_UPDATED == 0 ]]; then
    log "apt-get update"
    apt-get update -qq >&2 || die "apt-get update failed"
    APT_UPDATED=1
  fi
}

# --- host tools ------------------------------------------------------------
missing=()
for t in "${HOST_TOOLS[@]}"; do
  [[ -x "${t%%:*}" ]] || missing+=("${t#*:}")
done
if ((${#missing[@]})); then
  apt_update_once
  log "installing host tools: ${missing[*]}"
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >&2 \
    || die "apt-get install ${missing[*]} failed"
fi

mkdir -p "$CACHE"
BUILD="$CACHE/.build.$$"
rm -rf "$BUILD"
mkdir -p "$BUILD/debs"
trap 'rm -rf "$BUILD"' EXIT

# --- resolve package set ---------------------------------------------------
apt-cache show "$KERNEL_META" >/dev/null 2>&1 || apt_update_once
KPKG=$(apt-cache depends "$KERNEL_META" | awk '$1=="Depends:" && $2 ~ /^linux-image-/ {print $2; exit}')
[[ -n "$KPKG" ]] || die "cannot resolve the kernel package behind $KERNEL_META"
KVER=${KPKG#linux-image-}

# Userland packages plus the shared libraries they (recursively) depend on.
# Only library packages from the dependency closure are taken: the rest are
# maintainer-script helpers (debconf, dpkg, gawk, ...) that the VM does not
# need, and so are the libraries only those helpers use. The closure check
# below fails the fetch if this filter ever drops something needed.
mapfile -t DEPS < <(apt-cache depends --recurse --no-recommends --no-suggests --no-conflicts \
    --no-breaks --no-replaces --no-enhances "${USER_PKGS[@]}" \
  | grep -E '^[a-z0-9]' | grep -E '^(lib|zlib1g$)' | grep -vE ':|-dev$|^libc-bin$' \
  | grep -vE '^(libdebian-installer|libnewt|libslang|libtextwrap|libmpfr|libsigsegv|libreadline)' \
  | sort -u)
ALL_PKGS=("$KPKG" "${USER_PKGS[@]}" "${DEPS[@]}")
log "downloading ${#ALL_PKGS[@]} packages (kernel $KPKG)"
(
  cd "$BUILD/debs"
  chown _apt: . 2>/dev/null || true   # lets apt download sandboxed, avoids a warning
  apt-get download -qq "${ALL_PKGS[@]}" >&2 2>/dev/null || {
    apt_update_once
    apt-get download -qq "${ALL_PKGS[@]}" >&2
  }
) || die "apt-get download failed"

# --- kernel ----------------------------------------------------------------
log "extracting kernel $KVER"
K="$BUILD/k"
mkdir -p "$K"
dpkg-deb -x "$BUILD"/debs/"${KPKG}"_*.deb "$K"
VMLINUZ="$K/boot/vmlinuz-$KVER"
[[ -f "$VMLINUZ" ]] || die "no $VMLINUZ in $KPKG"
mkdir -p "$BUILD/kernel"

# Like the kernel's scripts/extract-vmlinux: find a compressed payload whose
# decompression is an ELF file.
extract_vmlinux() {
  local in=$1 out=$2 magic cmd off
  for spec in '\xfd7zXZ\x00|xz -dc' '\x1f\x8b\x08|gzip -dc' '\x28\xb5\x2f\xfd|zstd -dc' \
              '\x02\x21\x4c\x18|lz4 -dc' 'BZh|bzip2 -dc' '\x5d\x00\x00\x00|unlzma -c'; do
    magic=${spec%%|*}; cmd=${spec#*|}
    command -v "${cmd%% *}" >/dev/null 2>&1 || continue
    for off in $(LC_ALL=C grep -obUaP "$magic" "$in" | cut -d: -f1 | head -5); do
      tail -c "+$((off + 1))" "$in" | $cmd > "$out" 2>/dev/null || true
      if [[ "$(head -c 4 "$out" | od -An -tx1 | tr -d ' \n')" == 7f454c46 ]]; then
        return 0
      fi
    done
  done
  return 1
}
extract_vmlinux "$VMLINUZ" "$BUILD/kernel/vmlinux" || die "could not extract vmlinux from $VMLINUZ"
cp "$K/boot/config-$KVER" "$BUILD/kernel/config"
echo "$KVER" > "$BUILD/kernel/version"

log "selecting modules"
depmod -b "$K" "$KVER"
MD="$K/lib/modules/$KVER"
MR="$BUILD/kernel/modroot/lib/modules/$KVER"
mkdir -p "$MR"
# selected modules + their full modules.dep dependency lists
awk -v re="$MODULE_RE" -F': *' '
  { sub(/:$/, "", $1); if ($1 ~ re) { print $1; n = split($2, d, " "); for (i = 1; i <= n; i++) print d[i] } }
' "$MD/modules.dep" | sort -u > "$BUILD/modules.list"
(cd "$MD" && xargs -a "$BUILD/modules.list" cp --parents -t "$MR")
cp "$MD"/modules.builtin "$MD"/modules.builtin.modinfo "$MD"/modules.order "$MR"/
# Strip the module signatures: verifying them (RSA-4096) is ~80% of the cost of
# loading a module under TCG. The kernel does not enforce signatures (no
# secure boot); it only marks itself tainted (E) once. Layout at the end of a
# signed module: ... | signature (sig_len) | struct module_signature (12 bytes,
# sig_len big-endian in its last 4) | "~Module signature appended~\n" (28).
nsig=0
while IFS= read -r ko; do
  [[ "$(tail -c 28 "$ko" | head -c 27)" == "~Module signature appended~" ]] || continue
  siglen=$(tail -c 32 "$ko" | head -c 4 | od -An -tu1 | awk '{print $1*16777216 + $2*65536 + $3*256 + $4}')
  truncate -s $(($(stat -c %s "$ko") - 40 - siglen)) "$ko"
  nsig=$((nsig + 1))
done < <(find "$MR" -name '*.ko')
log "stripped $nsig module signatures"
depmod -b "$BUILD/kernel/modroot" "$KVER"
log "$(wc -l < "$BUILD/modules.list") modules, $(du -sh "$MR" | cut -f1)"
rm -rf "$K"

# --- userland --------------------------------------------------------------
log "extracting userland"
R="$BUILD/root"
mkdir -p "$R/usr/bin" "$R/usr/sbin" "$R/usr/lib" "$R/usr/lib64"
for d in bin sbin lib lib64; do ln -s "usr/$d" "$R/$d"; done
X="$BUILD/x"
for deb in "$BUILD"/debs/*.deb; do
  [[ "$(basename "$deb")" == "${KPKG}"_* ]] && continue
  rm -rf "$X"; mkdir -p "$X"
  dpkg-deb -x "$deb" "$X"
  # merged /usr: move /bin,/sbin,/lib,/lib64 contents under /usr
  for d in bin sbin lib lib64; do
    if [[ -d "$X/$d" && ! -L "$X/$d" ]]; then
      mkdir -p "$X/usr/$d"; cp -a "$X/$d/." "$X/usr/$d/"; rm -rf "${X:?}/$d"
    fi
  done
  cp -a "$X/." "$R/"
done
rm -rf "$X"
# prune what a test VM never reads
rm -rf "$R"/usr/share/{doc,man,info,locale,lintian,bug,bash-completion,zsh,menu,pixmaps} \
       "$R"/usr/lib/x86_64-linux-gnu/gconv "$R"/etc/init.d "$R"/etc/rc?.d "$R"/etc/cron.* \
       "$R"/usr/lib/x86_64-linux-gnu/perl* "$R"/usr/share/perl* \
       "$R"/usr/lib/x86_64-linux-gnu/tc/q_atm.so   # tc ATM plugin, needs libatm
# alternatives that postinst scripts would have set up
# /bin/sh is bash: Debian's busybox-static is built with "standalone shell",
# so busybox ash would run its own applets (ip, modprobe...) before PATH.
ln -sf bash "$R/usr/bin/sh"
for v in "" 6; do
  for s in "" -save -restore; do
    [[ -e "$R/usr/sbin/ip${v}tables-legacy$s" ]] && ln -sf "ip${v}tables-legacy$s" "$R/usr/sbin/ip${v}tables$s"
  done
done
[[ -x "$R/usr/bin/busybox" ]] || die "busybox missing from userland"
for f in usr/sbin/ipvsadm usr/sbin/ipset usr/sbin/xtables-legacy-multi usr/sbin/xtables-nft-multi \
         usr/bin/ip usr/bin/kmod usr/bin/bash usr/sbin/conntrack usr/sbin/nft; do
  [[ -e "$R/$f" ]] || die "missing $f in userland"
done

# Every ELF's DT_NEEDED must resolve inside the root (no silent host fallback).
log "checking shared library closure"
LIBDIRS=("$R/usr/lib/x86_64-linux-gnu" "$R/usr/lib" "$R/usr/lib64")
bad=0
while IFS= read -r f; do
  while IFS= read -r lib; do
    found=0
    for d in "${LIBDIRS[@]}" "$R/usr/lib/x86_64-linux-gnu/xtables"; do
      [[ -e "$d/$lib" ]] && { found=1; break; }
    done
    [[ $found == 1 ]] || { log "unresolved: ${f#"$R"/} needs $lib"; bad=1; }
  done < <(readelf -d "$f" 2>/dev/null | sed -n 's/.*(NEEDED).*\[\(.*\)\].*/\1/p')
done < <(find "$R/usr" -type f \( -perm -u+x -o -name '*.so*' \) | while IFS= read -r f; do
           [[ "$(head -c 4 "$f" | od -An -tx1 | tr -d ' \n')" == 7f454c46 ]] && printf '%s\n' "$f"
         done)
[[ $bad == 0 ]] || die "shared library closure incomplete"

(cd "$BUILD/debs" && ls *.deb | sed 's/\.deb$//') > "$BUILD/manifest.txt"

# --- install into cache ----------------------------------------------------
rm -f "$CACHE/fetch.stamp"
rm -rf "$CACHE/kernel" "$CACHE/root" "$CACHE"/initramfs-*.cpio
mv "$BUILD/kernel" "$CACHE/kernel"
mv "$BUILD/root" "$CACHE/root"
mv "$BUILD/manifest.txt" "$CACHE/manifest.txt"
echo "$STAMP_WANT" > "$CACHE/fetch.stamp"
rm -rf "$BUILD"
log "done: $CACHE ($(du -sh "$CACHE" | cut -f1)); kernel $KVER"

#!/usr/bin/env bash
# Run a script inside a throw-away QEMU VM (TCG) booting Debian's stock kernel,
# which has IPVS. See README.md beside this file.
#
#   run.sh [options] SCRIPT [ARGS...]
#
# Options:
#   --share HOSTDIR:TAG[:rw]  share HOSTDIR at /mnt/TAG (read-only unless :rw)
#   --project DIR             directory shared read-only at /project
#                             (default: this repository's root)
#   --timeout SEC             kill the VM after SEC seconds (default 300)
#   --env NAME=VALUE          set an environment variable for SCRIPT
#   --modules M1,M2           load extra kernel modules before SCRIPT
#   --no-preload              do not load the usual IPVS/netfilter modules at
#                             boot (they still load on demand via modprobe)
#   --iptables legacy|nft     what `iptables` points to inside (default legacy)
#   --mem MB                  guest memory (default 2048)
#   --smp N                   guest CPUs (default 1)
#   --append ARGS             extra kernel command line arguments
#   --uplink ADDR/PREFIX      give the guest an eth0 holding ADDR, on QEMU user
#                             networking restricted to the --forward ports (no
#                             other way out); its first address is the gateway
#   --forward PORT            guest connections to PORT of the uplink network's
#                             second address reach the host's 127.0.0.1:PORT
#                             (needs --uplink; repeatable)
#   --verbose                 print the guest console (kernel + init) to stderr
#
# Environment: KPROXY_CACHE (cache root, default /var/cache/kproxy),
# KPROXY_VM_NODE (node binary to offer inside, default: node on PATH),
# KPROXY_VM_QEMU_ARGS (extra QEMU arguments, word-split; for debugging).
#
# SCRIPT is a host path. If it lies under the project it runs as
# /project/<relative path>, otherwise its directory is shared at
# /mnt/kvmscript. It is started as its #! line says (else /bin/sh), with cwd
# /project, stdin /dev/null, stdout and stderr sent to this command's stdout
# and stderr. Exit status: SCRIPT's; 124 if the VM timed out; 125 if the VM
# died without reporting one (panic, init failure, QEMU error).
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
CACHE="${KPROXY_CACHE:-/var/cache/kproxy}/ipvs-vm"
PROJECT="$(cd "$HERE/../.." && pwd -P)"
TIMEOUT=300 MEM=2048 SMP=1 VERBOSE=0 IPTABLES=legacy EXTRA_MODULES="" APPEND="" PRELOAD=yes
UPLINK="" SHARES=() ENVS=() FORWARDS=()

log() { printf 'ipvs-vm: %s\n' "$*" >&2; }
die() { log "ERROR: $*"; exit 125; }
usage() { sed -n '2,/^set -euo/{/^set -euo/d;s/^# \{0,1\}//;p}' "$0" >&2; exit 2; }

while (($#)); do
  case "$1" in
    --share) [[ $# -ge 2 ]] || usage; SHARES+=("$2"); shift 2 ;;
    --share=*) SHARES+=("${1#*=}"); shift ;;
    --project) [[ $# -ge 2 ]] || usage; PROJECT="$(cd "$2" && pwd -P)"; shift 2 ;;
    --timeout) [[ $# -ge 2 ]] || usage; TIMEOUT=$2; shift 2 ;;
    --timeout=*) TIMEOUT=${1#*=}; shift ;;
    --env) [[ $# -ge 2 ]] || usage; ENVS+=("$2"); shift 2 ;;
    --modules) [[ $# -ge 2 ]] || usage; EXTRA_MODULES="$EXTRA_MODULES ${2//,/ }"; shift 2 ;;
    --no-preload) PRELOAD=no; shift ;;
    --iptables) [[ $# -ge 2 ]] || usage; IPTABLES=$2; shift 2 ;;
    --mem) [[ $# -ge 2 ]] || usage; MEM=$2; shift 2 ;;
    --smp) [[ $# -ge 2 ]] || usage; SMP=$2; shift 2 ;;
    --append) [[ $# -ge 2 ]] || usage; APPEND="$APPEND $2"; shift 2 ;;
    --uplink) [[ $# -ge 2 ]] || usage; UPLINK=$2; shift 2 ;;
    --forward) [[ $# -ge 2 ]] || usage; FORWARDS+=("$2"); shift 2 ;;
    --verbose|-v) VERBOSE=1; shift ;;
    -h|--help) usage ;;
    --) shift; break ;;
    -*) log "unknown option $1"; usage ;;
    *) break ;;
  esac
done
(($#)) || usage
SCRIPT="$(readlink -f "$1")"; shift
[[ -f "$SCRIPT" ]] || die "no such script: $SCRIPT"
[[ "$TIMEOUT" =~ ^[0-9]+$ ]] || die "--timeout wants seconds"
[[ "$IPTABLES" == legacy || "$IPTABLES" == nft ]] || die "--iptables wants legacy or nft"
((${#FORWARDS[@]} == 0)) || [[ -n "$UPLINK" ]] || die "--forward needs --uplink"
for p in "${FORWARDS[@]}"; do [[ "$p" =~ ^[0-9]{1,5}$ ]] || die "--forward wants a port, got '$p'"; done

[[ -f "$CACHE/fetch.stamp" && -f "$CACHE/kernel/vmlinux" ]] \
  || die "cache $CACHE is empty: run scripts/ipvs-vm/fetch.sh first"
[[ -x /usr/bin/qemu-system-x86_64 ]] || die "qemu-system-x86_64 missing: run scripts/ipvs-vm/fetch.sh"
KVER=$(cat "$CACHE/kernel/version")

# Modules loaded at boot: what a kube-proxy IPVS node has loaded. Anything else
# (nf_tables/nft_compat for nft and iptables-nft, other iptables tables, xt_*
# matches, ipset types, IPVS schedulers, bridge/br_netfilter...) is in the
# image and loads on demand through modprobe. Each module costs ~40 ms under
# TCG, a few (nf_conntrack, nf_tables, ip_vs) ~250 ms.
BOOT_MODULES="nf_conntrack nf_nat nf_defrag_ipv4 nf_defrag_ipv6 libcrc32c crc32c_generic
 ip_vs ip_vs_rr ip_vs_wrr ip_vs_lc ip_vs_wlc ip_vs_sh ip_vs_dh ip_vs_sed ip_vs_nq ip_vs_mh
 veth dummy
 x_tables ip_tables iptable_nat iptable_filter
 xt_comment xt_mark xt_conntrack xt_addrtype xt_MASQUERADE xt_nat xt_set xt_statistic
 xt_recent xt_tcpudp xt_multiport nf_reject_ipv4 ipt_REJECT
 ip_set ip_set_hash_ip ip_set_hash_ipport ip_set_hash_ipportip ip_set_hash_ipportnet
 ip_set_hash_net ip_set_bitmap_port"

# ---------------------------------------------------------------------------
# Guest /init (bash: Debian's busybox ash prefers its own applets over PATH).
# Reads its run configuration from the 9p share "kvmrun" (files written by the
# host below) and reports on the console (ttyS0): timings, then the exit marker.
# ---------------------------------------------------------------------------
read -r -d '' INIT <<'INIT_EOF' || true
#!/usr/bin/bash
export PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin HOME=/root LANG=C.UTF-8
mount -t devtmpfs devtmpfs /dev 2>/dev/null
exec </dev/null >/dev/console 2>&1
msg() { echo "kproxy-vm: $*"; }
up() { cut -d' ' -f1 /proc/uptime; }
fail() { msg "FATAL: $*"; echo "KPROXY-VM-EXIT=125"; sync; reboot -f; sleep 10; }
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mkdir -p /dev/pts /dev/shm
mount -t devpts -o gid=5,mode=620,ptmxmode=666 devpts /dev/pts
mount -t tmpfs -o mode=1777 tmpfs /dev/shm
mount -t tmpfs -o mode=1777 tmpfs /tmp
mount -t tmpfs -o mode=755 tmpfs /run
mount -t tmpfs -o mode=755 tmpfs /var/lib
mount -t cgroup2 cgroup2 /sys/fs/cgroup 2>/dev/null
mount -t bpf bpf /sys/fs/bpf 2>/dev/null
mkdir -p /run/netns /var/lib/kproxy
T_INIT=$(up)

# 9p shares: the run configuration first (the virtio device may need a moment)
modprobe -a virtio_pci virtio_console 9pnet_virtio 9p || fail "cannot load virtio/9p modules"
mkdir -p /.kvmrun
i=0
until mount -t 9p -o trans=virtio,version=9p2000.L,ro,cache=loose,msize=262144 kvmrun /.kvmrun 2>/dev/null; do
  i=$((i + 1)); [ $i -gt 100 ] && fail "cannot mount the kvmrun 9p share"
  sleep 0.05
done
T_9P=$(up)
if [ "$(cat /.kvmrun/preload)" = yes ]; then
  modprobe -a $(cat /etc/kproxy-vm/modules) || msg "WARNING: some boot modules failed to load"
fi
extra=$(cat /.kvmrun/modules)
if [ -n "${extra// /}" ]; then
  modprobe -a $extra || msg "WARNING: some extra modules failed to load"
fi
T_MOD=$(up)

hostname kproxy-vm
ip link set lo up
echo 1 > /proc/sys/net/ipv4/ip_forward
echo 1 > /proc/sys/net/ipv6/conf/all/forwarding 2>/dev/null

read -r addr gw < /.kvmrun/uplink
if [ -n "$addr" ]; then
  modprobe virtio_net || fail "cannot load virtio_net for the uplink"
  ip link set eth0 up && ip addr add "$addr" dev eth0 && ip route add default via "$gw" \
    || fail "cannot set up eth0 with $addr via $gw"
fi

while read -r tag path mode; do
  [ -n "$tag" ] || continue
  mkdir -p "$path"
  if [ "$mode" = rw ]; then o=rw,cache=none; else o=ro,cache=loose; fi
  mount -t 9p -o trans=virtio,version=9p2000.L,$o,msize=262144 "$tag" "$path" \
    || fail "cannot mount 9p share $tag at $path"
done < /.kvmrun/mounts
if [ "$(cat /.kvmrun/iptables)" = nft ]; then
  for v in "" 6; do for s in "" -save -restore; do
    ln -sf ip${v}tables-nft$s /usr/sbin/ip${v}tables$s
  done; done
fi
# script stdout/stderr: virtio-serial ports named kproxy.stdout / kproxy.stderr
OUT= ERR=
i=0
while [ -z "$OUT" ] || [ -z "$ERR" ]; do
  for p in /sys/class/virtio-ports/vport*; do
    [ -e "$p/name" ] || continue
    case "$(cat "$p/name")" in
      kproxy.stdout) [ -c "/dev/${p##*/}" ] && OUT=/dev/${p##*/} ;;
      kproxy.stderr) [ -c "/dev/${p##*/}" ] && ERR=/dev/${p##*/} ;;
    esac
  done
  i=$((i + 1)); [ $i -gt 100 ] && fail "virtio-serial ports for stdout/stderr did not appear"
  [ -n "$OUT" ] && [ -n "$ERR" ] || sleep 0.05
done
export KPROXY_VM=1
. /.kvmrun/env
cd /project 2>/dev/null || cd /
T_SETUP=$(up)

. /.kvmrun/cmd        # sets "$@" = script path + args
script=$1
[ -r "$script" ] || fail "script not readable in the guest: $script"
read -r first < "$script" || true
case "$first" in
  '#!'*) set -- ${first#??} "$@" ;;
  *) set -- /bin/sh "$@" ;;
esac
"$@" </dev/null >"$OUT" 2>"$ERR"
rc=$?
T_END=$(up)
echo "KPROXY-VM-TIMES init=$T_INIT p9=$T_9P modules=$T_MOD setup=$T_SETUP end=$T_END"
echo "KPROXY-VM-EXIT=$rc"
sync
reboot -f
sleep 10
INIT_EOF

# ---------------------------------------------------------------------------
# initramfs (cached by content: fetch stamp, this file, node binary)
# ---------------------------------------------------------------------------
NODE="${KPROXY_VM_NODE:-$(command -v node || true)}"
[[ -n "$NODE" ]] && NODE="$(readlink -f "$NODE")"
node_id=none
[[ -n "$NODE" && -x "$NODE" ]] && node_id="$NODE $(stat -c '%s %Y' "$NODE")"
KEY=$( { cat "$CACHE/fetch.stamp" "$0"; echo "$node_id"; } | sha256sum | cut -c1-16)
INITRD="$CACHE/initramfs-$KEY.cpio"

BUILD_TMP="" RUN=""
cleanup() { rm -rf ${BUILD_TMP:+"$BUILD_TMP"} ${RUN:+"$RUN"}; }
trap cleanup EXIT
build_initramfs() {
  local S="$CACHE/.initramfs.$$" t0=$SECONDS
  BUILD_TMP=$S
  rm -rf "$S"; mkdir -p "$S"
  cp -a "$CACHE/root/." "$S/"
  mkdir -p "$S/usr/lib/modules"
  cp -a "$CACHE/kernel/modroot/lib/modules/$KVER" "$S/usr/lib/modules/"
  # busybox applets for everything the real packages do not provide
  local a n
  while read -r a; do
    n=${a##*/}
    [[ -e "$S/usr/bin/$n" || -e "$S/usr/sbin/$n" || -L "$S/usr/bin/$n" || -L "$S/usr/sbin/$n" ]] && continue
    case "$a" in sbin/*|usr/sbin/*) ln -s /usr/bin/busybox "$S/usr/sbin/$n" ;; *) ln -s /usr/bin/busybox "$S/usr/bin/$n" ;; esac
  done < <("$S/usr/bin/busybox" --list-full)
  mkdir -p "$S"/{proc,sys,dev,tmp,run,var/lib,mnt,root,project,etc/kproxy-vm,usr/local/bin,usr/local/sbin}
  ln -sfn /run "$S/var/run"
  mknod -m 600 "$S/dev/console" c 5 1 2>/dev/null || true
  printf 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin\n' > "$S/etc/passwd"
  printf 'root:x:0:\ntty:x:5:\nnogroup:x:65534:\n' > "$S/etc/group"
  printf '127.0.0.1 localhost kproxy-vm\n::1 localhost ip6-localhost ip6-loopback\n' > "$S/etc/hosts"
  printf 'passwd: files\ngroup: files\nhosts: files\nservices: files\nprotocols: files\n' > "$S/etc/nsswitch.conf"
  echo kproxy-vm > "$S/etc/hostname"
  echo $BOOT_MODULES > "$S/etc/kproxy-vm/modules"
  printf '%s\n' "$INIT" > "$S/init"; chmod 755 "$S/init"
  if [[ "$node_id" != none ]]; then
    # node itself comes over 9p (kvmnode share), its libraries live here
    ln -s /opt/hostnode/node "$S/usr/local/bin/node"
    local lib path
    while read -r lib path; do
      [[ -e "$S/usr/lib/x86_64-linux-gnu/$lib" || -e "$S/usr/lib64/$lib" ]] && continue
      [[ -n "$path" && -e "$path" ]] || die "node needs $lib, not found on the host"
      cp -L "$path" "$S/usr/lib/x86_64-linux-gnu/$lib"
    done < <(ldd "$NODE" | awk '$2 == "=>" {print $1, $3}')
  else
    log "WARNING: no node on the host; node will not be available inside"
  fi
  (cd "$S" && find . -mindepth 1 | LC_ALL=C sort | cpio -o -H newc -R 0:0 --quiet) > "$INITRD.tmp.$$"
  mv "$INITRD.tmp.$$" "$INITRD"
  rm -rf "$S"; BUILD_TMP=""
  # keep the two newest images (another run may be about to boot the other one)
  ls -t "$CACHE"/initramfs-*.cpio 2>/dev/null | tail -n +3 | xargs -r rm -f
  log "built initramfs $(basename "$INITRD") ($(du -h "$INITRD" | cut -f1)) in $((SECONDS - t0))s"
}
[[ -f "$INITRD" ]] || build_initramfs

# ---------------------------------------------------------------------------
# per-run configuration (shared read-only as "kvmrun")
# ---------------------------------------------------------------------------
RUN="$(mktemp -d "${TMPDIR:-/tmp}/ipvs-vm.XXXXXX")"
mkdir -p "$RUN/share"
sq() { local s=${1//\'/\'\\\'\'}; printf "'%s'" "$s"; }

VIRTFS=(-virtfs "local,path=$RUN/share,mount_tag=kvmrun,security_model=none,readonly=on")
: > "$RUN/share/mounts"
add_share() { # hostdir tag guestpath mode
  [[ -d "$1" ]] || die "share: no such directory: $1"
  [[ "$2" =~ ^[A-Za-z0-9_.-]{1,31}$ ]] || die "share: bad tag '$2' (letters, digits, _ . -, at most 31)"
  local ro=on; [[ "$4" == rw ]] && ro=off
  # QEMU's option parser splits on commas: double them in the path
  VIRTFS+=(-virtfs "local,path=${1//,/,,},mount_tag=$2,security_model=none,readonly=$ro")
  printf '%s %s %s\n' "$2" "$3" "$4" >> "$RUN/share/mounts"
}
add_share "$PROJECT" project /project ro
# A git worktree may link node_modules to another checkout's: share that too, at
# the link's own (absolute) path, so that the link resolves inside.
NM_LINK=$(readlink "$PROJECT/node_modules" 2>/dev/null || true)
if [[ "$NM_LINK" == /* && "$NM_LINK" != "$PROJECT"/* ]]; then
  add_share "$(readlink -f "$NM_LINK")" nodemodules "$NM_LINK" ro
fi
if [[ "$node_id" != none ]]; then
  # a directory holding only node (hard link, else a cached copy) shared at /opt/hostnode
  ND="$CACHE/node"
  if [[ "$(cat "$ND/id" 2>/dev/null)" != "$node_id" ]]; then
    rm -rf "$ND.tmp.$$"; mkdir -p "$ND.tmp.$$"
    ln "$NODE" "$ND.tmp.$$/node" 2>/dev/null || cp "$NODE" "$ND.tmp.$$/node"
    echo "$node_id" > "$ND.tmp.$$/id"
    rm -rf "$ND"; mv "$ND.tmp.$$" "$ND"
  fi
  add_share "$ND" kvmnode /opt/hostnode ro
fi
for s in "${SHARES[@]}"; do
  mode=ro
  if [[ "$s" == *:rw || "$s" == *:ro ]]; then mode=${s##*:}; s=${s%:*}; fi
  [[ "$s" == *:* ]] || die "--share wants HOSTDIR:TAG[:rw], got '$s'"
  tag=${s##*:}; dir=${s%:*}
  add_share "$(readlink -f "$dir")" "$tag" "/mnt/$tag" "$mode"
done
if [[ "$SCRIPT" == "$PROJECT"/* ]]; then
  GSCRIPT="/project/${SCRIPT#"$PROJECT"/}"
else
  add_share "$(dirname "$SCRIPT")" kvmscript /mnt/kvmscript ro
  GSCRIPT="/mnt/kvmscript/$(basename "$SCRIPT")"
fi
{ printf 'set --'; printf ' %s' "$(sq "$GSCRIPT")"; for a in "$@"; do printf ' %s' "$(sq "$a")"; done; echo; } > "$RUN/share/cmd"
: > "$RUN/share/env"
for e in "${ENVS[@]}"; do
  [[ "$e" =~ ^[A-Za-z_][A-Za-z0-9_]*= ]] || die "--env wants NAME=VALUE, got '$e'"
  printf 'export %s=%s\n' "${e%%=*}" "$(sq "${e#*=}")" >> "$RUN/share/env"
done
echo "$EXTRA_MODULES" > "$RUN/share/modules"
echo "$PRELOAD" > "$RUN/share/preload"
echo "$IPTABLES" > "$RUN/share/iptables"

# The uplink: QEMU user networking (slirp) on ADDR's network, with the gateway
# at its first address, the forwarded ports at its second (slirp refuses them on
# the gateway) and slirp's DNS at its last. restrict=on isolates the guest: only
# the guestfwd ports reach the host, one socat per connection.
NETDEV=()
ip2int() { local a b c d; IFS=. read -r a b c d <<<"$1"; echo $(( (a << 24) | (b << 16) | (c << 8) | d )); }
int2ip() { echo "$(($1 >> 24 & 255)).$(($1 >> 16 & 255)).$(($1 >> 8 & 255)).$(($1 & 255))"; }
if [[ -n "$UPLINK" ]]; then
  [[ "$UPLINK" =~ ^([0-9]{1,3}(\.[0-9]{1,3}){3})/([0-9]{1,2})$ ]] || die "--uplink wants ADDR/PREFIX (IPv4), got '$UPLINK'"
  plen=${BASH_REMATCH[3]}
  ((plen >= 8 && plen <= 30)) || die "--uplink prefix must be /8 to /30"
  mask=$(( (0xffffffff << (32 - plen)) & 0xffffffff ))
  a=$(ip2int "${BASH_REMATCH[1]}"); net=$((a & mask)); bcast=$((net | (~mask & 0xffffffff)))
  gw=$(int2ip $((net + 1))); fwd=$(int2ip $((net + 2))); dns=$(int2ip $((bcast - 1)))
  [[ "$gw" != "${BASH_REMATCH[1]}" && "$fwd" != "${BASH_REMATCH[1]}" && "$dns" != "${BASH_REMATCH[1]}" ]] \
    || die "--uplink: $gw (gateway), $fwd (forwards) and $dns (slirp's DNS) are taken, give the guest another address"
  [[ -x /usr/bin/socat ]] || die "--forward needs socat on the host (Debian package: socat)"
  nd="user,id=uplink,restrict=on,net=$(int2ip "$net")/$plen,host=$gw,dns=$dns"
  for p in "${FORWARDS[@]}"; do nd+=",guestfwd=tcp:$fwd:$p-cmd:/usr/bin/socat - TCP:127.0.0.1:$p"; done
  # shellcheck disable=SC2054  # commas inside one QEMU option value
  NETDEV=(-netdev "$nd" -device virtio-net-pci,netdev=uplink)
  echo "$UPLINK $gw" > "$RUN/share/uplink"
else
  : > "$RUN/share/uplink"
fi

# The script's stdout/stderr arrive on two virtio-serial ports; QEMU writes
# them into FIFOs that cat copies to our own stdout/stderr (live, and safe for
# any kind of stdout: file, pipe, tty, socket).
mkfifo "$RUN/out.fifo" "$RUN/err.fifo"
cat "$RUN/out.fifo" & CAT1=$!
cat "$RUN/err.fifo" >&2 & CAT2=$!
# Kernel arguments: cryptomgr.notests skips the crypto self-tests (half of the
# boot under TCG); acpi=noirq skips ACPI IRQ-link setup for each virtio PCI
# device (interpreted AML, ~0.2 s each under TCG).
T0=$(date +%s.%N)
set +e
timeout -k 5 "$TIMEOUT" /usr/bin/qemu-system-x86_64 \
  -accel tcg -cpu max -smp "$SMP" -m "$MEM" \
  -nodefaults -display none -no-reboot -no-user-config \
  -kernel "$CACHE/kernel/vmlinux" -initrd "$INITRD" \
  -append "console=ttyS0 quiet panic=-1 cryptomgr.notests acpi=noirq$APPEND" \
  -chardev "file,id=con,path=$RUN/console.log" -serial chardev:con \
  -device virtio-serial-pci,id=vser \
  -chardev "file,id=out,path=$RUN/out.fifo" -device virtserialport,bus=vser.0,chardev=out,name=kproxy.stdout \
  -chardev "file,id=err,path=$RUN/err.fifo" -device virtserialport,bus=vser.0,chardev=err,name=kproxy.stderr \
  "${VIRTFS[@]}" "${NETDEV[@]}" ${KPROXY_VM_QEMU_ARGS:-} \
  </dev/null >"$RUN/qemu.log" 2>&1
QRC=$?
set -e
T1=$(date +%s.%N)
# if QEMU never opened a FIFO, its cat is still blocked in open(): give it a
# writer that closes at once (O_RDWR does not block), so it sees EOF
for f in "$RUN/out.fifo" "$RUN/err.fifo"; do exec 7<>"$f"; exec 7>&-; done
wait "$CAT1" "$CAT2" || true

CON="$(tr -d '\r' < "$RUN/console.log" 2>/dev/null || true)"
((VERBOSE)) && { echo "----- guest console -----"; echo "$CON"; echo "-------------------------"; } >&2
WALL=$(awk -v a="$T0" -v b="$T1" 'BEGIN{printf "%.1f", b - a}')
RC=$(sed -n 's/^KPROXY-VM-EXIT=\([0-9]\{1,3\}\)$/\1/p' <<<"$CON" | tail -1)
TIMES=$(sed -n 's/^KPROXY-VM-TIMES //p' <<<"$CON" | tail -1)
timing=""
if [[ -n "$TIMES" ]]; then
  timing=$(tr ' ' '\n' <<<"$TIMES" | awk -F= '$2 ~ /^[0-9.]+$/ {t[$1] = $2}
    END {printf " (kernel boot %.1fs, 9p %.1fs, modules %.1fs, setup %.1fs, script %.1fs)",
      t["init"], t["p9"] - t["init"], t["modules"] - t["p9"], t["setup"] - t["modules"], t["end"] - t["setup"]}')
fi

if [[ $QRC == 124 || $QRC == 137 ]]; then
  log "ERROR: VM timed out after ${TIMEOUT}s (hung?). Last console lines:"
  tail -n 30 <<<"$CON" >&2
  log "wall time ${WALL}s"
  exit 124
fi
if [[ -z "$RC" ]]; then
  why="kernel panic, init failure or QEMU error"
  grep -q 'Kernel panic' <<<"$CON" && why="kernel panic"
  log "ERROR: VM ended without an exit status (qemu rc $QRC: $why)."
  [[ -s "$RUN/qemu.log" ]] && { log "qemu said:"; cat "$RUN/qemu.log" >&2; }
  log "last console lines:"; tail -n 40 <<<"$CON" >&2
  log "wall time ${WALL}s"
  exit 125
fi
if [[ $RC != 0 && $VERBOSE == 0 ]] && grep -q '^kproxy-vm:' <<<"$CON"; then
  grep '^kproxy-vm:' <<<"$CON" >&2 || true
fi
log "exit $RC, wall time ${WALL}s$timing"
exit "$RC"

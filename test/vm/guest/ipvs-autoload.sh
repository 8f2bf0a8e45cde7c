#!/bin/bash
# Guest script of test/vm/ipvs.test.ts for a boot without the IPVS modules
# (run.sh --no-preload --modules ip_tables): how ip_vs and a scheduler get loaded. kproxy runs as in
# its container: in the node's network namespace and, like an image without kmod,
# with no modprobe of its own (a mount namespace hides /usr/sbin/modprobe). The
# kernel's module autoload runs the VM's real modprobe outside that namespace, as
# it runs the node's outside a container. kernel.modprobe pointed at a wrapper
# that refuses IPVS's modules stands for a kernel that does not autoload them.
# ip_tables is loaded at boot: iptables-legacy loads it with its own modprobe (the
# kernel does not autoload it), so without modprobe it must be there already, as on
# a node where anything used iptables-legacy before (iptables-nft needs no modprobe).
# Checks are reported as lib.sh says.
set -u
GUEST=$(cd "$(dirname "$0")" && pwd)
WORK=$(mktemp -d)
# shellcheck source=test/vm/guest/lib.sh
. "$GUEST/lib.sh"

SCHED_AUTO='lc' # loaded by the kernel on the first virtual server that names it
SCHED_MODPROBE='sed'
modules() { cut -d' ' -f1 /proc/modules | tr '\n' ' '; }
has_module() { grep -q "^$1 " /proc/modules; }
no_ipvs() { [ ! -e /proc/net/ip_vs ] && ! has_module ip_vs; }
saved() { ip netns exec kpn ipvsadm -Sn; }
has_line() { grep -qxF -- "$2" <<<"$1"; }
logged() { grep -qF -- "$2" "$WORK/$1.log"; }
sync_on() { # DRIVER NAME SCHEDULER
  kproxy_on "$1" "$2" sync --proxy-mode ipvs --iptables-flavour legacy --from-file "$WORK/objects.json" \
    --hostname-override kpn --cluster-cidr 10.244.0.0/16 --state-dir "$WORK/state-$2" --ipvs-scheduler "$3"
}

T0=$(now)
KERNEL_MODPROBE=$(cat /proc/sys/kernel/modprobe)
check start-without-ip_vs "loaded at start: $(modules)" no_ipvs

# /usr/sbin (and /sbin, its symlink) without modprobe, for kproxy's mount namespace.
mkdir "$WORK/sbin"
cp -a /usr/sbin/. "$WORK/sbin/"
rm "$WORK/sbin/modprobe"
# kernel.modprobe for "this kernel does not load IPVS by itself"
cat >"$WORK/modprobe-but-ipvs" <<'WRAP'
#!/bin/bash
case "$*" in *IPVS* | *ip_vs*) exit 1 ;; esac
exec /usr/sbin/modprobe "$@"
WRAP
chmod 755 "$WORK/modprobe-but-ipvs"

ip netns add kpn
ip -n kpn link set lo up
ip -n kpn link add eth0 type dummy
ip -n kpn addr add 192.168.50.10/24 dev eth0
ip -n kpn link set eth0 up
# without_modprobe CMD...: CMD in the node namespace, /usr/sbin there without modprobe
without_modprobe() {
  # shellcheck disable=SC2016 # expanded by the inner bash
  ip netns exec kpn bash -c 'mount --bind "$0" /usr/sbin && exec "$@"' "$WORK/sbin" "$@"
}
# driver "bare": no modprobe (an image without kmod); driver "kmod" has one
start_driver bare without_modprobe
start_driver kmod ip netns exec kpn
hidden=$(without_modprobe ls /usr/sbin/modprobe /sbin/modprobe 2>&1)
check modprobe-hidden-from-kproxy "$hidden" test "$(grep -c 'No such file' <<<"$hidden")" = 2

printf '%s\n' '{"apiVersion":"v1","kind":"List","items":[' \
  '{"apiVersion":"v1","kind":"Service","metadata":{"namespace":"shop","name":"web"},"spec":{"clusterIP":"10.96.0.10","ports":[{"name":"http","port":80,"protocol":"TCP"}]}},' \
  '{"apiVersion":"discovery.k8s.io/v1","kind":"EndpointSlice","metadata":{"namespace":"shop","name":"web-1","labels":{"kubernetes.io/service-name":"web"}},"addressType":"IPv4","ports":[{"name":"http","port":8080,"protocol":"TCP"}],"endpoints":[{"addresses":["10.244.1.10"],"nodeName":"kpn","conditions":{"ready":true}}]},' \
  '{"apiVersion":"v1","kind":"Node","metadata":{"name":"kpn"},"status":{"addresses":[{"type":"InternalIP","address":"192.168.50.10"}]}}' \
  ']}' >"$WORK/objects.json"

# 1. Cleanup with nothing loaded: it could load ip_vs (the kernel would), and must not.
if kproxy_on bare cleanup-bare cleanup --proxy-mode ipvs --iptables-flavour legacy; then
  ok cleanup-runs-without-ip_vs
else
  fail cleanup-runs-without-ip_vs "$(oneline cleanup-bare)"
fi
check cleanup-does-not-load-ip_vs "loaded after cleanup: $(modules)" no_ipvs

# 2. Neither kproxy nor the kernel can load ip_vs: one error naming the module and the fix.
echo "$WORK/modprobe-but-ipvs" >/proc/sys/kernel/modprobe
sync_on bare sync-nothing rr
rc=$?
echo "$KERNEL_MODPROBE" >/proc/sys/kernel/modprobe
check no-loader-sync-fails "sync exit 0 without any way to load ip_vs" test $rc != 0
check no-loader-names-ip_vs-and-fix "$(oneline sync-nothing 3)" \
  bash -c "grep -q 'the kernel has no IPVS: the ip_vs module is not loaded' '$WORK/sync-nothing.log' &&
    grep -qF 'run \"modprobe ip_vs\" on the node' '$WORK/sync-nothing.log'"
check no-loader-leaves-ip_vs-unloaded "loaded: $(modules)" no_ipvs

# 3. No modprobe in kproxy's reach: the kernel loads ip_vs (and nf_conntrack with it)
#    when ipvsadm asks for IPVS, and the scheduler's module on its first virtual server.
if sync_on bare sync-autoload $SCHED_AUTO; then ok autoload-sync; else fail autoload-sync "$(oneline sync-autoload)"; fi
check autoload-logged "$(grep -i 'ip_vs' "$WORK/sync-autoload.log" | tr '\n' ' ')" \
  logged sync-autoload 'the kernel loaded ip_vs on its own when asked for IPVS'
check autoload-modules "loaded: $(modules)" \
  bash -c "grep -q '^ip_vs ' /proc/modules && grep -q '^ip_vs_$SCHED_AUTO ' /proc/modules &&
    awk '\$1 == \"nf_conntrack\" { print \$4 }' /proc/modules | grep -q ip_vs"
S=$(saved)
check autoload-virtual-server "ipvsadm -Sn: $(tr '\n' '|' <<<"$S")" has_line "$S" "-A -t 10.96.0.10:80 -s $SCHED_AUTO"

# Back to no IPVS: kproxy removes its objects, then the modules go.
kproxy_on bare cleanup-autoload cleanup --proxy-mode ipvs --iptables-flavour legacy
# shellcheck disable=SC2046 # one word per module
unload=$(rmmod $(awk '$1 == "xt_ipvs" || $1 ~ /^ip_vs_/ { print $1 }' /proc/modules) ip_vs 2>&1)
check ip_vs-unloaded "rmmod: $unload; loaded: $(modules)" no_ipvs

# 4. A kernel that does not autoload IPVS: kproxy's own modprobe loads ip_vs, and the
#    scheduler's module after the first try fails.
echo "$WORK/modprobe-but-ipvs" >/proc/sys/kernel/modprobe
if sync_on kmod sync-modprobe $SCHED_MODPROBE; then ok modprobe-sync; else fail modprobe-sync "$(oneline sync-modprobe)"; fi
echo "$KERNEL_MODPROBE" >/proc/sys/kernel/modprobe
check modprobe-logged "$(grep -i 'ip_vs' "$WORK/sync-modprobe.log" | tr '\n' ' ')" \
  bash -c "grep -qF 'loaded the ip_vs kernel module with modprobe' '$WORK/sync-modprobe.log' &&
    grep -qF 'loaded the ip_vs_$SCHED_MODPROBE kernel module with modprobe' '$WORK/sync-modprobe.log'"
S=$(saved)
check modprobe-virtual-server "ipvsadm -Sn: $(tr '\n' '|' <<<"$S")" has_line "$S" "-A -t 10.96.0.10:80 -s $SCHED_MODPROBE"

for f in cleanup-bare sync-nothing sync-autoload cleanup-autoload sync-modprobe; do show $f; done
echo "guest script took $(awk -v a="$T0" -v b="$(now)" 'BEGIN{printf "%.1f", b - a}')s"

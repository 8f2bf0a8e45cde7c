#!/bin/sh
# Guest script: proves the IPVS test VM is fit for the IPVS backend's tests.
#   bash scripts/ipvs-vm/run.sh scripts/ipvs-vm/selftest.sh
# All traffic stays inside the VM (root namespace <-> two namespaces).
set -u

FAILED=0
now() { cut -d' ' -f1 /proc/uptime; }
T0=$(now)
step() { printf '== [%6.2fs] %s\n' "$(awk -v a="$T0" -v b="$(now)" 'BEGIN{print b - a}')" "$*"; }
ok() { printf 'ok   %s\n' "$*"; }
bad() { printf 'FAIL %s\n' "$*"; FAILED=$((FAILED + 1)); }
die() { printf 'FAIL %s\n' "$*"; exit 1; }

[ "$(id -u)" = 0 ] || die "not root"
[ "${KPROXY_VM:-}" = 1 ] || die "not inside the ipvs-vm (KPROXY_VM unset)"

step "kernel $(uname -r)"
modprobe ip_vs || die "modprobe ip_vs"
[ -e /proc/net/ip_vs ] || die "/proc/net/ip_vs missing after modprobe ip_vs"
ok "ip_vs loaded: $(head -n1 /proc/net/ip_vs)"

step "node-side dummy interface"
ip link add kube-ipvs0 type dummy || die "ip link add kube-ipvs0 type dummy"
ip addr add 10.96.0.10/32 dev kube-ipvs0 || die "ip addr add on kube-ipvs0"
ip -o addr show dev kube-ipvs0 | grep -q 'inet 10.96.0.10/32' || die "address not on kube-ipvs0"
ok "kube-ipvs0 has 10.96.0.10/32"

step "two real servers in network namespaces"
for i in 1 2; do
  ns=rs$i
  ip netns add $ns || die "ip netns add $ns"
  ip link add veth-$ns type veth peer name eth0 netns $ns || die "veth for $ns"
  ip addr add 10.244.$i.1/24 dev veth-$ns
  ip link set veth-$ns up
  ip -n $ns link set lo up
  ip -n $ns addr add 10.244.$i.2/24 dev eth0
  ip -n $ns link set eth0 up
  ip -n $ns route add default via 10.244.$i.1 || die "default route in $ns"
  # persistent TCP server answering with its name
  ip netns exec $ns nc -ll -p 8080 -e /bin/echo $ns </dev/null >/dev/null 2>&1 &
done
for i in 1 2; do
  n=0
  until [ "$(nc -w 2 10.244.$i.2 8080 </dev/null 2>/dev/null)" = rs$i ]; do
    n=$((n + 1)); [ $n -gt 50 ] && die "real server rs$i does not answer directly"
    sleep 0.1
  done
done
ok "rs1 and rs2 answer on :8080 directly"

step "IPVS virtual server with two masquerading real servers"
ipvsadm -A -t 10.96.0.10:80 -s rr || die "ipvsadm -A"
ipvsadm -a -t 10.96.0.10:80 -r 10.244.1.2:8080 -m || die "ipvsadm -a rs1"
ipvsadm -a -t 10.96.0.10:80 -r 10.244.2.2:8080 -m || die "ipvsadm -a rs2"
c1=0 c2=0 other=0
for _ in 1 2 3 4 5 6; do
  r=$(nc -w 2 10.96.0.10 80 </dev/null 2>/dev/null)
  case "$r" in rs1) c1=$((c1 + 1)) ;; rs2) c2=$((c2 + 1)) ;; *) other=$((other + 1)) ;; esac
done
if [ $c1 -ge 1 ] && [ $c2 -ge 1 ] && [ $other = 0 ]; then
  ok "6 connections to 10.96.0.10:80: rs1=$c1 rs2=$c2"
else
  bad "6 connections to 10.96.0.10:80: rs1=$c1 rs2=$c2 failed=$other"
  ipvsadm -Ln; ipvsadm -Lnc
fi
[ $c1 = 3 ] && [ $c2 = 3 ] && ok "round robin split evenly" || bad "rr not even: rs1=$c1 rs2=$c2"

step "ipvsadm -Sn / -C / -R"
SAVE=$(ipvsadm -Sn) || die "ipvsadm -Sn"
printf '%s\n' "$SAVE"
echo "$SAVE" | grep -q -- '^-A -t 10.96.0.10:80 -s rr' || bad "-Sn lacks the virtual server"
echo "$SAVE" | grep -q -- '^-a -t 10.96.0.10:80 -r 10.244.1.2:8080 -m -w 1' || bad "-Sn lacks rs1"
echo "$SAVE" | grep -q -- '^-a -t 10.96.0.10:80 -r 10.244.2.2:8080 -m -w 1' || bad "-Sn lacks rs2"
ipvsadm -C || bad "ipvsadm -C"
[ -z "$(ipvsadm -Sn)" ] || bad "table not empty after -C"
echo "$SAVE" | ipvsadm -R || bad "ipvsadm -R"
[ "$(ipvsadm -Sn)" = "$SAVE" ] && ok "-Sn, -C, -R round trip" || bad "-R did not restore the same table"
ipvsadm-save -n >/dev/null && ok "ipvsadm-save (bash script) runs" || bad "ipvsadm-save -n"

step "schedulers (preloaded and on demand)"
for s in wrr lc wlc sh dh sed nq mh lblc; do
  ipvsadm -A -t 10.96.0.11:80 -s $s 2>/dev/null && ipvsadm -D -t 10.96.0.11:80 \
    || bad "scheduler $s"
done
ok "schedulers work (lblc was loaded on demand: $(grep -c '^ip_vs_lblc ' /proc/modules))"
ipvsadm -A -u 10.96.0.10:53 -s rr && ipvsadm -a -u 10.96.0.10:53 -r 10.244.1.2:53 -m \
  && ipvsadm -D -u 10.96.0.10:53 && ok "UDP virtual server" || bad "UDP virtual server"

step "ipset"
ipset create KPROXY-TEST hash:ip,port || die "ipset create"
ipset add KPROXY-TEST 10.96.0.10,tcp:80 || bad "ipset add"
ipset list KPROXY-TEST | grep -q '^10.96.0.10,tcp:80' && ok "ipset create/add/list" || bad "ipset list"
for t in hash:ip hash:ip,port,ip hash:ip,port,net hash:net bitmap:port; do
  case $t in bitmap:port) o="range 0-65535" ;; *) o= ;; esac
  ipset create "KPROXY-${t%%:*}-$(echo "${t#*:}" | tr -d ,)" $t $o || bad "ipset create $t"
done
ipset save >/dev/null && ok "ipset types $(ipset list -n | wc -l) sets" || bad "ipset save"

step "iptables"
iptables-legacy -t nat -L -n >/dev/null || die "iptables-legacy -t nat -L"
iptables-legacy -t nat -N KPROXY-TEST || bad "iptables -N"
iptables-legacy -t nat -A KPROXY-TEST -m comment --comment "kproxy selftest" \
  -m set --match-set KPROXY-TEST dst,dst -m conntrack --ctstate NEW \
  -m addrtype --dst-type LOCAL -p tcp -m multiport --dports 80,443 \
  -m statistic --mode random --probability 0.5 -j RETURN || bad "iptables rule with common matches"
iptables-legacy -t nat -A POSTROUTING -m mark --mark 0x4000/0x4000 -j MASQUERADE || bad "MASQUERADE rule"
iptables-legacy -t filter -A INPUT -m recent --name kp --rcheck -j REJECT || bad "recent/REJECT rule"
iptables-legacy -t nat -A PREROUTING -j KPROXY-TEST || bad "jump rule"
iptables-legacy-save -t nat | grep -q 'kproxy selftest' && ok "iptables-legacy rules + save" || bad "iptables-legacy-save"
ip6tables-legacy -t nat -L -n >/dev/null && ok "ip6tables-legacy nat" || bad "ip6tables-legacy nat"
iptables-nft -t nat -L -n >/dev/null 2>&1 && ok "iptables-nft nat" || bad "iptables-nft -t nat -L"
nft list ruleset >/dev/null && ok "nft list ruleset" || bad "nft"
conntrack -L >/dev/null 2>&1 && ok "conntrack -L" || bad "conntrack -L"

step "node"
t=$(now)
v=$(node -e 'console.log(process.version)') || die "node does not run"
ok "node $v ($(awk -v a="$t" -v b="$(now)" 'BEGIN{printf "%.1f", b - a}')s)"
[ -d /project ] && ok "/project mounted ($(ls /project | wc -l) entries)" || bad "/project missing"
( echo x > /var/lib/kproxy-selftest && echo x > /tmp/kproxy-selftest ) && ok "/var/lib and /tmp writable" \
  || bad "/var/lib or /tmp not writable"

T1=$(now)
echo "selftest took $(awk -v a="$T0" -v b="$T1" 'BEGIN{printf "%.1f", b - a}')s inside the VM"
if [ $FAILED != 0 ]; then
  echo "selftest: $FAILED check(s) FAILED"
  exit 1
fi
echo "selftest: all checks passed"

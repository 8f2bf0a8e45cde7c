#!/bin/bash
# Guest script of test/vm/ipvs.test.ts, run inside the IPVS VM (scripts/ipvs-vm/run.sh):
# kproxy itself (`node /project/dist/cli.js`, built on the host) programs IPVS in a
# "node" network namespace; pods in namespaces behind it run servers, a "remote"
# namespace on the node's LAN is an outside client. Checks are reported as lib.sh says.
set -u
GUEST=$(cd "$(dirname "$0")" && pwd)
WORK=$(mktemp -d)
# shellcheck source=test/vm/guest/lib.sh
. "$GUEST/lib.sh"
NODE_IP=192.168.50.10
REMOTE_IP=192.168.50.20
LB_IP=192.0.2.50

in_node() { ip netns exec kpn "$@"; }

# --- topology --------------------------------------------------------------
declare -A IP=([p0]=10.244.1.10 [p1]=10.244.1.11 [p2]=10.244.1.12 [far]=10.244.2.10 [client]=10.244.1.2)
topology() {
  local p
  for p in kpn kpr p0 p1 p2 far client; do ip netns add $p || return 1; done
  # kproxy's modules load while the rest is built
  start_driver main ip netns exec kpn
  ip -n kpn link set lo up
  ip -n kpn link add eth0 type veth peer name eth0 netns kpr
  ip -n kpn addr add $NODE_IP/24 dev eth0
  ip -n kpn link set eth0 up
  ip -n kpn route add default via $REMOTE_IP
  in_node sysctl -qw net.ipv4.ip_forward=1
  ip -n kpr link set lo up
  ip -n kpr addr add $REMOTE_IP/24 dev eth0
  ip -n kpr link set eth0 up
  ip -n kpr route add 10.244.0.0/16 via $NODE_IP
  ip -n kpr route add $LB_IP/32 via $NODE_IP
  for p in p0 p1 p2 far client; do
    # pods reach the node through proxy ARP for 169.254.1.1, as Calico does
    ip -n kpn link add v$p type veth peer name eth0 netns $p
    ip -n kpn link set v$p up
    ip -n kpn route add ${IP[$p]}/32 dev v$p scope link
    in_node sysctl -qw net.ipv4.conf.v$p.proxy_arp=1 net.ipv4.neigh.v$p.proxy_delay=0
    ip -n $p link set lo up
    ip -n $p addr add ${IP[$p]}/32 dev eth0
    ip -n $p link set eth0 up
    ip -n $p route add 169.254.1.1 dev eth0 scope link
    ip -n $p route add default via 169.254.1.1 dev eth0
  done
  for p in p0 p1 p2 far; do
    # :8080 answers with the pod's name; :9090 too, then echoes lines until closed
    ip netns exec $p nc -ll -p 8080 -e /bin/echo $p </dev/null >/dev/null 2>&1 &
    ip netns exec $p nc -ll -p 9090 -e /bin/sh -c "echo $p; exec cat" </dev/null >/dev/null 2>&1 &
  done
  # a host service on the node: must not answer on service addresses (KUBE-IPVS-FILTER)
  in_node nc -ll -p 2222 -e /bin/echo host </dev/null >/dev/null 2>&1 &
  local n=0
  for p in p0 p1 p2 far; do
    until [ "$(answer client ${IP[$p]} 8080)" = $p ]; do
      n=$((n + 1)); [ $n -gt 100 ] && return 1
      sleep 0.1
    done
  done
}

# answer NS IP PORT: the first line a TCP connection gets, '' when none
answer() { ip netns exec "$1" nc -w 2 "$2" "$3" </dev/null 2>/dev/null | head -n1; }
# names NS IP PORT COUNT: the distinct answers of COUNT connections, sorted; failures as "-"
names() {
  local i a out=()
  for i in $(seq "$4"); do
    a=$(answer "$1" "$2" "$3")
    out+=("${a:--}")
  done
  printf '%s\n' "${out[@]}" | sort -u | tr '\n' ' ' | sed 's/ $//'
}

# --- objects -----------------------------------------------------------------
ep() { # pod -> an EndpointSlice endpoint
  local node=kpn
  [ "$1" = far ] && node=other-node
  printf '{"addresses":["%s"],"nodeName":"%s","conditions":{"ready":true}}' "${IP[$1]}" "$node"
}
eps() { local out="" p; for p in "$@"; do out="$out${out:+,}$(ep "$p")"; done; echo "$out"; }
svc() { # name spec-json [status-json]
  printf '{"apiVersion":"v1","kind":"Service","metadata":{"namespace":"shop","name":"%s"},"spec":%s%s},\n' \
    "$1" "$2" "${3:+,\"status\":$3}"
}
slice() { # service port-json endpoints-json
  printf '{"apiVersion":"discovery.k8s.io/v1","kind":"EndpointSlice","metadata":{"namespace":"shop","name":"%s-1","labels":{"kubernetes.io/service-name":"%s"}},"addressType":"IPv4","ports":[%s],"endpoints":[%s]},\n' \
    "$1" "$1" "$2" "$3"
}
# objects FILE HOLD-PODS DNS-PODS
objects() {
  {
    echo '{"apiVersion":"v1","kind":"List","items":['
    svc web '{"type":"NodePort","clusterIP":"10.96.0.10","ports":[{"name":"http","port":80,"protocol":"TCP","nodePort":30080}]}'
    slice web '{"name":"http","port":8080,"protocol":"TCP"}' "$(eps p0 p1 p2)"
    svc hold '{"clusterIP":"10.96.0.20","ports":[{"name":"hold","port":90,"protocol":"TCP"}]}'
    slice hold '{"name":"hold","port":9090,"protocol":"TCP"}' "$(eps $2)"
    svc sticky '{"clusterIP":"10.96.0.30","sessionAffinity":"ClientIP","sessionAffinityConfig":{"clientIP":{"timeoutSeconds":600}},"ports":[{"name":"http","port":80,"protocol":"TCP"}]}'
    slice sticky '{"name":"http","port":8080,"protocol":"TCP"}' "$(eps p0 p1 p2)"
    svc dns '{"clusterIP":"10.96.0.40","ports":[{"name":"dns","port":53,"protocol":"UDP"}]}'
    slice dns '{"name":"dns","port":53,"protocol":"UDP"}' "$(eps $3)"
    svc lblocal '{"type":"LoadBalancer","clusterIP":"10.96.0.50","externalTrafficPolicy":"Local","healthCheckNodePort":32050,"ports":[{"name":"http","port":80,"protocol":"TCP","nodePort":30050}]}' \
      "{\"loadBalancer\":{\"ingress\":[{\"ip\":\"$LB_IP\"}]}}"
    slice lblocal '{"name":"http","port":8080,"protocol":"TCP"}' "$(eps far)"
    svc nplocal '{"type":"NodePort","clusterIP":"10.96.0.60","externalTrafficPolicy":"Local","ports":[{"name":"http","port":80,"protocol":"TCP","nodePort":30060}]}'
    slice nplocal '{"name":"http","port":8080,"protocol":"TCP"}' "$(eps p2 far)"
    echo "{\"apiVersion\":\"v1\",\"kind\":\"Node\",\"metadata\":{\"name\":\"kpn\"},\"status\":{\"addresses\":[{\"type\":\"InternalIP\",\"address\":\"$NODE_IP\"}]}}"
    echo ']}'
  } >"$1"
}

sync_file() { # NAME FILE
  kproxy "$1" sync --proxy-mode ipvs --iptables-flavour legacy --from-file "$2" \
    --hostname-override kpn --cluster-cidr 10.244.0.0/16 --state-dir "$WORK/state"
}
saved() { in_node ipvsadm -Sn; }
has_line() { grep -qxF -- "$2" <<<"$1"; }
lacks() { ! grep -qF -- "$2" <<<"$1"; }
# conns_of LISTING RS: active+inactive connections of a real server in `ipvsadm -Ln` output
conns_of() { awk -v rs="$2" '$1 == "->" && $2 == rs { print $5 + $6 }' <<<"$1"; }
# dns_flows RS: conntrack entries of UDP flows to dns (10.96.0.40:53) that IPVS sent to RS
dns_flows() {
  in_node conntrack -L -p udp --orig-dst 10.96.0.40 --orig-port-dst 53 --reply-src "$1" 2>/dev/null | grep -c .
}

# --- checks ------------------------------------------------------------------
T0=$(now)
if ! topology; then
  fail topology "could not build the namespaces and servers"
  exit 1
fi
ok topology

# Another program's IPVS, ipset and iptables objects: kproxy must leave them alone.
in_node ipvsadm -A -t 10.1.1.1:1234 -s rr
in_node ipset create FOREIGN hash:ip
in_node iptables -t nat -N FOREIGN-CHAIN

# Without ipvsadm and ipset on PATH, sync stops with a message naming both and programs nothing.
in_node env PATH=/usr/local/bin:/usr/bin node "$CLI" sync --proxy-mode ipvs --from-file /dev/null \
  --hostname-override kpn >"$WORK/missing.log" 2>&1
rc=$?
if [ $rc = 1 ] && grep -q 'ipvsadm is not installed' "$WORK/missing.log" &&
  grep -q 'ipset is not installed' "$WORK/missing.log" && ! ip -n kpn link show kube-ipvs0 >/dev/null 2>&1; then
  ok preflight-names-missing-tools
else
  fail preflight-names-missing-tools "exit $rc: $(tr '\n' ' ' <"$WORK/missing.log" | cut -c1-400)"
fi

objects "$WORK/objects1.json" "p0 p1" "p0 p1"
# The first sync through the CLI binary itself, as an operator runs it; later ones through the driver.
t0=$(now)
in_node node "$CLI" sync --proxy-mode ipvs --iptables-flavour legacy --from-file "$WORK/objects1.json" \
  --hostname-override kpn --cluster-cidr 10.244.0.0/16 --state-dir "$WORK/state" >"$WORK/sync1.log" 2>&1
rc=$?
echo "TIME sync1 $(awk -v a="$t0" -v b="$(now)" 'BEGIN{printf "%.1f", b - a}')"
if [ $rc = 0 ]; then ok first-sync; else fail first-sync "$(tail -n 5 "$WORK/sync1.log" | tr '\n' ' ')"; fi
S=$(saved)
check virtual-servers "ipvsadm -Sn: $(tr '\n' '|' <<<"$S")" \
  has_line "$S" "-A -t 10.96.0.10:80 -s rr"
check node-port-virtual-server "no -A -t $NODE_IP:30080" has_line "$S" "-A -t $NODE_IP:30080 -s rr"
check affinity-is-persistence "no -p 600 on 10.96.0.30:80" has_line "$S" "-A -t 10.96.0.30:80 -s rr -p 600"
check real-servers-masquerading "no masquerading real server" has_line "$S" "-a -t 10.96.0.10:80 -r 10.244.1.10:8080 -m -w 1"
addrs=$(ip -n kpn -o addr show dev kube-ipvs0 2>&1)
check kube-ipvs0-addresses "$(tr '\n' '|' <<<"$addrs")" grep -q 'inet 10.96.0.10/32' <<<"$addrs"
if sync_file sync1-again "$WORK/objects1.json" &&
  grep -q 'virtual servers +0 ~0 -0, real servers +0 ~0 -0, 0 draining; addresses +0 -0; ipset entries +0 -0; 0 iptables rules written' "$WORK/sync1-again.log"; then
  ok second-sync-changes-nothing
else
  fail second-sync-changes-nothing "$(grep -i 'sync' "$WORK/sync1-again.log" | tail -n 3 | tr '\n' ' ')"
fi

got=$(names client 10.96.0.10 80 9)
check clusterip-reaches-every-endpoint "from a pod: $got" test "$got" = "p0 p1 p2"
got=$(names kpn 10.96.0.10 80 6)
check clusterip-from-node "from the node: $got" test "$got" = "p0 p1 p2"
got=$(names kpr $NODE_IP 30080 6)
check nodeport-reaches-endpoints "from the remote host: $got" test "$got" = "p0 p1 p2"
got=$(names client 10.96.0.30 80 6)
check session-affinity-pins-client "6 connections: $got" test "$(wc -w <<<"$got")" = 1
got=$(answer client 10.96.0.10 2222)
check host-service-not-on-clusterip "answered '$got'" test -z "$got"
got=$(answer client $NODE_IP 2222)
check host-service-on-node-ip "answered '$got'" test "$got" = host
got=$(names kpr $NODE_IP 30060 4)
check etp-local-nodeport-only-local "from the remote host: $got" test "$got" = p2
got=$(names kpr $NODE_IP 30050 2)
check etp-local-without-local-endpoint-drops-external "remote to NodePort: $got" test "$got" = "-"
got=$(names kpr $LB_IP 80 2)
check etp-local-without-local-endpoint-drops-external-lb "remote to LB IP: $got" test "$got" = "-"
got=$(names client $LB_IP 80 3)
check etp-local-without-local-endpoint-serves-pods "pod to LB IP: $got" test "$got" = far

# Graceful termination: a held connection on the endpoint that goes away.
coproc HOLD { ip netns exec client node "$GUEST/hold.mjs" 10.96.0.20 90 2>&1; }
read -r -t 60 line <&"${HOLD[0]}"
held=${line#connected }
if [ -n "${IP[$held]:-}" ]; then ok hold-connection; else fail hold-connection "got '$line'"; fi
keep=$([ "$held" = p0 ] && echo p1 || echo p0)
# two UDP "connections" to dns, one per real server (rr); the pods do not answer, and
# an unreplied entry expires after 30 s, less than the syncs below take under TCG: so
# that only kproxy's clean-up can remove one, they live 10 minutes here
in_node sysctl -qw net.netfilter.nf_conntrack_udp_timeout=600
for i in 1 2; do
  echo "udp 10.96.0.40 53" >&"${HOLD[1]}"
  read -r -t 10 line <&"${HOLD[0]}"
done
udp_before=$(in_node ipvsadm -Ln -u 10.96.0.40:53)
check udp-flow-before-removal "$(tr '\n' '|' <<<"$udp_before")" \
  test "$(conns_of "$udp_before" 10.244.1.11:53)" -ge 1
check udp-conntrack-before-removal "flows to p0: $(dns_flows 10.244.1.10), to p1: $(dns_flows 10.244.1.11)" \
  test "$(dns_flows 10.244.1.10)" -ge 1 -a "$(dns_flows 10.244.1.11)" -ge 1

objects "$WORK/objects2.json" "$keep" "p0"
if sync_file sync2 "$WORK/objects2.json"; then ok sync-after-removal; else fail sync-after-removal "$(tail -n 5 "$WORK/sync2.log" | tr '\n' ' ')"; fi
S=$(saved)
check drained-real-server-weight-zero "$(grep -- '10.96.0.20:90' <<<"$S" | tr '\n' '|')" \
  has_line "$S" "-a -t 10.96.0.20:90 -r ${IP[$held]}:9090 -m -w 0"
check udp-real-server-deleted-at-once "$(grep -- '10.96.0.40:53' <<<"$S" | tr '\n' '|')" \
  lacks "$S" "-r 10.244.1.11:53"
check udp-conntrack-of-removed-real-server-cleared "flows to p1: $(dns_flows 10.244.1.11)" \
  test "$(dns_flows 10.244.1.11)" = 0
check udp-conntrack-of-kept-real-server-stays "flows to p0: $(dns_flows 10.244.1.10)" \
  test "$(dns_flows 10.244.1.10)" -ge 1
echo ping >&"${HOLD[1]}"
read -r -t 10 line <&"${HOLD[0]}"
check drained-connection-still-works "held connection said '$line'" test "$line" = pong
got=$(names client 10.96.0.20 90 4)
check drained-real-server-gets-no-new-connections "new connections: $got" test "$got" = "$keep"
if sync_file sync2-busy "$WORK/objects2.json" && has_line "$(saved)" "-a -t 10.96.0.20:90 -r ${IP[$held]}:9090 -m -w 0"; then
  ok busy-drained-server-kept
else
  fail busy-drained-server-kept "$(saved | grep -- '10.96.0.20:90' | tr '\n' '|')"
fi
echo reset >&"${HOLD[1]}"
wait "$HOLD_PID" 2>/dev/null
# RST: IPVS keeps the entry in CLOSE state for 10 s; wait until the counters are 0
idle=0
for i in $(seq 60); do
  if [ "$(conns_of "$(in_node ipvsadm -Ln -t 10.96.0.20:90)" "${IP[$held]}:9090")" = 0 ]; then idle=1; break; fi
  sleep 1
done
check drained-server-goes-idle "$(in_node ipvsadm -Ln -t 10.96.0.20:90 | tr '\n' '|')" test $idle = 1
# A kproxy that stopped mid-drain may leave a wanted real server at weight 0: the next sync resets it.
in_node ipvsadm -e -t 10.96.0.10:80 -r 10.244.1.10:8080 -m -w 0
if sync_file sync3 "$WORK/objects2.json"; then ok sync-when-idle; else fail sync-when-idle "$(tail -n 5 "$WORK/sync3.log" | tr '\n' ' ')"; fi
S=$(saved)
check idle-drained-server-deleted "$(grep -- '10.96.0.20:90' <<<"$S" | tr '\n' '|')" \
  lacks "$S" "-r ${IP[$held]}:9090"
check wanted-weight-reset "$(grep -- '10.96.0.10:80' <<<"$S" | tr '\n' '|')" \
  has_line "$S" "-a -t 10.96.0.10:80 -r 10.244.1.10:8080 -m -w 1"
check foreign-virtual-server-kept-by-sync "ipvsadm -Sn: $(tr '\n' '|' <<<"$S")" has_line "$S" "-A -t 10.1.1.1:1234 -s rr"

# Cleanup removes kproxy's objects and nothing else.
if kproxy cleanup cleanup --proxy-mode ipvs --iptables-flavour legacy; then ok cleanup-runs; else fail cleanup-runs "$(tail -n 5 "$WORK/cleanup.log" | tr '\n' ' ')"; fi
S=$(saved)
check cleanup-virtual-servers "ipvsadm -Sn: $(tr '\n' '|' <<<"$S")" test "$S" = "-A -t 10.1.1.1:1234 -s rr"
check cleanup-kube-ipvs0 "kube-ipvs0 still there" bash -c '! ip -n kpn link show kube-ipvs0 >/dev/null 2>&1'
sets=$(in_node ipset list -n | tr '\n' ' ')
check cleanup-ipsets "ipsets left: $sets" test "$sets" = "FOREIGN "
left=$(in_node iptables-save | grep -c 'KUBE-')
check cleanup-iptables "$left KUBE- lines left" test "$left" = 0
check cleanup-keeps-foreign-chain "FOREIGN-CHAIN gone" bash -c 'ip netns exec kpn iptables -t nat -S FOREIGN-CHAIN >/dev/null'

for f in sync1 sync2 sync2-busy sync3 cleanup; do show $f; done
echo "guest script took $(awk -v a="$T0" -v b="$(now)" 'BEGIN{printf "%.1f", b - a}')s"

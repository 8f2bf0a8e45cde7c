#!/bin/bash
# Guest script of test/vm/upstream-ipvs.test.ts: upstream kube-proxy in IPVS mode
# programs this VM as node kind-worker, reading the API server on the host
# (reached over the VM's uplink, see run.sh --uplink/--forward); once its rules
# have settled, the dump kproxy verify reads goes to $OUT/ipvs.dump:
# iptables-save, ipset save and ipvsadm -Sn, one after the other.
#   upstream-ipvs.sh KUBE_PROXY KUBECONFIG OUT
set -u
KUBE_PROXY=$1 KUBECONFIG=$2 OUT=$3
log() { echo "upstream-ipvs: $*" >&2; }
[ -x "$KUBE_PROXY" ] || { log "no kube-proxy binary at $KUBE_PROXY"; exit 2; }

"$KUBE_PROXY" --kubeconfig="$KUBECONFIG" --proxy-mode=ipvs --hostname-override=kind-worker \
  --cluster-cidr=10.244.0.0/16 --healthz-bind-address=127.0.0.1:10256 \
  --metrics-bind-address=127.0.0.1:10249 --conntrack-max-per-core=0 --v=2 \
  >"$OUT/kube-proxy.log" 2>&1 &
PROXY=$!

# The three outputs without what changes on its own (iptables-save's timestamps
# and counters), to tell when kube-proxy has stopped writing.
rules() {
  { iptables-save; ipset save; ipvsadm -Sn; } 2>&1 | sed -e '/^#/d' -e 's/\[[0-9]*:[0-9]*\]//'
}
# Settled: KUBE-SERVICES holds rules, a virtual server exists, and three reads
# 10 s apart are the same. Under TCG kube-proxy takes minutes to start.
last="" same=0 settled=0
for _ in $(seq 1 90); do
  kill -0 "$PROXY" 2>/dev/null || { log "kube-proxy exited:"; tail -n 40 "$OUT/kube-proxy.log" >&2; exit 1; }
  now=$(rules)
  if grep -q '^-A KUBE-SERVICES ' <<<"$now" && grep -q '^-A -[tus] ' <<<"$now" && [ "$now" = "$last" ]; then
    same=$((same + 1))
  else
    same=0
  fi
  [ $same -ge 2 ] && { settled=1; break; }
  last=$now
  sleep 10
done
if [ $settled = 0 ]; then
  log "kube-proxy's rules did not settle within 15 minutes; last read and log:"
  echo "$now" >&2
  tail -n 40 "$OUT/kube-proxy.log" >&2
  kill "$PROXY"
  exit 1
fi
{ iptables-save; ipset save; ipvsadm -Sn; } >"$OUT/ipvs.dump.tmp" && mv "$OUT/ipvs.dump.tmp" "$OUT/ipvs.dump"
ip -br addr >"$OUT/addresses.txt"
kill "$PROXY"
wait "$PROXY" 2>/dev/null
log "dumped $(wc -l <"$OUT/ipvs.dump") lines"
exit 0

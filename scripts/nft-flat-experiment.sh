#!/usr/bin/env bash
# What nft 1.0.6 and this kernel accept for the flat nftables layout
# (docs/nftables-flat.md), and what loading 10,000 Services of it costs.
# Runs in a throwaway network namespace; as root. Usage: scripts/nft-flat-experiment.sh [N]
set -euo pipefail
NFT=${KPROXY_NFT:-/usr/sbin/nft}   # never by PATH: node_modules/.bin holds an unrelated "nft"
[ -x "$NFT" ] || { echo "nft not found at $NFT (Debian/Ubuntu package: nftables)" >&2; exit 1; }
N=${1:-10000}
NS=kpt-$$-nftflat
DIR=$(mktemp -d)
ip netns add "$NS"
trap 'ip netns del "$NS"; rm -rf "$DIR"' EXIT
nft() { ip netns exec "$NS" "$NFT" "$@"; }

# 1. A concatenated key ending in numgen, DNAT to addr . port from the map.
#    Without a `meta l4proto` match nft refuses ("conflicting protocols specified: ip vs. th").
cat >"$DIR/shape.nft" <<'NFT'
table ip kube-proxy {
  map endpoints { typeof ip daddr . meta l4proto . th dport . numgen random mod 1 : ip daddr . th dport ; }
  map service-ips { type ipv4_addr . inet_proto . inet_service : verdict ; }
  chain pick-3 { meta l4proto { tcp, udp, sctp } dnat ip to ip daddr . meta l4proto . th dport . numgen random mod 3 map @endpoints ; }
  chain services { ip daddr . meta l4proto . th dport vmap @service-ips ; }
}
NFT
nft -f "$DIR/shape.nft" && echo "concatenated numgen map: accepted"
nft list map ip kube-proxy endpoints | sed -n 2,3p
nft delete table ip kube-proxy

# 2. N Services x 3 endpoints, elements batched per map.
python3 - "$N" "$DIR/big.nft" <<'PY'
import sys
n, out = int(sys.argv[1]), sys.argv[2]
ips = [f"172.{16 + i // 65536}.{(i // 256) % 256}.{i % 256}" for i in range(n)]
ep = lambda j: f"10.{(j // 65536) % 256}.{(j // 256) % 256}.{j % 256}"
L = open(sys.argv[2].replace("big.nft", "shape.nft")).read().splitlines()
L.append("add element ip kube-proxy service-ips { " + ", ".join(f"{a} . tcp . 80 : goto pick-3" for a in ips) + " }")
L.append("add element ip kube-proxy endpoints { " + ", ".join(f"{a} . tcp . 80 . {k} : {ep(i*3+k)} . 8080" for i, a in enumerate(ips) for k in range(3)) + " }")
open(out, "w").write("\n".join(L) + "\n")
PY
echo "load $N Services:"; time nft -f "$DIR/big.nft"
echo "one endpoint replaced:"; time nft 'delete element ip kube-proxy endpoints { 172.16.0.5 . tcp . 80 . 2 } ; add element ip kube-proxy endpoints { 172.16.0.5 . tcp . 80 . 2 : 10.9.9.9 . 80 }'
echo "nft list table:"; time nft list table ip kube-proxy >/dev/null

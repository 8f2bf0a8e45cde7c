#!/bin/bash
# The offline node image's pod network (in place of kindnetd, which is not on the
# Go module proxy): every node gets its pods through the ptp and host-local plugins
# in the podCIDR the controller manager gave it, and a route to every other node's
# podCIDR via that node's InternalIP (all nodes share kind's docker network).
# It runs as a systemd service on the node and reads the Node objects with the
# kubelet's own credentials (the Node authorizer lets a kubelet list Nodes), so it
# needs no Service proxy: kproxy itself comes after the network.
set -u

kubectl=/usr/bin/kubectl
kubeconfig=/etc/kubernetes/kubelet.conf
conf=/etc/cni/net.d/10-kproxy-kind.conflist
self="$(cat /etc/hostname)"
# name, podCIDR and InternalIP of every node, one per line.
fields='{range .items[*]}{.metadata.name}{" "}{.spec.podCIDR}{" "}{.status.addresses[?(@.type=="InternalIP")].address}{"\n"}{end}'

write_conf() {
  local cidr="$1" tmp="$conf.tmp"
  cat >"$tmp" <<JSON
{
  "cniVersion": "0.4.0",
  "name": "kproxy-kind",
  "plugins": [
    {
      "type": "ptp",
      "ipMasq": false,
      "ipam": {
        "type": "host-local",
        "ranges": [[{ "subnet": "$cidr" }]],
        "routes": [{ "dst": "0.0.0.0/0" }]
      },
      "mtu": 1500
    },
    { "type": "portmap", "capabilities": { "portMappings": true } }
  ]
}
JSON
  if ! cmp -s "$tmp" "$conf"; then
    mv -f "$tmp" "$conf"
    echo "pod network: $cidr on $self"
  else
    rm -f "$tmp"
  fi
}

mkdir -p "$(dirname "$conf")"
while :; do
  if [[ -f "$kubeconfig" ]] && nodes="$("$kubectl" --kubeconfig "$kubeconfig" get nodes -o jsonpath="$fields" 2>/dev/null)"; then
    while read -r name cidr ip; do
      [[ -n "$cidr" && -n "$ip" ]] || continue
      if [[ "$name" == "$self" ]]; then
        write_conf "$cidr"
      else
        ip route replace "$cidr" via "$ip"
      fi
    done <<<"$nodes"
  fi
  sleep 5
done

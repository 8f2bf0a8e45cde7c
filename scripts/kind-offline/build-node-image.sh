#!/usr/bin/env bash
# Step 3d of the offline kind cluster: the kind node image, kind's base image recipe
# redone from local parts:
#   - build-rootfs.sh's Debian bookworm (systemd, runc, CNI plugins, iptables, ...);
#   - kind's own node files (entrypoint, systemd units, kubelet drop-ins, containerd
#     configuration) from the sigs.k8s.io/kind module in GOMODCACHE (build-kind.sh);
#   - containerd, ctr, the runc shim, crictl, kubelet, kubeadm, kubectl
#     (build-node-binaries.sh);
#   - the images of build-images.sh in /kind/images, imported into containerd at
#     boot by kproxy-kind-images.service, before the kubelet starts;
#   - node/: the pod network service, and the kubelet's --fail-cgroupv1=false (this
#     host is cgroup v1; kubelet 1.35+ refuses it otherwise).
# Imported into the kind engine as $KIND_NODE_IMAGE (kproxy.local/kind-node:v$K8S_VERSION).
#
#   scripts/kind-offline/build-node-image.sh   # prints the image name
set -euo pipefail

K8S_VERSION="${K8S_VERSION:-1.37.2}"
KIND_VERSION="${KIND_VERSION:-0.33.0}"
CONTAINERD_VERSION="${CONTAINERD_VERSION:-2.4.2}"
CRICTL_VERSION="${CRICTL_VERSION:-1.37.0}"
CACHE="${KPROXY_CACHE:-/var/cache/kproxy}"
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd -P)"
name="${KIND_NODE_IMAGE:-kproxy.local/kind-node:v$K8S_VERSION}"
docker=(/usr/bin/docker -H "unix://$(bash "$here/docker-daemon.sh" socket)")
kindfiles="$CACHE/go/mod/sigs.k8s.io/kind@v$KIND_VERSION/images/base/files"
k8s="$CACHE/k8s/$K8S_VERSION"
cbin="$CACHE/kind/bin/containerd-$CONTAINERD_VERSION"
crictl="$CACHE/kind/bin/cri-tools-$CRICTL_VERSION/crictl"
images="$CACHE/kind/images/$K8S_VERSION"
log() { printf '[build-node-image] %s\n' "$*" >&2; }

rootfs="$(bash "$here/build-rootfs.sh")"
for f in "$kindfiles/usr/local/bin/entrypoint" "$cbin/containerd" "$crictl" "$k8s/kubelet" "$k8s/kubeadm" "$k8s/kubectl" "$images/pause.tar"; do
  [[ -e "$f" ]] || { log "missing $f (build-kind.sh, build-node-binaries.sh, build-images.sh)"; exit 1; }
done

# Rebuilt when any part changes: a hash of the parts' names, sizes and times, and node/.
key="$( (stat -c '%n %s %Y' "$rootfs" "$cbin"/* "$crictl" "$k8s"/kube{let,adm,ctl} "$images"/*.tar; cat "$here"/node/* "$0") | sha256sum | cut -c1-16)"
if [[ "$("${docker[@]}" image inspect -f '{{index .Config.Labels "kproxy.kind-node.key"}}' "$name" 2>/dev/null)" == "$key" ]]; then
  echo "$name"
  exit 0
fi

start=$SECONDS
root="$(mktemp -d "$CACHE/kind/rootfs/.node.XXXXXX")"
trap 'rm -rf "$root"' EXIT
tar -C "$root" -xzf "$rootfs"

# kind's files, with the modes its Dockerfile gives them.
install -m 0755 "$kindfiles"/usr/local/bin/* "$root/usr/local/bin/"
mkdir -p "$root/kind/bin" "$root/kind/manifests" "$root/kind/images" "$root/etc/kubernetes/manifests" \
  "$root/etc/systemd/system/kubelet.service.d" "$root/etc/containerd" "$root/opt/cni"
install -m 0644 "$kindfiles"/kind/README.txt "$root/kind/"
install -m 0755 "$kindfiles"/kind/bin/* "$here/node/kproxy-kind-cni.sh" "$root/kind/bin/"
install -m 0644 "$kindfiles"/etc/crictl.yaml "$root/etc/"
install -m 0644 "$kindfiles"/etc/containerd/* "$root/etc/containerd/"
# Lowering a process's oom_score_adj needs CAP_SYS_RESOURCE, which the nodes lack
# here: runc then fails every pod sandbox (the CRI asks -998 for it) with "can't get
# final child's PID from pipe: EOF". Restricted, containerd raises every pod's score
# to at least its own (0 in the node), as it does for rootless nodes.
sed -i 's/^\( *restrict_oom_score_adj = \)false/\1true/' "$root/etc/containerd/config.toml"
grep -q 'restrict_oom_score_adj = true' "$root/etc/containerd/config.toml" ||
  { log "kind's containerd configuration has no restrict_oom_score_adj to set"; exit 1; }
install -m 0644 "$kindfiles"/etc/sysctl.d/* "$root/etc/sysctl.d/"
install -m 0644 "$kindfiles"/etc/systemd/system/*.service "$kindfiles"/etc/systemd/system/*.slice \
  "$here"/node/*.service "$root/etc/systemd/system/"
install -m 0644 "$kindfiles"/etc/systemd/system/kubelet.service.d/* "$root/etc/systemd/system/kubelet.service.d/"
# kind's KUBELET_EXTRA_ARGS, plus the one flag this cgroup v1 host needs.
echo "$(cat "$kindfiles/etc/default/kubelet") --fail-cgroupv1=false" >"$root/etc/default/kubelet"

# The binaries, where kind's units and configuration look for them.
install -m 0755 "$cbin"/containerd "$cbin"/containerd-shim-runc-v2 "$cbin"/ctr "$crictl" "$root/usr/local/bin/"
install -m 0755 "$k8s"/kubelet "$k8s"/kubeadm "$k8s"/kubectl "$root/usr/bin/"
ln -sfn /usr/lib/cni "$root/opt/cni/bin"
# containerd's base spec, as kind makes it: ctr's default spec with kind's product-files
# hook and no rlimits.
"$cbin/ctr" oci spec |
  /usr/bin/jq '.hooks.createContainer[.hooks.createContainer | length] |= . + {"path": "/kind/bin/mount-product-files.sh"}' |
  /usr/bin/jq 'del(.process.rlimits)' >"$root/etc/containerd/cri-base.json"
echo "v$K8S_VERSION" >"$root/kind/version"
cp "$images"/*.tar "$root/kind/images/"
install -m 0644 "$here/node/default-cni.yaml" "$here/node/default-storage.yaml" "$root/kind/manifests/"

# systemd as kind's base image sets it up: no units a container should not start.
find "$root/lib/systemd/system/sysinit.target.wants/" -name systemd-tmpfiles-setup.service -delete
rm -f "$root"/lib/systemd/system/multi-user.target.wants/* "$root"/etc/systemd/system/*.wants/* \
  "$root"/lib/systemd/system/local-fs.target.wants/* "$root"/lib/systemd/system/sockets.target.wants/*udev* \
  "$root"/lib/systemd/system/sockets.target.wants/*initctl* "$root"/lib/systemd/system/basic.target.wants/*
echo "ReadKMsg=no" >>"$root/etc/systemd/journald.conf"
ln -sfn /usr/lib/systemd/systemd "$root/sbin/init"
chroot "$root" systemctl enable kubelet.service containerd.service undo-mount-hacks.service \
  kproxy-kind-images.service kproxy-kind-cni.service >/dev/null 2>&1
chroot "$root" systemctl mask systemd-binfmt.service >/dev/null 2>&1
# No machine-id: kind's entrypoint makes one per node.
: >"$root/etc/machine-id"

# `docker import` takes no STOPSIGNAL: a build FROM the imported tree adds it (and
# needs no network: no RUN).
base="${name%:*}:${name##*:}-rootfs"
tar -C "$root" --numeric-owner -c . | "${docker[@]}" import \
  --change 'ENV container=docker' \
  --change 'ENTRYPOINT ["/usr/local/bin/entrypoint", "/sbin/init"]' - "$base" >/dev/null
# systemd exits on SIGRTMIN+3 (SIGTERM makes it re-execute), as kind's image says.
printf 'FROM %s\nSTOPSIGNAL SIGRTMIN+3\nLABEL kproxy.kind-node.key=%s\n' "$base" "$key" |
  "${docker[@]}" build -q -t "$name" - >/dev/null
log "$name in $((SECONDS - start)) s ($("${docker[@]}" image inspect -f '{{.Size}}' "$name" | numfmt --to=iec))"
echo "$name"

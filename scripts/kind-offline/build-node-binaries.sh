#!/usr/bin/env bash
# Step 3a of the offline kind cluster: the Go binaries a kind node runs, from the
# Go module proxy, one build at a time under `nice` (the machine is shared).
# Idempotent: each binary is built only when missing.
#
#   scripts/kind-offline/build-node-binaries.sh   # prints the binary directory
#
#   containerd, containerd-shim-runc-v2, ctr  github.com/containerd/containerd/v2
#   crictl                                    sigs.k8s.io/cri-tools
#   kubelet, kubeadm, kube-scheduler, kube-controller-manager (and kubectl,
#   kube-apiserver, etcd): scripts/test-infra/build-k8s.sh, into its own cache
#
# Environment: KPROXY_CACHE, CONTAINERD_VERSION (2.4.2), CRICTL_VERSION (1.37.0),
# K8S_VERSION (1.37.2, read by build-k8s.sh).
# Output: $KPROXY_CACHE/kind/bin/{containerd-$CONTAINERD_VERSION,cri-tools-$CRICTL_VERSION}/
# and $KPROXY_CACHE/k8s/$K8S_VERSION/; prints one directory per line.
set -euo pipefail

CONTAINERD_VERSION="${CONTAINERD_VERSION:-2.4.2}"
CRICTL_VERSION="${CRICTL_VERSION:-1.37.0}"
CACHE="${KPROXY_CACHE:-/var/cache/kproxy}"
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd -P)"

# shellcheck source=scripts/test-infra/go-env.sh
. "$here/../test-infra/go-env.sh"

# containerd: no cgo (the btrfs, devmapper and zfs snapshotters need it, and kind
# uses overlayfs), as kind's base image builds it but without CGO.
cd_out="$CACHE/kind/bin/containerd-$CONTAINERD_VERSION"
go_install_cached "$cd_out" \
  "-s -w -X github.com/containerd/containerd/v2/version.Version=v$CONTAINERD_VERSION" \
  "no_aufs no_zfs no_btrfs no_devmapper" \
  "github.com/containerd/containerd/v2/cmd/containerd@v$CONTAINERD_VERSION" \
  "github.com/containerd/containerd/v2/cmd/containerd-shim-runc-v2@v$CONTAINERD_VERSION" \
  "github.com/containerd/containerd/v2/cmd/ctr@v$CONTAINERD_VERSION"

crictl_out="$CACHE/kind/bin/cri-tools-$CRICTL_VERSION"
go_install_cached "$crictl_out" \
  "-s -w -X sigs.k8s.io/cri-tools/pkg/version.Version=v$CRICTL_VERSION" "" \
  "sigs.k8s.io/cri-tools/cmd/crictl@v$CRICTL_VERSION"

k8s_out="$(K8S_EXTRA="kubelet kubeadm kube-scheduler kube-controller-manager" \
  nice -n 10 bash "$here/../test-infra/build-k8s.sh")"

echo "$cd_out"
echo "$crictl_out"
echo "$k8s_out"

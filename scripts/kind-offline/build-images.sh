#!/usr/bin/env bash
# Step 3c of the offline kind cluster: every image kubeadm and the nodes need,
# made locally and tagged with the names kubeadm expects, so nothing is pulled:
#   kube-apiserver, kube-controller-manager, kube-scheduler (v$K8S_VERSION), from
#     build-k8s.sh's binaries;
#   etcd (the tag kubeadm asks for, with build-k8s.sh's etcd $ETCD_VERSION binary);
#   pause (the tag kubeadm asks for and the one kind's containerd config names), from
#     pause.c, built static;
#   coredns/coredns (the tag kubeadm asks for), from github.com/coredns/coredns.
# Every image is one static binary in an otherwise empty layer (`docker import`),
# saved as a tarball in $KPROXY_CACHE/kind/images/$K8S_VERSION/ that the node
# image carries and imports into its containerd at boot.
#
#   scripts/kind-offline/build-images.sh    # prints the tarballs' directory
#
# Needs the kind engine (docker-daemon.sh start) and build-node-binaries.sh's output.
# SKIP_COREDNS=1 leaves CoreDNS out (its build is the longest; `kind create cluster`
# does not wait for it).
set -euo pipefail

K8S_VERSION="${K8S_VERSION:-1.37.2}"
CACHE="${KPROXY_CACHE:-/var/cache/kproxy}"
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd -P)"
k8s="$CACHE/k8s/$K8S_VERSION"
out="$CACHE/kind/images/$K8S_VERSION"
docker=(/usr/bin/docker -H "unix://$(bash "$here/docker-daemon.sh" socket)")
log() { printf '[build-images] %s\n' "$*" >&2; }

[[ -x "$k8s/kubeadm" ]] || { log "missing $k8s/kubeadm: run build-node-binaries.sh"; exit 1; }
# The exact names kubeadm will ask the runtime for.
mapfile -t names < <("$k8s/kubeadm" config images list --kubernetes-version "v$K8S_VERSION" 2>/dev/null)
want() { printf '%s\n' "${names[@]}" | grep -m1 "/$1:"; }

# image NAME BINARY ENTRYPOINT_JSON [EXTRA_TAG...]: one binary at /usr/local/bin
# (or / for CoreDNS's /coredns), saved to $out/<base name>.tar unless there.
image() {
  local name="$1" bin="$2" entry="$3"
  shift 3
  local base="${name##*/}"
  local tar="$out/${base%%:*}.tar"
  if [[ -f "$tar" && "$tar" -nt "$bin" ]]; then return 0; fi
  local dir
  dir="$(mktemp -d)"
  local dest="$dir/usr/local/bin"
  [[ "$entry" == '["/coredns"]' ]] && dest="$dir"
  mkdir -p "$dest" "$dir/tmp" "$dir/etc"
  chmod 1777 "$dir/tmp"
  install -m 0755 "$bin" "$dest/"
  # The binaries look users up by name for nothing; an /etc/passwd keeps libraries quiet.
  printf 'root:x:0:0:root:/root:/sbin/nologin\nnobody:x:65534:65534:nobody:/:/sbin/nologin\n' >"$dir/etc/passwd"
  tar -C "$dir" --numeric-owner -c . | "${docker[@]}" import \
    --change 'ENV PATH=/usr/local/bin:/usr/bin:/bin' \
    --change "ENTRYPOINT $entry" - "$name" >/dev/null
  rm -rf "$dir"
  local t
  for t in "$@"; do "${docker[@]}" tag "$name" "$t"; done
  "${docker[@]}" save -o "$tar.tmp" "$name" "$@"
  mv -f "$tar.tmp" "$tar"
  log "$name$(printf ' %s' "$@") <- $bin ($(du -h "$tar" | cut -f1))"
}

mkdir -p "$out"
start=$SECONDS
for c in kube-apiserver kube-controller-manager kube-scheduler; do
  image "$(want "$c")" "$k8s/$c" "[\"/usr/local/bin/$c\"]"
done
image "$(want etcd)" "$k8s/etcd" '["/usr/local/bin/etcd"]'

pause_bin="$CACHE/kind/bin/pause"
if [[ ! -x "$pause_bin" || "$here/pause.c" -nt "$pause_bin" ]]; then
  gcc -static -O2 -s -o "$pause_bin.tmp" "$here/pause.c"
  mv -f "$pause_bin.tmp" "$pause_bin"
fi
# kind's containerd configuration pins its own pause tag as the sandbox image.
kind_pause="$(sed -n 's/^ *sandbox_image = "\(.*\)"/\1/p' \
  "$CACHE/go/mod/sigs.k8s.io/kind@v${KIND_VERSION:-0.33.0}/images/base/files/etc/containerd/config.toml")"
pause_tags=()
[[ -n "$kind_pause" && "$kind_pause" != "$(want pause)" ]] && pause_tags=("$kind_pause")
image "$(want pause)" "$pause_bin" '["/usr/local/bin/pause"]' "${pause_tags[@]}"

if [[ "${SKIP_COREDNS:-}" == 1 ]]; then
  rm -f "$out/coredns.tar"
  log "CoreDNS left out (SKIP_COREDNS=1); images in $out ($((SECONDS - start)) s)"
  echo "$out"
  exit 0
fi
coredns_name="$(want coredns)"
coredns_version="${coredns_name##*:}"
coredns_dir="$CACHE/kind/bin/coredns-${coredns_version#v}"
if [[ ! -x "$coredns_dir/coredns" ]]; then
  # shellcheck source=scripts/test-infra/go-env.sh
  . "$here/../test-infra/go-env.sh"
  go_install_cached "$coredns_dir" "-s -w" "" "github.com/coredns/coredns@$coredns_version"
fi
image "$coredns_name" "$coredns_dir/coredns" '["/coredns"]'

log "images in $out ($((SECONDS - start)) s)"
echo "$out"

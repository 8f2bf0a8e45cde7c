#!/usr/bin/env bash
# Runs every test tier (pure, kernel, VM, API server, image) after installing what they
# need, and ends with one line: "tests: N passed, N failed". Extra arguments go to ava
# (e.g. a file or --match).
set -euo pipefail
cd "$(dirname "$0")/.."

bash scripts/install-test-deps.sh

# On a new machine the Go builds below take ~25 minutes, the first ten of them mostly
# waiting on the module proxy; the IPVS VM's files and the image tier's stand-ins
# (both downloads from Debian) are fetched meanwhile, each with its log kept apart.
tap=$(mktemp)
logs=$(mktemp -d)
pids=()
# shellcheck disable=SC2317  # run by the EXIT trap
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  rm -rf "$tap" "$logs"
  [ "${image_engine:-}" != started ] || bash scripts/image/docker-daemon.sh stop
}
trap cleanup EXIT
# Debian's stock kernel and userland for the IPVS VM (test/vm), cached.
bash scripts/ipvs-vm/fetch.sh >/dev/null 2>"$logs/ipvs-vm" &
vm_pid=$!
pids+=("$vm_pid")
# The image tier (test/image): a docker engine of its own (stopped at the end if this
# run started it), local stand-ins for the Dockerfile's FROM images, and the shipping
# Dockerfile built as kproxy:test. A failed start or build leaves no image, and the
# image tests then fail saying so; the other tiers still run.
image_engine=$(bash scripts/image/docker-daemon.sh start) || image_engine=failed
bash scripts/image/prepare.sh >/dev/null 2>"$logs/image" &
image_pid=$!
pids+=("$image_pid")

# A real kube-apiserver and etcd for test/e2e and test/ship, built from the Go
# module proxy into the cache outside the repo (instant when already built); from
# the same module upstream kube-proxy (test/e2e/verify-upstream, the cluster tier's
# migration) and kube-controller-manager, and kwok to play the kubelet (test/cluster).
K8S_EXTRA="kube-controller-manager kube-proxy" bash scripts/test-infra/build-k8s.sh >/dev/null
bash scripts/test-infra/build-kwok.sh >/dev/null

vm_ok=0
wait "$vm_pid" || vm_ok=$?
cat "$logs/ipvs-vm" >&2
[ "$vm_ok" -eq 0 ] || { echo "test.sh: fetching the IPVS VM's files failed (above)" >&2; exit 1; }
image_ok=0
wait "$image_pid" || image_ok=$?
cat "$logs/image" >&2
[ "$image_ok" -eq 0 ] || echo "test.sh: the image build failed (above)" >&2
pids=()

npm run --silent build
npm run --silent typecheck

set +e
npx ava --tap "$@" | tee "$tap"
status=${PIPESTATUS[0]}
set -e
passed=$(grep -c '^ok ' "$tap" || true)
failed=$(grep -c '^not ok ' "$tap" || true)
echo "tests: ${passed} passed, ${failed} failed"
exit "$status"

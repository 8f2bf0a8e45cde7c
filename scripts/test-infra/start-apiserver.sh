#!/usr/bin/env bash
# Start a real etcd + kube-apiserver on 127.0.0.1 (free ports) for tests.
#
#   start-apiserver.sh [STATE_DIR]                 start both; prints STATE_DIR
#   start-apiserver.sh --restart-apiserver STATE   (re)start only kube-apiserver,
#                                                  same port/flags, same etcd
#   stop-apiserver.sh STATE_DIR [--apiserver-only]
#
# KPROXY_OWNER_PID=<pid>: also stop everything once that process is gone (used by tests).
# KPROXY_APISERVER_EXTRA_ARGS="--flag=value ...": more kube-apiserver flags (kept by
# --restart-apiserver), e.g. --watch-cache=false for a test that needs etcd's own 410.
#
# STATE_DIR (default: a new mktemp dir) receives:
#   env         KEY=value lines (KUBECONFIG, KPROXY_APISERVER_URL/_TOKEN/_CA, pids...)
#   kubeconfig  cluster CA embedded (TLS is verified), bearer token of a system:masters user
#   pki/ etcd-data/ etcd.log apiserver.log apiserver.args *.pid
#
# Binaries: $KPROXY_K8S_BIN or ${KPROXY_CACHE:-/var/cache/kproxy}/k8s/$K8S_VERSION,
# built by scripts/test-infra/build-k8s.sh.
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
K8S_VERSION="${K8S_VERSION:-1.37.2}"
BIN="${KPROXY_K8S_BIN:-${KPROXY_CACHE:-/var/cache/kproxy}/k8s/$K8S_VERSION}"
READY_TIMEOUT="${KPROXY_APISERVER_READY_TIMEOUT:-90}"

log() { printf '[start-apiserver] %s\n' "$*" >&2; }
die() { log "$*"; exit 1; }
# alive PID: exists and is not a zombie.
alive() { [[ -r /proc/$1/stat ]] && [[ "$(cut -d' ' -f3 /proc/$1/stat 2>/dev/null)" != Z ]]; }

# wait_ready URL PIDFILE NAME [curl args...]: poll until 200 or the process dies.
wait_ready() {
  local url=$1 pidfile=$2 name=$3; shift 3
  local deadline=$((SECONDS + READY_TIMEOUT))
  until curl -fsS -o /dev/null --max-time 2 "$@" "$url" 2>/dev/null; do
    if ! alive "$(cat "$pidfile")"; then
      tail -n 30 "$STATE/$name.log" >&2 || true
      die "$name exited before becoming ready (log: $STATE/$name.log)"
    fi
    ((SECONDS < deadline)) || { tail -n 30 "$STATE/$name.log" >&2; die "$name not ready after ${READY_TIMEOUT}s"; }
    sleep 0.3
  done
}

# Launch kube-apiserver from the saved argument list, detached from our stdio so a
# caller that waits for our stdout to close (execa, $(...)) does not hang.
launch_apiserver() {
  local args=()
  mapfile -t args <"$STATE/apiserver.args"
  setsid "$BIN/kube-apiserver" "${args[@]}" </dev/null >>"$STATE/apiserver.log" 2>&1 &
  echo $! >"$STATE/apiserver.pid"
  # shellcheck disable=SC1091
  source "$STATE/env"
  wait_ready "$KPROXY_APISERVER_URL/readyz" "$STATE/apiserver.pid" apiserver \
    --cacert "$KPROXY_APISERVER_CA" -H "Authorization: Bearer $KPROXY_APISERVER_TOKEN"
  sed -i "s/^APISERVER_PID=.*/APISERVER_PID=$(cat "$STATE/apiserver.pid")/" "$STATE/env"
}

if [[ "${1:-}" == "--restart-apiserver" ]]; then
  STATE="${2:?usage: start-apiserver.sh --restart-apiserver STATE_DIR}"
  [[ -f "$STATE/apiserver.args" ]] || die "$STATE is not a state dir from start-apiserver.sh"
  if [[ -f "$STATE/apiserver.pid" ]] && alive "$(cat "$STATE/apiserver.pid")"; then
    die "kube-apiserver (pid $(cat "$STATE/apiserver.pid")) is still running; stop it first"
  fi
  launch_apiserver
  log "kube-apiserver restarted"
  echo "$STATE"
  exit 0
fi

for b in etcd kube-apiserver; do
  [[ -x "$BIN/$b" ]] || die "missing $BIN/$b: build it with scripts/test-infra/build-k8s.sh"
done
for t in openssl curl node setsid; do command -v "$t" >/dev/null || die "missing tool: $t"; done

STATE="${1:-$(mktemp -d "${TMPDIR:-/tmp}/kproxy-apiserver.XXXXXX")}"
mkdir -p "$STATE/pki"
STATE="$(cd "$STATE" && pwd)"
PKI="$STATE/pki"

# Three distinct free loopback ports, held open together so they differ.
read -r ETCD_PORT PEER_PORT API_PORT < <(node -e '
  const net = require("net"); const s = [0, 1, 2].map(() => net.createServer());
  Promise.all(s.map(x => new Promise(r => x.listen(0, "127.0.0.1", r)))).then(() => {
    console.log(s.map(x => x.address().port).join(" ")); s.forEach(x => x.close()); });')

# ---- PKI: a CA, a serving cert for 127.0.0.1/localhost signed by it, an SA key pair.
ossl() { openssl "$@" 2>/dev/null; }
ossl req -x509 -newkey rsa:2048 -nodes -days 3650 -subj "/CN=kproxy-test-ca" \
  -keyout "$PKI/ca.key" -out "$PKI/ca.crt"
ossl req -newkey rsa:2048 -nodes -subj "/CN=kube-apiserver" \
  -keyout "$PKI/apiserver.key" -out "$PKI/apiserver.csr"
cat >"$PKI/apiserver.ext" <<'EOF'
basicConstraints=CA:FALSE
keyUsage=critical,digitalSignature,keyEncipherment
extendedKeyUsage=serverAuth
subjectAltName=IP:127.0.0.1,IP:10.96.0.1,DNS:localhost,DNS:kubernetes,DNS:kubernetes.default,DNS:kubernetes.default.svc,DNS:kubernetes.default.svc.cluster.local
EOF
ossl x509 -req -in "$PKI/apiserver.csr" -CA "$PKI/ca.crt" -CAkey "$PKI/ca.key" -CAcreateserial \
  -days 3650 -extfile "$PKI/apiserver.ext" -out "$PKI/apiserver.crt"
ossl genrsa -out "$PKI/sa.key" 2048
ossl rsa -in "$PKI/sa.key" -pubout -out "$PKI/sa.pub"

TOKEN="$(openssl rand -hex 24)"
# Static token file: token,user,uid,"groups". system:masters bypasses RBAC.
echo "$TOKEN,kproxy-admin,kproxy-admin,\"system:masters\"" >"$PKI/tokens.csv"
chmod 600 "$PKI"/*.key "$PKI/tokens.csv"

URL="https://127.0.0.1:$API_PORT"
ETCD_URL="http://127.0.0.1:$ETCD_PORT"

# ---- etcd (single member, loopback only; no fsync: test data is throwaway).
setsid "$BIN/etcd" --name default --data-dir "$STATE/etcd-data" \
  --listen-client-urls "$ETCD_URL" --advertise-client-urls "$ETCD_URL" \
  --listen-peer-urls "http://127.0.0.1:$PEER_PORT" \
  --initial-advertise-peer-urls "http://127.0.0.1:$PEER_PORT" \
  --initial-cluster "default=http://127.0.0.1:$PEER_PORT" \
  --unsafe-no-fsync --log-level warn \
  </dev/null >"$STATE/etcd.log" 2>&1 &
echo $! >"$STATE/etcd.pid"

cat >"$STATE/env" <<EOF
KPROXY_APISERVER_STATE=$STATE
KPROXY_APISERVER_URL=$URL
KPROXY_APISERVER_PORT=$API_PORT
KPROXY_APISERVER_TOKEN=$TOKEN
KPROXY_APISERVER_CA=$PKI/ca.crt
KUBECONFIG=$STATE/kubeconfig
ETCD_URL=$ETCD_URL
ETCD_PID=$(cat "$STATE/etcd.pid")
APISERVER_PID=
KPROXY_K8S_BIN=$BIN
EOF

cat >"$STATE/kubeconfig" <<EOF
apiVersion: v1
kind: Config
clusters:
- name: kproxy-test
  cluster:
    server: $URL
    certificate-authority-data: $(base64 -w0 "$PKI/ca.crt")
users:
- name: kproxy-admin
  user:
    token: $TOKEN
contexts:
- name: kproxy-test
  context: {cluster: kproxy-test, user: kproxy-admin, namespace: default}
current-context: kproxy-test
EOF
chmod 600 "$STATE/kubeconfig"

# Stop etcd again if anything below fails, so a failed start leaves nothing running.
trap '[[ $? == 0 ]] || bash "$HERE/stop-apiserver.sh" "$STATE" >/dev/null 2>&1 || true' EXIT

wait_ready "$ETCD_URL/health" "$STATE/etcd.pid" etcd

# ---- kube-apiserver. One argument per line so --restart-apiserver reuses them verbatim.
# --advertise-address: loopback addresses are rejected for the "kubernetes" Service
# endpoints, so advertise the host's primary address (overridable), never bind on it.
ADVERTISE="${KPROXY_APISERVER_ADVERTISE:-$(ip -4 route get 1.1.1.1 2>/dev/null | sed -n 's/.* src \([0-9.]*\).*/\1/p')}"
# shellcheck disable=SC2054  # commas inside one flag value (Node,RBAC), not array separators
args=(
  --etcd-servers="$ETCD_URL"
  --bind-address=127.0.0.1
  --secure-port="$API_PORT"
  --cert-dir="$PKI"
  --tls-cert-file="$PKI/apiserver.crt"
  --tls-private-key-file="$PKI/apiserver.key"
  --client-ca-file="$PKI/ca.crt"
  --token-auth-file="$PKI/tokens.csv"
  --authorization-mode=Node,RBAC
  --allow-privileged=true
  --service-cluster-ip-range=10.96.0.0/16
  --service-account-issuer=https://kubernetes.default.svc.cluster.local
  --service-account-key-file="$PKI/sa.pub"
  --service-account-signing-key-file="$PKI/sa.key"
  # No controller-manager runs, so nothing creates the "default" ServiceAccount
  # that this plugin insists on for every Pod.
  --disable-admission-plugins=ServiceAccount
  --profiling=false
  --v=1
)
[[ -n "$ADVERTISE" ]] && args+=(--advertise-address="$ADVERTISE")
# shellcheck disable=SC2206  # split on spaces on purpose: one flag per word
[[ -n "${KPROXY_APISERVER_EXTRA_ARGS:-}" ]] && args+=(${KPROXY_APISERVER_EXTRA_ARGS})
printf '%s\n' "${args[@]}" >"$STATE/apiserver.args"
: >"$STATE/apiserver.log"

launch_apiserver

# KPROXY_OWNER_PID (set by test/helpers/apiserver.ts): when that process dies in any way,
# even by SIGKILL or a runner timeout, a detached watchdog stops everything and removes STATE.
if [[ -n "${KPROXY_OWNER_PID:-}" ]]; then
  setsid bash -c 'while kill -0 "$1" 2>/dev/null && [[ -d "$2" ]]; do sleep 2; done
    rm -f "$2/watchdog.pid"; exec bash "$3" "$2"' kproxy-apiserver-watchdog \
    "$KPROXY_OWNER_PID" "$STATE" "$HERE/stop-apiserver.sh" </dev/null >/dev/null 2>&1 &
  echo $! >"$STATE/watchdog.pid"
fi
log "etcd $ETCD_URL, kube-apiserver $URL ready (state: $STATE)"
echo "$STATE"

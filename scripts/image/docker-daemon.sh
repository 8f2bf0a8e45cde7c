#!/usr/bin/env bash
# The image tier's own docker engine (Debian's docker.io): its own data root in the
# cache, its own socket and run directory, and no hand on the host's firewall or
# bridges (--iptables=false --bridge=none: containers get no network but their own
# loopback, or the network namespace a test gives them). Nothing else on the host
# uses it, and it uses nothing of another docker set-up (no /etc/docker/daemon.json).
#
#   scripts/image/docker-daemon.sh start   # idempotent; prints "started" or "running"
#   scripts/image/docker-daemon.sh stop    # idempotent
#   scripts/image/docker-daemon.sh socket  # prints the socket path
#
# KPROXY_DOCKER_SOCK overrides the socket (/run/kproxy-docker.sock); the data root is
# ${KPROXY_CACHE:-/var/cache/kproxy}/docker, so images and build cache survive a stop.
# For the kind tier (scripts/kind-offline/docker-daemon.sh): KPROXY_DOCKERD_ARGS adds
# dockerd flags (word-split), KPROXY_DOCKERD_NETNS runs dockerd in that network
# namespace (/run/netns/NAME, which must exist).
set -euo pipefail

cache="${KPROXY_CACHE:-/var/cache/kproxy}"
sock="${KPROXY_DOCKER_SOCK:-/run/kproxy-docker.sock}"
# exec-root holds containerd's socket: a short path (Unix socket names are limited).
exec_root="${sock%.sock}"
data_root="$cache/docker"
pidfile="$exec_root.pid"
log="$cache/docker.log"
dockerd=/usr/sbin/dockerd
docker=/usr/bin/docker

say() { printf 'docker-daemon: %s\n' "$*" >&2; }
answers() { "$docker" -H "unix://$sock" version --format '{{.Server.Version}}' >/dev/null 2>&1; }
running_pid() {
  local pid
  pid="$(cat "$pidfile" 2>/dev/null)" || return 1
  [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null && echo "$pid"
}

start() {
  [ -x "$dockerd" ] && [ -x "$docker" ] || {
    say "missing $dockerd or $docker: install Debian package docker.io (scripts/install-test-deps.sh does)"
    exit 1
  }
  if answers; then
    # Another cache's engine on our socket would hold other images: not ours to use.
    local root
    root="$("$docker" -H "unix://$sock" info --format '{{.DockerRootDir}}')"
    if [ "$root" != "$data_root" ]; then
      say "the engine on $sock uses $root, not $data_root: stop it ($0 stop) or set KPROXY_DOCKER_SOCK"
      exit 1
    fi
    echo running
    return
  fi
  if pid="$(running_pid)"; then
    say "dockerd $pid does not answer on $sock yet; waiting"
  else
    mkdir -p "$data_root" "$exec_root"
    # An empty configuration: the host's /etc/docker/daemon.json is not ours.
    echo '{}' >"$exec_root.json"
    local in_netns=()
    [[ -z "${KPROXY_DOCKERD_NETNS:-}" ]] || in_netns=(/usr/bin/nsenter "--net=/run/netns/$KPROXY_DOCKERD_NETNS")
    # setsid: the daemon outlives this script and the test runner's process group.
    # shellcheck disable=SC2086 # KPROXY_DOCKERD_ARGS is a list of flags
    setsid "${in_netns[@]}" "$dockerd" \
      --config-file "$exec_root.json" \
      --host "unix://$sock" \
      --data-root "$data_root" \
      --exec-root "$exec_root" \
      --pidfile "$pidfile" \
      --iptables=false --ip6tables=false --ip-forward=false --ip-masq=false \
      --bridge=none \
      --log-level=warn ${KPROXY_DOCKERD_ARGS:-} \
      </dev/null >>"$log" 2>&1 &
  fi
  for _ in $(seq 1 120); do
    if answers; then echo started; return; fi
    sleep 0.5
  done
  say "dockerd did not answer on $sock within 60 s; its log ($log):"
  tail -n 30 "$log" >&2
  exit 1
}

stop() {
  local pid
  if pid="$(running_pid)"; then
    kill -TERM "$pid"
    for _ in $(seq 1 60); do
      kill -0 "$pid" 2>/dev/null || break
      sleep 0.5
    done
    if kill -0 "$pid" 2>/dev/null; then
      say "dockerd $pid still runs 30 s after SIGTERM; killing it"
      kill -KILL "$pid" 2>/dev/null || true
    fi
  fi
  # The run directory is the daemon's state while it runs: nothing to keep, once
  # what it leaves mounted there (libnetwork's handle on its namespace) is unmounted.
  awk -v dir="$exec_root/" 'index($2, dir) == 1 { print $2 }' /proc/mounts | sort -r | while read -r m; do
    umount "$m" || true
  done
  rm -rf "$sock" "$pidfile" "$exec_root.json" "$exec_root"
}

case "${1:-}" in
  start) start ;;
  stop) stop ;;
  socket) echo "$sock" ;;
  *) echo "usage: $0 start|stop|socket" >&2; exit 2 ;;
esac

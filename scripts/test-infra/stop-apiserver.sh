#!/usr/bin/env bash
# Stop what start-apiserver.sh started.
#
#   stop-apiserver.sh STATE_DIR                   stop kube-apiserver and etcd, remove STATE_DIR
#                                                 (KEEP_STATE=1 keeps it, e.g. to read the logs)
#   stop-apiserver.sh STATE_DIR --apiserver-only  stop kube-apiserver only; etcd and the
#                                                 state stay for start-apiserver.sh --restart-apiserver
set -euo pipefail

STATE="${1:?usage: stop-apiserver.sh STATE_DIR [--apiserver-only]}"
[[ -d "$STATE" ]] || exit 0

# alive PID: true while the process exists and is not a zombie (an unreaped zombie
# holds no ports, and whether it gets reaped depends on who our parent is).
alive() { [[ -r /proc/$1/stat ]] && [[ "$(cut -d' ' -f3 /proc/$1/stat 2>/dev/null)" != Z ]]; }

# stop_pid PIDFILE: SIGTERM, wait up to 10 s, then SIGKILL. Only the pid we recorded.
stop_pid() {
  local f=$1 pid
  [[ -s "$f" ]] || return 0
  pid="$(cat "$f")"
  if alive "$pid"; then
    kill -TERM "$pid" 2>/dev/null || true
    for _ in $(seq 100); do alive "$pid" || break; sleep 0.1; done
    kill -KILL "$pid" 2>/dev/null || true
    # Wait until it is really gone so its port is free again.
    for _ in $(seq 50); do alive "$pid" || break; sleep 0.1; done
  fi
  rm -f "$f"
}

stop_pid "$STATE/apiserver.pid"
[[ "${2:-}" == "--apiserver-only" ]] && exit 0
stop_pid "$STATE/watchdog.pid"
stop_pid "$STATE/etcd.pid"

# Only remove a directory that start-apiserver.sh made (guards against a wrong argument).
if [[ "${KEEP_STATE:-}" != 1 && -f "$STATE/env" ]]; then rm -rf "$STATE"; fi

#!/usr/bin/env bash
# Test-only OCI runtime for the kind tier's docker engine: runc, minus
# CAP_SYS_RESOURCE. kind starts its nodes (and `docker exec`s into them) with
# --privileged, which asks runc for every capability; this sandbox's bounding set
# lacks CAP_SYS_RESOURCE, and runc then fails with "unable to apply caps: operation
# not permitted". So `create`/`run` drop it from the bundle's config.json, and
# `exec --process FILE` from the process file, then this execs runc unchanged.
# Everything else about the container is what docker asked for.
#
# Registered by scripts/kind-offline/docker-daemon.sh as the engine's default
# runtime (dockerd --add-runtime/--default-runtime), from a copy in the cache.
set -euo pipefail

runc="${KPROXY_RUNC:-/usr/sbin/runc}"
jq=/usr/bin/jq
cap=CAP_SYS_RESOURCE

# drop FILE FILTER: rewrite a JSON file in place with a jq filter, atomically.
drop() {
  local file="$1" filter="$2"
  [[ -f "$file" ]] && grep -q "$cap" "$file" || return 0
  "$jq" -c --arg cap "$cap" "$filter" "$file" >"$file.kproxy-tmp"
  mv -f "$file.kproxy-tmp" "$file"
}
# Every capability set (bounding, effective, permitted, inheritable, ambient).
without='with_entries(.value |= map(select(. != $cap)))'

verb="" bundle="" process=""
args=("$@")
for ((i = 0; i < ${#args[@]}; i++)); do
  a="${args[i]}"
  case "$a" in
    --bundle | -b) bundle="${args[i + 1]:-}" ;;
    --bundle=*) bundle="${a#*=}" ;;
    --process | -p) process="${args[i + 1]:-}" ;;
    --process=*) process="${a#*=}" ;;
    create | run | exec) [[ -z "$verb" ]] && verb="$a" ;;
  esac
done

case "$verb" in
  create | run)
    drop "${bundle:-$PWD}/config.json" "if .process.capabilities then .process.capabilities |= $without else . end"
    ;;
  exec)
    [[ -n "$process" ]] && drop "$process" "if .capabilities then .capabilities |= $without else . end"
    ;;
esac
exec "$runc" "$@"

# Shared by the guest scripts of test/vm/ipvs.test.ts (sourced, not run): check
# reporting and the kproxy drivers. Each check prints one line, `CHECK ok NAME` or
# `CHECK fail NAME WHY`, that the host turns into an assertion; `TIME NAME SECONDS`
# lines report how long kproxy's runs took. Expects GUEST (this directory) and
# WORK (a scratch directory) to be set.
# shellcheck shell=bash
# shellcheck disable=SC2034 # used by the scripts that source this
CLI=/project/dist/cli.js

now() { cut -d' ' -f1 /proc/uptime; }
ok() { echo "CHECK ok $1"; }
fail() { echo "CHECK fail $1 ${*:2}"; }
# check NAME WHY-IF-FAILED CONDITION...: runs the condition, reports the outcome
check() {
  local name=$1 why=$2
  shift 2
  if "$@"; then ok "$name"; else fail "$name" "$why"; fi
}
show() { echo "---- $1"; sed 's/^/    /' "$WORK/$1.log"; }
# one line of a log, for a failure message
oneline() { tail -n "${2:-5}" "$WORK/$1.log" | tr '\n' ' ' | cut -c1-600; }

# A driver (kproxy-driver.mjs) runs kproxy's CLI, loaded once, for many commands.
declare -A DRV_W DRV_R DRV_READY
# A driver that died makes writing to it fail, not kill the script.
trap '' PIPE
# start_driver NAME [WRAPPER...]: starts one, e.g. `start_driver main ip netns exec kpn`
start_driver() {
  local name=$1 w r
  shift
  mkfifo "$WORK/drv-$name.in" "$WORK/drv-$name.out"
  "$@" node "$GUEST/kproxy-driver.mjs" <"$WORK/drv-$name.in" >"$WORK/drv-$name.out" 2>"$WORK/driver-$name.err" &
  exec {w}>"$WORK/drv-$name.in" {r}<"$WORK/drv-$name.out"
  DRV_W[$name]=$w DRV_R[$name]=$r
}
# kproxy_on DRIVER NAME ARGS...: one kproxy command, its output in $WORK/NAME.log; prints TIME
kproxy_on() {
  local drv=$1 name=$2 t0 line argv="" a
  shift 2
  [ -n "${DRV_READY[$drv]:-}" ] || { read -r -t 900 line <&"${DRV_R[$drv]}"; DRV_READY[$drv]=1; }
  for a in "$@"; do argv="$argv${argv:+,}\"$a\""; done
  t0=$(now)
  echo "{\"log\":\"$WORK/$name.log\",\"argv\":[$argv]}" >&"${DRV_W[$drv]}"
  line=""
  read -r -t 900 line <&"${DRV_R[$drv]}"
  echo "TIME $name $(awk -v a="$t0" -v b="$(now)" 'BEGIN{printf "%.1f", b - a}')"
  [ -n "$line" ] || { echo "driver $drv gave no answer:"; tail -n 20 "$WORK/driver-$drv.err"; } >>"$WORK/$name.log"
  [ "$line" = "done 0" ]
}
# kproxy NAME ARGS...: on the driver named main
kproxy() { kproxy_on main "$@"; }

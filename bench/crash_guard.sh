#!/usr/bin/env bash
# crash_guard.sh -- the crash guard's benchmark: a Master whose daemon alone is SIGKILLed (the
# VIP left as the kernel has it), vrrpd (its guard acting) side by side with keepalived, in the
# same lab and session.
#
# Usage (as root): bench/crash_guard.sh [SCENARIO...]
#   SCENARIO...   default: v2mc_kill9keepvip v3mc100ms_kill9keepvip (the baseline script's
#                 <proto>_kill9keepvip: SIGSTOP + SIGKILL of the daemon's PID, nothing else)
# Env: REPEAT (default 5), PROBE_INTERVAL (default 0.002), VRRPD (default
#   ${CARGO_TARGET_DIR:-<repo>/target}/release/vrrpd), HA_SHARED_DIR (default <repo>/../shared)
# keepalived runs as its baseline does (both its processes killed: no priority 0, the VIP
# stays on the dead host); vrrpd through bench/vrrpd_plugin.sh, whose daemon_kill9 kills the
# vrrpd PID only, so its crash guard sends priority 0 and removes the VIP. Prints both tables
# (outage = the client's longest reply gap) and whether the dead host still held the VIP.
set -euo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(cd "$HERE/.." && pwd)
SHARED=${HA_SHARED_DIR:-$REPO/../shared}
BASELINE=$SHARED/lab/keepalived_baseline.sh
export REPEAT=${REPEAT:-5} PROBE_INTERVAL=${PROBE_INTERVAL:-0.002}
VRRPD=${VRRPD:-${CARGO_TARGET_DIR:-$REPO/target}/release/vrrpd}
export VRRPD
[ "$(id -u)" = 0 ] || { echo "crash_guard.sh: needs root" >&2; exit 2; }
[ -x "$VRRPD" ] || { echo "crash_guard.sh: no vrrpd at $VRRPD" >&2; exit 2; }
scenarios=("$@")
[ ${#scenarios[@]} -gt 0 ] || scenarios=(v2mc_kill9keepvip v3mc100ms_kill9keepvip)
run() { # PREFIX [PLUGIN]
  local dir=/tmp/$1_vrrp_run
  mkdir -p "$dir"
  LAB_PREFIX=$1 RUN_DIR=$dir CONF_DIR=$dir/conf DAEMON_PLUGIN=${2:-} \
    bash "$BASELINE" measure "${scenarios[@]}" > "$dir/measure.out"
  echo "== $3"
  sed -n '/^scenario/,$p' "$dir/table.txt"
}
run fgk "" "keepalived ($(keepalived --version 2>&1 | head -1))"
run fgv "$HERE/vrrpd_plugin.sh" "vrrpd $(git -C "$REPO" describe --always --dirty) with its crash guard"
echo "== the dead host's guard (vrrpd logs):"
grep -h "crash guard .* died" /tmp/fgv_vrrp_run/h1.log | sort | uniq -c | sed 's/daemon [0-9]* died/daemon died/; s/guard [0-9]*:/guard:/' | sort | uniq -c || true

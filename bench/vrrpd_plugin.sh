# shellcheck shell=bash
# vrrpd_plugin.sh -- runs the failover scenarios of ../shared/lab/keepalived_baseline.sh against
# this repository's vrrpd instead of keepalived (the DAEMON_PLUGIN of that script).
#
# Usage (as root; bench/failover.sh does this for you, next to a keepalived run):
#   DAEMON_PLUGIN=$PWD/bench/vrrpd_plugin.sh \
#     bash ../shared/lab/keepalived_baseline.sh measure [SCENARIO...]
# Env:
#   VRRPD        the vrrpd binary (default: ${CARGO_TARGET_DIR:-<repo>/target}/release/vrrpd)
#   VRRPD_LOG    its RUST_LOG filter (default: info)
#   VRRPD_INSTANCE_KEYS  extra lines for the [[instance]] table (e.g.
#                "preempt_on_lower_advert = false"; bench/faults.py uses it)
# Sourced by keepalived_baseline.sh after its keepalived functions (also by every `_do fault_X`
# it runs), so this file only defines things. What it replaces:
#   daemon_config H   renders $CONF_DIR/$SCN/hH.vrrpd.toml (keys of DESIGN.md) and checks it with
#                     `vrrpd --check`; problems go to the log of the run (stderr)
#   daemon_start H    vrrpd as ONE foreground process in netns ${P}hH, its PID (that of
#                     `ip netns exec`, which execs vrrpd) in $RUN_DIR/hH.main.pid, its log
#                     (stderr: vrrpd logs there) appended to $RUN_DIR/hH.log
#   daemon_kill9 H    SIGSTOP + SIGKILL of vrrpd; in the kill9 scenario (a host crash) its crash
#                     guard is killed first, in kill9keepvip (the daemon alone dies) it acts
# daemon_stop (SIGTERM + wait) and daemon_cleanup are the script's own: they work on
# $RUN_DIR/hH.main.pid.
# The tracked process (TRACK=-4|+2) is a `kind = "process"` check on the dummy's PID file,
# keepalived's `vrrp_script "kill -0 PID" interval 2 fall 2 rise 1 weight W` in vrrpd's terms.

_VRRPD_REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
VRRPD=${VRRPD:-${CARGO_TARGET_DIR:-$_VRRPD_REPO/target}/release/vrrpd}
case $VRRPD in /*) ;; *) VRRPD=$PWD/$VRRPD;; esac

# The script prints `$KEEPALIVED --version` in its log and in SAVE_RESULTS: name vrrpd there.
_vrrpd_version() {
  local rev; rev=$(git -C "$_VRRPD_REPO" describe --always --dirty 2>/dev/null || echo unknown)
  echo "vrrpd (repository $rev) $VRRPD"
}
# shellcheck disable=SC2034  # read by keepalived_baseline.sh
KEEPALIVED=_vrrpd_version

# 1 -> 1000ms, 0.05 -> 50ms: vrrpd's advert_interval is a humantime duration.
_vrrpd_ms() { awk -v s="$1" 'BEGIN { printf "%d", s * 1000 + 0.5 }'; }

daemon_config() {
  local h=$1 f="$CONF_DIR/$SCN/h$1.vrrpd.toml" vips src peer extra
  mkdir -p "$CONF_DIR/$SCN"
  if [ "$AF" = 6 ]; then
    vips="\"$VIP6/64\""; src=fd99::1$h; peer=fd99::1$((3 - h))
  else
    vips="\"$VIP/$VIP_PLEN\""; src=$MYIP; peer=$PEERIP
    for extra in ${EXTRA_VIPS:-}; do vips="$vips, \"$extra/$VIP_PLEN\""; done
  fi
  {
    echo "# $SCN host h$h ($ROLE) -- rendered by bench/vrrpd_plugin.sh"
    echo "# vrrpd has no initial state: priority decides, as in RFC 5798 (keepalived: state $ROLE)."
    echo "# garp defaults (repeat 5, delay 5s) are keepalived's, as in the keepalived runs."
    echo "# Each host its own status socket, and so its own crash guard file; no hold-down after a"
    echo "# crash (every run starts from a clean slate, as keepalived's do)."
    echo "status_socket = \"$RUN_DIR/h$h.sock\""
    echo "crash_hold_down = \"0s\""
    echo "[[instance]]"
    echo "name = \"VI_$VRID\""
    echo "interface = \"eth0\""
    echo "vrid = $VRID"
    echo "priority = $PRIO"
    echo "version = $VER"
    echo "advert_interval = \"$(_vrrpd_ms "$ADV")ms\""
    echo "preempt = true"
    if [ -n "${VRRPD_INSTANCE_KEYS:-}" ]; then echo "$VRRPD_INSTANCE_KEYS"; fi
    echo "virtual_addresses = [$vips]"
    if [ "$MODE" = uc ]; then
      echo "unicast_source = \"$src\""
      echo "unicast_peers = [\"$peer\"]"
    fi
    case $AUTH in
      pass) echo "auth_pass = \"secret12\"";;
      ah) echo "# auth_type AH: vrrpd does not implement IPsec AH; rendered without authentication"
          log "h$h: AUTH=ah is not supported by vrrpd; $SCN runs without authentication";;
    esac
    if [ "$TRACK" != none ]; then
      echo "track = [{ check = \"chk_haproxy\", weight = ${TRACK#+} }]"
      echo
      echo "# keepalived: vrrp_script \"kill -0 $DUMMY_PID\" interval 2 fall 2 rise 1 weight $TRACK"
      echo "[[check]]"
      echo "name = \"chk_haproxy\""
      echo "kind = \"process\""
      echo "pid_file = \"$RUN_DIR/h$h.dummy.pid\""
      echo "interval = \"2s\""
      echo "fall = 2"
      echo "rise = 1"
    fi
  } > "$f"
  "$VRRPD" --check --config "$f" > "$RUN_DIR/h$h.configtest" 2>&1 ||
    { log "config check of $f failed:"; cat "$RUN_DIR/h$h.configtest" >&2; }
}

daemon_start() {
  local h=$1
  rm -f "$RUN_DIR/h$h.main.pid"
  echo "=== start $(date +%T.%3N) $SCN" >> "$RUN_DIR/h$h.log"
  RUST_LOG=${VRRPD_LOG:-info} ip netns exec "${P}h$h" "$VRRPD" --config "$CONF_DIR/$SCN/h$h.vrrpd.toml" \
    < /dev/null >> "$RUN_DIR/h$h.log" 2>&1 &
  echo $! > "$RUN_DIR/h$h.main.pid"   # ip netns exec execs vrrpd: the same PID
  disown 2>/dev/null || true
}

# The crash guard (a child of vrrpd named crash-guard) acts when vrrpd alone dies. The kill9
# scenario is a host crash (the VIP deleted by hand, as a dead host's kernel no longer answers):
# there the guard dies with the host, so it is killed first. kill9keepvip is the daemon alone
# SIGKILLed (OOM killer, segfault): the guard acts.
daemon_kill9() {
  local h=$1 main c
  main=$(cat "$RUN_DIR/h$h.main.pid" 2>/dev/null) || return 0
  if [ "${FAULT:-}" = kill9 ]; then
    for c in $(cat "/proc/$main"/task/*/children 2>/dev/null); do
      [ "$(cat "/proc/$c/comm" 2>/dev/null)" = crash-guard ] && kill -KILL "$c" 2>/dev/null
    done
  fi
  kill -STOP "$main" 2>/dev/null; kill -KILL "$main" 2>/dev/null; true
}

#!/usr/bin/env bash
# lbd_plugin.sh -- runs this repository's lbd as the second proxy of ../shared/lab/lb/lb_bench.sh.
#
# lb_bench.sh exports LB_SCENARIO, LB_MODE (http|tcp), LB_BALANCE (roundrobin|leastconn),
# LB_STICKY (none|cookie), LB_LISTEN, LB_BE1..3 and, in its --hc suite, LB_HC_INTER (ms),
# LB_HC_RISE, LB_HC_FALL, LB_RETRIES, LB_REDISPATCH (0 = off, -1 = on). This script writes
# the lbd configuration that matches the scenario's HAProxy file (same timeouts, retries,
# maxconn, check) under $LB_TMP (default /tmp/lbbench) and execs lbd on it, in the foreground.
#
# Usage (bench/lb.sh does this):
#   ../shared/lab/lb/lb_bench.sh -p "lbd|127.0.0.1:18090|$PWD/bench/lbd_plugin.sh"
# Env:
#   LBD          the lbd binary (default: ${CARGO_TARGET_DIR:-<repo>/target}/release/lbd)
#   LBD_THREADS  worker threads (default 1: a current-thread runtime, as HAProxy's nbthread 1)
#   LBD_LOG      its RUST_LOG filter (default: info)
set -euo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
lbd=${LBD:-${CARGO_TARGET_DIR:-$repo/target}/release/lbd}
dir=${LB_TMP:-/tmp/lbbench}
mkdir -p "$dir"
conf="$dir/lbd-${LB_SCENARIO:-run}.toml"

mode=${LB_MODE:?LB_MODE is set by lb_bench.sh}
balance=${LB_BALANCE:-roundrobin}
{
  echo "[[listen]]"
  echo "name = \"${LB_SCENARIO:-bench}\""
  echo "bind = \"${LB_LISTEN:?}\""
  echo "mode = \"$mode\""
  echo "balance = \"$balance\""
  if [ "${LB_STICKY:-none}" = cookie ]; then echo 'cookie = "SERVERID"'; fi
  # The lab's common.cfg: timeout connect 1s, client/server 30s, http-request 10s,
  # retries 3, maxconn 8000.
  echo "retries = ${LB_RETRIES:-3}"
  echo "maxconn = 8000"
  echo 'timeouts = { connect = "1s", client = "30s", server = "30s", http_request = "10s" }'
  if [ -n "${LB_HC_INTER:-}" ]; then
    # hc_http.cfg / hc_tcp.cfg: option httpchk GET /health, check inter rise fall.
    echo "check = { http = \"/health\", interval = \"${LB_HC_INTER}ms\", rise = ${LB_HC_RISE}, fall = ${LB_HC_FALL} }"
    if [ "${LB_REDISPATCH:-0}" = -1 ]; then echo "redispatch = true"; else echo "redispatch = false"; fi
  fi
  echo "servers = ["
  echo "  { name = \"s1\", addr = \"${LB_BE1:?}\" },"
  echo "  { name = \"s2\", addr = \"${LB_BE2:?}\" },"
  echo "  { name = \"s3\", addr = \"${LB_BE3:?}\" },"
  echo "]"
} >"$conf"

"$lbd" --check --config "$conf" >&2
export RUST_LOG=${LBD_LOG:-info}
exec "$lbd" --config "$conf" --threads "${LBD_THREADS:-1}"

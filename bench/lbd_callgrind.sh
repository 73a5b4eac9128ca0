#!/usr/bin/env bash
# lbd_callgrind.sh -- instructions per request of one or more lbd builds (BENCHMARKS.md, "lbd vs
# HAProxy", "Instructions per request"): three nginx backends of ../shared/lab/lb, lbd under
# `valgrind --tool=callgrind` (config from bench/lbd_plugin.sh), a 2 s wrk warm-up, counters
# zeroed (callgrind_control -z), then `wrk -t1 -c50 -d5s`; the instructions counted since the
# zeroing (user space only) divided by wrk's request count. Loopback only; stops only what it
# started.
#
# Usage: bench/lbd_callgrind.sh OUT_DIR NAME=LBD_BINARY [NAME=LBD_BINARY ...]
# Env:   SCENARIOS (default "http_rr tcp_rr http_close"), LAB (default ../shared/lab/lb)
set -euo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
lab=${LAB:-$repo/../shared/lab/lb}
[ -d "$lab" ] || lab=/work/shared/lab/lb
out=${1:?OUT_DIR}; shift
mkdir -p "$out"
out=$(cd "$out" && pwd)
run=$(mktemp -d /tmp/lbcg.XXXXXX)
started=()
cleanup() { for p in "${started[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; }
trap cleanup EXIT

port_open() { (exec 3<>"/dev/tcp/${1%:*}/${1##*:}") 2>/dev/null; }
wait_port() { for _ in $(seq $(( $2 * 10 ))); do port_open "$1" && return 0; sleep 0.1; done; return 1; }

mkdir -p "$run/www"; chmod 755 "$run" "$run/www"
head -c 16384 /dev/zero | tr '\0' 'x' >"$run/www/16k.bin"
for port in 18081 18082 18083; do
  mkdir -p "$run/nginx-$port-tmp"
  sed -e "s#@PORT@#$port#g" -e "s#@RUN@#$run#g" "$lab/nginx_backend.conf.tmpl" >"$run/nginx-$port.conf"
  taskset -c 1 nginx -e "$run/nginx-$port.err" -c "$run/nginx-$port.conf" >>"$run/nginx-$port.out" 2>&1 &
  started+=($!)
  wait_port "127.0.0.1:$port" 5 || { echo "nginx $port did not start" >&2; exit 1; }
done

printf 'scenario\tbuild\trequests\tinstructions\tper_request\n' >"$out/callgrind.tsv"
for scenario in ${SCENARIOS:-http_rr tcp_rr http_close}; do
  case $scenario in
    http_rr) mode=http; hdr=() ;;
    tcp_rr) mode=tcp; hdr=() ;;
    http_close) mode=http; hdr=(-H 'Connection: close') ;;
    *) echo "unknown scenario $scenario" >&2; exit 1 ;;
  esac
  for spec in "$@"; do
    name=${spec%%=*}; bin=${spec#*=}
    wrapper="$run/lbd-$name"
    cat >"$wrapper" <<WRAP
#!/usr/bin/env bash
if [ "\$1" = --check ]; then exec "$bin" "\$@"; fi
exec valgrind --tool=callgrind --callgrind-out-file="$run/cg.$scenario.$name.%p" "$bin" "\$@"
WRAP
    chmod +x "$wrapper"
    LBD=$wrapper LB_TMP=$run LB_SCENARIO=$scenario LB_MODE=$mode LB_LISTEN=127.0.0.1:18090 \
      LB_BE1=127.0.0.1:18081 LB_BE2=127.0.0.1:18082 LB_BE3=127.0.0.1:18083 LBD_LOG=warn \
      taskset -c 0 "$repo/bench/lbd_plugin.sh" >"$out/$scenario.$name.log" 2>&1 &
    pid=$!; started+=($pid)
    wait_port 127.0.0.1:18090 60 || { echo "lbd ($name) did not start" >&2; exit 1; }
    taskset -c 1 wrk -t1 -c50 -d2s "${hdr[@]}" http://127.0.0.1:18090/ >/dev/null
    callgrind_control -z "$pid" >/dev/null
    taskset -c 1 wrk -t1 -c50 -d5s "${hdr[@]}" http://127.0.0.1:18090/ >"$out/$scenario.$name.wrk"
    callgrind_control -d "$pid" >/dev/null
    kill "$pid"; wait "$pid" 2>/dev/null || true
    dump=$(ls -t "$run"/cg."$scenario"."$name".*.[0-9]* 2>/dev/null | head -1)
    [ -n "$dump" ] || dump=$(ls -t "$run"/cg."$scenario"."$name".* | grep -v '\.0$' | head -1)
    ir=$(awk '/^(summary|totals):/ {print $2; exit}' "$dump")
    reqs=$(awk '/requests in/ {print $1; exit}' "$out/$scenario.$name.wrk")
    per=$(awk -v i="$ir" -v r="$reqs" 'BEGIN {printf "%.0f", i / r}')
    printf '%s\t%s\t%s\t%s\t%s\n' "$scenario" "$name" "$reqs" "$ir" "$per" | tee -a "$out/callgrind.tsv"
    # Wait for the port to close before the next build.
    for _ in $(seq 50); do port_open 127.0.0.1:18090 || break; sleep 0.1; done
  done
done

#!/usr/bin/env bash
# failover.sh -- VRRP failover benchmark: vrrpd side by side with keepalived, in the same lab.
#
# Usage (as root, from anywhere):
#   bench/failover.sh [--no-build] [-o FILE] [SCENARIO...]
#     SCENARIO...   names from `bash ../shared/lab/keepalived_baseline.sh list` (default: all)
#     --no-build    do not run `cargo build --release -p examples --bin vrrpd` first
#     -o FILE       also write the combined table and both daemons' raw per-run results to FILE
# Env:
#   REPEAT          runs per scenario and daemon (default 3)
#   PROBE_INTERVAL  the client's ping interval in s (default 0.002, as the baseline)
#   VRRPD           the vrrpd binary (default ${CARGO_TARGET_DIR:-<repo>/target}/release/vrrpd)
#   HA_SHARED_DIR   the shared dir holding lab/ (default: <repo>/../shared)
#   KEEPALIVED      the keepalived binary (default keepalived)
# Runs the baseline script's `measure` twice: keepalived (netns prefix fbk, RUN_DIR
# /tmp/fbk_vrrp_run), then vrrpd through bench/vrrpd_plugin.sh (fbv, /tmp/fbv_vrrp_run); their
# logs (h1.log, h2.log), rendered configs and results.tsv stay there. Then prints one table and
# the targets of the vrrpd issue. Exit: 0 every target met, 1 a target missed, 2 a run failed
# (no measurement, or the VIP never moved) or the bench could not run.
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(cd "$HERE/.." && pwd)
SHARED=${HA_SHARED_DIR:-$REPO/../shared}
LAB=$SHARED/lab
BASELINE=$LAB/keepalived_baseline.sh
PLUGIN=$HERE/vrrpd_plugin.sh
export REPEAT=${REPEAT:-3}
export PROBE_INTERVAL=${PROBE_INTERVAL:-0.002}
VRRPD=${VRRPD:-${CARGO_TARGET_DIR:-$REPO/target}/release/vrrpd}
case $VRRPD in /*) ;; *) VRRPD=$PWD/$VRRPD;; esac
export VRRPD
KA_PREFIX=fbk
VR_PREFIX=fbv

die() { echo "failover.sh: $*" >&2; exit 2; }
usage() { sed -n '3,9p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'; }

build=1 out='' scenarios=()
while [ $# -gt 0 ]; do
  case $1 in
    --no-build) build=0;;
    -o|--output) [ $# -ge 2 ] || die "$1 needs a file name"; out=$2; shift;;
    -h|--help) usage; exit 0;;
    -*) die "unknown option $1 (see --help)";;
    *) scenarios+=("$1");;
  esac
  shift
done

[ "$(id -u)" = 0 ] || die "needs root (network namespaces): run it with sudo"
[ -f "$BASELINE" ] || die "$BASELINE not found: set HA_SHARED_DIR to the shared dir"
command -v "${KEEPALIVED:-keepalived}" > /dev/null || die "keepalived is not installed (apt-get install keepalived)"
all=$(bash "$BASELINE" list | tr '\n' ' ')
[ ${#scenarios[@]} -gt 0 ] || read -r -a scenarios <<< "$all"
for s in "${scenarios[@]}"; do
  case " $all " in *" $s "*) ;; *) die "unknown scenario $s; known: $all";; esac
done

if [ $build = 1 ]; then
  echo "== cargo build --release -p examples --bin vrrpd" >&2
  (cd "$REPO" && cargo build --release -p examples --bin vrrpd) || die "the build failed"
fi
[ -x "$VRRPD" ] || die "no vrrpd at $VRRPD: build it or set VRRPD"

child=
# Stop the running measurement (its own trap restores the hosts and takes its lab down), then
# make sure no lab namespace of ours is left, whatever happened to it.
# shellcheck disable=SC2317  # called from the traps
cleanup() {
  if [ -n "$child" ] && kill -0 "$child" 2> /dev/null; then
    echo "failover.sh: stopping the measurement (pid $child) after its current run..." >&2
    kill -TERM "$child" 2> /dev/null || true
    wait "$child" 2> /dev/null || true
  fi
  local p
  for p in $KA_PREFIX $VR_PREFIX; do
    if ip netns list | grep -qE "^${p}(sw|cl|h[0-9]+)( |$)"; then
      (cd "$LAB" && LAB_PREFIX=$p bash netlab.sh down) || true
    fi
  done
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# measure PREFIX [DAEMON_PLUGIN]: one daemon's run of all scenarios into /tmp/PREFIX_vrrp_run.
measure() {
  local prefix=$1 plugin=${2:-} dir=/tmp/$1_vrrp_run rc=0
  mkdir -p "$dir"
  # Async (so that our traps run at once); the baseline's own trap handles the TERM we send.
  LAB_PREFIX=$prefix RUN_DIR=$dir CONF_DIR=$dir/conf DAEMON_PLUGIN=$plugin \
    bash "$BASELINE" measure "${scenarios[@]}" > "$dir/measure.out" &
  child=$!
  wait "$child" || rc=$?
  child=
  [ "$rc" = 0 ] || die "the $prefix measurement failed (exit $rc); see $dir/measure.out and $dir/h?.log"
}

ka_version=$("${KEEPALIVED:-keepalived}" --version 2>&1 | head -1)
vr_version="vrrpd $(git -C "$REPO" describe --always --dirty 2>/dev/null || echo '(no git)') $VRRPD"
echo "== keepalived: ${#scenarios[@]} scenario(s) x $REPEAT ($ka_version)" >&2
measure $KA_PREFIX
echo "== vrrpd: ${#scenarios[@]} scenario(s) x $REPEAT ($vr_version)" >&2
measure $VR_PREFIX "$PLUGIN"

ka=/tmp/${KA_PREFIX}_vrrp_run/results.tsv vr=/tmp/${VR_PREFIX}_vrrp_run/results.tsv
table=$(mktemp)
trap 'rm -f "$table"; cleanup' EXIT
rc=0
python3 - "$ka" "$vr" "$PROBE_INTERVAL" > "$table" <<'TABLE_END' || rc=$?
import collections, re, statistics as st, sys

ka_file, vr_file, probe = sys.argv[1], sys.argv[2], float(sys.argv[3])
tol = 2 * probe  # a gap between replies is known to one probe interval at each end


def load(path):
    rows = collections.OrderedDict()
    for line in open(path):
        scn, _run, out = line.rstrip("\n").split("\t", 2)
        rows.setdefault(scn, []).append(dict(re.findall(r"(\w+)=([\w.]+)", out)))
    return rows


def ok(d):  # a real measurement: an outage figure and the VIP seen arriving
    return "outage_max_gap_s" in d and d.get("vip_moved_s", "NA") != "NA"


def values(ds, key):
    return [float(d[key]) for d in ds if ok(d) and d.get(key, "NA") != "NA"]


def fmt(v):
    return f"{min(v):.3f}/{st.median(v):.3f}/{max(v):.3f}" if v else "n/a"


def med(v):
    return f"{st.median(v):.3f}" if v else "n/a"


ka, vr = load(ka_file), load(vr_file)
missed, failed = [], []
print(f"{'scenario':27} {'n':>3}  {'keepalived outage s':20} {'vrrpd outage s':20} {'vrrpd/ka':>8}"
      f"  {'fault->VIP@new med s':20}  {'late ms':13}  {'<=ka':5} {'<=MDI+5ms':14} {'track<100ms':11}")
print(f"{'':27} {'k/v':>3}  {'min/med/max':20} {'min/med/max':20} {'med':>8}  {'ka / vrrpd':20}  {'ka / vrrpd':13}")
for scn in list(dict.fromkeys(list(ka) + list(vr))):
    k, v = ka.get(scn, []), vr.get(scn, [])
    ko, vo = values(k, "outage_max_gap_s"), values(v, "outage_max_gap_s")
    kv, vv = values(k, "vip_moved_s"), values(v, "vip_moved_s")
    nk, nv = sum(map(ok, k)), sum(map(ok, v))
    if nk < len(k) or nv < len(v) or not k or not v:
        failed.append(f"{scn}: {len(k) - nk} keepalived / {len(v) - nv} vrrpd run(s) without a measured failover")
    ratio = f"{st.median(vo) / st.median(ko):.2f}" if ko and vo and st.median(ko) > 0 else "n/a"
    fault = scn.split("_", 1)[1]
    adv = float(next((d["adv"] for d in k + v if "adv" in d), "nan"))
    skew = (256 - 100) / 256 * (1 if scn.startswith("v2") else adv)
    mdi = 3 * adv + skew
    t_ka = t_mdi = t_tr = "-"
    # How late the new Master's first advert is after its deadline (the old Master's last
    # advert + Master_Down_Interval, or + Skew_Time after a priority-0 advert): the daemon's
    # own delay, free of the fault's random phase.
    due = {"kill9": mdi, "linkdown": mdi, "term": skew}.get(fault)
    kg, vg = values(k, "adv_gap_s"), values(v, "adv_gap_s")
    late = (f"{(st.median(kg) - due) * 1e3:+.1f} / {(st.median(vg) - due) * 1e3:+.1f}"
            if due is not None and kg and vg else "-")
    if ko and vo:
        t_ka = "ok" if st.median(vo) <= st.median(ko) + tol else "MISS"
        if t_ka == "MISS":
            missed.append(f"{scn}: vrrpd median outage {st.median(vo):.3f} s > keepalived {st.median(ko):.3f} s")
    if fault in ("kill9", "linkdown") and vo:
        t_mdi = ("ok" if st.median(vo) <= mdi + 0.005 else "MISS") + f" ({mdi + 0.005:.3f})"
        if t_mdi.startswith("MISS"):
            missed.append(f"{scn}: vrrpd median outage {st.median(vo):.3f} s > MDI+5ms {mdi + 0.005:.3f} s")
    if fault.startswith("track") and vv:
        t_tr = "ok" if st.median(vv) < 0.100 else "MISS"
        if t_tr == "MISS":
            missed.append(f"{scn}: tracked process killed, VIP on the backup after {st.median(vv):.3f} s (>= 0.100 s)")
    print(f"{scn:27} {nk}/{nv}  {fmt(ko):20} {fmt(vo):20} {ratio:>8}  {med(kv) + ' / ' + med(vv):20}"
          f"  {late:13}  {t_ka:5} {t_mdi:14} {t_tr:11}".rstrip() + (" FAILED" if scn in (f.split(':')[0] for f in failed) else ""))
print()
print("# outage = longest gap between the client's echo replies after the fault (ping every "
      f"{probe:g} s; it slows to 10 ms while ARP fails, so outages come in ~10 ms steps); "
      "fault->VIP@new = fault until the VIP is on the new master (ip monitor); late = the new "
      "master's first advert after its deadline (last advert + Master_Down_Interval, or + "
      "Skew_Time after priority 0), medians")
print("# <=ka: vrrpd's median outage <= keepalived's (+ the probe's resolution, "
      f"{tol * 1000:g} ms); <=MDI+5ms: crash scenarios (kill9, linkdown), vrrpd's median outage <= "
      "Master_Down_Interval of the backup (prio 100) + 5 ms; track<100ms: tracked process killed, "
      "vrrpd's median fault->VIP@new < 100 ms")
for f in failed:
    print(f"FAILED  {f}")
for m in missed:
    print(f"MISSED  {m}")
print(f"targets: {'all met' if not missed else f'{len(missed)} missed'}"
      + (f"; {len(failed)} scenario(s) with failed runs" if failed else ""))
sys.exit(2 if failed else 1 if missed else 0)
TABLE_END
echo
cat "$table"
if [ -n "$out" ]; then
  mkdir -p "$(dirname "$out")"
  {
    echo "# $(date -Is) bench/failover.sh repeat=$REPEAT probe_interval=$PROBE_INTERVAL"
    echo "# keepalived: $ka_version"
    echo "# $vr_version"
    cat "$table"
    echo
    echo "# raw keepalived ($ka)"
    cat "$ka"
    echo
    echo "# raw vrrpd ($vr)"
    cat "$vr"
  } > "$out"
  echo "raw results written to $out" >&2
fi
exit "$rc"

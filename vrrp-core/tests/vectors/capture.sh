#!/bin/bash
# capture.sh -- regenerate the keepalived golden vectors in this directory.
#
# What it makes (beside this script; only replaced when every capture passed its checks):
#   <name>.pcap        classic pcap (dumpcap -P, Ethernet) of one scenario, taken on the bridge
#   vrrp_vectors.json  one entry per distinct VRRP packet (hex, Wireshark's decoded fields from
#                      `tshark -T fields`, an independent checksum recomputation) and one per
#                      pcap for the gratuitous ARP / unsolicited NA bursts;
#                      read by ../keepalived_vectors.rs, which needs neither tshark nor root.
# The nine scenarios and the keepalived configs they use (keepalived/<name>/h{1,2}.conf, inputs,
# not generated):
#   v2_mc_noauth v2_mc_auth_pass v2_mc_auth_ah v3_ipv4 v3_ipv6 v2_unicast   steady Master h1: 5 adverts, 1 burst
#   v2_prio0_shutdown   SIGTERM to h1: its priority-0 advert, then h2 takes over (3 s more)
#   garp_takeover_v4 una_takeover_v6   h1's link down: h2 takes over after Master_Down_Interval,
#                       captured until after its second GARP / NA burst (vrrp_garp_master_delay 5 s)
#
# Needs: root; bash, iproute2 (ip netns), keepalived (2.2.7 made the committed files), dumpcap and
# tshark (Wireshark 4.0), python3. No network access: everything stays inside three network
# namespaces it creates (${LAB_PREFIX}sw with bridge br0, ${LAB_PREFIX}h1 10.99.0.11 / fd99::11,
# ${LAB_PREFIX}h2 10.99.0.12 / fd99::12; the layout of shared/lab/netlab.sh, with fixed MACs
# 02:99:00:00:00:11 / :12 so that regenerated files differ only where keepalived does) and removes
# them on exit, also on failure or Ctrl-C. It refuses to run if those namespaces already exist.
# It stops only the processes it started (keepalived, dumpcap), by PID. keepalived's pid files
# go to a fresh temporary directory per scenario (a lingering VRRP child cannot block a restart).
#
# Time: about 2 minutes, all bounded: keepalived 2.2.7 starts even a MASTER instance in BACKUP and
# takes over after Master_Down_Interval (3.6 s); then a steady scenario captures 4.2 s (~10 s with
# start and stop), the shutdown ~13 s, each takeover ~18 s.
#
# Usage: sudo bash capture.sh            capture all nine, write the pcaps and the JSON here
#        sudo bash capture.sh NAME...    capture only these (the JSON is rebuilt from all pcaps)
#        bash capture.sh json            rebuild and check vrrp_vectors.json from the pcaps here
# Env:   LAB_PREFIX (default kvc; namespace and veth names, veth-${LAB_PREFIX}h1 <= 15 chars),
#        KEEP_TMP=1 keeps the temporary directory (logs, raw captures).
set -uo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
P=${LAB_PREFIX:-kvc}
ALL="v2_mc_noauth v2_mc_auth_pass v2_mc_auth_ah v3_ipv4 v3_ipv6 v2_unicast v2_prio0_shutdown garp_takeover_v4 una_takeover_v6"
VIP4=10.99.0.200
VIP6=fd99::200

log() { echo "[$(date +%T.%3N)] $*" >&2; }
die() { log "error: $*"; exit 1; }

# ------------------------------------------------------------------ JSON from the pcaps
# make_json PCAP_DIR OUT_JSON: decode with tshark, add hex and independent checksums, check that
# every capture shows what its scenario is about; exits non-zero (and writes nothing) otherwise.
make_json() {
  python3 - "$1" "$2" <<'PY'
import json, os, struct, subprocess, sys

src_dir, out = sys.argv[1], sys.argv[2]
SCENARIOS = {  # name -> (kind, number of distinct VRRP packets expected)
    "v2_mc_noauth": ("steady", 1), "v2_mc_auth_pass": ("steady", 1),
    "v2_mc_auth_ah": ("steady", 1), "v3_ipv4": ("steady", 1), "v3_ipv6": ("steady", 1),
    "v2_unicast": ("steady", 1), "v2_prio0_shutdown": ("term", 3),
    "garp_takeover_v4": ("takeover", 2), "una_takeover_v6": ("takeover", 2),
}
FIELDS = ["frame.number", "ip.src", "ip.dst", "ip.ttl", "ip.proto", "ipv6.src", "ipv6.dst",
          "ipv6.hlim", "ipv6.nxt", "vrrp.version", "vrrp.type", "vrrp.virt_rtr_id", "vrrp.prio",
          "vrrp.addr_count", "vrrp.auth_type", "vrrp.adver_int", "vrrp.short_adver_int",
          "vrrp.checksum", "vrrp.checksum.status", "vrrp.ip_addr", "vrrp.ipv6_addr",
          "vrrp.auth_string", "ah.spi", "ah.sequence", "eth.src", "eth.dst"]
problems = []

def check(cond, what):
    if not cond:
        problems.append(what)

def read_pcap(path):
    b = open(path, "rb").read()
    magic = b[:4]
    if magic in (b"\xd4\xc3\xb2\xa1", b"\x4d\x3c\xb2\xa1"):
        e = "<"
    elif magic in (b"\xa1\xb2\xc3\xd4", b"\xa1\xb2\x3c\x4d"):
        e = ">"
    else:
        sys.exit(f"{path}: not a classic pcap")
    nano = magic in (b"\x4d\x3c\xb2\xa1", b"\xa1\xb2\x3c\x4d")
    assert struct.unpack(e + "I", b[20:24])[0] == 1, f"{path}: not Ethernet"
    frames, at = [], 24
    while at + 16 <= len(b):
        sec, frac, incl, _ = struct.unpack(e + "IIII", b[at:at + 16])
        frames.append((sec + frac / (1e9 if nano else 1e6), b[at + 16:at + 16 + incl]))
        at += 16 + incl
    assert at == len(b), f"{path}: trailing bytes"
    return frames

def csum(data):
    if len(data) % 2:
        data += b"\0"
    s = sum(struct.unpack(f"!{len(data) // 2}H", data))
    while s > 0xFFFF:
        s = (s & 0xFFFF) + (s >> 16)
    return ~s & 0xFFFF

def mac(b):
    return ":".join(f"{x:02x}" for x in b)

def tshark_fields(path):
    cmd = ["tshark", "-n", "-r", path, "-Y", "vrrp", "-T", "fields", "-E", "separator=/t",
           "-E", "occurrence=a", "-E", "aggregator=,"]
    for f in FIELDS:
        cmd += ["-e", f]
    rows = {}
    for line in subprocess.run(cmd, check=True, capture_output=True, text=True).stdout.splitlines():
        vals = line.split("\t")
        d = {k: v for k, v in zip(FIELDS, vals) if v != ""}
        rows[int(d.pop("frame.number"))] = d
    return rows

def announcements(frames, vip4, vip6):
    """Gratuitous ARPs (request, sender IP = target IP = VIP) and unsolicited NAs for the VIP."""
    out = []
    for i, (t, f) in enumerate(frames, 1):
        et = f[12:14]
        if et == b"\x08\x06" and f[20:22] == b"\x00\x01" and f[28:32] == vip4 and f[38:42] == vip4:
            out.append((i, t, mac(f[6:12]), "garp"))
        elif et == b"\x86\xdd" and f[20] == 58 and f[54] == 136 and f[62:78] == vip6:
            out.append((i, t, mac(f[6:12]), "una"))
    return out

def bursts(times):
    groups = []
    for t in times:
        if groups and t - groups[-1][-1] < 0.5:
            groups[-1].append(t)
        else:
            groups.append([t])
    return groups

vip4 = bytes([10, 99, 0, 200])
vip6 = bytes.fromhex("fd990000000000000000000000000200")
entries = []
for name, (kind, want_distinct) in SCENARIOS.items():
    pcap = f"{name}.pcap"
    path = os.path.join(src_dir, pcap)
    if not os.path.exists(path):
        problems.append(f"{pcap} missing")
        continue
    frames = read_pcap(path)
    ts = tshark_fields(path)
    distinct = {}  # (src, dst, vrrp bytes) -> entry
    adverts = []   # (frame, time, priority, eth src)
    for n, (t, f) in enumerate(frames, 1):
        et, ip = f[12:14], f[14:]
        if et == b"\x08\x00" and ip[9] in (112, 51):
            ihl = (ip[0] & 15) * 4
            src, dst, af, proto, ttl = ip[12:16], ip[16:20], 4, ip[9], ip[8]
            body = ip[ihl:struct.unpack("!H", ip[2:4])[0]]
            ah = proto == 51
            if ah:
                check(body[0] == 112, f"{pcap} frame {n}: AH without VRRP inside")
                body = body[(body[1] + 2) * 4:]
        elif et == b"\x86\xdd" and ip[6] == 112:
            src, dst, af, proto, ttl, ah = ip[8:24], ip[24:40], 6, 112, ip[7], False
            body = ip[40:40 + struct.unpack("!H", ip[4:6])[0]]
        else:
            continue
        version, prio = body[0] >> 4, body[2]
        adverts.append((n, t, prio, mac(f[6:12])))
        key = (src, dst, body)
        if key in distinct:
            distinct[key]["seen"] += 1
            continue
        check(n in ts, f"{pcap} frame {n}: tshark did not dissect it as VRRP")
        zeroed = body[:6] + b"\0\0" + body[8:]
        if version == 2:
            pseudo = b""
        elif af == 4:
            pseudo = src + dst + struct.pack("!BBH", 0, 112, len(body))
        else:
            pseudo = src + dst + struct.pack("!I3xB", len(body), 112)
        have = struct.unpack("!H", body[6:8])[0]
        ok = csum(pseudo + zeroed) == have
        check(ok, f"{pcap} frame {n}: checksum {have:#06x} does not recompute")
        check(ts.get(n, {}).get("vrrp.checksum.status") == "1", f"{pcap} frame {n}: tshark: checksum not Good")
        check(ttl == 255, f"{pcap} frame {n}: TTL {ttl}")
        distinct[key] = {
            "name": f"{name}#{len(distinct) + 1}", "pcap": pcap, "frame": n, "seen": 1,
            "version": version, "af": af, "ah": ah, "ip_hex": ip.hex(), "vrrp_hex": body.hex(),
            "checksum": f"{have:#06x}", "checksum_recomputed_ok": ok, "tshark": ts.get(n, {}),
        }
    check(len(distinct) == want_distinct,
          f"{pcap}: {len(distinct)} distinct VRRP packets, expected {want_distinct}")
    check(len(adverts) >= 4, f"{pcap}: only {len(adverts)} adverts")
    entries += distinct.values()

    # Announcements, per sender: keepalived sends vrrp_garp_master_repeat (5) back to back on
    # becoming Master, and the same burst again vrrp_garp_master_delay (5 s) later.
    ann = announcements(frames, vip4, vip6)
    senders = {}
    for n, t, m, what in ann:
        senders.setdefault(m, []).append((n, t, what))
    summary = []
    for m, l in senders.items():
        groups = bursts([t for _, t, _ in l])
        summary.append({"sender": m, "kind": l[0][2], "frames": len(l),
                        "burst_sizes": [len(g) for g in groups],
                        "burst_to_burst_s": [round(b[0] - a[0], 3) for a, b in zip(groups, groups[1:])]})
        check(all(len(g) == 5 for g in groups), f"{pcap}: {m}: bursts {[len(g) for g in groups]}, expected 5 each")
    prios = [p for _, _, p, _ in adverts]
    macs = list(senders)
    if kind == "steady":
        check(len(macs) == 1 and summary[0]["burst_sizes"] == [5], f"{pcap}: announcements {summary}")
    elif kind == "term":
        check(0 in prios, f"{pcap}: no priority-0 advert")
        check(len(macs) == 2 and all(s["burst_sizes"] == [5] for s in summary), f"{pcap}: announcements {summary}")
    elif kind == "takeover":
        check(0 not in prios, f"{pcap}: unexpected priority-0 advert")
        new = summary[-1] if summary else {}
        check(len(macs) == 2 and new.get("burst_sizes") == [5, 5]
              and abs(new["burst_to_burst_s"][0] - 5.0) < 0.2,
              f"{pcap}: expected the new Master's two bursts 5 s apart, got {summary}")
    if ann:
        n = [a for a in ann if a[2] == macs[-1]][0][0]  # the last Master's first announcement
        f = frames[n - 1][1]
        e = {"name": f"{name}#{ann[0][3]}", "pcap": pcap, "frame": n}
        if ann[0][3] == "una":
            e["ip_hex"] = f[14:].hex()
        e["eth_hex"] = f.hex()
        e["announcements"] = summary
        entries.append(e)
    else:
        problems.append(f"{pcap}: no gratuitous ARP / unsolicited NA")

if problems:
    sys.exit("capture checks failed:\n  " + "\n  ".join(problems))
with open(out, "w") as fh:
    json.dump(entries, fh, indent=1)
    fh.write("\n")
print(f"{out}: {sum('vrrp_hex' in e for e in entries)} distinct VRRP packets, "
      f"{sum('vrrp_hex' not in e for e in entries)} announcement entries", file=sys.stderr)
PY
}

if [ "${1:-}" = json ]; then
  command -v tshark >/dev/null || die "tshark is needed"
  tmpj=$(mktemp) || exit 1
  make_json "$HERE" "$tmpj" || { rm -f "$tmpj"; exit 1; }
  mv "$tmpj" "$HERE/vrrp_vectors.json" && chmod 644 "$HERE/vrrp_vectors.json"
  exit 0
fi

# ------------------------------------------------------------------ the lab
[ "$(id -u)" = 0 ] || die "run as root (network namespaces, keepalived, dumpcap)"
for tool in ip keepalived dumpcap tshark python3; do command -v $tool >/dev/null || die "$tool is not installed"; done
SCNS=${*:-$ALL}
for s in $SCNS; do case " $ALL " in *" $s "*) ;; *) die "unknown scenario $s (known: $ALL)";; esac; done
[ ${#P} -le 5 ] || die "LAB_PREFIX $P too long (veth-${P}h1 must fit in 15 characters)"
for ns in ${P}sw ${P}h1 ${P}h2; do
  ip netns list | awk '{print $1}' | grep -qx "$ns" && die "namespace $ns exists already (another run? choose LAB_PREFIX)"
done

TMP=$(mktemp -d /tmp/vrrp-vectors.XXXXXX) || exit 1
CREATED_NS=""
DUMPCAP_PID=""
declare -A KA_PID=()  # host -> keepalived parent PID (ip netns exec execs it: same PID)
RUN=""                # per-scenario dir: configs' pid files, logs

cleanup() {
  local rc=$?
  [ -n "$DUMPCAP_PID" ] && { kill -INT "$DUMPCAP_PID" 2>/dev/null; wait "$DUMPCAP_PID" 2>/dev/null; }
  [ ${#KA_PID[@]} -gt 0 ] && ka_stop "${!KA_PID[@]}"
  for ns in $CREATED_NS; do ip netns del "$ns" 2>/dev/null; done
  if [ "${KEEP_TMP:-0}" = 1 ] || [ $rc != 0 ]; then log "temporary files kept in $TMP"; else rm -rf "$TMP"; fi
  exit $rc
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

lab_up() {
  ip netns add ${P}sw && CREATED_NS="$CREATED_NS ${P}sw" || die "ip netns add ${P}sw"
  ip -n ${P}sw link add br0 type bridge
  # no multicast snooping: 224.0.0.18 / ff02::12 always flooded; no STP delay
  ip -n ${P}sw link set br0 type bridge mcast_snooping 0 stp_state 0 forward_delay 0
  ip -n ${P}sw link set br0 up
  ip -n ${P}sw link set lo up
  for h in 1 2; do
    local ns=${P}h$h veth=veth-${P}h$h
    ip netns add $ns && CREATED_NS="$ns $CREATED_NS" || die "ip netns add $ns"
    ip netns exec $ns sysctl -qw net.ipv6.conf.default.accept_dad=0 net.ipv6.conf.all.accept_dad=0
    ip link add $veth type veth peer name eth0 netns $ns address 02:99:00:00:00:1$h || die "veth for $ns"
    ip link set $veth netns ${P}sw
    ip -n ${P}sw link set $veth master br0 up
    ip -n $ns link set lo up
    ip -n $ns link set eth0 up
    ip -n $ns addr add 10.99.0.1$h/24 dev eth0
    ip -n $ns addr add fd99::1$h/64 dev eth0 nodad
  done
}

ka_start() { # H NAME
  local h=$1 conf=$HERE/keepalived/$2/h$1.conf
  [ -f "$conf" ] || die "missing $conf"
  # -n no daemon, -l -D log details to the console, -G no syslog, -P VRRP only; pid files in $RUN
  ip netns exec ${P}h$h keepalived -n -l -D -G -P -f "$conf" \
    -p "$RUN/h$h.pid" -r "$RUN/h$h.vrrp.pid" -c "$RUN/h$h.chk.pid" >>"$RUN/h$h.log" 2>&1 &
  KA_PID[$h]=$!
}
ka_stop() { # H...: SIGTERM to each (graceful: priority-0 advert), SIGKILL what is left after 5 s
  local h x alive pids=""
  for h in "$@"; do
    pids="$pids ${KA_PID[$h]} $(cat "$RUN/h$h.vrrp.pid" 2>/dev/null)"
    kill -TERM "${KA_PID[$h]}" 2>/dev/null
  done
  for _ in $(seq 1 100); do
    alive=""; for x in $pids; do kill -0 "$x" 2>/dev/null && alive=1; done
    [ -z "$alive" ] && break; sleep 0.05
  done
  for x in $pids; do kill -0 "$x" 2>/dev/null && { log "keepalived $x did not stop, SIGKILL"; kill -KILL "$x"; }; done
  for h in "$@"; do
    wait "${KA_PID[$h]}" 2>/dev/null
    unset "KA_PID[$h]"
    rm -f "$RUN/h$h.pid" "$RUN/h$h.vrrp.pid" "$RUN/h$h.chk.pid"
  done
}
has_addr() { ip -n ${P}h$1 -o addr show dev eth0 | grep -q " $2/"; }
wait_addr() { # H ADDR SECONDS
  local i; for i in $(seq 1 $(($3 * 20))); do has_addr "$1" "$2" && return 0; sleep 0.05; done; return 1
}
cap_start() { # FILE FILTER
  ip netns exec ${P}sw dumpcap -q -P -i br0 -f "$2" -w "$1" >"$RUN/dumpcap.log" 2>&1 &
  DUMPCAP_PID=$!
  for _ in $(seq 1 100); do grep -q "Capturing on" "$RUN/dumpcap.log" && break; sleep 0.05; done
  grep -q "Capturing on" "$RUN/dumpcap.log" || die "dumpcap did not start: $(cat "$RUN/dumpcap.log")"
  sleep 0.3
}
cap_stop() {
  sleep 0.3
  kill -INT "$DUMPCAP_PID"; wait "$DUMPCAP_PID" 2>/dev/null; DUMPCAP_PID=""
}

scenario() { # NAME
  local name=$1 vip=$VIP4 filt="ip proto 112 or ip proto 51 or arp" action=steady
  case $name in
    v3_ipv6|una_takeover_v6) vip=$VIP6; filt="ip6 proto 112 or (icmp6 and ip6[40] == 136)";;
  esac
  case $name in
    v2_prio0_shutdown) action=term;;
    *_takeover_*) action=linkdown;;
  esac
  RUN=$TMP/$name; mkdir -p "$RUN"
  for h in 1 2; do
    keepalived -t -f "$HERE/keepalived/$name/h$h.conf" >"$RUN/h$h.configtest" 2>&1 ||
      log "$name h$h: keepalived -t says: $(tr '\n' ' ' <"$RUN/h$h.configtest")"
  done
  log "$name: capturing ($action)"
  cap_start "$TMP/$name.pcap" "$filt"
  # h2 only once h1 is Master: with AH, keepalived starts h1 as BACKUP too (see its config test),
  # and both Master_Down timers would end within milliseconds of each other
  ka_start 1 "$name"
  wait_addr 1 $vip 10 || die "$name: h1 never became Master (logs in $RUN)"
  ka_start 2 "$name"
  case $action in
    steady) sleep 4.2;;   # 5 adverts; < vrrp_garp_master_delay, so one GARP burst
    term) sleep 3; ka_stop 1; wait_addr 2 $vip 5 || die "$name: h2 did not take over"; sleep 3;;
    linkdown) sleep 3; ip -n ${P}h1 link set eth0 down
      wait_addr 2 $vip 6 || die "$name: h2 did not take over"
      sleep 5.6;;         # past the second burst (vrrp_garp_master_delay 5 s)
  esac
  cap_stop                # before stopping keepalived: no priority-0 adverts of the last Master
  [ ${#KA_PID[@]} -gt 0 ] && ka_stop "${!KA_PID[@]}"
  ip -n ${P}h1 link set eth0 up
  ip -n ${P}h1 addr del $vip dev eth0 2>/dev/null; ip -n ${P}h2 addr del $vip dev eth0 2>/dev/null
  log "$name: $(tshark -r "$TMP/$name.pcap" 2>/dev/null | wc -l) frames"
}

START=$(date +%s)
log "$(keepalived --version 2>&1 | head -1); $(tshark --version | head -1)"
lab_up
for s in $SCNS; do scenario "$s"; done
# the JSON covers all nine: the fresh captures plus, for a partial run, the committed others
for s in $ALL; do [ -f "$TMP/$s.pcap" ] || cp "$HERE/$s.pcap" "$TMP/$s.pcap" || die "no $s.pcap"; done
make_json "$TMP" "$TMP/vrrp_vectors.json" || die "the captures do not show what they should (kept in $TMP)"
for s in $SCNS; do install -m 644 "$TMP/$s.pcap" "$HERE/$s.pcap"; done
install -m 644 "$TMP/vrrp_vectors.json" "$HERE/vrrp_vectors.json"
log "done in $(($(date +%s) - START)) s: $(du -cb "$HERE"/*.pcap "$HERE/vrrp_vectors.json" | tail -1 | cut -f1) bytes of vectors in $HERE"

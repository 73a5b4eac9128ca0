#!/usr/bin/env python3
"""faults.py -- VRRP under injected faults: vrrpd side by side with keepalived, one session.

Usage (as root): bench/faults.py [-o FILE] [--window FAULT=SECONDS ...] [FAULT ...]

Three twin labs (../shared/lab/netlab.sh, prefixes `fxk` for keepalived, `fxv` for vrrpd with
its defaults, `fxr` for vrrpd with `preempt_on_lower_advert = false`), each h1 (10.99.0.11,
priority 101) + h2 (10.99.0.12, priority 100) + a client, VRRPv2, 1 s adverts, multicast,
VRID 51, VIP 10.99.0.200/24, preempt: the very configs of
../shared/lab/keepalived_baseline.sh (its daemon_* functions, vrrpd through
bench/vrrpd_plugin.sh). For each fault, the pairs are (re)started, h1 is Master, then the
same fault is applied to every lab at the same time for a window and lifted; each is measured
over the window plus SETTLE s after it, under a client load (an ICMP echo to the VIP every 10 ms, PROBER below).

Faults (applied to h1, the Master at the start, unless said). This machine's kernel has no
sch_netem (nor prio/clsact/gact, nor nft `queue`), so loss and delay are made with nftables
and an NFQUEUE program instead:
  loss5 loss15 loss30  every frame h1 or h2 sends (adverts, ARP, replies to the client) dropped
                       with that probability on the switch (nft bridge forward, numgen random):
                       netem loss on both hosts' egress
  delay                every IP packet h1 and h2 send held uniform(0, 600) ms (300 +- 300 ms,
                       reordering) by bench/nfq_delay.py (iptables OUTPUT -j NFQUEUE)
  oneway               h1's VRRP packets (IP protocol 112) dropped on the switch: h2 hears
                       nothing from h1, h1 hears h2
  flap                 h1's eth0 down 1 s / up 1 s, repeated (a flap every 2 s)
  sigstop              h1's daemon SIGSTOPped for 2 s (2 x advert interval) every 10 s
                       (keepalived: its VRRP child, the process that sends adverts)

Measured per fault and daemon, from `ip monitor address` in both hosts (event times) and the
client's ping: became Master = VIP added on a host (a Master change); 0 Masters / 2 Masters =
time in the window with no host / both hosts holding the VIP (a host whose link the fault took
down does not count as holding it); failed probes = unanswered pings of the client; longest
gap between two answers.

Env: VRRPD (default ${CARGO_TARGET_DIR:-<repo>/target}/release/vrrpd), HA_SHARED_DIR,
KEEPALIVED. Bounded: sum of windows + ~20 s per fault (all faults: ~27 min). Traffic only
inside the labs' namespaces; the labs are torn down on exit (also on failure). Logs and
rendered configs stay in /tmp/fx?_faults.
"""
import argparse
import datetime
import os
import re
import signal
import subprocess
import sys
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
SHARED = os.path.abspath(os.environ.get("HA_SHARED_DIR", os.path.join(REPO, "..", "shared")))
LAB = os.path.join(SHARED, "lab")
BASELINE = os.path.join(LAB, "keepalived_baseline.sh")
PLUGIN = os.path.join(HERE, "vrrpd_plugin.sh")
TARGET = os.environ.get("CARGO_TARGET_DIR", os.path.join(REPO, "target"))
VRRPD = os.path.abspath(os.environ.get("VRRPD", os.path.join(TARGET, "release", "vrrpd")))
VIP = "10.99.0.200"
PROBE = 0.01
SETTLE = 6.0
WINDOWS = {"loss5": 120, "loss15": 600, "loss30": 180, "delay": 60, "oneway": 30, "flap": 60,
           "sigstop": 60}

ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
ap.add_argument("faults", nargs="*", default=list(WINDOWS))
ap.add_argument("-o", "--output")
ap.add_argument("--window", action="append", default=[], metavar="FAULT=SECONDS")
a = ap.parse_args()
for w in a.window:
    k, _, v = w.partition("=")
    if k not in WINDOWS or not v:
        sys.exit(f"faults.py: --window {w}: expected FAULT=SECONDS, FAULT one of {' '.join(WINDOWS)}")
    WINDOWS[k] = float(v)
for f in a.faults:
    if f not in WINDOWS:
        sys.exit(f"faults.py: unknown fault {f}; known: {' '.join(WINDOWS)}")
if os.geteuid() != 0:
    sys.exit("faults.py: needs root (network namespaces)")
if not os.access(VRRPD, os.X_OK):
    sys.exit(f"faults.py: no vrrpd at {VRRPD}: cargo build --release -p examples --bin vrrpd")


def sh(*cmd, check=False):
    return subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                          check=check)


class Lab:
    """One twin: a prefix, a daemon (keepalived or vrrpd) and its run dir."""

    def __init__(self, name, prefix, plugin, keys=""):
        self.name, self.p, self.plugin, self.keys = name, prefix, plugin, keys
        self.run = f"/tmp/{prefix}_faults"
        os.makedirs(self.run, exist_ok=True)
        self.links_down = {1: [], 2: []}  # [(t_down, t_up or None)] taken down by the fault

    def env(self, h, scn):
        e = {**os.environ, "LAB_PREFIX": self.p, "RUN_DIR": self.run, "CONF_DIR": f"{self.run}/conf",
             "DAEMON_PLUGIN": self.plugin, "SCN": scn, "VER": "2", "ADV": "1", "MODE": "mc",
             "AUTH": "none", "TRACK": "none", "AF": "4", "EXTRA_VIPS": "", "VRRPD": VRRPD,
             "VRRPD_INSTANCE_KEYS": self.keys,
             "ROLE": "MASTER" if h == 1 else "BACKUP", "PRIO": str(102 - h),
             "MYIP": f"10.99.0.1{h}", "PEERIP": f"10.99.0.1{3 - h}"}
        return e

    def do(self, h, fn, scn="faults"):
        subprocess.run(["bash", BASELINE, "_do", fn, str(h)], env=self.env(h, scn),
                       stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                       stderr=open(f"{self.run}/bench.err", "a"))

    def ns(self, h):
        return f"{self.p}h{h}"

    def up(self):
        self.down()
        subprocess.run(["bash", "netlab.sh", "up", "2"], cwd=LAB, env={**os.environ, "LAB_PREFIX": self.p},
                       check=True, stdout=subprocess.DEVNULL)

    def down(self):
        for h in (1, 2):
            self.do(h, "daemon_cleanup")
        subprocess.run(["bash", "netlab.sh", "down"], cwd=LAB, env={**os.environ, "LAB_PREFIX": self.p},
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    def holders(self):
        return [h for h in (1, 2) if f" {VIP}/" in sh("ip", "-n", self.ns(h), "-o", "addr", "show", "dev", "eth0").stdout]

    def restore(self):
        for h in (1, 2):
            self.do(h, "daemon_cleanup")
            sh("ip", "netns", "exec", self.ns(h), "iptables", "-F", "OUTPUT")
            sh("ip", "-n", self.ns(h), "link", "set", "eth0", "up")
            sh("ip", "-n", self.ns(h), "addr", "del", f"{VIP}/24", "dev", "eth0")
        sh("ip", "netns", "exec", f"{self.p}sw", "nft", "delete table bridge fx")
        self.links_down = {1: [], 2: []}

    def bring_up(self, scn):
        """Both daemons started, h1 the only Master for 2 s; False if that did not happen."""
        self.restore()
        for h in (1, 2):
            self.do(h, "daemon_config", scn)
        for h in (1, 2):
            self.do(h, "daemon_start", scn)
        deadline, since = time.time() + 20, None
        while time.time() < deadline:
            if self.holders() == [1]:
                since = since or time.time()
                if time.time() - since >= 2:
                    return True
            else:
                since = None
            time.sleep(0.1)
        return False

    def daemon_pids(self, h):
        pids = []
        for f in ("vrrp.pid", "main.pid") if self.name == "keepalived" else ("main.pid",):
            try:
                pids.append(int(open(f"{self.run}/h{h}.{f}").read().strip()))
            except (OSError, ValueError):
                pass
        return pids[:1]  # keepalived: the VRRP child only (the parent sends nothing)


# ---------------------------------------------------------------- faults
def nft(lab, *cmds):
    """nft commands in the lab's switch namespace (the bridge between the hosts)."""
    for c in cmds:
        r = sh("ip", "netns", "exec", f"{lab.p}sw", "nft", c)
        if r.returncode:
            raise RuntimeError(f"nft {c} in {lab.p}sw: {r.stdout.strip()}")


def bridge_rule(rule):
    """Frames forwarded by the bridge that match `rule` (nft, bridge family) are dropped."""
    def apply(lab, stop):
        nft(lab, "add table bridge fx",
            "add chain bridge fx drops { type filter hook forward priority 0; }",
            f"add rule bridge fx drops {rule.replace('{p}', lab.p)} drop")
        stop.wait()
        nft(lab, "delete table bridge fx")
    return apply


def loss(pct):
    # what h1 and h2 send (adverts, ARP, replies to the client), each copy on its own
    return bridge_rule('iifname { "veth-{p}h1", "veth-{p}h2" } numgen random mod 100 < ' + str(pct))


def delay(ms, jitter):
    def apply(lab, stop):
        procs = []
        for h in (1, 2):
            r = sh("ip", "netns", "exec", lab.ns(h), "iptables", "-A", "OUTPUT", "-o", "eth0", "-j", "NFQUEUE",
                   "--queue-num", "7", "--queue-bypass")
            if r.returncode:
                raise RuntimeError(f"iptables in {lab.ns(h)}: {r.stdout.strip()}")
            d = subprocess.Popen(["ip", "netns", "exec", lab.ns(h), "python3", os.path.join(HERE, "nfq_delay.py"),
                                  "7", str(ms), str(jitter), "--seconds", "3600"], stdout=subprocess.PIPE, text=True)
            procs.append(d)
            d.stdout.readline()  # READY
        stop.wait()
        for d in procs:  # releases what it holds, then the rule goes (--queue-bypass meanwhile)
            d.terminate()
            d.wait()
        for h in (1, 2):
            sh("ip", "netns", "exec", lab.ns(h), "iptables", "-F", "OUTPUT")
    return apply


def flap(lab, stop):
    while not stop.is_set():
        t = time.time()
        sh("ip", "-n", lab.ns(1), "link", "set", "eth0", "down")
        lab.links_down[1].append([t, None])
        stop.wait(1.0)
        sh("ip", "-n", lab.ns(1), "link", "set", "eth0", "up")
        lab.links_down[1][-1][1] = time.time()
        stop.wait(1.0)


def sigstop(lab, stop):
    while not stop.is_set():
        pids = lab.daemon_pids(1)
        for p in pids:
            os.kill(p, signal.SIGSTOP)
        time.sleep(2.0)
        for p in pids:
            os.kill(p, signal.SIGCONT)
        stop.wait(8.0)


FAULTS = {"loss5": loss(5), "loss15": loss(15), "loss30": loss(30), "delay": delay(300, 300),
          "oneway": bridge_rule('iifname "veth-{p}h1" ip protocol 112'), "flap": flap, "sigstop": sigstop}


# ---------------------------------------------------------------- measuring
def monitor(lab, h, events, stop_procs):
    # ip's own timestamps (-ts): its output to a pipe is block-buffered
    m = subprocess.Popen(["ip", "-ts", "-n", lab.ns(h), "monitor", "address"], stdout=subprocess.PIPE, text=True)
    stop_procs.append(m)
    pat = re.compile(r"^\[([0-9T:.-]+)\] (Deleted )?\d+: \S+\s+inet\s+" + re.escape(VIP) + r"/")

    def read():
        for line in m.stdout:
            x = pat.match(line)
            if x:
                t = datetime.datetime.strptime(x.group(1), "%Y-%m-%dT%H:%M:%S.%f").timestamp()
                events.append((t, h, not x.group(2)))
    threading.Thread(target=read, daemon=True).start()


# The client's load: an ICMP echo to the VIP every INTERVAL s on a fixed schedule (a raw socket:
# sends never wait for ARP, unlike ping(8) which slows down while the VIP does not resolve);
# prints "S time seq" per request sent and "R time seq" per reply.
PROBER = r"""
import os, socket, struct, sys, threading, time
vip, interval, seconds = sys.argv[1], float(sys.argv[2]), float(sys.argv[3])
s = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_ICMP)
ident = os.getpid() & 0xFFFF
def csum(b):
    n = sum(struct.unpack("!%dH" % (len(b) // 2), b))
    n = (n >> 16) + (n & 0xFFFF); n += n >> 16
    return ~n & 0xFFFF
def rx():
    while True:
        d = s.recv(2048); t = time.time()
        ihl = (d[0] & 15) * 4
        if d[ihl] == 0 and struct.unpack_from("!H", d, ihl + 4)[0] == ident:
            print("R %.6f %d" % (t, struct.unpack_from("!H", d, ihl + 6)[0]), flush=True)
threading.Thread(target=rx, daemon=True).start()
t0 = time.time(); seq = 0
while time.time() - t0 < seconds:
    seq += 1
    h = struct.pack("!BBHHH", 8, 0, 0, ident, seq & 0xFFFF) + b"x" * 32
    h = h[:2] + struct.pack("!H", csum(h)) + h[4:]
    try:
        s.sendto(h, (vip, 0))
    except OSError:
        pass
    print("S %.6f %d" % (time.time(), seq), flush=True)
    time.sleep(max(0.0, t0 + seq * interval - time.time()))
"""


def measure(lab, fault, window, barrier, results):
    scn = f"faults_{fault}"
    if not lab.bring_up(scn):
        barrier.wait()
        results[lab.name] = {"error": f"h1 not the only Master after start (VIP on {lab.holders()})"}
        return
    procs, events = [], []
    for h in (1, 2):
        monitor(lab, h, events, procs)
    sh("ip", "-n", f"{lab.p}cl", "neigh", "flush", "dev", "eth0")
    total = 1 + window + SETTLE
    ping = subprocess.Popen(["ip", "netns", "exec", f"{lab.p}cl", "python3", "-u", "-c", PROBER, VIP, str(PROBE),
                             str(total + 1)], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    replies = []
    sends = []

    def read_ping():
        for line in ping.stdout:
            f = line.split()
            if len(f) == 3 and f[0] in ("S", "R"):
                (sends if f[0] == "S" else replies).append((float(f[1]), int(f[2])))
    rt = threading.Thread(target=read_ping, daemon=True)
    rt.start()
    time.sleep(1.0)
    init = lab.holders()
    barrier.wait()  # both labs: the fault starts now
    t0 = time.time()
    stop = threading.Event()
    fault_error = []

    def run_fault():
        try:
            FAULTS[fault](lab, stop)
        except Exception as e:  # reported in the results, the run goes on
            fault_error.append(str(e))
    ft = threading.Thread(target=run_fault, daemon=True)
    ft.start()
    time.sleep(window)
    stop.set()
    ft.join(10)
    t1 = time.time()
    time.sleep(SETTLE)
    t2 = time.time()
    final = lab.holders()
    ping.terminate()
    ping.wait(5)
    rt.join(2)
    for p in procs:
        p.terminate()

    # timeline of holders from the initial state and the events
    held = {h: h in init for h in (1, 2)}
    became = sum(1 for t, h, add in events if add and t0 <= t <= t2)
    lost = sum(1 for t, h, add in events if not add and t0 <= t <= t2)

    def link_down(h, t):
        return any(d <= t and (u is None or t < u) for d, u in lab.links_down[h])
    # walk over all instants where something changes
    marks = sorted({t0, t2} | {t for t, _, _ in events if t0 < t < t2}
                   | {x for h in (1, 2) for d, u in lab.links_down[h] for x in (d, u) if x and t0 < x < t2})
    ev = sorted(e for e in events)
    zero = two = 0.0
    i = 0
    for k in range(len(marks) - 1):
        ta, tb = marks[k], marks[k + 1]
        while i < len(ev) and ev[i][0] <= ta:
            held[ev[i][1]] = ev[i][2]
            i += 1
        n = sum(1 for h in (1, 2) if held[h] and not link_down(h, ta))
        zero += (tb - ta) if n == 0 else 0
        two += (tb - ta) if n == 2 else 0
    rs = [r for r in replies if t0 - 0.5 <= r[0] <= t2]
    gaps = [rs[j + 1][0] - rs[j][0] for j in range(len(rs) - 1)]
    # failed probes: echo requests sent in the window and never answered (answers of the last
    # second may still be under way: not counted)
    answered = {q for _, q in replies}
    window_sends = [q for t, q in sends if t0 <= t <= t2 - 1.0]
    sent = len(window_sends)
    failed = sum(1 for q in window_sends if q not in answered)
    if fault_error:
        results[lab.name] = {"error": "the fault failed: " + "; ".join(fault_error)}
        return
    results[lab.name] = {"became_master": became, "vip_removed": lost, "zero_s": zero, "two_s": two,
                         "failed": failed, "sent": sent, "max_gap_s": max(gaps) if gaps else float("nan"),
                         "init": init, "final": final, "window": window,
                         "events": [(round(t - t0, 3), h, "add" if add else "del") for t, h, add in sorted(events)]}


def main():
    labs = [Lab("keepalived", "fxk", ""), Lab("vrrpd", "fxv", PLUGIN),
            Lab("vrrpd-rfc", "fxr", PLUGIN, "preempt_on_lower_advert = false")]
    ka_version = sh(os.environ.get("KEEPALIVED", "keepalived"), "--version").stdout.splitlines()[0]
    rev = sh("git", "-C", REPO, "describe", "--always", "--dirty").stdout.strip()
    head = [f"# {time.strftime('%Y-%m-%dT%H:%M:%S%z')} bench/faults.py: {ka_version} | vrrpd {rev} {VRRPD}",
            f"# VRRPv2, 1 s adverts, multicast, h1 prio 101 / h2 prio 100, preempt; client ping every "
            f"{PROBE * 1000:g} ms; measured over the window + {SETTLE:g} s; one run, shared 2-core "
            "machine (other builds running)"]
    for line in head:
        print(line, flush=True)
    raw = []
    try:
        for lab in labs:
            lab.up()
        rows = []
        for fault in a.faults:
            res = {}
            barrier = threading.Barrier(len(labs))
            th = [threading.Thread(target=measure, args=(lab, fault, WINDOWS[fault], barrier, res))
                  for lab in labs]
            for t in th:
                t.start()
            for t in th:
                t.join()
            for lab in labs:
                lab.restore()
            rows.append((fault, res))
            for name in [lab.name for lab in labs]:
                r = res[name]
                line = f"{fault}\t{name}\t" + " ".join(f"{k}={v}" for k, v in r.items())
                raw.append(line)
                print(line, flush=True)
    finally:
        for lab in labs:
            lab.down()
    names = [lab.name for lab in labs]
    cols = [("became Master", "became_master", "{:d}"), ("0 Masters s", "zero_s", "{:.2f}"),
            ("2 Masters s", "two_s", "{:.2f}"), ("failed probes", "failed", "{:d}"),
            ("longest gap s", "max_gap_s", "{:.3f}")]
    table = [f"{'fault':8} {'window':>6}  " + "  ".join(f"{c[0]:>20}" for c in cols),
             f"{'':8} {'s':>6}  " + "  ".join(f"{'ka/vrrpd/vrrpd-rfc':>20}" for _ in cols)]
    for fault, res in rows:
        bad = [f"{n}: {res[n]['error']}" for n in names if "error" in res[n]]
        if bad:
            table.append(f"{fault:8} FAILED " + "; ".join(bad))
            continue
        table.append(f"{fault:8} {WINDOWS[fault]:>6g}  " + "  ".join(
            f"{' / '.join(fmt.format(res[n][key]) for n in names):>20}" for _, key, fmt in cols))
    table.append("")
    table.append("# ka = keepalived; vrrpd = its defaults (preempt_on_lower_advert = true); vrrpd-rfc = "
                 "preempt_on_lower_advert = false (a higher-priority Backup waits Master_Down_Interval, as "
                 "keepalived and the RFC)")
    table.append(f"# probes: one ICMP echo every {PROBE * 1000:g} ms; a window's probes were sent from "
                 "the fault's start to 1 s before the measurement's end")
    print()
    print("\n".join(table))
    if a.output:
        os.makedirs(os.path.dirname(os.path.abspath(a.output)), exist_ok=True)
        with open(a.output, "w") as f:
            f.write("\n".join(head + [""] + table + ["", "# raw (events: s after the fault started, host, VIP add/del)"] + raw) + "\n")
    return 0 if all("error" not in r for _, res in rows for r in res.values()) else 2


signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
sys.exit(main())

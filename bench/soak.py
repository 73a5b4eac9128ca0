#!/usr/bin/env python3
"""soak.py -- a vrrpd pair for a long run with the Backup's tracked check flapping.

Usage (as root): bench/soak.py [--duration 1800] [--period 4] [--sample 60] [-o FILE]

Lab (../shared/lab/netlab.sh, prefix `sk`, namespaces skh1 skh2 skcl sksw): h1 priority 101,
h2 priority 100 + a tracked `kind = "exec"` check of weight +2 (`test -e FLAG`, every 0.5 s,
rise 1, fall 1); VRRPv3, 100 ms adverts, VRID 61, VIP 10.99.0.200/24, preempt on, a notify
script on each daemon appending every state change to a file. Every --period s the script
creates or removes FLAG: with it h2 runs at 102 and takes the VIP from h1, without it h2 drops
back to 100 and h1 takes the VIP back. Each flap is one expected Master change.

Checked at the end of each period (--period - 0.5 s after the flap): the VIP is on the
expected host and only there (else a "miss"). Every --sample s: RSS, peak RSS, threads and
open fds of both daemons (/proc), and their status counters (`vrrpd --status`). The client
pings the VIP every 50 ms for the whole run (lost replies reported).

At the end: both daemons stopped with SIGTERM (exit status reported), and a summary: flaps,
misses, Master changes per daemon (status counters, notify lines, log lines) vs expected,
RSS/fd/thread counts first vs last sample, lost pings. Exit 0 when nothing leaked (fds and
threads equal, RSS growth under 1 MiB after the first sample) and no transition was missed.

Env: VRRPD (default ${CARGO_TARGET_DIR:-<repo>/target}/release/vrrpd), HA_SHARED_DIR.
Traffic stays inside the lab's namespaces; the lab is torn down on exit (also on failure).
"""
import argparse
import json
import os
import re
import signal
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
SHARED = os.environ.get("HA_SHARED_DIR", os.path.join(REPO, "..", "shared"))
LAB = os.path.join(SHARED, "lab")
TARGET = os.environ.get("CARGO_TARGET_DIR", os.path.join(REPO, "target"))
VRRPD = os.path.abspath(os.environ.get("VRRPD", os.path.join(TARGET, "release", "vrrpd")))
P = "sk"
RUN = f"/tmp/{P}_soak"
FLAG = f"{RUN}/check_ok"
VIP = "10.99.0.200"

ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
ap.add_argument("--duration", type=float, default=1800)
ap.add_argument("--period", type=float, default=4)
ap.add_argument("--sample", type=float, default=60)
ap.add_argument("-o", "--output", default=None)
a = ap.parse_args()
if os.geteuid() != 0:
    sys.exit("soak.py: needs root (network namespaces)")
if not os.access(VRRPD, os.X_OK):
    sys.exit(f"soak.py: no vrrpd at {VRRPD}: cargo build --release -p examples --bin vrrpd")

procs = {}
out_lines = []


def say(msg):
    line = f"[{time.strftime('%H:%M:%S')}] {msg}"
    print(line, flush=True)
    out_lines.append(line)


def lab(cmd):
    subprocess.run(["bash", "netlab.sh", cmd, "2"], cwd=LAB, env={**os.environ, "LAB_PREFIX": P},
                   check=cmd == "up", stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def teardown():
    for p in procs.values():
        if p.poll() is None:
            p.kill()
            p.wait()
    lab("down")


def config(h):
    prio = 101 if h == 1 else 100
    track = ""
    check = ""
    if h == 2:
        track = 'track = [{ check = "flag", weight = 2 }]\n'
        check = (f'\n[[check]]\nname = "flag"\nkind = "exec"\ncommand = "test -e {FLAG}"\n'
                 'interval = "500ms"\nrise = 1\nfall = 1\n')
    notify = f"{RUN}/h{h}.notify"
    text = (f'status_socket = "{RUN}/h{h}.sock"\n\n[[instance]]\nname = "VI_61"\n'
            f'interface = "eth0"\nvrid = 61\npriority = {prio}\nversion = 3\n'
            f'advert_interval = "100ms"\npreempt = true\nvirtual_addresses = ["{VIP}/24"]\n'
            f'notify = {{ master = "echo MASTER >> {notify}", backup = "echo BACKUP >> {notify}",'
            f' fault = "echo FAULT >> {notify}" }}\n{track}{check}')
    path = f"{RUN}/h{h}.toml"
    with open(path, "w") as f:
        f.write(text)
    subprocess.run([VRRPD, "--check", "--config", path], check=True, stdout=subprocess.DEVNULL)
    return path


def holders():
    held = []
    for h in (1, 2):
        r = subprocess.run(["ip", "-n", f"{P}h{h}", "-o", "addr", "show", "dev", "eth0"],
                           capture_output=True, text=True)
        if f" {VIP}/" in r.stdout:
            held.append(h)
    return held


def proc_sample(pid):
    d = {}
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            k, _, v = line.partition(":")
            if k in ("VmRSS", "VmHWM", "Threads"):
                d[k] = int(v.split()[0])
    d["fds"] = len(os.listdir(f"/proc/{pid}/fd"))
    return d


def status(h):
    r = subprocess.run([VRRPD, "--status", "--config", f"{RUN}/h{h}.toml"],
                       capture_output=True, text=True, timeout=10)
    try:
        inst = json.loads(r.stdout)["instances"][0]
        c = inst["counters"] or {}
        return {"state": inst["state"], "transitions": c.get("transitions"),
                "became_master": c.get("became_master")}
    except (ValueError, KeyError, IndexError):
        return {"state": None, "transitions": None, "became_master": None}


def main():
    os.makedirs(RUN, exist_ok=True)
    for f in os.listdir(RUN):
        os.remove(os.path.join(RUN, f))
    lab("down")
    lab("up")
    version = subprocess.run(["git", "-C", REPO, "describe", "--always", "--dirty"],
                             capture_output=True, text=True).stdout.strip()
    say(f"soak: vrrpd {version} {VRRPD}; duration {a.duration:g} s, flap every {a.period:g} s, "
        f"sample every {a.sample:g} s")
    for h in (1, 2):
        path = config(h)
        log = open(f"{RUN}/h{h}.log", "w")
        procs[h] = subprocess.Popen(["ip", "netns", "exec", f"{P}h{h}", VRRPD, "--config", path],
                                    stdin=subprocess.DEVNULL, stdout=log, stderr=log,
                                    env={**os.environ, "RUST_LOG": "info"})
        time.sleep(0.3 if h == 1 else 0)
    deadline = time.time() + 10
    while holders() != [1]:
        if time.time() > deadline:
            raise SystemExit(f"soak.py: h1 did not become the only Master (VIP on {holders()})")
        time.sleep(0.1)
    time.sleep(2)
    procs["ping"] = subprocess.Popen(
        ["ip", "netns", "exec", f"{P}cl", "ping", "-n", "-q", "-i", "0.05", "-w",
         str(int(a.duration + 10)), VIP], stdout=open(f"{RUN}/ping.out", "w"),
        stderr=subprocess.STDOUT)
    samples = open(f"{RUN}/samples.tsv", "w")
    samples.write("t_s\thost\trss_kib\thwm_kib\tthreads\tfds\tstate\ttransitions\tbecame_master\n")
    rows = []

    def sample(t):
        for h in (1, 2):
            d = {**proc_sample(procs[h].pid), **status(h)}
            rows.append((t, h, d))
            samples.write(f"{t:.0f}\t{h}\t{d['VmRSS']}\t{d['VmHWM']}\t{d['Threads']}\t{d['fds']}"
                          f"\t{d['state']}\t{d['transitions']}\t{d['became_master']}\n")
            samples.flush()

    t0 = time.time()
    sample(0)
    flaps = {"up": 0, "down": 0}
    misses = []
    next_sample = a.sample
    n = 0
    while time.time() - t0 < a.duration:
        n += 1
        t_flap = t0 + n * a.period
        time.sleep(max(0.0, t_flap - time.time()))
        if n % 2 == 1:
            open(FLAG, "w").close()
            flaps["up"] += 1
            want = [2]
        else:
            os.remove(FLAG)
            flaps["down"] += 1
            want = [1]
        time.sleep(max(0.0, t_flap + a.period - 0.5 - time.time()))
        got = holders()
        if got != want:
            misses.append((round(time.time() - t0, 1), want, got))
            say(f"miss: flap {n} at {t_flap - t0:.1f} s wanted the VIP on {want}, it is on {got}")
        if time.time() - t0 >= next_sample:
            sample(time.time() - t0)
            next_sample += a.sample
    if os.path.exists(FLAG):  # end with h1 Master, as at the start
        os.remove(FLAG)
        flaps["down"] += 1
        time.sleep(a.period)
    sample(time.time() - t0)
    procs["ping"].send_signal(signal.SIGINT)
    procs["ping"].wait(timeout=10)
    rc = {}
    for h in (1, 2):
        procs[h].send_signal(signal.SIGTERM)
        rc[h] = procs[h].wait(timeout=10)

    # ---- summary
    first = {h: d for t, h, d in rows[:2]}
    last = {h: d for t, h, d in rows[-2:]}
    ping = open(f"{RUN}/ping.out").read()
    m = re.search(r"(\d+) packets transmitted, (\d+) received", ping)
    sent, recv = (int(m.group(1)), int(m.group(2))) if m else (0, 0)
    leaks = []
    say(f"flaps: {flaps['up']} up (h2 should take the VIP) + {flaps['down']} down (h1 takes it "
        f"back) = {flaps['up'] + flaps['down']} expected Master changes; misses: {len(misses)}")
    expect_master = {1: 1 + flaps["down"], 2: flaps["up"]}
    for h in (1, 2):
        notify = open(f"{RUN}/h{h}.notify").read().split() if os.path.exists(f"{RUN}/h{h}.notify") else []
        logtxt = open(f"{RUN}/h{h}.log", errors="replace").read()
        log_master = len(re.findall(r"-> ?Master|to=Master", logtxt))
        f_, l_ = first[h], last[h]
        say(f"h{h}: became_master {l_['became_master']} (expected {expect_master[h]}), transitions "
            f"{l_['transitions']}, notify MASTER lines {notify.count('MASTER')} BACKUP "
            f"{notify.count('BACKUP')} FAULT {notify.count('FAULT')}, log lines to Master {log_master}; "
            f"RSS {f_['VmRSS']} -> {l_['VmRSS']} KiB (peak {l_['VmHWM']}), threads {f_['Threads']} -> "
            f"{l_['Threads']}, fds {f_['fds']} -> {l_['fds']}; exit status {rc[h]}")
        if l_["became_master"] != expect_master[h]:
            leaks.append(f"h{h} became Master {l_['became_master']} times, expected {expect_master[h]}")
        if notify.count("MASTER") != expect_master[h]:
            leaks.append(f"h{h} notified MASTER {notify.count('MASTER')} times, expected {expect_master[h]}")
        if l_["fds"] != f_["fds"] or l_["Threads"] != f_["Threads"]:
            leaks.append(f"h{h}: fds {f_['fds']} -> {l_['fds']}, threads {f_['Threads']} -> {l_['Threads']}")
        if l_["VmRSS"] - f_["VmRSS"] > 1024:
            leaks.append(f"h{h}: RSS grew {l_['VmRSS'] - f_['VmRSS']} KiB")
        if rc[h] != 0:
            leaks.append(f"h{h} exited with {rc[h]}")
    say(f"client: {sent} pings, {sent - recv} unanswered ({100 * (sent - recv) / max(sent, 1):.2f} %)")
    for l in leaks:
        say(f"PROBLEM {l}")
    say("result: " + ("ok" if not leaks and not misses else f"{len(leaks) + len(misses)} problem(s)"))
    if a.output:
        os.makedirs(os.path.dirname(os.path.abspath(a.output)), exist_ok=True)
        with open(a.output, "w") as f:
            f.write("\n".join(out_lines) + "\n\n# samples (every %g s)\n" % a.sample)
            f.write(open(f"{RUN}/samples.tsv").read())
    return 0 if not leaks and not misses else 1


signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
try:
    rc = main()
finally:
    teardown()
sys.exit(rc)

#!/usr/bin/env python3
"""hald vs keepalived + HAProxy (issue #18, point 3): the same five scenarios, the same lab, one run.

Usage (as root; python3, iproute2, keepalived, haproxy, nginx; hald built with
`cargo build --release -p examples --bin hald`):

    bench/hald_stack.py                         # 3 runs, stacks keepalived+haproxy and hald (v2 1 s)
    bench/hald_stack.py -r 1 -s hald,hald-v3    # one run, hald at VRRPv2 1 s and at VRRPv3 100 ms
    bench/hald_stack.py --scenarios handover -r 1
    HALD=/path/to/hald LAB_PREFIX=hb bench/hald_stack.py -o bench/results/hald-stack.txt

Stacks (`-s`, comma list; default `keepalived,hald`):
  keepalived  keepalived 2.2.7 + HAProxy as the seeds run them: `vrrp_script chk_haproxy` every 2 s,
              weight 2, priorities 101/100, VRRPv2, 1 s adverts; HAProxy `balance roundrobin`,
              `option redispatch`, `retries 3`, servers `check inter 2000 rise 2 fall 3` (a TCP check).
              The seeds' `killall -0 haproxy` becomes `kill -0 <this host's HAProxy PID>`: the two
              balancer "hosts" are network namespaces sharing one PID namespace, so killall would see
              the other host's HAProxy (and any other HAProxy on the machine). Same cost, same meaning.
  hald        hald with the same figures: priorities 101/100, VRRPv2, 1 s adverts, [[hald.track]]
              all_down = 0, check tcp every 2 s rise 2 fall 3, retries 3, redispatch, roundrobin.
  hald-v3     the same hald at VRRPv3 with 100 ms adverts.
Both balancers get the same timeouts (connect 5 s, client/server 50 s) and one thread (HAProxy
`nbthread 1`; hald's balancer runtime has one thread).

Lab: ../shared/lab/netlab.sh with LAB_PREFIX (default `hb`): balancers h1 10.99.0.11 (Master) and
h2 10.99.0.12, VIP 10.99.0.200/24, VRID 51; the client namespace (10.99.0.100) also runs the three
backends, nginx on 10.99.0.100:18081..18083 (one process each, `GET /` = 200 "ok"). Traffic stays
inside these namespaces; the orchestrator itself never opens a socket to a lab address (readiness is
checked with `ss` inside the namespace). The namespaces are removed on exit, also on failure or ^C.

Load: 8 keep-alive HTTP/1.1 clients in the client namespace, each sending `GET /` to the VIP one after
the other with a 5 ms pause (about 1,000-1,500 requests/s in all), as examples/tests/hald.rs's client:
- a request on a reused connection that is closed before any byte of an answer is sent again on a new
  connection (RFC 9112 9.3.1, as browsers and curl do) and not counted;
- anything else that is not a 200 is a failed request: refused or reset connections, a reset after the
  request went out, a connect that takes over 10 s, an answer that takes over 5 s, a 5xx. After a
  failure the client waits 100 ms and tries again on a new connection, so during an outage in which
  the address answers with resets failures pile up at about 80/s, and where packets vanish (link cut)
  they are one per client per timeout.
- `Connection: close` in an answer closes the connection; the next request opens a new one.

Scenarios (the fault at 2-4 s into the load, uniformly at random so that the runs sample every phase of
the 1 s advert and the 2 s chk_haproxy cycles; the stack is started afresh for each run):
  backend-killed  SIGKILL to backend s2 (nginx); measured over 12 s.
  backend-back    s2 started again, 12 s after it was killed (both stacks have marked it down by then:
                  fall 3 at 2 s); measured over 10 s. Same load run as backend-killed.
  balancer-killed SIGKILL to the Master's balancer: HAProxy on h1 (keepalived stays), or hald on h1
                  (its VRRP half dies with it); reaped at once, as systemd does (a zombie still passes
                  `kill -0`). 12 s.
  link-cut        `ip link set eth0 down` in h1. 12 s.
  handover        planned: SIGTERM to keepalived on h1 (what `systemctl stop keepalived` does; HAProxy
                  keeps running), or SIGTERM to hald on h1 (drain, then priority 0). 8 s.

Figures per run: failed requests; longest gap = the longest time without any successful answer (all
clients together) in the scenario's window; recover = from the fault until answers flow again for good
(the first answer after the last failure and after the last pause > 250 ms; 0 if neither happened);
VIP@h2 = from the fault until 10.99.0.200 is on h2 (`ip addr`, polled every 10 ms). The table shows
medians over the runs (and min-max). The machine's 1-minute load average is logged per run: with
other work on the machine every figure here is noisy; compare the stacks within one invocation.
Each scenario run takes < 45 s (setup included) and is killed at 120 s; the whole default invocation
(3 runs x 4 load runs x 2 stacks) about 9 minutes.
"""

import argparse
import asyncio
import json
import os
import random
import shutil
import signal
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
P = os.environ.get("LAB_PREFIX", "hb")
LAB_DIR = Path(os.environ.get("LAB_DIR", REPO.parent / "shared" / "lab"))
NETLAB = LAB_DIR / "netlab.sh"
RUN = Path(os.environ.get("RUN_DIR", f"/tmp/{P}_haldbench"))
HALD = os.environ.get(
    "HALD",
    str(Path(os.environ.get("CARGO_TARGET_DIR", REPO / "target")) / "release" / "hald"),
)
VIP = "10.99.0.200"
CLIENT = "10.99.0.100"
PORTS = [18081, 18082, 18083]
CLIENTS = 8
PAUSE = 0.005
FAIL_PAUSE = 0.1
CONNECT_TIMEOUT = 10.0
ANSWER_TIMEOUT = 5.0
PAUSE_THRESHOLD = 0.25
FAULT_AT = 2.0  # + a random 0-2 s: every phase of the advert (1 s) and chk_haproxy (2 s) cycles
RUN_LIMIT = 120.0

SCENARIOS = ["backend-killed", "balancer-killed", "link-cut", "handover", "backend-back"]
STACKS = {
    "keepalived": "keepalived + HAProxy",
    "hald": "hald (v2, 1 s)",
    "hald-v3": "hald (v3, 100 ms)",
}


def log(*a):
    print(f"[{time.strftime('%T')}]", *a, file=sys.stderr, flush=True)


def ns(host):
    return f"{P}{host}"


def run(*argv, check=True, quiet=False):
    r = subprocess.run(argv, capture_output=True, text=True)
    if check and r.returncode != 0:
        raise RuntimeError(f"{' '.join(argv)}: {r.stderr.strip()}")
    return r.stdout


PROCS = []  # every process started here: killed by PID at the end


def spawn(host, argv, logname):
    out = open(RUN / logname, "ab")
    out.write(f"=== {time.strftime('%T')} {' '.join(argv)}\n".encode())
    out.flush()
    p = subprocess.Popen(
        ["ip", "netns", "exec", ns(host), *argv],
        stdout=out,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
        start_new_session=True,
    )
    PROCS.append(p)
    return p  # `ip netns exec` execs the program: p.pid is the program's PID


def kill(p, sig=signal.SIGKILL):
    if p is not None and p.poll() is None:
        try:
            os.kill(p.pid, sig)
        except ProcessLookupError:
            pass


def reap(p, timeout=5.0):
    if p is None:
        return
    try:
        p.wait(timeout)
    except subprocess.TimeoutExpired:
        kill(p)
        p.wait(5)


def has_vip(host):
    out = run("ip", "-n", ns(host), "-o", "addr", "show", "dev", "eth0", check=False)
    return f" {VIP}/" in out


def wait_for(cond, timeout, step=0.02):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if cond():
            return True
        time.sleep(step)
    return False


def listening(host, port):
    out = run("ip", "netns", "exec", ns(host), "ss", "-Htln", f"sport = :{port}", check=False)
    return bool(out.strip())


# ---------------------------------------------------------------- backends (nginx, client namespace)

NGINX_CONF = """\
master_process off;
daemon off;
worker_processes 1;
pid {run}/nginx-{port}.pid;
error_log {run}/nginx-{port}.err warn;
events {{ worker_connections 4096; }}
http {{
    access_log off;
    server_tokens off;
    client_body_temp_path {run}/nginx-{port}-tmp/body;
    proxy_temp_path {run}/nginx-{port}-tmp/proxy;
    fastcgi_temp_path {run}/nginx-{port}-tmp/fastcgi;
    uwsgi_temp_path {run}/nginx-{port}-tmp/uwsgi;
    scgi_temp_path {run}/nginx-{port}-tmp/scgi;
    keepalive_timeout 65s;
    keepalive_requests 1000000;
    server {{
        listen {addr}:{port} backlog=4096;
        default_type text/plain;
        add_header X-Backend {port} always;
        location / {{ return 200 "ok\\n"; }}
    }}
}}
"""


class Backends:
    def __init__(self):
        self.procs = {}

    def start(self, port):
        conf = RUN / f"nginx-{port}.conf"
        (RUN / f"nginx-{port}-tmp").mkdir(exist_ok=True)
        conf.write_text(NGINX_CONF.format(run=RUN, port=port, addr=CLIENT))
        self.procs[port] = spawn("cl", ["nginx", "-c", str(conf), "-p", str(RUN)], f"nginx-{port}.log")
        if not wait_for(lambda: listening("cl", port), 5):
            raise RuntimeError(f"nginx on {port} did not start (see {RUN}/nginx-{port}.log)")

    def ensure_all(self):
        for port in PORTS:
            p = self.procs.get(port)
            if p is None or p.poll() is not None:
                reap(p)
                self.start(port)

    def kill(self, port):
        kill(self.procs.get(port))
        reap(self.procs.get(port))

    def stop_all(self):
        for p in self.procs.values():
            kill(p)
            reap(p)


# ---------------------------------------------------------------- stacks

class Stack:
    name = ""

    def __init__(self):
        self.procs = {}

    def cleanup(self):
        for p in self.procs.values():
            kill(p, signal.SIGSTOP)
        for p in self.procs.values():
            kill(p)
            reap(p)
        self.procs = {}
        for h in ("h1", "h2"):
            run("ip", "-n", ns(h), "link", "set", "eth0", "up", check=False)
            run("ip", "-n", ns(h), "addr", "del", f"{VIP}/24", "dev", "eth0", check=False)

    def wait_ready(self, settle):
        if not wait_for(lambda: has_vip("h1") and not has_vip("h2"), 20):
            raise RuntimeError(f"{self.name}: the VIP did not come to h1 alone (logs in {RUN})")
        time.sleep(settle)
        if not (has_vip("h1") and not has_vip("h2")):
            raise RuntimeError(f"{self.name}: the VIP is not on h1 alone after settling")


HAPROXY_CFG = """\
global
    nbthread 1
    maxconn 4000
    log stdout format iso local0 notice
defaults
    mode http
    log global
    option dontlognull
    option http-keep-alive
    timeout connect 5s
    timeout client 50s
    timeout server 50s
    timeout http-keep-alive 50s
    retries 3
    option redispatch
listen web
    bind {vip}:80
    balance roundrobin
{servers}
"""

KEEPALIVED_CONF = """\
global_defs {{
    router_id {p}{host}
    script_user root
    enable_script_security
}}
vrrp_script chk_haproxy {{
    script "/usr/bin/kill -0 {haproxy_pid}"   # the seeds: "killall -0 haproxy"
    interval 2
    weight 2
}}
vrrp_instance VI_1 {{
    state {state}
    interface eth0
    virtual_router_id 51
    priority {prio}
    advert_int 1
    virtual_ipaddress {{
        {vip}/24 dev eth0
    }}
    track_script {{
        chk_haproxy
    }}
}}
"""


class Keepalived(Stack):
    name = "keepalived"

    def start(self):
        servers = "\n".join(
            f"    server s{i + 1} {CLIENT}:{port} check inter 2000 rise 2 fall 3"
            for i, port in enumerate(PORTS)
        )
        for n, host in enumerate(("h1", "h2")):
            cfg = RUN / f"haproxy-{host}.cfg"
            cfg.write_text(HAPROXY_CFG.format(vip=VIP, servers=servers))
            self.procs[f"haproxy-{host}"] = hp = spawn(host, ["haproxy", "-db", "-f", str(cfg)], f"haproxy-{host}.log")
            conf = RUN / f"keepalived-{host}.conf"
            conf.write_text(KEEPALIVED_CONF.format(
                p=P, host=host, haproxy_pid=hp.pid, vip=VIP,
                state="MASTER" if n == 0 else "BACKUP", prio=101 - n))
            pids = [RUN / f"keepalived-{host}.{k}.pid" for k in ("main", "vrrp", "chk")]
            for f in pids:
                f.unlink(missing_ok=True)
            self.procs[f"keepalived-{host}"] = spawn(host, [
                "keepalived", "-n", "-l", "-D", "-G", "-P", "-f", str(conf),
                "-p", str(pids[0]), "-r", str(pids[1]), "-c", str(pids[2])], f"keepalived-{host}.log")
        for host in ("h1", "h2"):
            if not wait_for(lambda: listening(host, 80), 5):
                raise RuntimeError(f"HAProxy on {host} does not listen (see {RUN}/haproxy-{host}.log)")
        # chk_haproxy has run on both hosts (interval 2 s) and h2 heard h1's adverts.
        self.wait_ready(4.0)

    def _vrrp_child(self, host):
        try:
            return int((RUN / f"keepalived-{host}.vrrp.pid").read_text())
        except (OSError, ValueError):
            return None

    def cleanup(self):
        # keepalived's VRRP child has PDEATHSIG=SIGTERM (it would stop gracefully): freeze it first.
        for host in ("h1", "h2"):
            child = self._vrrp_child(host)
            main = self.procs.get(f"keepalived-{host}")
            if child and main is not None and main.poll() is None:
                for sig in (signal.SIGSTOP, signal.SIGKILL):
                    try:
                        os.kill(child, sig)
                    except ProcessLookupError:
                        pass
        super().cleanup()

    def kill_balancer(self):
        # Reaped at once, as systemd would: `kill -0` (and killall) still find a zombie.
        kill(self.procs["haproxy-h1"])
        reap(self.procs["haproxy-h1"])

    def stop_master(self):
        kill(self.procs["keepalived-h1"], signal.SIGTERM)


HALD_CONF = """\
status_socket = "{socket}"
# Every run starts afresh: no hold-down after the previous run's SIGKILL (the guard's file
# beside the status socket says which instance was Master when it died).
crash_hold_down = "0s"

[hald]
drain = "5s"

[[hald.track]]
instance = "VI_1"
listener = "web"
all_down = 0

[[instance]]
name = "VI_1"
interface = "eth0"
vrid = 51
priority = {prio}
version = {version}
advert_interval = "{advert}"
virtual_addresses = ["{vip}/24"]

[[listen]]
name = "web"
bind = "{vip}:80"
mode = "http"
balance = "roundrobin"
retries = 3
redispatch = true
timeouts = {{ connect = "5s", client = "50s", server = "50s" }}
check = {{ tcp = true, interval = "2s", rise = 2, fall = 3 }}
servers = [{servers}]
"""


def hald_state(host):
    import socket as s
    try:
        c = s.socket(s.AF_UNIX, s.SOCK_STREAM)
        c.settimeout(2)
        c.connect(str(RUN / f"hald-{host}.sock"))
        data = b""
        while chunk := c.recv(65536):
            data += chunk
        c.close()
        for i in json.loads(data).get("instances", []):
            if i.get("name") == "VI_1":
                return i.get("state")
    except (OSError, ValueError):
        return None
    return None


class Hald(Stack):
    def __init__(self, version, advert):
        super().__init__()
        self.version, self.advert = version, advert
        self.name = "hald" if version == 2 else "hald-v3"

    def start(self):
        servers = ", ".join(
            f'{{ name = "s{i + 1}", addr = "{CLIENT}:{port}" }}' for i, port in enumerate(PORTS))
        for n, host in enumerate(("h1", "h2")):
            conf = RUN / f"{self.name}-{host}.toml"
            conf.write_text(HALD_CONF.format(
                socket=RUN / f"hald-{host}.sock", prio=101 - n, version=self.version,
                advert=self.advert, vip=VIP, servers=servers))
            self.procs[host] = spawn(host, [HALD, "--config", str(conf)], f"{self.name}-{host}.log")
        self.wait_ready(0.5)
        # Not a Backup in FAULT: h2's servers are up too, so it can take over.
        if not wait_for(lambda: hald_state("h2") == "BACKUP" and hald_state("h1") == "MASTER", 15, 0.1):
            raise RuntimeError(f"hald: h1 {hald_state('h1')}, h2 {hald_state('h2')} (logs in {RUN})")
        time.sleep(1.0)

    def kill_balancer(self):
        kill(self.procs["h1"])
        reap(self.procs["h1"])

    def stop_master(self):
        kill(self.procs["h1"], signal.SIGTERM)


def make_stack(name):
    if name == "keepalived":
        return Keepalived()
    if name == "hald":
        return Hald(2, "1s")
    if name == "hald-v3":
        return Hald(3, "100ms")
    raise SystemExit(f"unknown stack {name} (known: {', '.join(STACKS)})")


# ---------------------------------------------------------------- the load (runs in the client namespace)

async def _load(duration):
    request = f"GET / HTTP/1.1\r\nHost: {VIP}\r\n\r\n".encode()
    start = time.monotonic()
    print(f"start {start}", flush=True)
    end = start + duration
    oks, fails = [], []

    async def one():
        reader = writer = None
        served = 0

        def close():
            nonlocal reader, writer, served
            if writer is not None:
                writer.transport.abort()
            reader = writer = None
            served = 0

        while time.monotonic() < end:
            t0 = time.monotonic()
            if writer is None:
                try:
                    reader, writer = await asyncio.wait_for(
                        asyncio.open_connection(VIP, 80), CONNECT_TIMEOUT)
                except Exception as e:  # noqa: BLE001 (every error is a failed request)
                    fails.append((t0, time.monotonic(), f"connect: {type(e).__name__} {e}"))
                    close()
                    await asyncio.sleep(FAIL_PAUSE)
                    continue
            try:
                writer.write(request)
                status, must_close = await asyncio.wait_for(answer(reader, writer), ANSWER_TIMEOUT)
            except asyncio.IncompleteReadError as e:
                if served > 0 and not e.partial:
                    close()  # closed while idle: send it again on a new connection
                    continue
                fails.append((t0, time.monotonic(), "closed in the answer"))
                close()
                await asyncio.sleep(FAIL_PAUSE)
                continue
            except Exception as e:  # noqa: BLE001
                what = "no answer in 5 s" if isinstance(e, asyncio.TimeoutError) else f"{type(e).__name__} {e}"
                fails.append((t0, time.monotonic(), what))
                close()
                await asyncio.sleep(FAIL_PAUSE)
                continue
            now = time.monotonic()
            if status == 200:
                oks.append(now)
            else:
                fails.append((t0, now, f"status {status}"))
            served += 1
            if must_close or status != 200:
                close()
            await asyncio.sleep(PAUSE)
        close()

    async def answer(reader, writer):
        await writer.drain()
        head = await reader.readuntil(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        status = int(lines[0].split()[1])
        headers = {k.strip().lower(): v.strip() for k, _, v in (l.partition(":") for l in lines[1:] if l)}
        await reader.readexactly(int(headers.get("content-length", "0")))
        return status, headers.get("connection", "").lower() == "close"

    tasks = [asyncio.create_task(one()) for _ in range(CLIENTS)]
    await asyncio.wait(tasks, timeout=duration + CONNECT_TIMEOUT + 2)
    for t in tasks:
        t.cancel()
    json.dump({"start": start, "oks": oks, "fails": fails}, sys.stdout)
    sys.stdout.flush()


def start_load(duration):
    p = subprocess.Popen(
        ["ip", "netns", "exec", ns("cl"), sys.executable, str(Path(__file__).resolve()), "_load", str(duration)],
        stdout=subprocess.PIPE, stderr=open(RUN / "load.err", "ab"), stdin=subprocess.DEVNULL,
        text=True, start_new_session=True)
    PROCS.append(p)
    first = p.stdout.readline().split()
    if len(first) != 2 or first[0] != "start":
        raise RuntimeError(f"the load did not start (see {RUN}/load.err)")
    return p, float(first[1])


def finish_load(p, duration):
    out, _ = p.communicate(timeout=duration + CONNECT_TIMEOUT + 10)
    return json.loads(out)


def vip_watch(stop):
    """Polls h2 for the VIP from now on; returns a function giving the monotonic time it appeared."""
    seen = []

    def poll():
        while not stop.is_set():
            if has_vip("h2"):
                seen.append(time.monotonic())
                return
            time.sleep(0.01)

    t = threading.Thread(target=poll, daemon=True)
    t.start()
    return lambda: (t.join(1), seen[0] if seen else None)[1]


def figures(load, w0, w1, fault, vip_at=None):
    oks = sorted(t for t in load["oks"] if w0 <= t < w1)
    fails = [f for f in load["fails"] if w0 <= f[1] < w1]
    gaps = [(b - a, b) for a, b in zip(oks, oks[1:])]
    if oks:
        gaps.append((w1 - oks[-1], None))  # not answered again before the window closed
        gaps.append((oks[0] - w0, oks[0]))
    longest = max(g[0] for g in gaps) if gaps else w1 - w0
    closers = []
    for _, e, _ in fails:
        if e >= fault:
            after = [t for t in oks if t > e]
            closers.append(after[0] if after else None)
    for length, closing in gaps:
        if length > PAUSE_THRESHOLD and (closing is None or closing > fault):
            closers.append(closing)
    if None in closers:
        recover = None
    else:
        recover = max(closers) - fault if closers else 0.0
    errors = {}
    for _, _, what in fails:
        key = what.split(":")[0] if what.startswith("connect") else what
        key = key if len(key) < 60 else key[:60]
        errors[key] = errors.get(key, 0) + 1
    return {
        "failed": len(fails),
        "gap": longest,
        "recover": recover,
        "vip": None if vip_at is None else vip_at - fault,
        "answered": len(oks),
        "errors": errors,
    }


# ---------------------------------------------------------------- one run of a scenario on a stack

def one_run(stack, scenario, backends):
    """Returns {scenario: figures} (backend-killed also yields backend-back)."""
    backends.ensure_all()
    run("ip", "-n", ns("cl"), "neigh", "flush", "all", check=False)
    stack.cleanup()
    stack.start()
    at = FAULT_AT + random.uniform(0.0, 2.0)
    after = {"backend-killed": 22.0, "balancer-killed": 12.0, "link-cut": 12.0, "handover": 8.0}[scenario]
    duration = at + after
    load, t0 = start_load(duration)
    stop = threading.Event()
    try:
        time.sleep(max(0.0, t0 + at - time.monotonic()))
        watch = vip_watch(stop) if scenario != "backend-killed" else (lambda: None)
        fault = time.monotonic()
        if scenario == "backend-killed":
            backends.kill(PORTS[1])
        elif scenario == "balancer-killed":
            stack.kill_balancer()
        elif scenario == "link-cut":
            run("ip", "-n", ns("h1"), "link", "set", "eth0", "down")
        elif scenario == "handover":
            stack.stop_master()
        back = None
        if scenario == "backend-killed":
            time.sleep(max(0.0, t0 + at + 12.0 - time.monotonic()))
            back = time.monotonic()
            backends.start(PORTS[1])
        result = finish_load(load, duration)
        vip_at = watch()
    finally:
        stop.set()
        kill(load)
        stack.cleanup()
    end = t0 + duration
    if scenario == "backend-killed":
        return {
            "backend-killed": figures(result, t0, back, fault),
            "backend-back": figures(result, back, end, back),
        }
    return {scenario: figures(result, t0, end, fault, vip_at)}


# ---------------------------------------------------------------- table

def fmt_s(v):
    if v is None:
        return "n/r"
    return f"{v:.2f}"


def med(values, fmt):
    vals = [v for v in values]
    if not vals:
        return "-"
    if any(v is None for v in vals):
        known = [v for v in vals if v is not None]
        return f"n/r ({len(vals) - len(known)} of {len(vals)})" if not known else \
            f"{fmt(statistics.median(known))} ({len(vals) - len(known)} n/r)"
    m = statistics.median(vals)
    if len(vals) == 1:
        return fmt(m)
    return f"{fmt(m)} ({fmt(min(vals))}–{fmt(max(vals))})"


def table(results, stacks, scenarios):
    lines = ["| scenario | stack | failed requests | longest gap (s) | recover (s) | VIP@h2 (s) | runs |",
             "| --- | --- | --- | --- | --- | --- | --- |"]
    for scn in scenarios:
        for st in stacks:
            rs = [r for r in results if r["stack"] == st and r["scenario"] == scn]
            if not rs:
                continue
            failed = med([r["failed"] for r in rs], lambda v: f"{v:g}")
            gap = med([r["gap"] for r in rs], fmt_s)
            rec = med([r["recover"] for r in rs], fmt_s)
            vip = "—" if scn.startswith("backend") else med([r["vip"] for r in rs], fmt_s)
            lines.append(f"| {scn} | {STACKS[st]} | {failed} | {gap} | {rec} | {vip} | {len(rs)} |")
    return "\n".join(lines)


# ---------------------------------------------------------------- main

def lab_down():
    subprocess.run(["bash", str(NETLAB), "down"], env={**os.environ, "LAB_PREFIX": P},
                   capture_output=True)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("-r", "--runs", type=int, default=3)
    ap.add_argument("-s", "--stacks", default="keepalived,hald")
    ap.add_argument("--scenarios", default="backend-killed,balancer-killed,link-cut,handover",
                    help="backend-killed also measures backend-back")
    ap.add_argument("-o", "--output", help="also write the table and the raw runs to this file")
    args = ap.parse_args()
    stacks = args.stacks.split(",")
    for s in stacks:
        make_stack(s)
    runs_of = [s for s in args.scenarios.split(",") if s != "backend-back"]
    for s in runs_of:
        if s not in SCENARIOS:
            raise SystemExit(f"unknown scenario {s}")
    if os.geteuid() != 0:
        raise SystemExit("needs root (network namespaces)")
    need = ["ip", "ss", "nginx"] + (["keepalived", "haproxy"] if "keepalived" in stacks else [])
    for tool in need:
        if not shutil.which(tool):
            raise SystemExit(f"{tool} is missing")
    if any(s.startswith("hald") for s in stacks) and not os.access(HALD, os.X_OK):
        raise SystemExit(f"{HALD} missing: cargo build --release -p examples --bin hald (or HALD=...)")
    existing = run("ip", "netns", "list").split()
    if any(n in existing for n in (ns("sw"), ns("h1"), ns("h2"), ns("cl"))):
        raise SystemExit(f"namespaces with prefix {P} exist already: another run? (LAB_PREFIX=...)")

    RUN.mkdir(parents=True, exist_ok=True)
    for f in RUN.glob("*.log"):
        f.unlink()
    backends = Backends()
    results = []
    failed_runs = []

    def teardown(*_):
        for p in PROCS:
            kill(p, signal.SIGSTOP)
            kill(p)
        lab_down()

    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    try:
        subprocess.run(["bash", str(NETLAB), "up", "2"], env={**os.environ, "LAB_PREFIX": P}, check=True)
        for h in ("h1", "h2"):  # as the seeds: HAProxy binds the VIP before it owns it
            run("ip", "netns", "exec", ns(h), "sysctl", "-qw", "net.ipv4.ip_nonlocal_bind=1")
        for port in PORTS:
            backends.start(port)
        started = time.strftime("%Y-%m-%d %H:%M")
        # Runs interleaved: run 1 of every scenario on every stack, then run 2, ...
        for i in range(args.runs):
            for scn in runs_of:
                for st in stacks:
                    stack = make_stack(st)
                    load = open("/proc/loadavg").read().split()[0]
                    t = time.monotonic()
                    log(f"run {i + 1}/{args.runs} {scn} on {st} (load average {load})")
                    timer = threading.Timer(RUN_LIMIT, lambda: os.kill(os.getpid(), signal.SIGTERM))
                    timer.start()
                    try:
                        got = one_run(stack, scn, backends)
                    except RuntimeError as e:  # a stack that did not come up: say so, go on
                        log(f"  run failed: {e}")
                        failed_runs.append(f"run {i + 1} {scn} on {st}: {e}")
                        got = {}
                    finally:
                        timer.cancel()
                    for name, fig in got.items():
                        fig.update(stack=st, scenario=name, run=i + 1, loadavg=float(load))
                        results.append(fig)
                        log(f"  {name}: failed {fig['failed']} gap {fig['gap']:.3f} s recover "
                            f"{fmt_s(fig['recover'])} s VIP@h2 {fmt_s(fig['vip'])} s answered {fig['answered']} "
                            f"errors {fig['errors']} ({time.monotonic() - t:.0f} s)")
    finally:
        teardown()
    scenarios = [s for s in SCENARIOS if any(r["scenario"] == s for r in results)]
    text = table(results, stacks, scenarios)
    loads = [r["loadavg"] for r in results]
    head = (f"hald_stack.py, {started}, {args.runs} run(s); machine: {os.cpu_count()} CPUs, "
            f"1-min load average {min(loads):.1f}–{max(loads):.1f} during the runs" if loads else "no runs")
    if failed_runs:
        text += "\n\nruns that did not complete:\n" + "\n".join(failed_runs)
    print(head)
    print(text)
    if args.output:
        with open(args.output, "w") as f:
            f.write(head + "\n\n" + text + "\n\nraw runs (JSON lines):\n")
            for r in results:
                f.write(json.dumps(r) + "\n")


if __name__ == "__main__":
    if len(sys.argv) > 2 and sys.argv[1] == "_load":
        asyncio.run(_load(float(sys.argv[2])))
    else:
        main()

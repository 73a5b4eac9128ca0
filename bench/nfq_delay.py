#!/usr/bin/env python3
"""nfq_delay.py -- delay + jitter without netem: holds each packet of an NFQUEUE for a random
time, then accepts it (packets can overtake each other, as with netem's jitter).

Usage (as root, inside the network namespace whose iptables rule queues the packets):
  nfq_delay.py QUEUE DELAY_MS JITTER_MS [--seconds S]
Each packet waits uniform(DELAY - JITTER, DELAY + JITTER) ms (at least 0). Prints READY once
bound; exits after --seconds (default 600) or on SIGTERM (releasing what it holds). Rule that feeds it, e.g.:
  iptables -A OUTPUT -o eth0 -j NFQUEUE --queue-num 7 --queue-bypass
(--queue-bypass: packets pass undelayed when this program is not running.)

Written for kernels built without sch_netem (and without nft's `queue`): netlink by hand,
NFNL_SUBSYS_QUEUE messages as in linux/netfilter/nfnetlink_queue.h; no library needed.
"""
import heapq
import random
import signal
import socket
import struct
import sys
import threading
import time

NETLINK_NETFILTER = 12
NFNL_SUBSYS_QUEUE = 3
NFQNL_MSG_PACKET, NFQNL_MSG_VERDICT, NFQNL_MSG_CONFIG = 0, 1, 2
NFQA_CFG_CMD, NFQA_CFG_PARAMS = 1, 2
NFQA_PACKET_HDR, NFQA_VERDICT_HDR = 1, 2
NFQNL_CFG_CMD_BIND = 1
NFQNL_COPY_META = 1
NF_ACCEPT = 1
NLM_F_REQUEST, NLM_F_ACK = 1, 4
NLMSG_ERROR = 2

queue, delay, jitter = int(sys.argv[1]), float(sys.argv[2]) / 1e3, float(sys.argv[3]) / 1e3
seconds = float(sys.argv[sys.argv.index("--seconds") + 1]) if "--seconds" in sys.argv else 600.0

s = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, NETLINK_NETFILTER)
s.bind((0, 0))
s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 20)
seq = 0
lock = threading.Lock()


def attr(kind, payload):
    n = 4 + len(payload)
    return struct.pack("=HH", n, kind) + payload + b"\0" * ((4 - n % 4) % 4)


def send(msg_type, attrs, flags=NLM_F_REQUEST):
    global seq
    with lock:
        seq += 1
        body = struct.pack("=BBH", socket.AF_UNSPEC, 0, socket.htons(queue)) + b"".join(attrs)
        s.send(struct.pack("=IHHII", 16 + len(body), (NFNL_SUBSYS_QUEUE << 8) | msg_type, flags, seq, 0) + body)


send(NFQNL_MSG_CONFIG, [attr(NFQA_CFG_CMD, struct.pack("!BxH", NFQNL_CFG_CMD_BIND, 0))], NLM_F_REQUEST | NLM_F_ACK)
send(NFQNL_MSG_CONFIG, [attr(NFQA_CFG_PARAMS, struct.pack("!IB", 0, NFQNL_COPY_META))], NLM_F_REQUEST | NLM_F_ACK)

pending = []  # heap of (due, packet id)
cv = threading.Condition()


def releaser():
    while True:
        with cv:
            while not pending or pending[0][0] > time.monotonic():
                cv.wait(None if not pending else pending[0][0] - time.monotonic())
            _, pid = heapq.heappop(pending)
        send(NFQNL_MSG_VERDICT, [attr(NFQA_VERDICT_HDR, struct.pack("!II", NF_ACCEPT, pid))])


def release_all(*_):
    """On SIGTERM: what is held goes out now (the kernel would drop it with the queue)."""
    with cv:
        held = [pid for _, pid in pending]
        pending.clear()
    for pid in held:
        send(NFQNL_MSG_VERDICT, [attr(NFQA_VERDICT_HDR, struct.pack("!II", NF_ACCEPT, pid))])
    sys.exit(0)


signal.signal(signal.SIGTERM, release_all)
threading.Thread(target=releaser, daemon=True).start()
print("READY", flush=True)
end = time.monotonic() + seconds
s.settimeout(0.5)
while time.monotonic() < end:
    try:
        data = s.recv(65536)
    except socket.timeout:
        continue
    off = 0
    while off + 16 <= len(data):
        length, mtype, _flags, _seq, _pid = struct.unpack_from("=IHHII", data, off)
        if length < 16:
            break
        if mtype == NLMSG_ERROR:
            err = struct.unpack_from("=i", data, off + 16)[0]
            if err:
                sys.exit(f"nfq_delay: netlink error {err} (queue {queue} taken, or not root?)")
        elif mtype == (NFNL_SUBSYS_QUEUE << 8) | NFQNL_MSG_PACKET:
            a = off + 20  # after nlmsghdr + nfgenmsg
            while a + 4 <= off + length:
                alen, akind = struct.unpack_from("=HH", data, a)
                if alen < 4:
                    break
                if akind & 0x7FFF == NFQA_PACKET_HDR:
                    pid = struct.unpack_from("!I", data, a + 4)[0]
                    due = time.monotonic() + max(0.0, random.uniform(delay - jitter, delay + jitter))
                    with cv:
                        heapq.heappush(pending, (due, pid))
                        cv.notify()
                    break
                a += (alen + 3) & ~3
        off += (length + 3) & ~3

#!/usr/bin/python3
"""Fair fan-out as a receiver measures it: a call's parties on four ports, its copies timed by
the kernel as each veth peer receives them.

A feed namespace sends 200 MPLS frames on label 1000 (a call with fair = true) and 200 on label
1001 (the same four parties' ports, fair off) into a real vcplaned on af_packet ports; each
party's namespace captures with scapy, and a frame's copies are ranked by their receive
timestamps. With fair on, each port must be first in about a quarter of the frames and every
port's mean rank must be within 5 % of the others'; with fair off the lowest port is first
every time (the order the copies are made and flushed).

  fair_wire_test.py VCPLANED
Exit 77 (skipped) without root, network namespaces or scapy.
"""
import logging
import os
import shutil
import subprocess
import sys
import tempfile
import time

logging.getLogger("scapy.runtime").setLevel(logging.ERROR)
try:
    from scapy.all import Ether, IP, UDP, Raw, rdpcap, wrpcap
    from scapy.contrib.mpls import MPLS
except ImportError:
    print("skipped: python3-scapy is not installed (scripts/setup installs it)")
    sys.exit(77)

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from wire_peers import (add_namespace, remove_namespace, run_peer_role, sh,  # noqa: E402
                        skip_unless_able, start_switch, switch_header, wait_for)

run_peer_role(sys.argv, inter=0.005)
skip_unless_able()

VCPLANED = sys.argv[1]
TAG = f"vf{os.getpid() % 100000}"
MARK = b"vcplane-fair"
FRAMES = 200
PORTS = ["p0", "p1", "p2", "p3"]
names = ["feed"] + PORTS
tmp = tempfile.mkdtemp(prefix=f"{TAG}-")
daemon = None
failures = []


def ns(name):
    return f"{TAG}-{name}"


def check(ok, what):
    print(("ok    " if ok else "FAIL  ") + what, flush=True)
    if not ok:
        failures.append(what)


def ranks(label_base, frames):
    """Per port: how often it was first, and its mean rank, over the frames every port got
    (ties in the receive timestamps are left out)."""
    sniffers = {}
    seconds = FRAMES * 0.005 * 3 + 5
    for p in PORTS:
        out = f"{tmp}/{p}-{label_base}.pcap"
        sniffers[p] = (subprocess.Popen(["ip", "netns", "exec", ns(p), sys.executable, __file__,
                                         "sniff", "eth0", out, str(seconds)]), out)
    for _, out in sniffers.values():
        wait_for(lambda: os.path.exists(out + ".ready"), 10)
    time.sleep(0.5)
    wrpcap(f"{tmp}/send.pcap", frames)
    sh("ip", "netns", "exec", ns("feed"), sys.executable, __file__, "send", "eth0",
       f"{tmp}/send.pcap")
    when = {}  # seq -> {port: receive time}
    for p, (proc, out) in sniffers.items():
        proc.wait(seconds + 20)
        for f in rdpcap(out):
            raw = bytes(f)
            i = raw.find(MARK)
            if i >= 0:
                when.setdefault(int(raw[i + len(MARK) + 1:i + len(MARK) + 5]), {})[p] = float(f.time)
    first = {p: 0 for p in PORTS}
    rank_sum = {p: 0 for p in PORTS}
    counted = ties = 0
    for seq, t in when.items():
        if len(t) != len(PORTS):
            continue
        if len(set(t.values())) != len(PORTS):
            ties += 1
            continue
        order = sorted(PORTS, key=lambda p: t[p])
        first[order[0]] += 1
        for r, p in enumerate(order, 1):
            rank_sum[p] += r
        counted += 1
    mean = {p: rank_sum[p] / counted if counted else 0 for p in PORTS}
    return first, mean, counted, ties, len(when)


try:
    for name in names:
        add_namespace(ns(name))
    mac = open(f"/sys/class/net/{ns('feed')}/address").read().strip()
    config = switch_header([ns(n) for n in names], TAG) + f"""
[connections.feed]
device = "net_af_packet0"
"""
    for i, p in enumerate(PORTS):
        config += f'[connections.{p}]\ndevice = "net_af_packet{i + 1}"\n'
    for call, label, fair in (("fair", 1000, "true"), ("plain", 1001, "false")):
        config += f'[calls.{call}]\nconnection = "feed"\nlabel = {label}\nfair = {fair}\n'
        for i, p in enumerate(PORTS):
            config += (f'[[calls.{call}.parties]]\nconnection = "{p}"\n'
                       f'label = {2000 + label % 10 * 100 + i}\n'
                       f'next_hop = "02:76:66:00:00:0{i}"\n')
    daemon = start_switch(VCPLANED, tmp, config)

    def frames(label):
        return [Ether(src="02:76:66:00:00:aa", dst=mac) / MPLS(label=label, s=1, ttl=64) /
                IP(src="192.0.2.1", dst="239.1.1.1") / UDP(sport=5000, dport=6000) /
                Raw(MARK + b" %04d " % i) for i in range(FRAMES)]

    first, mean, counted, ties, seen = ranks(1000, frames(1000))
    print(f"      fair on: first {first}, mean rank {mean}, {counted} frames ranked, "
          f"{ties} with tied timestamps, {seen} seen")
    check(counted >= FRAMES * 0.9, f"fair on: {counted} of {FRAMES} frames reached all four "
                                   "ports with distinct timestamps")
    share = FRAMES / len(PORTS)
    check(all(0.7 * share <= n <= 1.3 * share for n in first.values()),
          f"fair on: each port first in about a quarter of the frames {first}")
    lo, hi = min(mean.values()), max(mean.values())
    check(hi <= lo * 1.05, f"fair on: mean ranks within 5 % ({lo:.3f}..{hi:.3f})")

    first, mean, counted, ties, seen = ranks(1001, frames(1001))
    print(f"      fair off: first {first}, mean rank {mean}, {counted} ranked, {ties} ties")
    check(first["p0"] >= counted * 0.95 and counted >= FRAMES * 0.9,
          f"fair off: the lowest port first in {first['p0']} of {counted} (the order made)")
finally:
    if daemon is not None and daemon.poll() is None:
        daemon.terminate()
        try:
            daemon.wait(20)
        except subprocess.TimeoutExpired:
            daemon.kill()
    for name in names:
        remove_namespace(ns(name))
    shutil.rmtree(tmp, ignore_errors=True)

if failures:
    print(f"{len(failures)} check(s) failed")
    sys.exit(1)
print("all checks passed")

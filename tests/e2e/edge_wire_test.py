#!/usr/bin/env python3
"""The edge actions on the wire, with scapy as the independent peer that builds and reads the
frames.

Network namespaces on veth pairs into a real vcplaned (af_packet ports):
- feed sends untagged IPv4/UDP frames into a port-based VC fanned out at once to an MPLS party
  (push, uniform TTL), a VLAN party (tag) and an untagged party (forward);
- pw sends MPLS frames with a control word carrying whole Ethernet frames (a P2MP
  pseudowire's egress), decapsulated to the untagged party and to the VLAN party (retagged
  inside);
each receiver captures on its veth, and every captured frame is checked field by field and,
where the action promises it, byte for byte against what was sent.

  edge_wire_test.py VCPLANED
  edge_wire_test.py sniff IFACE PCAP SECONDS      (inside a namespace: the capture)
  edge_wire_test.py send IFACE PCAP               (inside a namespace: the sender)
Exit 77 (skipped) without root, network namespaces or scapy.
"""
import logging
import os
import shutil
import subprocess
import sys
import tempfile
import time

logging.getLogger("scapy.runtime").setLevel(logging.ERROR)  # no "no address on lo" noise
try:
    from scapy.all import (Dot1Q, Ether, IP, UDP, Raw, rdpcap, wrpcap)
    from scapy.contrib.mpls import MPLS
except ImportError:
    print("skipped: python3-scapy is not installed (scripts/setup installs it)")
    sys.exit(77)

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from wire_peers import (add_namespace, remove_namespace, run_peer_role, sh,  # noqa: E402
                        skip_unless_able, start_switch, switch_header, wait_for)

run_peer_role(sys.argv, inter=0.002)

VCPLANED = sys.argv[1]
TAG = f"ve{os.getpid() % 100000}"
MARK = b"vcplane-edge"
FRAMES = 20
failures = []


def check(ok, what):
    print(("ok    " if ok else "FAIL  ") + what, flush=True)
    if not ok:
        failures.append(what)


skip_unless_able()

names = ["feed", "core", "access", "host", "pw"]
hops = {"core": "02:76:65:00:00:01", "access": "02:76:65:00:00:02", "host": "02:76:65:00:00:03"}
tmp = tempfile.mkdtemp(prefix=f"{TAG}-")
daemon = None


def ns(name):
    return f"{TAG}-{name}"


def cleanup():
    if daemon is not None and daemon.poll() is None:
        daemon.terminate()
        try:
            daemon.wait(20)
        except subprocess.TimeoutExpired:
            daemon.kill()
    for name in names:
        remove_namespace(ns(name))
    shutil.rmtree(tmp, ignore_errors=True)


def exchange(sender, frames, receivers, seconds=6):
    """Captures on every receiver while `sender` sends `frames`; returns {receiver: frames
    carrying MARK}."""
    sniffers = {}
    for r in receivers:
        out = f"{tmp}/{r}.pcap"
        for f in (out, out + ".ready"):
            if os.path.exists(f):
                os.unlink(f)
        sniffers[r] = (subprocess.Popen(["ip", "netns", "exec", ns(r), sys.executable, __file__,
                                         "sniff", "eth0", out, str(seconds)]), out)
    for r, (_, out) in sniffers.items():
        wait_for(lambda: os.path.exists(out + ".ready"), 10)
    time.sleep(0.5)  # the capture socket is open once scapy is past its imports
    wrpcap(f"{tmp}/send.pcap", frames)
    sh("ip", "netns", "exec", ns(sender), sys.executable, __file__, "send", "eth0",
       f"{tmp}/send.pcap")
    got = {}
    for r, (p, out) in sniffers.items():
        p.wait(seconds + 20)
        got[r] = [f for f in rdpcap(out) if MARK in bytes(f)]
    return got


try:
    for name in names:
        add_namespace(ns(name))
    mac = {n: open(f"/sys/class/net/{ns(n)}/address").read().strip() for n in names}
    config = switch_header([ns(n) for n in names], TAG) + f"""
[connections.feed]
device = "net_af_packet0"
media = "port"
[connections.core]
device = "net_af_packet1"
[connections.access]
device = "net_af_packet2"
media = "vlan"
[connections.host]
device = "net_af_packet3"
media = "port"
[connections.pw]
device = "net_af_packet4"

[calls.market-data]
connection = "feed"
[[calls.market-data.parties]]
connection = "core"
label = 100
next_hop = "{hops['core']}"
[[calls.market-data.parties]]
connection = "access"
vid = 20
next_hop = "{hops['access']}"
[[calls.market-data.parties]]
connection = "host"
next_hop = "{hops['host']}"

[calls.p2mp-pw]
connection = "pw"
label = 500
payload = "ethernet"
control_word = true
[[calls.p2mp-pw.parties]]
connection = "host"
[[calls.p2mp-pw.parties]]
connection = "access"
vid = 30
"""
    with open(f"{tmp}/vcplane.toml", "w") as f:
        f.write(config)
    checked = subprocess.run([VCPLANED, "--check", f"{tmp}/vcplane.toml"], capture_output=True,
                             text=True)
    check(checked.returncode == 0, f"vcplaned --check accepts the file {checked.stdout}")
    daemon = start_switch(VCPLANED, tmp, config)

    # 1. A port-based VC: untagged UDP in, MPLS, VLAN and untagged out at once.
    sent = [Ether(src="02:76:65:00:00:aa", dst="01:00:5e:01:01:01") /
            IP(src="192.0.2.1", dst="239.1.1.1", ttl=64, tos=0xb8) /
            UDP(sport=5000, dport=6000) / Raw(MARK + b" %04d " % i + bytes(i * 40))
            for i in range(FRAMES)]
    got = exchange("feed", sent, ["core", "access", "host"])
    for r in ("core", "access", "host"):
        check(len(got[r]) == FRAMES, f"{r} got {len(got[r])} of {FRAMES} frames")
    for s, c in zip(sent, got["core"]):
        ip = bytes(s[IP])
        ok = (c[Ether].dst == hops["core"] and c[Ether].src == mac["core"] and c.haslayer(MPLS)
              and c[MPLS].label == 100 and c[MPLS].s == 1 and c[MPLS].ttl == 63
              and c[MPLS].cos == 5 and bytes(c[MPLS].payload) == ip)
        check(ok, f"MPLS party: label 100, TTL 63, TC 5 (EF), the IP packet intact: {c!r:.120}")
    for s, a in zip(sent, got["access"]):
        ok = (a[Ether].dst == hops["access"] and a.haslayer(Dot1Q) and a[Dot1Q].vlan == 20
              and a[Dot1Q].prio == 5 and a[Dot1Q].type == 0x0800
              and bytes(a[Dot1Q].payload) == bytes(s[IP]))
        check(ok, f"VLAN party: VID 20, PCP 5, the IP packet intact: {a!r:.120}")
    for s, h in zip(sent, got["host"]):
        ok = (h[Ether].dst == hops["host"] and h[Ether].src == mac["host"]
              and bytes(h)[12:] == bytes(s)[12:])
        check(ok, f"untagged party: addresses rewritten, every other byte as sent")

    # 1b. Tagged frames into the same port VC (VID 55, PCP 3, TOS 0): the push takes the tag
    # off with the ethertype and its TC is the tag's PCP; the tag party puts its tag in front
    # of the frame's, with the frame's PCP; the untagged party forwards it as it came.
    tagged = [Ether(src="02:76:65:00:00:aa", dst="01:00:5e:01:01:02") /
              Dot1Q(vlan=55, prio=3) /
              IP(src="192.0.2.1", dst="239.1.1.2", ttl=64, tos=0) /
              UDP(sport=5000, dport=6000) / Raw(MARK + b" tagged %04d " % i + bytes(i * 40))
              for i in range(FRAMES)]
    got = exchange("feed", tagged, ["core", "access", "host"])
    for r in ("core", "access", "host"):
        check(len(got[r]) == FRAMES, f"{r} got {len(got[r])} of {FRAMES} tagged frames")
    for s, c in zip(tagged, got["core"]):
        ok = (c.haslayer(MPLS) and c[MPLS].label == 100 and c[MPLS].s == 1
              and c[MPLS].ttl == 63 and c[MPLS].cos == 3
              and bytes(c[MPLS].payload) == bytes(s[IP]))
        check(ok, f"MPLS party of a tagged frame: TC 3 from the PCP, TTL 63: {c!r:.120}")
    for s, a in zip(tagged, got["access"]):
        ok = (a.haslayer(Dot1Q) and a[Dot1Q].vlan == 20 and a[Dot1Q].prio == 3
              and bytes(a)[16:] == bytes(s)[12:])
        check(ok, f"VLAN party of a tagged frame: VID 20, PCP 3, the frame's own tag kept")
    for s, h in zip(tagged, got["host"]):
        check(bytes(h)[12:] == bytes(s)[12:], "untagged party: a tagged frame forwarded as sent")

    # 2. A P2MP pseudowire's egress: the customer's frames back bit for bit.
    inner = [Ether(src="00:11:22:33:44:55", dst="00:66:77:88:99:aa") /
             IP(src="198.51.100.1", dst="198.51.100.2") / UDP() /
             Raw(MARK + b" pw %04d " % i + bytes(i * 60)) for i in range(FRAMES)]
    outer = [Ether(src="02:76:65:00:00:bb", dst=mac["pw"], type=0x8847) /
             MPLS(label=500, s=1, ttl=64, cos=3) / Raw(bytes(4) + bytes(f)) for f in inner]
    got = exchange("pw", outer, ["host", "access"])
    check(len(got["host"]) == FRAMES, f"untagged pseudowire egress got {len(got['host'])}")
    check(len(got["access"]) == FRAMES, f"VLAN pseudowire egress got {len(got['access'])}")
    check([bytes(f) for f in got["host"]] == [bytes(f) for f in inner],
          "every inner frame handed back bit for bit, in order")
    for i, a in zip(inner, got["access"]):
        b = bytes(i)
        ok = (a.haslayer(Dot1Q) and a[Dot1Q].vlan == 30 and a[Dot1Q].prio == 3
              and bytes(a)[:12] == b[:12] and bytes(a)[16:] == b[12:])
        check(ok, "VLAN pseudowire egress: the inner frame with VID 30, PCP 3 inserted")
finally:
    cleanup()

if failures:
    print(f"{len(failures)} check(s) failed")
    sys.exit(1)
print("all checks passed")

#!/usr/bin/python3
"""The VM layer: vcplane on real PCI NICs, bound to vfio-pci behind an emulated IOMMU, with
hugepages, under systemd, in a QEMU guest this test boots.

  vm_test.py SOURCE_DIR

The guest (tests/vm/build_image: Debian 12 from the archive apt uses, its kernel and systemd,
the vcplane .deb built from SOURCE_DIR with its dependencies) boots once with three PCI NICs
on host tap devices, each behind its own PCIe root port, and two spare root ports:

  nic0 virtio-net-pci, 2 queues (net_virtio)  0000:01:00.0  connection uplink0
  nic1 e1000e         (net_e1000_em)          0000:02:00.0  connection leaf0
  nic2 virtio-net-pci (net_virtio)            0000:03:00.0  connection video0

The switch runs the package's own example (/etc/vcplane/vcplane.toml) adapted to these
addresses. Frames come from scapy on the host's taps and are read back with tshark. Commands
reach the guest through a 9p share (the guest's vm-agent runs them); QEMU's monitor flaps
links and unplugs devices. Every case prints ok/FAIL lines, and the run ends with GoogleTest's
summary lines (scripts/test counts them). VCPLANE_VM_IMAGE=DIR boots an image already built
(build_image's cache directory) instead of building one. Exit 77 (skipped, with the reason) where QEMU,
debootstrap, tshark, scapy or root are missing.
"""
import logging
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time

logging.getLogger("scapy.runtime").setLevel(logging.ERROR)


def skip(why):
    print(f"skipped: {why}")
    sys.exit(77)


if os.geteuid() != 0:
    skip("needs root (tap devices, debootstrap, QEMU)")
for tool in ("qemu-system-x86_64", "debootstrap", "tshark", "mkfs.ext4", "dpkg-buildpackage"):
    if shutil.which(tool) is None:
        skip(f"{tool} is not installed (scripts/setup installs it)")
try:
    from scapy.all import Dot1Q, Ether, IP, UDP, Raw, rdpcap, sendp
    from scapy.contrib.mpls import MPLS
except ImportError:
    skip("python3-scapy is not installed (scripts/setup installs it)")

SRC = os.path.abspath(sys.argv[1])
HERE = os.path.dirname(os.path.abspath(__file__))
TAG = f"vt{os.getpid() % 10000}"
NICS = [  # netdev id, QEMU device, guest PCI address, MAC, connection
    ("n0", "virtio-net-pci", "0000:01:00.0", "52:54:00:76:00:10", "uplink0"),
    ("n1", "e1000e", "0000:02:00.0", "52:54:00:76:00:11", "leaf0"),
    ("n2", "virtio-net-pci", "0000:03:00.0", "52:54:00:76:00:12", "video0"),
]
HOST_MAC = "02:76:6d:00:00:01"
MARK = b"vcplane-vm"
cases = []  # (name, "ok" | "fail" | "skip", detail)
work = tempfile.mkdtemp(prefix="vcplane-vm-")
share = os.path.join(work, "share")
os.makedirs(share)
qemu = None


def tap(i):
    return f"{TAG}n{i}"


def report(name, status, detail=""):
    cases.append((name, status, detail))
    word = {"ok": "ok   ", "fail": "FAIL ", "skip": "skip "}[status]
    print(f"{word} {name}{': ' + detail if detail else ''}", flush=True)


def sh(cmd, check=True, timeout=600):
    r = subprocess.run(cmd, shell=True, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                       text=True, timeout=timeout)
    if check and r.returncode != 0:
        raise RuntimeError(f"{cmd}: exit {r.returncode}: {r.stdout[-2000:]}")
    return r.stdout


# ---- the guest -------------------------------------------------------------------------

_cmd = 0


def guest(script, timeout=60):
    """Runs a shell script in the guest; returns (exit status, output)."""
    global _cmd
    _cmd += 1
    base = os.path.join(share, "cmd", f"{_cmd:04d}")
    with open(base + ".tmp", "w") as f:
        f.write(script + "\n")
    os.rename(base + ".tmp", base + ".sh")
    until = time.time() + timeout
    while time.time() < until:
        if os.path.exists(base + ".rc"):
            with open(base + ".out", errors="replace") as f:
                out = f.read()
            with open(base + ".rc") as f:
                return int(f.read().strip() or "1"), out
        if qemu is not None and qemu.poll() is not None:
            raise RuntimeError("QEMU exited")
        time.sleep(0.1)
    raise RuntimeError(f"the guest did not finish in {timeout} s: {script[:200]}")


def guest_ok(script, timeout=60):
    rc, out = guest(script, timeout)
    if rc != 0:
        raise RuntimeError(f"in the guest: {script[:200]}: exit {rc}: {out[-2000:]}")
    return out


def monitor(command):
    """One HMP command on QEMU's monitor; returns what it printed."""
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.connect(os.path.join(work, "mon.sock"))
    s.settimeout(10)

    def until_prompt():
        data = b""
        while not data.endswith(b"(qemu) "):
            chunk = s.recv(4096)
            if not chunk:
                break
            data += chunk
        return data.decode(errors="replace")

    until_prompt()
    s.sendall(command.encode() + b"\n")
    out = until_prompt()
    s.close()
    return out


def probe_kvm():
    """KVM where it can run a guest; software emulation (TCG) where it cannot. Returns the
    accelerator's QEMU arguments and a sentence saying which, and why."""
    if not os.path.exists("/dev/kvm"):
        return ["-accel", "tcg,thread=multi,tb-size=512", "-cpu", "max"], "TCG: no /dev/kvm"
    # The guest's kernel with no root: under a KVM that can run it, it panics and QEMU exits
    # (panic=-1, -no-reboot) within seconds; under one that cannot, QEMU aborts at once.
    try:
        r = subprocess.run(["qemu-system-x86_64", "-accel", "kvm", "-cpu", "host", "-machine",
                            "q35", "-m", "256", "-display", "none", "-nodefaults", "-no-reboot",
                            "-kernel", os.path.join(work, "img", "vmlinuz"), "-append",
                            "console=ttyS0 panic=-1", "-serial", "none"],
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                           timeout=60)
    except subprocess.TimeoutExpired:
        return (["-accel", "tcg,thread=multi,tb-size=512", "-cpu", "max"],
                "TCG: a KVM guest did not finish its probe boot in 60 s")
    first = (r.stdout.strip().splitlines() or ["no output"])[0]
    if "error" in r.stdout.lower() or "failed" in r.stdout.lower() or r.returncode not in (0,):
        return (["-accel", "tcg,thread=multi,tb-size=512", "-cpu", "max"],
                f"TCG: KVM cannot run the guest here ({first[:120]})")
    return ["-accel", "kvm", "-cpu", "host"], "KVM"


def boot(accel):
    global qemu
    for i in range(len(NICS)):
        mq = "multi_queue " if i == 0 else ""  # QEMU opens it as its netdev's queues= says
        sh(f"ip tuntap add mode tap {mq}name {tap(i)}")
        sh(f"sysctl -qw net.ipv6.conf.{tap(i)}.disable_ipv6=1")
        sh(f"ip link set {tap(i)} up")
    img = os.path.join(work, "img")
    args = ["qemu-system-x86_64", *accel, "-machine", "q35", "-smp", "2", "-m", "2048",
            "-display", "none", "-nodefaults", "-no-user-config",
            "-device", "intel-iommu,intremap=on,aw-bits=48",
            "-kernel", os.path.join(img, "vmlinuz"), "-initrd", os.path.join(img, "initrd.img"),
            "-append", "root=LABEL=root rw console=ttyS0 quiet intel_iommu=on iommu=pt "
                       "default_hugepagesz=2M hugepagesz=2M hugepages=512 panic=-1",
            "-drive", f"file={os.path.join(img, 'root.img')},format=raw,if=virtio,snapshot=on",
            "-virtfs", f"local,path={share},mount_tag=share,security_model=none",
            "-monitor", f"unix:{os.path.join(work, 'mon.sock')},server=on,wait=off",
            "-serial", f"file:{os.path.join(work, 'console.log')}", "-no-reboot"]
    for i, (nid, model, bdf, mac, _) in enumerate(NICS):
        args += ["-device", f"pcie-root-port,id=rp{i},bus=pcie.0,chassis={i + 1},"
                            f"addr=0x{0x10 + i:x}"]
        queues = 2 if i == 0 else 1
        args += ["-netdev", f"tap,id={nid},ifname={tap(i)},script=no,downscript=no,"
                            f"queues={queues}"]
        if model == "virtio-net-pci":
            extra = ",mq=on,rss=on,vectors=6" if queues > 1 else ""
            args += ["-device", f"virtio-net-pci,id=dev{i},netdev={nid},mac={mac},bus=rp{i},"
                                f"disable-legacy=on,iommu_platform=on,ats=on{extra}"]
        else:
            args += ["-device", f"{model},id=dev{i},netdev={nid},mac={mac},bus=rp{i}"]
    for j in range(2):  # spare root ports, for hot-plug
        k = len(NICS) + j
        args += ["-device", f"pcie-root-port,id=rp{k},bus=pcie.0,chassis={k + 1},"
                            f"addr=0x{0x10 + k:x}"]
    qemu = subprocess.Popen(args, stdout=open(os.path.join(work, "qemu.log"), "w"),
                            stderr=subprocess.STDOUT)
    started = time.time()
    while not os.path.exists(os.path.join(share, "ready")):
        if qemu.poll() is not None or time.time() - started > 300:
            with open(os.path.join(work, "qemu.log")) as f:
                q = f.read()
            c = ""
            if os.path.exists(os.path.join(work, "console.log")):
                with open(os.path.join(work, "console.log"), errors="replace") as f:
                    c = f.read()
            raise RuntimeError(f"the guest did not come up: {q[-1500:]}\n{c[-3000:]}")
        time.sleep(0.5)
    return time.time() - started


# ---- frames ------------------------------------------------------------------------------

class capture:
    """tshark on a host tap, from now until stop()."""

    def __init__(self, iface, name):
        self.path = os.path.join(work, f"{name}.pcapng")
        self.p = subprocess.Popen(["tshark", "-i", iface, "-w", self.path, "-q"],
                                  stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        line = ""
        until = time.time() + 20
        while "Capturing on" not in line and time.time() < until:
            line = self.p.stderr.readline()
        time.sleep(0.3)

    def stop(self, settle=1.0):
        time.sleep(settle)
        self.p.terminate()
        self.p.wait(20)
        return [f for f in rdpcap(self.path) if f.haslayer(Ether) and f[Ether].src != HOST_MAC]


def mpls_frame(label, seq, size=128):
    f = (Ether(src=HOST_MAC, dst=NICS[0][3]) / MPLS(label=label, s=1, ttl=64) /
         IP(src="10.76.0.1", dst="239.76.0.1", ttl=32) / UDP(sport=5000, dport=5001) /
         Raw(MARK + b" %06d" % seq))
    pad = size - len(f)
    return f / Raw(b"\0" * pad) if pad > 0 else f


def vlan_frame(vid, seq):
    return (Ether(src=HOST_MAC, dst=NICS[2][3]) / Dot1Q(vlan=vid, prio=0) /
            IP(src="10.76.0.2", dst="239.76.0.2", ttl=32) / UDP(sport=6000, dport=6001) /
            Raw(MARK + b" %06d" % seq))


def seq_of(f):
    raw = bytes(f)
    i = raw.find(MARK)
    return int(raw[i + len(MARK) + 1:i + len(MARK) + 7]) if i >= 0 else -1


def labels_of(frames):
    out = {}
    for f in frames:
        if f.haslayer(MPLS):
            out.setdefault(f[MPLS].label, []).append(f)
    return out


# ---- the switch in the guest -----------------------------------------------------------

def adapted_example():
    """The package's example (/etc/vcplane/vcplane.toml) with the guest's PCI addresses, MAC
    and cores: feed-a from uplink0 (label 1000) to three parties on leaf0, studio on video0
    (VID 100 to VIDs 200 and 201)."""
    return (
        "sed -e 's/^lcores = .*/lcores = [0, 1]/' "
        "-e 's/^pci_allow = .*/pci_allow = [\"0000:01:00.0\", \"0000:02:00.0\", \"0000:03:00.0\"]/' "
        "-e 's/0000:3b:00.0/0000:01:00.0/' -e 's/0000:5e:00.0/0000:03:00.0/' "
        f"-e 's/3c:fd:fe:00:00:01/{NICS[1][3]}/' "
        "-e 's/^rx_descriptors = .*/rx_descriptors = 1024/' "
        "-e 's/^tx_descriptors = .*/tx_descriptors = 1024/' "
        "/usr/share/doc/vcplane/examples/fanout-two-nics.toml > /etc/vcplane/vcplane.toml")


def connections():
    rc, out = guest("vcplanectl --json connections", 30)
    if rc != 0:
        return {}
    import json
    return {c["name"]: c["state"] for c in json.loads(out)["connections"]}


def wait_state(name, want, seconds):
    until = time.time() + seconds
    while time.time() < until:
        if connections().get(name) == want:
            return True
        time.sleep(0.5)
    return False


def wait_forwarding(seconds=90):
    until = time.time() + seconds
    while time.time() < until:
        rc, out = guest("journalctl -u vcplaned -b --no-pager -o cat | grep -c 'forwarding:'", 30)
        if rc == 0 and int(out.strip() or 0) > 0:
            return True
        time.sleep(1)
    return False


def send_feed(count, label=1000, inter=0.002, start=0, size=128):
    sendp([mpls_frame(label, start + i, size) for i in range(count)], iface=tap(0),
          inter=inter, verbose=False)


# ---- the cases -----------------------------------------------------------------------

def case_preflight():
    """The start-up preflight (before EAL) passes on this host, and names what is missing when
    a NIC is not bound to vfio-pci or no hugepages are mounted: the daemon then exits before
    it takes anything."""
    guest_ok(adapted_example())
    run = ("timeout 60 runuser -u vcplane -- vcplaned --preflight /etc/vcplane/vcplane.toml "
           "2>&1; echo exit=$?")
    rc, out = guest(run, 90)
    ok = "exit=0" in out and "ready: this host has what the file needs" in out
    report("preflight passes on the booted server", "ok" if ok else "fail",
           out.strip().replace("\n", " | ")[-300:])
    rc, out = guest("dpdk-devbind.py -u 0000:03:00.0; " + run +
                    "; dpdk-devbind.py -b vfio-pci 0000:03:00.0", 90)
    ok = "0000:03:00.0 is bound to no driver, not to vfio-pci" in out and "exit=1" in out
    report("preflight names a NIC not bound to vfio-pci", "ok" if ok else "fail",
           "" if ok else out[-600:])
    rc, out = guest("umount /dev/hugepages-vcplane; " + run + "; mount /dev/hugepages-vcplane", 90)
    ok = "no hugetlbfs is mounted" in out and "exit=1" in out
    report("preflight names missing hugepages", "ok" if ok else "fail", "" if ok else out[-600:])
    report("preflight names a missing IOMMU", "skip",
           "needs a second boot without intel_iommu (about 25 s more under TCG); the check is "
           "unit-tested on a fake /sys (preflight_test)")


def case_service_forwards():
    """systemctl enable --now: the P2MP call of the example forwards from uplink0 (virtio,
    2 queues) to its three parties on leaf0 (e1000e), rewritten exactly; the VLAN call on
    video0 (virtio) too."""
    t = time.time()
    guest_ok("systemctl enable --now vcplaned", 120)
    if not wait_forwarding():
        _, log = guest("journalctl -u vcplaned -b --no-pager -o cat | tail -40")
        return report("systemctl enable --now vcplaned", "fail", log[-1500:])
    report("systemctl enable --now vcplaned", "ok", f"forwarding after {time.time() - t:.1f} s")
    cap1, cap2 = capture(tap(1), "leaf0"), capture(tap(2), "video0")
    send_feed(20)
    sendp([vlan_frame(100, i) for i in range(10)], iface=tap(2), inter=0.005, verbose=False)
    leaf, video = cap1.stop(), cap2.stop()
    by_label = labels_of(leaf)
    problems = []
    for n, label in enumerate((2001, 2002, 2003)):
        got = by_label.get(label, [])
        if sorted(seq_of(f) for f in got) != list(range(20)):
            problems.append(f"label {label}: {len(got)} of 20")
            continue
        for f in got:
            sent = mpls_frame(1000, seq_of(f))
            want_dst = f"02:00:5e:10:00:0{n + 1}"
            if (f[Ether].dst != want_dst or f[Ether].src != NICS[1][3] or f[MPLS].ttl != 63
                    or bytes(f[MPLS].payload)[:len(bytes(sent[MPLS].payload))] !=
                    bytes(sent[MPLS].payload)):
                problems.append(f"label {label} seq {seq_of(f)}: {f.summary()}")
                break
    report("the P2MP call's copies leave leaf0 (e1000e) rewritten exactly",
           "fail" if problems else "ok", "; ".join(problems[:4]) or "3 parties x 20 frames")
    vids = {}
    for f in video:
        if f.haslayer(Dot1Q):
            vids.setdefault(f[Dot1Q].vlan, []).append(seq_of(f))
    ok = all(sorted(vids.get(v, [])) == list(range(10)) for v in (200, 201))
    report("the VLAN call hairpins on video0 (virtio) to VIDs 200 and 201", "ok" if ok else "fail",
           "" if ok else str({k: len(v) for k, v in vids.items()}))


def case_reload():
    """systemctl reload with a party added: the three parties lose nothing meanwhile."""
    guest_ok("sed -i '/^\\[calls.studio\\]/i [[calls.feed-a.parties]]\\nname = \"sub-4\"\\n"
             "connection = \"leaf0\"\\nlabel = 2004\\nnext_hop = \"02:00:5e:10:00:04\"\\n' "
             "/etc/vcplane/vcplane.toml && vcplaned --check /etc/vcplane/vcplane.toml")
    cap = capture(tap(1), "reload")
    import threading
    sender = threading.Thread(target=send_feed, args=(300,), kwargs={"inter": 0.01})
    sender.start()
    time.sleep(1)
    guest_ok("systemctl reload vcplaned")
    sender.join()
    by_label = labels_of(cap.stop())
    counts = {label: len(by_label.get(label, [])) for label in (2001, 2002, 2003, 2004)}
    ok = all(counts[label] == 300 for label in (2001, 2002, 2003)) and counts[2004] > 0
    report("systemctl reload adds a party; the others lose nothing", "ok" if ok else "fail",
           f"copies per label {counts}")


def case_kill_restart():
    """systemctl kill -s KILL: systemd restarts the switch, and traffic flows again."""
    cap = capture(tap(1), "restart")
    import threading
    stop = []

    def stream():
        i = 0
        while not stop and i < 6000:
            sendp(mpls_frame(1000, i % 1000000), iface=tap(1 - 1), verbose=False)
            i += 1
            time.sleep(0.01)

    sender = threading.Thread(target=stream)
    sender.start()
    time.sleep(1)
    killed = time.time()
    guest_ok("systemctl kill -s KILL vcplaned")
    back = wait_forwarding_again(killed)
    time.sleep(1)
    stop.append(1)
    sender.join()
    frames = [f for f in cap.stop() if f.haslayer(MPLS) and f[MPLS].label == 2001]
    gaps = [b.time - a.time for a, b in zip(frames, frames[1:])]
    gap = max(gaps) if gaps else 0
    after = [f for f in frames if float(f.time) > killed + 0.5]
    ok = back is not None and len(after) > 0
    report("systemctl kill -s KILL: systemd restarts it and traffic flows again",
           "ok" if ok else "fail",
           f"longest gap in the copies {float(gap):.1f} s (RestartSec=2s, EAL and port start "
           f"under emulation included)" if ok else "no frames after the kill")


def wait_forwarding_again(since, seconds=120):
    until = time.time() + seconds
    while time.time() < until:
        rc, out = guest("systemctl show -p NRestarts --value vcplaned; "
                        "journalctl -u vcplaned -b --no-pager -o cat | grep -c 'forwarding:'", 30)
        lines = out.split()
        if rc == 0 and len(lines) >= 2 and int(lines[0]) >= 1 and int(lines[1]) >= 2:
            return time.time() - since
        time.sleep(0.5)
    return None


def case_link(index, what):
    """set_link off on one NIC: its connection is reported down and the calls on the other
    connections lose nothing; set_link on: everything the file names on it is back."""
    nid, model, _, _, conn = NICS[index]
    monitor(f"set_link {nid} off")
    down = wait_state(conn, "disconnected_unavailable", 10)
    # The calls that do not touch it keep forwarding.
    other = 2 if index == 1 else 1
    cap = capture(tap(other), f"link{index}")
    if other == 1:
        send_feed(20)
    else:
        sendp([vlan_frame(100, i) for i in range(10)], iface=tap(2), inter=0.005, verbose=False)
    got = cap.stop()
    lost = (len(labels_of(got).get(2001, [])) != 20) if other == 1 else (
        len([f for f in got if f.haslayer(Dot1Q) and f[Dot1Q].vlan == 200]) != 10)
    monitor(f"set_link {nid} on")
    up = wait_state(conn, "connected", 10)
    # Back: the call or parties on it forward again.
    time.sleep(2)
    cap = capture(tap(index), f"link{index}b")
    if index == 1:
        send_feed(10)
        back = len(labels_of(cap.stop()).get(2001, [])) == 10
    else:
        sendp([vlan_frame(100, i) for i in range(10)], iface=tap(2), inter=0.005, verbose=False)
        back = len([f for f in cap.stop() if f.haslayer(Dot1Q) and f[Dot1Q].vlan == 200]) == 10
    ok = down and up and not lost and back
    report(f"link down and up on {conn} ({model}, {what})", "ok" if ok else "fail",
           f"down seen {down}, others lost nothing {not lost}, up seen {up}, forwarding again "
           f"{back}")


def case_hotplug():
    """device_del of video0's NIC under traffic on feed-a: the connection goes away through
    the contracts and feed-a loses nothing; device_add in the same slot, bound to vfio-pci and
    attached (vcplanectl port attach): the config CSP claims it and the VLAN call forwards
    again."""
    import threading
    cap = capture(tap(1), "hotplug")
    sender = threading.Thread(target=send_feed, args=(400,), kwargs={"inter": 0.01})
    sender.start()
    time.sleep(1)
    t = time.time()
    monitor("device_del dev2")
    gone = False
    until = time.time() + 20
    while time.time() < until and not gone:
        rc, out = guest("lspci -s 03:00.0; vcplanectl --json connections", 30)
        gone = "Virtio" not in out and '"video0"' not in out
        time.sleep(0.5)
    took = time.time() - t
    sender.join()
    copies = len(labels_of(cap.stop()).get(2001, []))
    report("device_del under traffic: the connection goes, feed-a loses nothing",
           "ok" if gone and copies == 400 else "fail",
           f"unplugged and forgotten in {took:.1f} s; feed-a 2001: {copies} of 400")
    nid, model, bdf, mac, _ = NICS[2]
    monitor(f"device_add virtio-net-pci,id=dev2b,netdev={nid},mac={mac},bus=rp2,"
            "disable-legacy=on,iommu_platform=on,ats=on")
    rc, out = guest(f"for i in $(seq 100); do [ -e /sys/bus/pci/devices/{bdf} ] && break; "
                    f"sleep 0.2; done; dpdk-devbind.py -b vfio-pci {bdf} && "
                    f"vcplanectl port attach {bdf}", 60)
    back = wait_state("video0", "connected", 20)
    time.sleep(2)
    cap = capture(tap(2), "hotplug-back")
    sendp([vlan_frame(100, i) for i in range(10)], iface=tap(2), inter=0.005, verbose=False)
    vids = [f for f in cap.stop() if f.haslayer(Dot1Q) and f[Dot1Q].vlan == 200]
    ok = rc == 0 and back and len(vids) == 10
    report("device_add, bind and port attach: claimed, and the VLAN call forwards again",
           "ok" if ok else "fail", f"attach rc {rc}, connected {back}, VID 200 copies "
                                   f"{len(vids)} of 10" + ("" if ok else f": {out[-400:]}"))


def case_jumbo():
    """9000-byte MTU on uplink0 (virtio): 8000-byte frames of a call hairpinned on uplink0
    leave as chained copies (MULTI_SEGS), byte-exact but for the label and TTL."""
    guest_ok("cat >> /etc/vcplane/vcplane.toml <<'X'\n[calls.jumbo]\nconnection = \"uplink0\"\n"
             "label = 1100\n[[calls.jumbo.parties]]\nname = \"j1\"\nconnection = \"uplink0\"\n"
             "label = 3001\nnext_hop = \"02:00:5e:30:00:01\"\n[[calls.jumbo.parties]]\n"
             "name = \"j2\"\nconnection = \"uplink0\"\nlabel = 3002\n"
             "next_hop = \"02:00:5e:30:00:02\"\nX\n"
             "vcplaned --check /etc/vcplane/vcplane.toml && systemctl reload vcplaned")
    time.sleep(2)
    sh(f"ip link set {tap(0)} mtu 9000")
    cap = capture(tap(0), "jumbo")
    send_feed(10, label=1100, inter=0.02, size=8000)
    got = labels_of(cap.stop())
    problems = []
    for label in (3001, 3002):
        frames = got.get(label, [])
        if sorted(seq_of(f) for f in frames) != list(range(10)):
            problems.append(f"label {label}: {len(frames)} of 10")
            continue
        for f in frames:
            sent = bytes(mpls_frame(1100, seq_of(f), 8000))
            if len(bytes(f)) != len(sent) or bytes(f)[18:] != sent[18:] or f[MPLS].ttl != 63:
                problems.append(f"label {label} seq {seq_of(f)}: {len(bytes(f))} B")
                break
    _, log = guest("journalctl -u vcplaned -b --no-pager -o cat | grep -c 'no multi-segment TX'")
    report("jumbo frames leave virtio as chained copies, byte-exact",
           "fail" if problems else "ok",
           "; ".join(problems) or f"2 parties x 10 frames of 8000 B; ports without multi-segment "
                                  f"TX in the log: {log.strip()}")


def case_link_e1000e():
    case_link(1, "link by poll")


def case_link_virtio():
    case_link(2, "LSC interrupt")


def case_multiprocess():
    """Debian's dpdk-proc-info attaches to the running switch as a secondary process."""
    # As the switch's user: EAL keeps a non-root process's runtime directory under
    # XDG_RUNTIME_DIR (/run/vcplane for the unit), root's under /var/run.
    rc, out = guest("timeout 60 runuser -u vcplane -- env XDG_RUNTIME_DIR=/run/vcplane "
                    "dpdk-proc-info --file-prefix vcplane -- --stats 2>&1 | grep -i -A3 'statistics for port'",
                    90)
    ok = rc == 0 and "statistics for port" in out.lower()
    report("dpdk-proc-info reads the running switch's ports (multi-process)",
           "ok" if ok else "fail", "" if ok else out[-800:])


def main():
    started = time.time()
    t = time.time()
    try:
        if os.environ.get("VCPLANE_VM_IMAGE"):  # an image already built, as it is
            os.symlink(os.environ["VCPLANE_VM_IMAGE"], os.path.join(work, "img"))
            out = f"given: {os.environ['VCPLANE_VM_IMAGE']}"
        else:
            out = sh(f"{HERE}/build_image {SRC} {os.path.join(work, 'img')}", timeout=1800)
    except Exception as e:  # noqa: BLE001 - reported as the layer's failure
        report("the guest image is built", "fail", str(e)[-1500:])
        return finish(started)
    report("the guest image is built", "ok", f"{time.time() - t:.0f} s; {out.strip().splitlines()[-1]}")
    accel, which = probe_kvm()
    print(f"      accelerator: {which}", flush=True)
    try:
        report("the guest boots with three PCI NICs behind an IOMMU", "ok",
               f"{boot(accel):.0f} s to its agent")
        out = guest_ok("dpdk-devbind.py --status-dev net | sed -n '1,8p'; "
                       "grep -E 'HugePages_(Total|Free)' /proc/meminfo", 60)
        bound = all(f"{bdf}" in out.split("Network devices using kernel driver")[0]
                    for _, _, bdf, _, _ in NICS)
        report("dpdk.service bound the three NICs to vfio-pci at boot", "ok" if bound else "fail",
               out.replace("\n", " | ")[:300])
        for case in (case_preflight, case_service_forwards, case_reload, case_kill_restart,
                     case_link_e1000e, case_link_virtio, case_multiprocess, case_jumbo,
                     case_hotplug):
            try:
                case()
            except Exception as e:  # noqa: BLE001 - one case's failure, the others still run
                report(getattr(case, "__name__", "case"), "fail", str(e)[-1500:])
    except Exception as e:  # noqa: BLE001
        report("the guest runs", "fail", str(e)[-2500:])
    finally:
        shutdown()
    return finish(started)


def shutdown():
    if qemu is not None and qemu.poll() is None:
        try:
            guest("journalctl -u vcplaned -b --no-pager -o cat > /mnt/share/vcplaned.log; "
                  "(sleep 1; systemctl poweroff) &", 20)
            qemu.wait(60)
        except Exception:  # noqa: BLE001
            qemu.kill()
            qemu.wait()
    for i in range(len(NICS)):
        subprocess.run(["ip", "link", "del", tap(i)], capture_output=True)


def finish(started):
    passed = [c for c in cases if c[1] == "ok"]
    failed = [c for c in cases if c[1] == "fail"]
    skipped = [c for c in cases if c[1] == "skip"]
    print(f"VM layer: {time.time() - started:.0f} s in all")
    log = os.path.join(share, "vcplaned.log")
    if failed and os.path.exists(log):
        print("---- the switch's journal in the guest (tail):")
        print("".join(open(log, errors="replace").readlines()[-60:]))
    for c in skipped:
        print(f"{c[2]}\n[  SKIPPED ] vm.{re.sub(r'[^a-z0-9]+', '_', c[0].lower())}")
    print(f"[  PASSED  ] {len(passed)} tests.")
    if skipped:
        print(f"[  SKIPPED ] {len(skipped)} tests, listed below:")
    if failed:
        print(f"[  FAILED  ] {len(failed)} tests, listed below:")
        for c in failed:
            print(f"[  FAILED  ] {c[0]}")
    if not failed:
        shutil.rmtree(work, ignore_errors=True)
    else:
        print(f"kept for reading: {work}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())

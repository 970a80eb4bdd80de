"""What the scapy wire tests share: the peers' two roles when a test runs itself inside a
namespace (sniff, send), and namespaces joined to the host by veth pairs.

A test calls run_peer_role() first: when its command line asks for a role, the role runs
and the process exits."""
import os
import subprocess
import sys
import time


def run_peer_role(argv, inter):
    """  TEST sniff IFACE PCAP SECONDS   capture, then write PCAP (PCAP.ready once listening)
         TEST send IFACE PCAP           send PCAP's frames, `inter` seconds apart"""
    from scapy.all import rdpcap, sendp, sniff, wrpcap
    if argv[1] == "sniff":
        iface, out, seconds = argv[2], argv[3], float(argv[4])
        open(out + ".ready", "w").close()
        wrpcap(out, sniff(iface=iface, timeout=seconds))
        sys.exit(0)
    if argv[1] == "send":
        sendp(rdpcap(argv[3]), iface=argv[2], inter=inter, verbose=False)
        sys.exit(0)


def skip_unless_able():
    if os.geteuid() != 0:
        print("skipped: needs root (network namespaces, AF_PACKET)")
        sys.exit(77)
    if subprocess.run(["ip", "netns", "list"], capture_output=True).returncode != 0:
        print("skipped: iproute2 with network namespace support is not available")
        sys.exit(77)


def sh(*cmd):
    r = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    if r.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)}: exit {r.returncode}: {r.stdout}")
    return r.stdout


def wait_for(predicate, seconds):
    until = time.monotonic() + seconds
    while time.monotonic() < until:
        if predicate():
            return True
        time.sleep(0.1)
    return predicate()


def add_namespace(n):
    """Namespace n with eth0, joined to host interface n, IPv6 off on both ends."""
    sh("ip", "netns", "add", n)
    sh("ip", "link", "add", n, "type", "veth", "peer", "name", "eth0", "netns", n)
    sh("sysctl", "-qw", f"net.ipv6.conf.{n}.disable_ipv6=1")
    sh("ip", "netns", "exec", n, "sysctl", "-qw", "net.ipv6.conf.all.disable_ipv6=1")
    sh("ip", "-n", n, "link", "set", "eth0", "up")
    sh("ip", "link", "set", n, "up")


def remove_namespace(n):
    subprocess.run(["ip", "netns", "del", n], capture_output=True)
    subprocess.run(["ip", "link", "del", n], capture_output=True)


def switch_header(interfaces, file_prefix):
    """The [eal], [metrics] and [control] tables of a test switch: one lcore of workers, no
    hugepages, an af_packet port on each interface (net_af_packetI for interfaces[I]), no
    metrics or control socket. The test appends its connections and calls."""
    vdevs = ", ".join(f'"net_af_packet{i},iface={n}"' for i, n in enumerate(interfaces))
    return f"""
[eal]
lcores = [0, 1]
no_huge = true
memory_mb = 256
vdevs = [{vdevs}]
file_prefix = "{file_prefix}"
[metrics]
enabled = false
[control]
enabled = false
"""


def start_switch(vcplaned, directory, config):
    """Writes config to DIRECTORY/vcplane.toml and runs vcplaned on it; returns the process
    once it forwards, or exits 1 with its log when it does not within 30 s."""
    with open(f"{directory}/vcplane.toml", "w") as f:
        f.write(config)
    log = f"{directory}/daemon.log"
    daemon = subprocess.Popen([vcplaned, "--config", f"{directory}/vcplane.toml"],
                              stdout=open(log, "w"), stderr=subprocess.STDOUT)
    if not wait_for(lambda: "forwarding:" in open(log).read(), 30):
        print("FAIL  vcplaned did not start forwarding\n" + open(log).read())
        daemon.terminate()
        sys.exit(1)
    print("ok    vcplaned started forwarding", flush=True)
    return daemon

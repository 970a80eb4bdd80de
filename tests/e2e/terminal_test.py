#!/usr/bin/env python3
"""vcplanectl as a person uses it at a terminal, against a real daemon with traffic flowing:
`top` in tmux, and bash completion.

Three network namespaces on veth pairs into a real vcplaned (af_packet ports): vcplane-wire
sends MPLS frames at a steady pace into a call with two parties. top runs in a tmux pane;
the test reads the screen with capture-pane and holds what it shows to what was sent: the
ingress connection's frames and bits per second, each egress connection's, the worker's
frames and copies, the call's frames (per-VC counters on). Then q ends it, and Ctrl-C ends a
second one, each with exit status 0 and its session gone from the daemon. `top --once
--json` is held to the same rates. Completion (dist/vcplanectl.bash, through bash-completion's
own _init_completion) offers the commands, a command's options, and the connection, device
and call names the running daemon has.

  terminal_test.py VCPLANED VCPLANECTL VCPLANE_WIRE COMPLETION
Exit 77 (skipped) without root, network namespaces or tmux.
"""
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time

VCPLANED, VCPLANECTL, WIRE, COMPLETION = sys.argv[1:5]
BASH_COMPLETION = "/usr/share/bash-completion/bash_completion"
TAG = f"vt{os.getpid() % 100000}"
SESSION = f"{TAG}-top"
FRAME_BYTES = 100  # what vcplane-wire sends: Ethernet frame without FCS
INTERVAL_MS = 2  # the sender's pace: at most 500 frames/s, measured below
TOLERANCE = 0.15  # a view's rate within 15 % of the sender's measured rate

failures = []


def check(ok, what):
    print(("ok    " if ok else "FAIL  ") + what, flush=True)
    if not ok:
        failures.append(what)


def sh(*cmd, check_rc=True):
    r = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    if check_rc and r.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)}: exit {r.returncode}: {r.stdout}")
    return r.stdout


def skip(why):
    print(f"skipped: {why}")
    sys.exit(77)


if os.geteuid() != 0:
    skip("needs root (network namespaces, AF_PACKET)")
if shutil.which("tmux") is None:
    skip("tmux is not installed")
if subprocess.run(["ip", "netns", "list"], capture_output=True).returncode != 0:
    skip("iproute2 with network namespace support is not available")

hosts = {"src": "02:76:74:00:00:01", "a": "02:76:74:00:00:0a", "b": "02:76:74:00:00:0b"}
tmp = tempfile.mkdtemp(prefix=f"{TAG}-")
sock = f"{tmp}/control.sock"
daemon = sender = None


def ns(name):
    return f"{TAG}-{name}"


def free_port():
    import socket
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def cleanup():
    subprocess.run(["tmux", "kill-session", "-t", SESSION], capture_output=True)
    for p in (sender, daemon):
        if p is not None and p.poll() is None:
            p.terminate()
            try:
                p.wait(20)
            except subprocess.TimeoutExpired:
                p.kill()
    for name in hosts:
        subprocess.run(["ip", "netns", "del", ns(name)], capture_output=True)
        subprocess.run(["ip", "link", "del", ns(name)], capture_output=True)
    shutil.rmtree(tmp, ignore_errors=True)


def status():
    return json.loads(sh(VCPLANECTL, "-s", sock, "--json", "status"))


def pane():
    return sh("tmux", "capture-pane", "-p", "-t", SESSION)


def wait_for(predicate, seconds):
    until = time.monotonic() + seconds
    while time.monotonic() < until:
        value = predicate()
        if value:
            return value
        time.sleep(0.1)
    return predicate()


def rate(text):
    """'1.23 M' / '950.0 k' / '480' -> a number."""
    m = re.fullmatch(r"([0-9.]+)(?: ([kMG]))?", text.strip())
    if not m:
        raise ValueError(f"not a rate: {text!r}")
    return float(m.group(1)) * {None: 1, "k": 1e3, "M": 1e6, "G": 1e9}[m.group(2)]


def near(value, want):
    return abs(value - want) <= TOLERANCE * want


def columns(screen, first):
    """The rate columns of the table row whose first word is `first`."""
    for line in screen.splitlines():
        words = line.split()
        if words and words[0] == first:
            # Rates may carry a unit word ("1.2 k"): join a number with a following unit.
            cells, i = [], 1
            while i < len(words):
                if i + 1 < len(words) and words[i + 1] in ("k", "M", "G"):
                    cells.append(words[i] + " " + words[i + 1])
                    i += 2
                else:
                    cells.append(words[i])
                    i += 1
            return cells
    return None


def top_session_exits(key):
    """Starts top in a tmux pane, waits for its first view, sends `key`; returns the view and
    the exit status of top (written by the pane's shell once top has ended)."""
    status_file = f"{tmp}/top-status"
    if os.path.exists(status_file):
        os.unlink(status_file)
    sh("tmux", "new-session", "-d", "-s", SESSION, "-x", "160", "-y", "50",
       f"{VCPLANECTL} -s {sock} top; echo $? > {status_file}; sleep 60")
    # Two views: the first rates are over a full interval of steady traffic.
    first = wait_for(lambda: "over " in pane() and pane(), 10)
    time.sleep(2.2)
    view = pane()
    sh("tmux", "send-keys", "-t", SESSION, key)
    ended = wait_for(lambda: os.path.exists(status_file) and open(status_file).read().strip(), 10)
    if not ended:
        print(f"after {key}: top still runs, showing:\n{pane()}")
    sh("tmux", "kill-session", "-t", SESSION)
    return (view if first else ""), (int(ended) if ended else None)


try:
    for name, mac in hosts.items():
        n = ns(name)
        sh("ip", "netns", "add", n)
        sh("ip", "link", "add", n, "type", "veth", "peer", "name", "eth0", "netns", n)
        sh("sysctl", "-qw", f"net.ipv6.conf.{n}.disable_ipv6=1")
        sh("ip", "netns", "exec", n, "sysctl", "-qw", "net.ipv6.conf.all.disable_ipv6=1")
        sh("ip", "-n", n, "link", "set", "eth0", "address", mac)
        sh("ip", "-n", n, "link", "set", "eth0", "up")
        sh("ip", "link", "set", n, "up")
    vdevs = ", ".join(f'"net_af_packet{i},iface={ns(n)}"' for i, n in enumerate(hosts))
    config = f"""
[eal]
lcores = [0, 1]
no_huge = true
memory_mb = 256
vdevs = [{vdevs}]
file_prefix = "{TAG}"
[metrics]
listen = "127.0.0.1:{free_port()}"
per_vc = true
[control]
socket = "{sock}"
[connections.src]
device = "net_af_packet0"
[connections.leaf-a]
device = "net_af_packet1"
[connections.leaf-b]
device = "net_af_packet2"
[calls.feed]
connection = "src"
label = 1000
[[calls.feed.parties]]
connection = "leaf-a"
label = 2001
next_hop = "{hosts['a']}"
[[calls.feed.parties]]
connection = "leaf-b"
label = 2002
next_hop = "{hosts['b']}"
"""
    with open(f"{tmp}/vcplane.toml", "w") as f:
        f.write(config)
    daemon = subprocess.Popen([VCPLANED, "--config", f"{tmp}/vcplane.toml"],
                              stdout=open(f"{tmp}/daemon.log", "w"), stderr=subprocess.STDOUT)
    up = wait_for(lambda: "forwarding:" in open(f"{tmp}/daemon.log").read(), 30)
    check(up, "vcplaned started forwarding")
    if not up:
        print(open(f"{tmp}/daemon.log").read())
        raise SystemExit(1)
    sessions_before = status()["sessions"]

    # Steady traffic for the whole test; its real pace is measured from the switch's own
    # ingress counter over a long window, independent of top's.
    sw_mac = open(f"/sys/class/net/{ns('src')}/address").read().strip()
    sender = subprocess.Popen(
        ["ip", "netns", "exec", ns("src"), WIRE, "send", "--iface", "eth0", "--src", hosts["src"],
         "--dst", sw_mac, "--label", "1000", "--count", "1000000", "--interval-ms",
         str(INTERVAL_MS), "--size", str(FRAME_BYTES)], stdout=subprocess.DEVNULL)
    time.sleep(1.5)

    def src_frames():
        for p in json.loads(sh(VCPLANECTL, "-s", sock, "--json", "stats"))["connections"]:
            if p["connection"] == "src":
                return p["rx_packets"]
        return 0

    t0, n0 = time.monotonic(), src_frames()
    view, rc = top_session_exits("q")
    t1, n1 = time.monotonic(), src_frames()
    sent = (n1 - n0) / (t1 - t0)
    print(f"sender's pace: {sent:.0f} frames/s over {t1 - t0:.1f} s")
    print(view)
    check(sent > 100, f"traffic flows ({sent:.0f} frames/s)")
    check(rc == 0, f"q ends top with exit status 0 (got {rc})")
    check(wait_for(lambda: status()["sessions"] == sessions_before, 5),
          "top's session is gone after q")

    src = columns(view, "src")
    check(src is not None and src[1] == "up", f"the ingress connection's row: {src}")
    if src:
        # CONNECTION DEVICE LINK RX-FRAMES RX-BITS TX-FRAMES TX-BITS ERRORS
        check(near(rate(src[2]), sent), f"src RX frames/s {src[2]} ~ {sent:.0f}")
        check(near(rate(src[3]), sent * FRAME_BYTES * 8),
              f"src RX bits/s {src[3]} ~ {sent * FRAME_BYTES * 8:.0f}")
    for leaf in ("leaf-a", "leaf-b"):
        row = columns(view, leaf)
        check(row is not None and near(rate(row[4]), sent),
              f"{leaf} TX frames/s {row and row[4]} ~ {sent:.0f}")
        if row:
            check(near(rate(row[5]), sent * FRAME_BYTES * 8), f"{leaf} TX bits/s {row[5]}")
    worker = columns(view, "0")
    # WORKER BUSY% FRAMES/S COPIES/S CYCLES/FRAME
    check(worker is not None and near(rate(worker[1]), sent) and near(rate(worker[2]), 2 * sent),
          f"worker 0 frames/s and copies/s {worker and worker[1:3]} ~ {sent:.0f}, {2 * sent:.0f}")
    call = columns(view, "feed")
    check(call is not None and call[1] == "1000" and near(rate(call[2]), sent),
          f"call feed frames/s {call and call[2]} ~ {sent:.0f}")
    check("DROPS/S" in view and "GRACE PERIODS" in view, "drops and grace periods are shown")

    view, rc = top_session_exits("C-c")
    check(rc == 0 and "over " in view, f"Ctrl-C ends top with exit status 0 (got {rc})")
    check(wait_for(lambda: status()["sessions"] == sessions_before, 5),
          "top's session is gone after Ctrl-C")

    once = json.loads(sh(VCPLANECTL, "-s", sock, "--json", "top", "--once"))
    by_name = {c["connection"]: c for c in once["connections"]}
    check(near(by_name["src"]["rx_frames_per_s"], sent)
          and near(by_name["leaf-a"]["tx_frames_per_s"], sent)
          and near(once["workers"][0]["copies_per_s"], 2 * sent)
          and once["busiest_calls"][0]["call"] == "feed",
          f"top --once --json: {by_name['src']['rx_frames_per_s']:.0f} in, "
          f"{once['workers'][0]['copies_per_s']:.0f} copies/s")
    def complete(*words):
        """What completion offers for the line `vcplanectl -s SOCK WORDS...` (the last word
        being completed)."""
        line = ["vcplanectl", "-s", sock, *words]
        script = (f"source {BASH_COMPLETION}; source {COMPLETION}; "
                  f"COMP_WORDS=({' '.join(repr(w) for w in line)}); COMP_CWORD={len(line) - 1}; "
                  f"COMP_LINE={' '.join(line)!r}; COMP_POINT=${{#COMP_LINE}}; "
                  "_vcplanectl; printf '%s\\n' \"${COMPREPLY[@]}\"")
        env = dict(os.environ, PATH=os.path.dirname(VCPLANECTL) + ":" + os.environ["PATH"])
        r = subprocess.run(["bash", "-c", script], capture_output=True, text=True, env=env)
        return set(r.stdout.split())

    if not os.path.exists(BASH_COMPLETION):
        print(f"skipped checks: completion ({BASH_COMPLETION} is not installed)")
    else:
        got = complete("")
        check({"status", "calls", "top", "names", "port", "shell"} <= got,
              f"completion offers the commands: {sorted(got)}")
        check(complete("to") == {"top"}, "completion ends a command's name")
        check(complete("top", "--") == {"--once", "--interval", "--help"},
              f"completion offers top's options: {sorted(complete('top', '--'))}")
        check(complete("disconnect", "") == {"src", "leaf-a", "leaf-b"},
              f"completion asks the daemon for connections: {sorted(complete('disconnect', ''))}")
        got = complete("port", "detach", "net_af")
        check(got == {"net_af_packet0", "net_af_packet1", "net_af_packet2"},
              f"completion asks the daemon for devices: {sorted(got)}")
        got = complete("names", "fe")
        check(got == {"feed", "feed/party0", "feed/party1"},
              f"completion asks the daemon for call and party names: {sorted(got)}")
        check(complete("names", "x", "--kind", "") == {"connection", "call", "party", "service"},
              "completion offers the kinds of names")

    bad = subprocess.run([VCPLANECTL, "-s", sock, "top", "--interval", "0"], capture_output=True,
                         text=True)
    check(bad.returncode != 0 and "interval" in bad.stderr,
          f"an interval of 0 is refused: {bad.stderr.strip()}")
finally:
    cleanup()

print(f"{'FAILED' if failures else 'passed'}: {len(failures)} check(s) failed")
sys.exit(1 if failures else 0)

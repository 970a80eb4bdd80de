// End to end: network namespaces joined to vcplaned by veth pairs (net_af_packet on the host
// ends). Real frames are sent from one namespace and checked byte for byte on the wire in the
// others. Needs root and iproute2; skipped, with the reason, without them.

#include <cstdlib>
#include <fcntl.h>
#include <fmt/format.h>
#include <fstream>
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <sstream>
#include <sys/stat.h>
#include <thread>
#include <unistd.h>

#include "client/client.hh"
#include "config/config.hh"
#include "dataplane/wire.hh"
#include "support/process.hh"

namespace vcplane::test {
namespace {

using ::testing::HasSubstr;
using namespace std::chrono_literals;
using nlohmann::json;

const std::string vcplaned = VCPLANED_PATH;
const std::string wire_tool = WIRE_PATH;
const std::string source_dir = SOURCE_DIR;

std::string skip_reason() {
    if (geteuid() != 0) {
        return "needs root (network namespaces, AF_PACKET)";
    }
    if (std::system("ip netns list >/dev/null 2>&1") != 0) {
        return "iproute2 with network namespace support is not available";
    }
    return "";
}

void sh(const std::string& cmd) {
    if (std::system((cmd + " >/dev/null 2>&1").c_str()) != 0) {
        throw std::runtime_error("failed: " + cmd);
    }
}

std::string read_file(const std::string& path) {
    std::ifstream in(path);
    std::stringstream ss;
    ss << in.rdbuf();
    return ss.str();
}

// Namespaces "<tag>-<name>", each with eth0 joined to host interface "<tag>-<name>".
class topology {
public:
    explicit topology(std::vector<std::pair<std::string, std::string>> hosts) // name -> mac
        : tag_(fmt::format("ve{}", getpid() % 100000))
        , hosts_(std::move(hosts)) {
        for (const auto& [name, mac] : hosts_) {
            const std::string n = ns(name);
            sh("ip netns add " + n);
            sh(fmt::format("ip link add {} type veth peer name eth0 netns {}", n, n));
            sh(fmt::format("sysctl -qw net.ipv6.conf.{}.disable_ipv6=1", n));
            sh(fmt::format("ip netns exec {} sysctl -qw net.ipv6.conf.all.disable_ipv6=1", n));
            sh(fmt::format("ip -n {} link set eth0 address {}", n, mac));
            sh(fmt::format("ip -n {} link set eth0 up", n));
            sh(fmt::format("ip link set {} up", n));
        }
    }
    ~topology() {
        for (const auto& [name, mac] : hosts_) {
            std::system(("ip netns del " + ns(name) + " 2>/dev/null").c_str());
            std::system(("ip link del " + ns(name) + " 2>/dev/null").c_str());
        }
    }
    std::string ns(const std::string& name) const { return tag_ + "-" + name; }
    mac_address host_mac(const std::string& name) const {
        return *parse_mac(read_file("/sys/class/net/" + ns(name) + "/address").substr(0, 17));
    }

private:
    std::string tag_;
    std::vector<std::pair<std::string, std::string>> hosts_;
};

// The frame vcplane-wire sends: MPLS, payload "vcplane seq=N", zero padding.
std::vector<uint8_t> wire_frame(const mac_address& dst, const mac_address& src, uint32_t label,
                                uint8_t tc, uint8_t ttl, uint32_t seq, size_t size) {
    std::vector<uint8_t> f(size, 0);
    wire::write_macs(f.data(), dst.data(), src.data());
    wire::store_be16(f.data() + 12, wire::ethertype_mpls);
    wire::store_be32(f.data() + 14, wire::make_mpls_entry(label, tc, true, ttl));
    const std::string p = fmt::format("vcplane seq={}", seq);
    std::copy(p.begin(), p.end(), f.begin() + 18);
    return f;
}

std::string hex(const std::vector<uint8_t>& b) {
    std::string s;
    for (uint8_t x : b) {
        s += fmt::format("{:02x}", x);
    }
    return s;
}

// Collects `count` frames in a namespace, or what came before `timeout` ran out. The timeout
// must outlast the sender: a paced sender's run time is its count times the interval plus the
// machine's timer slack, which can double a 1 ms sleep.
class receiver {
public:
    receiver(const topology& t, const std::string& name, unsigned count,
             std::chrono::milliseconds timeout = 5s)
        : ready_(fmt::format("/tmp/{}-ready-{}", t.ns(name), count))
        , p_({"/usr/sbin/ip", "netns", "exec", t.ns(name), wire_tool, "recv", "--iface", "eth0",
              "--hex", "--count", std::to_string(count), "--timeout-ms",
              std::to_string(timeout.count()), "--ready-file", ready_})
        , timeout_(timeout) {}
    ~receiver() { unlink(ready_.c_str()); }
    bool wait_ready() { return wait_for_file(ready_, 2s); }
    std::vector<std::string> frames() {
        p_.wait(timeout_ + 5s);
        std::vector<std::string> out;
        std::istringstream in(p_.output());
        std::string line;
        while (std::getline(in, line)) {
            if (line.rfind("received", 0) != 0 && !line.empty()) {
                out.push_back(line);
            }
        }
        return out;
    }

private:
    std::string ready_;
    process p_;
    std::chrono::milliseconds timeout_;
};

// The switch of these tests: two lcores, metrics on `metrics_port`, and connections src, a and
// b on the af_packet ports of t's namespaces of those names. A test appends its calls.
std::string three_port_switch(const topology& t, std::string_view file_prefix,
                              uint16_t metrics_port) {
    return fmt::format(R"([eal]
lcores = [0, 1]
no_huge = true
memory_mb = 256
vdevs = ["net_af_packet0,iface={}", "net_af_packet1,iface={}", "net_af_packet2,iface={}"]
file_prefix = "{}-{}"
[metrics]
listen = "127.0.0.1:{}"
[connections.src]
device = "net_af_packet0"
[connections.a]
device = "net_af_packet1"
[connections.b]
device = "net_af_packet2"
)",
                       t.ns("src"), t.ns("a"), t.ns("b"), file_prefix, getpid(), metrics_port);
}

TEST(end_to_end, multipoint_copies_are_rewritten_on_the_wire) {
    if (auto why = skip_reason(); !why.empty()) {
        GTEST_SKIP() << why;
    }
    const std::string mac_src = "02:76:63:01:00:01", mac_a = "02:76:63:01:00:0a",
                      mac_b = "02:76:63:01:00:0b";
    topology t({{"src", mac_src}, {"a", mac_a}, {"b", mac_b}});
    const uint16_t mport = free_tcp_port();
    const std::string cfg =
        three_port_switch(t, "vcplane-e2e", mport) + fmt::format(R"(
[calls.fan]
connection = "src"
label = 1000
[[calls.fan.parties]]
connection = "a"
label = 2001
next_hop = "{}"
[[calls.fan.parties]]
connection = "b"
label = 2002
next_hop = "{}"
[calls.direct]
connection = "src"
label = 1001
[[calls.direct.parties]]
connection = "b"
label = 3000
next_hop = "{}"
)",
                                                                 mac_a, mac_b, mac_b);
    process d({vcplaned, "--config", write_temp_file("e2e.toml", cfg)});
    ASSERT_TRUE(d.wait_for_output("forwarding:", 30s)) << d.output();

    // Frames in: 5 on the multipoint call (1500 bytes), 2 on the point-to-point call (64
    // bytes), and one each the switch must drop.
    receiver ra(t, "a", 5), rb(t, "b", 7);
    ASSERT_TRUE(ra.wait_ready() && rb.wait_ready());
    const auto send = [&](const std::string& args) {
        sh(fmt::format("ip netns exec {} {} send --iface eth0 --src {} --dst 02:00:00:00:00:99 {}",
                       t.ns("src"), wire_tool, mac_src, args));
    };
    send("--label 1000 --tc 6 --ttl 9 --count 5 --seq 10 --size 1500");
    send("--label 1001 --ttl 255 --count 2 --seq 50 --size 64");
    send("--label 4000");
    send("--label 1000 --ttl 1");
    const auto got_a = ra.frames();
    const auto got_b = rb.frames();

    const auto src = *parse_mac(mac_src);
    const auto dst_in = *parse_mac("02:00:00:00:00:99");
    ASSERT_EQ(got_a.size(), 5u);
    ASSERT_EQ(got_b.size(), 7u);
    for (uint32_t i = 0; i < 5; ++i) {
        auto in = wire_frame(dst_in, src, 1000, 6, 9, 10 + i, 1500);
        auto want_a = wire_frame(*parse_mac(mac_a), t.host_mac("a"), 2001, 6, 8, 10 + i, 1500);
        auto want_b = wire_frame(*parse_mac(mac_b), t.host_mac("b"), 2002, 6, 8, 10 + i, 1500);
        EXPECT_EQ(got_a[i], hex(want_a)) << "party a, frame " << i;
        EXPECT_EQ(got_b[i], hex(want_b)) << "party b, frame " << i;
    }
    for (uint32_t i = 0; i < 2; ++i) {
        auto want = wire_frame(*parse_mac(mac_b), t.host_mac("b"), 3000, 0, 254, 50 + i, 64);
        EXPECT_EQ(got_b[5 + i], hex(want)) << "direct, frame " << i;
    }
    const std::string m = http_get(mport, "/metrics");
    EXPECT_EQ(metric_value(m, "vcplane_dropped_packets_total{reason=\"unknown_key\"}"), 1);
    EXPECT_EQ(metric_value(m, "vcplane_dropped_packets_total{reason=\"ttl_expired\"}"), 1);
    EXPECT_EQ(metric_value(m, fmt::format("vcplane_port_rx_packets_total{{connection=\"src\"")), 9);
    EXPECT_EQ(metric_value(m, fmt::format("vcplane_port_tx_packets_total{{connection=\"b\"")), 7);
    d.signal(SIGTERM);
    EXPECT_EQ(d.wait(20s), 0) << d.output();
}

TEST(end_to_end, a_killed_client_loses_its_call_and_nobody_else_loses_a_frame) {
    if (auto why = skip_reason(); !why.empty()) {
        GTEST_SKIP() << why;
    }
    const std::string mac_src = "02:76:63:02:00:01", mac_a = "02:76:63:02:00:0a",
                      mac_b = "02:76:63:02:00:0b";
    topology t({{"src", mac_src}, {"a", mac_a}, {"b", mac_b}});
    const std::string sock = fmt::format("/tmp/vcplane-e2e-{}.sock", getpid());
    const uint16_t mport = free_tcp_port();
    const std::string cfg = three_port_switch(t, "vcplane-e2e2", mport) + fmt::format(R"(
[control]
socket = "{}"
[calls.feed]
connection = "src"
label = 1000
[[calls.feed.parties]]
connection = "a"
label = 2001
next_hop = "{}"
)",
                                                                                      sock, mac_a);
    process d({vcplaned, "--config", write_temp_file("e2e-kill.toml", cfg)});
    ASSERT_TRUE(d.wait_for_output("forwarding:", 30s)) << d.output();

    // A client session with a call of its own, to party b.
    const std::string fifo = fmt::format("/tmp/vcplane-e2e-{}.in", getpid());
    mkfifo(fifo.c_str(), 0600);
    process shell(
        {"/bin/sh", "-c", fmt::format("exec {} -s {} shell < {}", VCPLANECTL_PATH, sock, fifo)});
    const int in = open(fifo.c_str(), O_WRONLY);
    const std::string make = fmt::format("make src mine 1001 b@b:3001:{}\n", mac_b);
    ASSERT_EQ(write(in, make.data(), make.size()), ssize_t(make.size()));
    ASSERT_TRUE(shell.wait_for_output("\"vc\":", 10s)) << shell.output();

    // 3000 frames on the config's call over three seconds or more; the client dies after one.
    receiver ra(t, "a", 3000, 30s);
    ASSERT_TRUE(ra.wait_ready());
    process sender({"/usr/sbin/ip", "netns", "exec", t.ns("src"), wire_tool, "send", "--iface",
                    "eth0", "--src", mac_src, "--label", "1000", "--count", "3000", "--interval-ms",
                    "1"});
    std::this_thread::sleep_for(1s);
    shell.signal(SIGKILL);
    shell.wait(5s);
    close(in);
    unlink(fifo.c_str());
    EXPECT_EQ(sender.wait(30s), 0);
    const auto frames = ra.frames();
    EXPECT_EQ(frames.size(), 3000u); // every frame of the other call arrived
    // The switch's own count tells a frame it lost from one the receiver did not wait for.
    const std::string m = http_get(mport, "/metrics");
    EXPECT_EQ(metric_value(m, "vcplane_port_rx_packets_total{connection=\"src\""), 3000) << m;
    EXPECT_EQ(metric_value(m, "vcplane_port_tx_packets_total{connection=\"a\""), 3000) << m;

    // The rundown closed the killed client's call: its label is unknown now.
    control_client c(sock);
    c.call("hello");
    json st = c.call("status");
    EXPECT_EQ(st["calls"], 1) << st;
    EXPECT_EQ(st["sessions"], 1) << st;
    c.call("goodbye");
    d.signal(SIGTERM);
    EXPECT_EQ(d.wait(20s), 0) << d.output();
}

// The state of connection `name` as `connections` reports it.
std::string connection_state(control_client& c, const std::string& name) {
    const json reply = c.call("connections");
    for (const auto& conn : reply.at("connections")) {
        if (conn["name"] == name) {
            return conn["state"].get<std::string>();
        }
    }
    return "(none)";
}

bool wait_for_state(control_client& c, const std::string& name, const std::string& want,
                    std::chrono::milliseconds timeout) {
    const auto until = std::chrono::steady_clock::now() + timeout;
    while (std::chrono::steady_clock::now() < until) {
        if (connection_state(c, name) == want) {
            return true;
        }
        std::this_thread::sleep_for(50ms);
    }
    return false;
}

// A link that goes down and up on a net_tap port (whose link is the kernel interface's state)
// reaches the Connection Manager both ways. Before, LSC interrupts were never asked for and
// nothing polled the link: the connection stayed "connected" with its link down.
TEST(end_to_end, a_port_link_that_goes_down_and_up_is_followed) {
    if (auto why = skip_reason(); !why.empty()) {
        GTEST_SKIP() << why;
    }
    if (access("/dev/net/tun", R_OK | W_OK) != 0) {
        GTEST_SKIP() << "no /dev/net/tun (net_tap needs it)";
    }
    const std::string tap = fmt::format("vclk{}", getpid() % 100000);
    const std::string sock = fmt::format("/tmp/vcplane-e2e-link-{}.sock", getpid());
    const std::string cfg = fmt::format(R"([eal]
lcores = [0, 1]
no_huge = true
memory_mb = 256
vdevs = ["net_tap0,iface={}", "net_null0"]
file_prefix = "vcplane-e2e-link-{}"
[metrics]
enabled = false
[control]
socket = "{}"
[connections.tap]
device = "net_tap0"
[connections.other]
device = "net_null0"
)",
                                        tap, getpid(), sock);
    process d({vcplaned, "--config", write_temp_file("e2e-link.toml", cfg)});
    ASSERT_TRUE(d.wait_for_output("forwarding:", 30s)) << d.output();
    control_client c(sock);
    c.call("hello");
    ASSERT_TRUE(wait_for_state(c, "tap", "connected", 5s)) << c.call("connections").dump();

    sh("ip link set " + tap + " down");
    EXPECT_TRUE(wait_for_state(c, "tap", "disconnected_unavailable", 3s))
        << connection_state(c, "tap") << "\n"
        << d.output();
    EXPECT_EQ(connection_state(c, "other"), "connected");
    sh("ip link set " + tap + " up");
    EXPECT_TRUE(wait_for_state(c, "tap", "connected", 3s)) << d.output();
    EXPECT_THAT(d.output(), HasSubstr("connection 'tap': link down"));
    EXPECT_THAT(d.output(), HasSubstr("connection 'tap': link up"));
    c.call("goodbye");
    d.signal(SIGTERM);
    EXPECT_EQ(d.wait(20s), 0) << d.output();
}

TEST(end_to_end, the_demo_shows_first_light_and_cleans_up) {
    if (auto why = skip_reason(); !why.empty()) {
        GTEST_SKIP() << why;
    }
    if (!http_get(9469, "/metrics").empty()) {
        GTEST_SKIP() << "something (a running demo?) already serves 127.0.0.1:9469";
    }
    const auto [status, out] = run({"/bin/bash", source_dir + "/scripts/demo", "--once"}, 300s);
    EXPECT_EQ(status, 0) << out;
    EXPECT_THAT(out, HasSubstr("first light: 1 frame in, 3 correctly rewritten frames out, one "
                               "per party"));
    EXPECT_THAT(out, HasSubstr("vcplane_dropped_packets_total{reason=\"unknown_key\"}"));
    // Nothing is left behind.
    EXPECT_NE(std::system("ip netns list | grep -q '^vcp-'"), 0);
    EXPECT_NE(std::system("ip link show vcp-src >/dev/null 2>&1"), 0);
}

} // namespace
} // namespace vcplane::test

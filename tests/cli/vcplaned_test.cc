// vcplaned as a real process: --check, refusals before anything starts (bad config, missing
// port, missing interface), and a real run on net_null ports that is scraped over HTTP and
// stopped with SIGTERM.

#include <csignal>
#include <cstdio>
#include <filesystem>
#include <fmt/format.h>
#include <fstream>
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <iterator>
#include <unistd.h>

#include "support/process.hh"

namespace vcplane::test {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;
using namespace std::chrono_literals;

const std::string vcplaned = VCPLANED_PATH;

// Two net_null ports: the null PMD produces zero-filled frames as fast as it is polled, so
// traffic flows (and is dropped as wrong_ethertype) without any set-up.
std::string null_config(uint16_t metrics_port, const std::string& device_of_out = "net_null1",
                        const std::string& next_hop = "02:00:00:00:00:02") {
    return fmt::format(R"([eal]
lcores = [0, 1]
no_huge = true
memory_mb = 256
vdevs = ["net_null0", "net_null1"]
file_prefix = "vcplane-cli-{}"

[metrics]
listen = "127.0.0.1:{}"

[control]
socket = "/tmp/vcplane-cli-{}.sock"

[connections.in]
device = "net_null0"

[connections.out]
device = "{}"

[calls.feed]
connection = "in"
label = 1000
[[calls.feed.parties]]
connection = "out"
label = 2000
next_hop = "{}"
)",
                       getpid(), metrics_port, metrics_port, device_of_out, next_hop);
}

bool is_root() {
    return geteuid() == 0;
}

TEST(vcplaned, check_accepts_a_valid_file) {
    const auto path = write_temp_file("good.toml", null_config(9469));
    const auto [status, out] = run({vcplaned, "--check", path});
    EXPECT_EQ(status, 0) << out;
    EXPECT_THAT(out, HasSubstr("ok (2 connections, 1 calls, 1 parties, 1 workers)"));
}

TEST(vcplaned, check_accepts_every_shipped_example) {
    const std::string dir = std::string(SOURCE_DIR) + "/config/examples";
    size_t checked = 0;
    for (const auto& e : std::filesystem::directory_iterator(dir)) {
        if (e.path().extension() != ".toml") {
            continue;
        }
        const auto [status, out] = run({vcplaned, "--check", e.path().string()});
        EXPECT_EQ(status, 0) << e.path() << ": " << out;
        EXPECT_THAT(out, HasSubstr("ok (")) << e.path();
        ++checked;
    }
    EXPECT_GE(checked, 2u); // the bare-metal and the virtual-port examples at least
}

TEST(vcplaned, check_refuses_a_label_out_of_range_naming_the_key) {
    std::string text = null_config(9469);
    text.replace(text.find("label = 2000"), 12, "label = 1048576");
    const auto path = write_temp_file("label.toml", text);
    const auto [status, out] = run({vcplaned, "--check", path});
    EXPECT_EQ(status, 2);
    EXPECT_THAT(out, HasSubstr(path + ":25: calls.feed.parties[0].label: 1048576 is not an MPLS "
                                      "label (16..1048575, or 3 to pop)"));
    EXPECT_THAT(out, HasSubstr("nothing started"));
}

TEST(vcplaned, a_malformed_mac_stops_the_start_before_eal) {
    const auto path = write_temp_file("mac.toml", null_config(9469, "net_null1", "02:00:00:00:02"));
    const auto [status, out] = run({vcplaned, "--config", path});
    EXPECT_EQ(status, 2);
    EXPECT_THAT(out, HasSubstr("calls.feed.parties[0].next_hop: '02:00:00:00:02' is not a MAC"));
    EXPECT_THAT(out, Not(HasSubstr("EAL")));
    EXPECT_THAT(out, Not(HasSubstr("forwarding:")));
}

TEST(vcplaned, unknown_options_and_missing_files_are_usage_errors) {
    EXPECT_EQ(run({vcplaned, "--frobnicate"}).first, 2);
    const auto [status, out] = run({vcplaned, "--config", "/nonexistent.toml"});
    EXPECT_EQ(status, 2);
    EXPECT_THAT(out, HasSubstr("/nonexistent.toml: cannot open"));
}

TEST(vcplaned, a_config_that_names_a_missing_port_starts_nothing) {
    if (!is_root()) {
        GTEST_SKIP() << "needs root to start EAL";
    }
    const auto path = write_temp_file("missing.toml", null_config(free_tcp_port(), "net_null7"));
    const auto [status, out] = run({vcplaned, "--config", path});
    EXPECT_EQ(status, 1) << out;
    EXPECT_THAT(out, HasSubstr(path + ":18: connections.out.device: no DPDK port named "
                                      "'net_null7' (ports present: net_null0"));
    EXPECT_THAT(out, HasSubstr("fix:"));
    EXPECT_THAT(out, Not(HasSubstr("forwarding:")));
}

TEST(vcplaned, a_missing_af_packet_interface_is_a_preflight_error) {
    std::string text = null_config(9469);
    text.replace(text.find("\"net_null1\"]"), 12, "\"net_af_packet1,iface=vcp-no-such-if\"]");
    const auto path = write_temp_file("iface.toml", text);
    const auto [status, out] = run({vcplaned, "--config", path});
    EXPECT_EQ(status, 1) << out;
    EXPECT_THAT(out, HasSubstr("preflight error: eal.vdevs[1]: interface 'vcp-no-such-if' does "
                               "not exist; fix:"));
    EXPECT_THAT(out, HasSubstr("not starting"));
}

// --preflight: the same checks, alone, as the operator's "is this host ready?".
TEST(vcplaned, preflight_alone_says_ready_or_names_what_is_missing) {
    const auto good = write_temp_file("ready.toml", null_config(9469));
    auto [status, out] = run({vcplaned, "--preflight", good});
    EXPECT_EQ(status, 0) << out;
    EXPECT_THAT(out, HasSubstr("ready: this host has what the file needs to start"));
    EXPECT_THAT(out, Not(HasSubstr("forwarding:")));

    std::string text = null_config(9469);
    text.replace(text.find("\"net_null1\"]"), 12, "\"net_af_packet1,iface=vcp-no-such-if\"]");
    const auto bad = write_temp_file("not-ready.toml", text);
    std::tie(status, out) = run({vcplaned, "--preflight", bad});
    EXPECT_EQ(status, 1) << out;
    EXPECT_THAT(out, HasSubstr("interface 'vcp-no-such-if' does not exist"));
    EXPECT_THAT(out, HasSubstr("not ready: fix the preflight errors above"));
}

TEST(vcplaned, runs_serves_metrics_and_stops_cleanly_on_sigterm) {
    if (!is_root()) {
        GTEST_SKIP() << "needs root to start EAL";
    }
    const uint16_t port = free_tcp_port();
    const auto path = write_temp_file("run.toml", null_config(port));
    process d({vcplaned, "--config", path});
    ASSERT_TRUE(d.wait_for_output("forwarding:", 30s)) << d.output();
    EXPECT_THAT(d.output(), HasSubstr("forwarding: 2 connections, 1 calls, 1 parties on 1 worker"));

    const std::string m1 = http_get(port, "/metrics");
    ASSERT_FALSE(m1.empty());
    // Families an operator relies on, with HELP and TYPE.
    for (const char* family : {"vcplane_port_rx_packets_total", "vcplane_port_tx_packets_total",
                               "vcplane_dropped_packets_total", "vcplane_worker_busy_seconds_total",
                               "vcplane_build_info"}) {
        EXPECT_THAT(m1, HasSubstr(std::string("# HELP ") + family)) << family;
    }
    const std::string rx = "vcplane_port_rx_packets_total{connection=\"in\",device=\"net_null0\"}";
    const std::string bad = "vcplane_dropped_packets_total{reason=\"wrong_ethertype\"}";
    const double rx1 = metric_value(m1, rx);
    usleep(200000);
    const std::string m2 = http_get(port, "/metrics");
    // net_null frames are all zeros: received, and dropped as not MPLS. Counters move.
    EXPECT_GT(metric_value(m2, rx), rx1);
    EXPECT_GT(metric_value(m2, bad), 0);
    EXPECT_EQ(metric_value(m2, "vcplane_objects{kind=\"party\"}"), 1);

    d.signal(SIGHUP); // the same file again: a reload with nothing to do
    EXPECT_TRUE(d.wait_for_output("step(s), 1 unchanged call(s), 0 change(s) need a restart", 5s))
        << d.output();
    EXPECT_TRUE(d.running());

    d.signal(SIGTERM);
    EXPECT_EQ(d.wait(20s), 0) << d.output();
    EXPECT_THAT(d.output(), HasSubstr("SIGTERM: stopping"));
    EXPECT_THAT(d.output(), HasSubstr("stopped"));
}

TEST(vcplaned, a_busy_metrics_address_is_a_clear_error) {
    if (!is_root()) {
        GTEST_SKIP() << "needs root to start EAL";
    }
    const uint16_t port = free_tcp_port();
    const auto path = write_temp_file("first.toml", null_config(port));
    process first({vcplaned, "--config", path});
    ASSERT_TRUE(first.wait_for_output("forwarding:", 30s)) << first.output();
    std::string text = null_config(port);
    text.replace(text.find("vcplane-cli-"), 12, "vcplane-cli2-");
    const auto path2 = write_temp_file("second.toml", text);
    // The second daemon shares the worker core for a moment; it must fail fast and cleanly.
    const auto [status, out] = run({vcplaned, "--config", path2});
    EXPECT_EQ(status, 1) << out;
    EXPECT_THAT(out, HasSubstr(fmt::format("metrics.listen: cannot listen on 127.0.0.1:{}", port)));
    first.signal(SIGTERM);
    EXPECT_EQ(first.wait(20s), 0);
}

TEST(vcplaned, the_systemd_unit_verifies_and_matches_the_daemon) {
    if (access("/usr/bin/systemd-analyze", X_OK) != 0) {
        GTEST_SKIP() << "systemd-analyze is not installed";
    }
    // The unit as meson installs it (dist/meson.build fills in the paths).
    std::ifstream in(UNIT_PATH);
    std::string unit((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    ASSERT_FALSE(unit.empty());
    EXPECT_THAT(unit, Not(HasSubstr("@"))) << "a path left unfilled";
    // Reload is SIGHUP; a config error (exit 2) is not retried; the file is checked first.
    EXPECT_THAT(unit, HasSubstr("ExecReload=/bin/sh -c 'kill -HUP ${MAINPID}'"));
    EXPECT_THAT(unit, HasSubstr("RestartPreventExitStatus=2"));
    const std::string installed = INSTALLED_VCPLANED;
    EXPECT_THAT(unit, HasSubstr("ExecStartPre=" + installed + " --check "));
    // Verified against the binary built here, where it is installed.
    for (size_t at; (at = unit.find(installed)) != std::string::npos;) {
        unit.replace(at, installed.size(), vcplaned);
    }
    const auto path = write_temp_file("vcplaned.service", unit);
    // Its man pages are not installed here (tests/package checks them where they are).
    const auto [rc, out] = run({"/usr/bin/systemd-analyze", "verify", "--man=no", path});
    EXPECT_EQ(rc, 0) << out;
    EXPECT_THAT(out, Not(HasSubstr("Failed"))) << out;
    std::remove(path.c_str());
}

} // namespace
} // namespace vcplane::test

// The metrics as Prometheus itself sees them (issue 7): `promtool check metrics` accepts a real
// scrape of the daemon, and a real Prometheus server started here scrapes it; PromQL returns
// exactly the counts of a known traffic: 1000 MPLS frames of one call and 300 of another
// replayed once from a pcap file, each forwarded to one party. Per-VC and per-party series are
// on with room for one of each: the second call and its party are in the remainder.

#include <csignal>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fmt/format.h>
#include <fstream>
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>
#include <regex>
#include <thread>
#include <unistd.h>

#include "support/process.hh"

namespace vcplane::test {
namespace {

using ::testing::HasSubstr;
using namespace std::chrono_literals;

const std::string vcplaned = VCPLANED_PATH;
constexpr int feed_frames = 1000; // label 1000, call 'feed'
constexpr int side_frames = 300;  // label 1001, call 'side'
constexpr int frames = feed_frames + side_frames;

// A pcap file of `n` 64-byte MPLS frames, the first `n - side` with `label`, the rest with
// label + 1 (n = 0: the header only).
void write_pcap(const std::string& path, int n, uint32_t label, int side = 0) {
    std::ofstream f(path, std::ios::binary);
    const auto u32 = [&f](uint32_t v) { f.write(reinterpret_cast<const char*>(&v), 4); };
    const auto u16 = [&f](uint16_t v) { f.write(reinterpret_cast<const char*>(&v), 2); };
    u32(0xa1b2c3d4);
    u16(2);
    u16(4);
    u32(0);
    u32(0);
    u32(65535);
    u32(1); // Ethernet
    for (int i = 0; i < n; ++i) {
        uint8_t frame[64] = {0x02, 0, 0, 0, 0, 0xfe, 0x02, 0, 0, 0, 0, 0x01, 0x88, 0x47};
        const uint32_t mpls = ((label + (i >= n - side)) << 12) | (1u << 8) | 64;
        frame[14] = uint8_t(mpls >> 24);
        frame[15] = uint8_t(mpls >> 16);
        frame[16] = uint8_t(mpls >> 8);
        frame[17] = uint8_t(mpls);
        frame[21] = uint8_t(i); // a sequence number in the payload
        u32(uint32_t(i));
        u32(0);
        u32(64);
        u32(64);
        f.write(reinterpret_cast<const char*>(frame), 64);
    }
}

std::string url_encode(const std::string& s) {
    std::string out;
    for (unsigned char c : s) {
        if (std::isalnum(c) || c == '_' || c == '.' || c == '-') {
            out += char(c);
        } else {
            out += fmt::format("%{:02X}", c);
        }
    }
    return out;
}

// The value of a PromQL instant query that returns one sample; -1 when it returns none.
double promql(uint16_t port, const std::string& query) {
    const auto body = http_get(port, "/api/v1/query?query=" + url_encode(query));
    const auto j = nlohmann::json::parse(body, nullptr, false);
    if (j.is_discarded() || j.value("status", "") != "success" || j["data"]["result"].size() != 1) {
        return -1;
    }
    return std::stod(j["data"]["result"][0]["value"][1].get<std::string>());
}

class real_prometheus : public ::testing::Test {
protected:
    void SetUp() override {
        if (geteuid() != 0) {
            GTEST_SKIP() << "needs root to start EAL";
        }
        if (access("/usr/bin/prometheus", X_OK) != 0 || access("/usr/bin/promtool", X_OK) != 0) {
            GTEST_SKIP() << "Debian's prometheus package is not installed (scripts/setup does)";
        }
        dir_ = fmt::format("/tmp/vcplane-prom-{}", getpid());
        std::filesystem::create_directories(dir_ + "/tsdb");
        write_pcap(dir_ + "/in.pcap", frames, 1000, side_frames);
        write_pcap(dir_ + "/empty.pcap", 0, 0);
        metrics_port_ = free_tcp_port();
        const auto config =
            write_temp_file("prom-switch.toml", fmt::format(R"([eal]
lcores = [0, 1]
no_huge = true
memory_mb = 256
vdevs = ["net_pcap0,rx_pcap={0}/empty.pcap,tx_pcap={0}/out-tx.pcap",
         "net_pcap1,rx_pcap={0}/in.pcap,tx_pcap={0}/in-tx.pcap"]
file_prefix = "vcplane-prom-{1}"
[metrics]
listen = "127.0.0.1:{2}"
per_vc = true
per_party = true
max_series = 1
forwarding_latency = true
[control]
enabled = false
# Ports come up in port order: 'out' first, so that the call is made when 'in' comes up,
# before the workers poll it (control_plane::up), and no frame of the file finds no call.
[connections.in]
device = "net_pcap1"
[connections.out]
device = "net_pcap0"
[calls.feed]
connection = "in"
label = 1000
[[calls.feed.parties]]
connection = "out"
label = 2000
next_hop = "02:00:00:00:00:02"
[calls.side]
connection = "in"
label = 1001
[[calls.side.parties]]
connection = "out"
label = 2001
next_hop = "02:00:00:00:00:03"
)",
                                                            dir_, getpid(), metrics_port_));
        config_ = config;
        daemon_ = std::make_unique<process>(std::vector<std::string>{vcplaned, "--config", config});
        ASSERT_TRUE(daemon_->wait_for_output("forwarding:", 30s)) << daemon_->output();
    }
    void TearDown() override {
        prometheus_.reset();
        if (daemon_) {
            daemon_->signal(SIGTERM);
            EXPECT_EQ(daemon_->wait(20s), 0) << daemon_->output();
        }
        if (!dir_.empty()) {
            std::filesystem::remove_all(dir_);
        }
    }

    std::string dir_;
    std::string config_;
    uint16_t metrics_port_ = 0;
    std::unique_ptr<process> daemon_;
    std::unique_ptr<process> prometheus_;
};

TEST_F(real_prometheus, promtool_accepts_the_scrape_and_promql_counts_the_known_traffic) {
    // Every frame of the file is through when the switch has sent 1000.
    const std::string tx = "vcplane_port_tx_packets_total{connection=\"out\",device=\"net_pcap0\"}";
    for (int i = 0; i < 100 && metric_value(http_get(metrics_port_, "/metrics"), tx) < frames;
         ++i) {
        std::this_thread::sleep_for(100ms);
    }
    const std::string scrape = http_get(metrics_port_, "/metrics");
    ASSERT_EQ(metric_value(scrape, tx), frames) << scrape;

    // promtool's lint: names, units, HELP, TYPE, histogram and counter conventions.
    std::ofstream(dir_ + "/scrape.txt") << scrape;
    const auto [lint_rc, lint] =
        run({"/bin/sh", "-c",
             fmt::format("/usr/bin/promtool check metrics < {}/scrape.txt 2>&1", dir_)});
    EXPECT_EQ(lint_rc, 0) << lint;
    EXPECT_EQ(lint, "") << lint;

    // A real Prometheus scrapes the daemon every second.
    const uint16_t prom_port = free_tcp_port();
    std::ofstream(dir_ + "/prometheus.yml") << fmt::format(R"(global:
  scrape_interval: 1s
scrape_configs:
  - job_name: vcplane
    static_configs:
      - targets: ["127.0.0.1:{}"]
)",
                                                           metrics_port_);
    prometheus_ = std::make_unique<process>(
        std::vector<std::string>{"/usr/bin/prometheus", "--config.file=" + dir_ + "/prometheus.yml",
                                 "--storage.tsdb.path=" + dir_ + "/tsdb",
                                 fmt::format("--web.listen-address=127.0.0.1:{}", prom_port)});
    double up = -1;
    for (int i = 0; i < 300 && up != 1; ++i) {
        std::this_thread::sleep_for(100ms);
        up = promql(prom_port, "up{job=\"vcplane\"}");
    }
    ASSERT_EQ(up, 1) << prometheus_->output();
    double rx = -1, out = -1, made = -1, parties = -1;
    for (int i = 0; i < 100 && (rx != frames || out != frames); ++i) {
        std::this_thread::sleep_for(100ms);
        rx = promql(prom_port, "vcplane_port_rx_packets_total{connection=\"in\"}");
        out = promql(prom_port, "sum(vcplane_port_tx_packets_total{connection=\"out\"})");
    }
    EXPECT_EQ(rx, frames);
    EXPECT_EQ(out, frames);
    made = promql(prom_port, "vcplane_contract_operations_total{family=\"ndis\","
                             "operation=\"make_call\",status=\"SUCCESS\"}");
    parties = promql(prom_port, "vcplane_objects{kind=\"party\"}");
    EXPECT_EQ(made, 2);
    EXPECT_EQ(parties, 2);
    // Per VC and per party: 'feed' has series of its own, 'side' is in the remainder (the
    // series without labels), and the suppressed gauge says so.
    EXPECT_EQ(promql(prom_port, "vcplane_vc_packets_total{connection=\"in\",call=\"feed\","
                                "key=\"1000\"}"),
              feed_frames);
    EXPECT_EQ(promql(prom_port, "vcplane_vc_bytes_total{call=\"feed\"}"), feed_frames * 64);
    EXPECT_EQ(promql(prom_port, "vcplane_party_packets_total{call=\"feed\",party=\"party0\","
                                "egress=\"out\",key=\"2000\",action=\"swap\"}"),
              feed_frames);
    EXPECT_EQ(promql(prom_port, "vcplane_vc_packets_total{call=\"\"}"), side_frames);
    EXPECT_EQ(promql(prom_port, "vcplane_party_packets_total{call=\"\"}"), side_frames);
    EXPECT_EQ(promql(prom_port, "sum(vcplane_vc_packets_total)"), frames);
    EXPECT_EQ(promql(prom_port, "count(vcplane_vc_packets_total)"), 2);
    EXPECT_EQ(promql(prom_port, "sum(vcplane_vc_dropped_packets_total)"), 0);
    EXPECT_EQ(promql(prom_port, "vcplane_metrics_suppressed_series{kind=\"vc\"}"), 1);
    EXPECT_EQ(promql(prom_port, "vcplane_metrics_suppressed_series{kind=\"party\"}"), 1);
    // ethdev xstats of the ports (net_pcap has per-queue ones).
    EXPECT_GE(promql(prom_port, "count(vcplane_port_xstats_total{connection=\"in\"})"), 1);
    EXPECT_EQ(promql(prom_port, "sum(vcplane_dropped_packets_total)"), 0);
    EXPECT_EQ(promql(prom_port, "count(vcplane_build_info)"), 1);
    // Sampled forwarding latency: the file's first burst at least (one in 1024 frames), every
    // sample in a bucket, each below the +Inf bucket's count, and a wait of some microseconds.
    const double samples =
        promql(prom_port, "vcplane_forwarding_latency_seconds_count{connection=\"in\"}");
    EXPECT_GE(samples, 1);
    EXPECT_LE(samples, frames / 32 + 1);
    EXPECT_EQ(promql(prom_port, "vcplane_forwarding_latency_seconds_bucket{connection=\"in\","
                                "le=\"+Inf\"}"),
              samples);
    const double mean = promql(prom_port, "vcplane_forwarding_latency_seconds_sum{connection="
                                          "\"in\"} / vcplane_forwarding_latency_seconds_count"
                                          "{connection=\"in\"}");
    EXPECT_GT(mean, 0);
    EXPECT_LT(mean, 0.1);

    // The Grafana dashboard: every query is valid PromQL to this Prometheus, and every metric
    // it names is one the daemon exports.
    std::ifstream in(std::string(SOURCE_DIR) + "/dist/grafana/vcplane.json");
    const auto dashboard = nlohmann::json::parse(in, nullptr, false);
    ASSERT_FALSE(dashboard.is_discarded());
    std::vector<std::string> exprs;
    for (const auto& panel : dashboard["panels"]) {
        for (const auto& t : panel["targets"]) {
            exprs.push_back(t["expr"].get<std::string>());
        }
    }
    for (const auto& a : dashboard["annotations"]["list"]) {
        exprs.push_back(a["expr"].get<std::string>());
    }
    ASSERT_GE(exprs.size(), 10u);
    const std::regex metric_name("vcplane_[a-z_]+");
    for (const auto& e : exprs) {
        const auto body = http_get(prom_port, "/api/v1/query?query=" + url_encode(e));
        const auto j = nlohmann::json::parse(body, nullptr, false);
        EXPECT_FALSE(j.is_discarded()) << e;
        EXPECT_EQ(j.value("status", ""), "success") << e << "\n" << body;
        for (std::sregex_iterator m(e.begin(), e.end(), metric_name), end; m != end; ++m) {
            std::string family = m->str();
            for (const char* suffix : {"_bucket", "_count", "_sum"}) {
                if (family.size() > 7 && family.ends_with(suffix) &&
                    scrape.find("# TYPE " + family + " ") == std::string::npos) {
                    family.resize(family.size() - std::strlen(suffix));
                }
            }
            EXPECT_NE(scrape.find("# TYPE " + family + " "), std::string::npos)
                << "no metric " << family << " for: " << e;
        }
    }

    // The 'feed' call goes (a reload without it): its series disappear from the scrape; the
    // remainder keeps counting what it counted.
    {
        std::ifstream in(config_);
        std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
        const auto at = text.find("[calls.feed]");
        const auto end = text.find("[calls.side]");
        ASSERT_NE(at, std::string::npos);
        text.erase(at, end - at);
        std::ofstream(config_) << text;
    }
    daemon_->signal(SIGHUP);
    std::string after;
    for (int i = 0; i < 50; ++i) {
        std::this_thread::sleep_for(100ms);
        after = http_get(metrics_port_, "/metrics");
        if (after.find("call=\"feed\"") == std::string::npos) {
            break;
        }
    }
    EXPECT_EQ(after.find("call=\"feed\""), std::string::npos) << after;
    EXPECT_EQ(metric_value(after, "vcplane_vc_packets_total "), side_frames) << after;
    EXPECT_EQ(metric_value(after, "vcplane_metrics_suppressed_series{kind=\"vc\"}"), 1) << after;
}

} // namespace
} // namespace vcplane::test

// Reload of the real daemon (issue 6): SIGHUP and `vcplanectl reload` apply the file's changes
// live and return the plan; --dry-run and `vcplaned --plan` show it without applying it;
// garbage, truncated, huge and fuzzed files never crash the daemon and never change what it
// runs; the reload counters are on the metrics endpoint.

#include <csignal>
#include <fmt/format.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>
#include <unistd.h>

#include "support/process.hh"

namespace vcplane::test {
namespace {

using ::testing::HasSubstr;
using namespace std::chrono_literals;

const std::string vcplaned = VCPLANED_PATH;
const std::string vcplanectl = VCPLANECTL_PATH;

std::string head(uint16_t metrics_port) {
    return fmt::format(R"([eal]
lcores = [0, 1]
no_huge = true
memory_mb = 256
vdevs = ["net_null0", "net_null1", "net_null2"]
file_prefix = "vcplane-reload-{0}"
[metrics]
listen = "127.0.0.1:{1}"
[control]
socket = "/tmp/vcplane-reload-{0}.sock"
[connections.in]
device = "net_null0"
[connections.out]
device = "net_null1"
[connections.out2]
device = "net_null2"
)",
                       getpid(), metrics_port);
}

const std::string feed = R"(
[calls.feed]
connection = "in"
label = 1000
[[calls.feed.parties]]
name = "a"
connection = "out"
label = 2000
next_hop = "02:00:00:00:00:02"
)";

const std::string feed_b = R"([[calls.feed.parties]]
name = "b"
connection = "out2"
label = 2001
next_hop = "02:00:00:00:00:03"
[calls.news]
connection = "in"
label = 1001
[[calls.news.parties]]
connection = "out"
label = 2100
next_hop = "02:00:00:00:00:04"
)";

class daemon_reload : public ::testing::Test {
protected:
    void SetUp() override {
        if (geteuid() != 0) {
            GTEST_SKIP() << "needs root to start EAL";
        }
        metrics_port_ = free_tcp_port();
        socket_ = fmt::format("/tmp/vcplane-reload-{}.sock", getpid());
        path_ = write_temp_file("reload.toml", head(metrics_port_) + feed);
        daemon_ = std::make_unique<process>(std::vector<std::string>{vcplaned, "--config", path_});
        ASSERT_TRUE(daemon_->wait_for_output("forwarding:", 30s)) << daemon_->output();
    }
    void TearDown() override {
        if (daemon_) {
            daemon_->signal(SIGTERM);
            EXPECT_EQ(daemon_->wait(20s), 0) << daemon_->output();
        }
    }
    std::pair<int, std::string> ctl(std::vector<std::string> args) {
        args.insert(args.begin(), {vcplanectl, "-s", socket_});
        return run(args, 30s);
    }
    // The calls as vcplanectl --json sees them, reduced to "call/party@connection:key".
    std::vector<std::string> calls() {
        const auto [rc, out] = ctl({"--json", "calls"});
        EXPECT_EQ(rc, 0) << out;
        std::vector<std::string> v;
        const auto j = nlohmann::json::parse(out.substr(out.find('{')), nullptr, false);
        if (j.is_discarded() || !j.contains("calls")) {
            ADD_FAILURE() << out;
            return v;
        }
        for (const auto& c : j["calls"]) {
            for (const auto& p : c["parties"]) {
                v.push_back(fmt::format("{}/{}@{}:{}", c["name"].get<std::string>(),
                                        p["name"].get<std::string>(),
                                        p["connection"].get<std::string>(), p["key"].get<int>()));
            }
        }
        std::sort(v.begin(), v.end());
        return v;
    }
    void write(const std::string& text) { write_temp_file("reload.toml", text); }

    uint16_t metrics_port_ = 0;
    std::string socket_, path_;
    std::unique_ptr<process> daemon_;
};

TEST_F(daemon_reload, sighup_and_vcplanectl_apply_the_file_and_a_dry_run_only_shows_it) {
    EXPECT_THAT(calls(), ::testing::ElementsAre("feed/a@out:2000"));
    write(head(metrics_port_) + feed + feed_b);

    // A dry run and --plan: the plan, nothing applied.
    auto [rc, out] = ctl({"reload", "--dry-run"});
    EXPECT_EQ(rc, 0) << out;
    EXPECT_THAT(out, HasSubstr("would do:\n  add_party party 'b' of call 'feed': new\n"
                               "  make_call call 'news': new (1 party)\n"));
    std::tie(rc, out) = run({vcplaned, "--plan", path_}, 30s);
    EXPECT_EQ(rc, 0) << out;
    EXPECT_THAT(out, HasSubstr("make_call call 'news': new (1 party)"));
    EXPECT_THAT(calls(), ::testing::ElementsAre("feed/a@out:2000"));

    // SIGHUP applies it.
    daemon_->signal(SIGHUP);
    ASSERT_TRUE(daemon_->wait_for_output("reload of", 10s)) << daemon_->output();
    EXPECT_THAT(daemon_->output(),
                HasSubstr("reload: add_party party 'b' of call 'feed': new -> SUCCESS"));
    EXPECT_THAT(calls(), ::testing::ElementsAre("feed/a@out:2000", "feed/b@out2:2001",
                                                "news/party0@out:2100"));

    // vcplanectl reload: remove news, move b, and a change only a restart applies.
    std::string next = head(metrics_port_) + feed + R"([[calls.feed.parties]]
name = "b"
connection = "out"
label = 2002
next_hop = "02:00:00:00:00:03"
)";
    const std::string out_device = "device = \"net_null1\"\n";
    next.insert(next.find(out_device) + out_device.size(), "mtu = 9000\n");
    write(next);
    std::tie(rc, out) = ctl({"reload"});
    EXPECT_EQ(rc, 0) << out;
    EXPECT_THAT(out, HasSubstr("needs a restart (not applied):\n  connections.out.mtu: 1500 -> "
                               "9000\n"));
    EXPECT_THAT(out, HasSubstr("close_call call 'news': removed from the file -> PENDING"));
    EXPECT_THAT(out, HasSubstr("drop_party party 'b' of call 'feed': connection 'out2' -> 'out', "
                               "key 2001 -> 2002 -> PENDING"));
    EXPECT_THAT(calls(), ::testing::ElementsAre("feed/a@out:2000", "feed/b@out:2002"));

    // [services]: registered for the file, changed and deleted by reloads.
    write(next + "[services.ntp]\naddresses = [\"10.0.0.1\"]\n");
    std::tie(rc, out) = ctl({"reload"});
    EXPECT_THAT(out, HasSubstr("set_service service 'ntp': new -> SUCCESS")) << out;
    std::tie(rc, out) = ctl({"names", "ntp"});
    EXPECT_THAT(out, HasSubstr("\nntp ")) << out;
    write(next);
    std::tie(rc, out) = ctl({"reload"});
    EXPECT_THAT(out, HasSubstr("delete_service service 'ntp': removed from the file -> SUCCESS"));
    std::tie(rc, out) = ctl({"names", "ntp"});
    EXPECT_THAT(out, ::testing::Not(HasSubstr("\nntp "))) << out;

    const auto metrics = http_get(metrics_port_, "/metrics");
    EXPECT_EQ(metric_value(metrics, "vcplane_config_reloads_total{result=\"applied\"}"), 4);
    EXPECT_GT(metric_value(metrics, "vcplane_config_last_reload_timestamp_seconds"), 1.7e9);
}

TEST_F(daemon_reload, garbage_truncated_huge_and_fuzzed_files_change_nothing) {
    const auto before = calls();
    const std::string valid = head(metrics_port_) + feed + feed_b;
    std::vector<std::string> bad = {
        "",
        std::string("\x00\xff\xfe garbage \x01", 14),
        valid.substr(0, valid.size() / 2 + 7), // truncated mid-file
        valid + "[calls.feed]\nlabel = 5\n",   // a table defined twice
        std::string(17u << 20, '#'),           // beyond the size limit
        valid + "[calls.x]\nconnection = \"in\"\nlabel = 1000\n[[calls.x.parties]]\n"
                "connection = \"out\"\nlabel = 1\nnext_hop = \"02:00:00:00:00:01\"\n",
    };
    uint64_t seed = 12345;
    for (int i = 0; i < 20; ++i) { // byte-flipped copies of the valid file
        std::string t = valid;
        for (int k = 0; k < 4; ++k) {
            seed = seed * 6364136223846793005ull + 1442695040888963407ull;
            t[(seed >> 33) % t.size()] ^= char(1 + (seed >> 13) % 255);
        }
        bad.push_back(t);
    }
    int refused = 0;
    for (size_t i = 0; i < bad.size(); ++i) {
        write(bad[i]);
        const auto [rc, out] = ctl({"reload"});
        ASSERT_TRUE(daemon_->running()) << "file " << i << "\n" << daemon_->output();
        if (rc == 0) {
            // A flip that still parses (e.g. inside a comment-free hex digit of a MAC) may
            // apply; put the original back for the next round.
            write(head(metrics_port_) + feed);
            EXPECT_EQ(ctl({"reload"}).first, 0);
            continue;
        }
        ++refused;
        EXPECT_THAT(out, HasSubstr("nothing changed")) << "file " << i;
        EXPECT_EQ(calls(), before) << "file " << i;
    }
    EXPECT_GE(refused, 6 + 10);
    // SIGHUP with a bad file: logged, nothing changed, still running.
    write(bad[1]);
    daemon_->signal(SIGHUP);
    ASSERT_TRUE(daemon_->wait_for_output("nothing changed", 10s));
    EXPECT_TRUE(daemon_->running());
    EXPECT_EQ(calls(), before);
    const auto metrics = http_get(metrics_port_, "/metrics");
    EXPECT_GE(metric_value(metrics, "vcplane_config_reloads_total{result=\"invalid\"}"),
              double(refused + 1));
    // A missing file is one more refusal, not a crash.
    unlink(path_.c_str());
    EXPECT_EQ(ctl({"reload"}).first, 1);
    EXPECT_EQ(calls(), before);
}

TEST(vcplaned_plan, without_a_running_switch_plans_what_a_start_would_make) {
    const auto path = write_temp_file("plan.toml", head(free_tcp_port()) + feed + feed_b);
    const auto [rc, out] = run({vcplaned, "--plan", path, "--socket", "/tmp/nobody-here.sock"});
    EXPECT_EQ(rc, 0) << out;
    EXPECT_THAT(out, HasSubstr("no vcplaned answers on /tmp/nobody-here.sock"));
    EXPECT_THAT(out, HasSubstr("make_call call 'feed': new (2 parties)"));
    EXPECT_THAT(out, HasSubstr("make_call call 'news': new (1 party)"));
    const auto bad = write_temp_file("plan-bad.toml", "[calls.x]\nlabel = 1\n");
    EXPECT_EQ(run({vcplaned, "--plan", bad}).first, 2);
}

} // namespace
} // namespace vcplane::test

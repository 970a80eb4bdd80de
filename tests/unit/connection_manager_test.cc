// The Connection Manager's claim loop and the config CSP (docs/contracts.md §2).

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <string>
#include <vector>

#include "base/contract_stats.hh"
#include "contracts/cm/connection_manager.hh"
#include "control/config_csp.hh"
#include "support/contract_counts.hh"

namespace vcplane::cm {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;

struct recorder {
    std::vector<std::string> events;
    std::string fail_up; // the connection whose data path fails to start
    listener make() {
        return listener{[this](const connection& c) {
                            events.push_back("up " + c.name);
                            return c.name == fail_up ? std::string("no queues") : std::string();
                        },
                        [this](const connection& c, bool removed) {
                            events.push_back((removed ? "removed " : "down ") + c.name);
                        },
                        [this](const connection& c) {
                            events.push_back(std::string("link ") + state_name(c.st));
                        }};
    }
};

class scripted_csp : public csp {
public:
    scripted_csp(std::string name, result claim, std::string as = "")
        : name_(std::move(name))
        , claim_(claim)
        , as_(std::move(as)) {}
    const char* name() const override { return name_.c_str(); }
    result claim_connection(const adapter& a, std::string& connection) override {
        asked.push_back(a.device);
        if (claim_ == result::success) {
            connection = as_;
        }
        return claim_;
    }
    result connect(const std::string&, adapter&) override {
        return result::connection_does_not_exist;
    }
    result disconnect(const std::string&) override {
        ++disconnects;
        return disconnect_result;
    }
    std::vector<std::string> asked;
    int disconnects = 0;
    result disconnect_result = result::not_supported;

private:
    std::string name_;
    result claim_;
    std::string as_;
};

adapter port(const std::string& device, uint8_t last = 1) {
    return adapter{device, last, {2, 0, 0, 0, 0, last}};
}

TEST(connection_manager, each_csp_is_asked_in_order_until_one_claims) {
    recorder r;
    connection_manager cm(r.make());
    scripted_csp no(" first", result::invalid_connection),
        unsupported("second", result::not_supported), yes("third", result::success, "uplink0"),
        never("fourth", result::success, "x");
    cm.register_csp(no);
    cm.register_csp(unsupported);
    cm.register_csp(yes);
    cm.register_csp(never);
    const connection* c = cm.adapter_arrived(port("net_null0"));
    ASSERT_NE(c, nullptr);
    EXPECT_EQ(c->name, "uplink0");
    EXPECT_EQ(c->owner, &yes);
    EXPECT_TRUE(c->out_of_band);
    EXPECT_EQ(c->st, state::connected);
    EXPECT_EQ(no.asked.size(), 1u);
    EXPECT_EQ(unsupported.asked.size(), 1u);
    EXPECT_TRUE(never.asked.empty()); // the loop stops at the first success
    EXPECT_THAT(r.events, ElementsAre("up uplink0"));
}

TEST(connection_manager, an_adapter_nobody_claims_stays_visible_with_every_reason) {
    recorder r;
    connection_manager cm(r.make());
    scripted_csp a("a", result::invalid_connection), b("b", result::out_of_memory);
    cm.register_csp(a);
    cm.register_csp(b);
    EXPECT_EQ(cm.adapter_arrived(port("net_null9")), nullptr);
    ASSERT_EQ(cm.unmanaged().size(), 1u);
    EXPECT_EQ(cm.unmanaged()[0].port.device, "net_null9");
    EXPECT_EQ(cm.unmanaged()[0].reason, "a: INVALID_CONNECTION; b: OUT_OF_MEMORY");
    EXPECT_TRUE(r.events.empty());
    // Arriving again asks again and does not list it twice.
    cm.adapter_arrived(port("net_null9"));
    EXPECT_EQ(cm.unmanaged().size(), 1u);
    cm.adapter_removed("net_null9");
    EXPECT_TRUE(cm.unmanaged().empty());
}

TEST(connection_manager, a_name_already_taken_is_not_a_claim) {
    recorder r;
    connection_manager cm(r.make());
    scripted_csp dup("dup", result::success, "uplink0"), empty("empty", result::success, "");
    cm.register_csp(dup);
    cm.register_csp(empty);
    ASSERT_NE(cm.adapter_arrived(port("p0")), nullptr);
    EXPECT_EQ(cm.adapter_arrived(port("p1")), nullptr);
    EXPECT_THAT(cm.unmanaged().at(0).reason, HasSubstr("dup: claimed it as 'uplink0'"));
    EXPECT_THAT(cm.unmanaged().at(0).reason, HasSubstr("empty: claimed it as ''"));
    EXPECT_EQ(cm.connections().size(), 1u);
}

TEST(connection_manager, a_claimed_port_that_cannot_start_is_unmanaged_with_the_reason) {
    recorder r;
    r.fail_up = "uplink0";
    connection_manager cm(r.make());
    scripted_csp yes("yes", result::success, "uplink0");
    cm.register_csp(yes);
    EXPECT_EQ(cm.adapter_arrived(port("p0")), nullptr);
    EXPECT_EQ(cm.find("uplink0"), nullptr);
    ASSERT_EQ(cm.unmanaged().size(), 1u);
    EXPECT_EQ(cm.unmanaged()[0].reason, "claimed by yes as 'uplink0' but not started: no queues");
}

TEST(connection_manager, no_csp_means_unmanaged) {
    recorder r;
    connection_manager cm(r.make());
    EXPECT_EQ(cm.adapter_arrived(port("p0")), nullptr);
    EXPECT_EQ(cm.unmanaged().at(0).reason, "no connection service provider is registered");
}

TEST(connection_manager, disconnect_of_a_claimed_connection_is_refused_and_changes_nothing) {
    recorder r;
    connection_manager cm(r.make());
    scripted_csp yes("yes", result::success, "uplink0");
    cm.register_csp(yes);
    cm.adapter_arrived(port("p0"));
    EXPECT_EQ(cm.disconnect("uplink0"), result::not_supported);
    EXPECT_EQ(yes.disconnects, 1);
    ASSERT_NE(cm.find("uplink0"), nullptr);
    EXPECT_EQ(cm.find("uplink0")->st, state::connected);
    EXPECT_THAT(r.events, ElementsAre("up uplink0"));
    EXPECT_EQ(cm.disconnect("nope"), result::connection_does_not_exist);
}

TEST(connection_manager, removal_and_link_changes_reach_the_listener) {
    recorder r;
    connection_manager cm(r.make());
    scripted_csp yes("yes", result::success, "uplink0");
    cm.register_csp(yes);
    cm.adapter_arrived(port("p0"));
    cm.adapter_link("p0", false);
    cm.adapter_link("p0", false); // no change, no event
    cm.adapter_link("p0", true);
    cm.adapter_removed("p0");
    EXPECT_THAT(r.events, ElementsAre("up uplink0", "link disconnected_unavailable",
                                      "link connected", "removed uplink0"));
    EXPECT_EQ(cm.find("uplink0"), nullptr);
    cm.adapter_removed("p0"); // twice: nothing
    EXPECT_EQ(r.events.size(), 4u);
}

vcplane_config config_with(const std::string& extra) {
    return parse_config_string(R"([eal]
lcores = [0, 1]
[connections.by-name]
device = "net_null0"
[connections.by-mac]
mac = "02:00:00:00:00:07"
)" + extra,
                               "t.toml");
}

// Defect: claim and connect outcomes were not counted. Every CSP answer to a claim is counted,
// and every connect and disconnect with the result it returned.
TEST(connection_manager, every_claim_answer_connect_and_disconnect_is_counted) {
    const auto before = contract_stats::process().all();
    recorder r;
    connection_manager cm(r.make());
    scripted_csp no("first", result::invalid_connection), yes("second", result::success, "up0");
    cm.register_csp(no);
    cm.register_csp(yes);
    ASSERT_NE(cm.adapter_arrived(port("net_null0")), nullptr);
    EXPECT_EQ(cm.connect("nowhere"), result::connection_does_not_exist);
    EXPECT_EQ(cm.disconnect("up0"), result::not_supported); // claimed out of band
    using ::testing::Pair;
    using ::testing::UnorderedElementsAre;
    EXPECT_THAT(test::counted_since(before, "cm"),
                UnorderedElementsAre(Pair(Pair("claim_connection", "INVALID_CONNECTION"), 1),
                                     Pair(Pair("claim_connection", "SUCCESS"), 1),
                                     Pair(Pair("connect", "CONNECTION_DOES_NOT_EXIST"), 1),
                                     Pair(Pair("disconnect", "NOT_SUPPORTED"), 1)));
}

// The table in connection_manager.hh is the truth for vcplane's CSP: every result it lists for
// an operation is produced by some path here, and nothing else is.
TEST(status_tables, every_listed_result_is_produced_with_the_config_csp) {
    const auto cfg = config_with(R"([connections.made]
devargs = "net_null9"
[connections.broken]
devargs = "net_bogus0"
[connections.sticky]
devargs = "net_null8"
)");
    const auto before = contract_stats::process().all();
    {
        recorder r;
        connection_manager cm(r.make());
        config_csp csp(
            cfg, [&](const std::string& n) { return cm.find(n) != nullptr; },
            port_ops{[](const std::string& devargs, std::string* e) -> std::optional<adapter> {
                         if (devargs == "net_bogus0") {
                             *e = "no such driver";
                             return std::nullopt;
                         }
                         return port(devargs, devargs == "net_null9" ? 9 : 8);
                     },
                     [](const adapter& a, std::string* e) {
                         *e = "busy";
                         return a.device != "net_null8";
                     }});
        cm.register_csp(csp);
        // claim_connection
        EXPECT_NE(cm.adapter_arrived(port("net_null0")), nullptr);       // SUCCESS
        EXPECT_EQ(cm.adapter_arrived(port("net_null5", 5)), nullptr);    // INVALID_CONNECTION
        EXPECT_EQ(cm.adapter_arrived(adapter{}), nullptr);               // INVALID_PARAMETER
        EXPECT_NE(cm.adapter_arrived(port("0000:3b:00.0", 7)), nullptr); // SUCCESS, by MAC
        EXPECT_EQ(cm.adapter_arrived(port("0000:3b:00.1", 7)), nullptr); // its name is taken
        // connect
        EXPECT_EQ(cm.connect("made"), result::success);
        EXPECT_EQ(cm.connect("made"), result::connection_already_exists);
        EXPECT_EQ(cm.connect("nowhere"), result::connection_does_not_exist);
        EXPECT_EQ(cm.connect("broken"), result::unexpected);
        EXPECT_EQ(cm.connect("sticky"), result::success);
        cm.adapter_removed("0000:3b:00.0");
        EXPECT_EQ(cm.connect("by-mac"), result::not_supported); // comes up out of band
        // disconnect
        EXPECT_EQ(cm.disconnect("made"), result::success);
        EXPECT_EQ(cm.disconnect("nowhere"), result::connection_does_not_exist);
        EXPECT_EQ(cm.disconnect("by-name"), result::not_supported);
        EXPECT_EQ(cm.disconnect("sticky"), result::unexpected);
        EXPECT_EQ(cm.find("sticky"), nullptr); // disconnected whatever the CSP said
    }
    EXPECT_EQ(test::by_operation(test::counted_since(before, "cm")),
              test::listed_statuses(operation_result_table(), result_name));
}

TEST(config_csp, claims_by_device_name_and_by_mac_and_nothing_else) {
    const auto cfg = config_with("");
    std::vector<std::string> taken;
    config_csp csp(
        cfg, [&](const std::string& n) { return std::count(taken.begin(), taken.end(), n) != 0; },
        port_ops{});
    std::string name;
    EXPECT_EQ(csp.claim_connection(port("net_null0"), name), result::success);
    EXPECT_EQ(name, "by-name");
    EXPECT_EQ(csp.claim_connection(port("0000:3b:00.0", 7), name), result::success);
    EXPECT_EQ(name, "by-mac");
    EXPECT_EQ(csp.claim_connection(port("net_null5", 9), name), result::invalid_connection);
    EXPECT_EQ(csp.claim_connection(adapter{}, name), result::invalid_parameter);
    taken.push_back("by-name");
    EXPECT_EQ(csp.claim_connection(port("net_null0"), name), result::connection_already_exists);
    // Everything it claimed came up out of band: it refuses to disconnect it.
    EXPECT_EQ(csp.disconnect("by-name"), result::not_supported);
    EXPECT_EQ(csp.disconnect("unknown"), result::connection_does_not_exist);
    adapter out;
    EXPECT_EQ(csp.connect("by-name", out), result::not_supported);
    EXPECT_EQ(csp.connect("unknown", out), result::connection_does_not_exist);
}

TEST(config_csp, devargs_connections_are_connected_and_disconnected_by_the_cm) {
    const auto cfg = config_with("[connections.made]\ndevargs = \"net_null9,size=64\"\n");
    std::vector<std::string> probed, removed;
    recorder r;
    connection_manager cm(r.make());
    config_csp csp(
        cfg, [&](const std::string& n) { return cm.find(n) != nullptr; },
        port_ops{[&](const std::string& devargs, std::string*) -> std::optional<adapter> {
                     probed.push_back(devargs);
                     return port("net_null9", 9);
                 },
                 [&](const adapter& a, std::string*) {
                     removed.push_back(a.device);
                     return true;
                 }});
    cm.register_csp(csp);
    // The port it probed arrives as an event too: it is not claimed a second time.
    ASSERT_EQ(cm.connect("made"), result::success);
    EXPECT_THAT(probed, ElementsAre("net_null9,size=64"));
    ASSERT_NE(cm.find("made"), nullptr);
    EXPECT_FALSE(cm.find("made")->out_of_band);
    EXPECT_EQ(cm.adapter_arrived(port("net_null9", 9)), cm.find("made"));
    EXPECT_EQ(cm.connect("made"), result::connection_already_exists);
    // Disconnect: the listener tears down first, then the CSP removes the device.
    EXPECT_EQ(cm.disconnect("made"), result::success);
    EXPECT_THAT(r.events, ElementsAre("up made", "down made"));
    EXPECT_THAT(removed, ElementsAre("net_null9"));
    EXPECT_EQ(cm.find("made"), nullptr);
}

TEST(config_csp, a_failed_probe_leaves_no_connection) {
    const auto cfg = config_with("[connections.made]\ndevargs = \"net_bogus0\"\n");
    recorder r;
    connection_manager cm(r.make());
    config_csp csp(
        cfg, [&](const std::string& n) { return cm.find(n) != nullptr; },
        port_ops{[](const std::string&, std::string* e) -> std::optional<adapter> {
                     *e = "no such driver";
                     return std::nullopt;
                 },
                 nullptr});
    cm.register_csp(csp);
    EXPECT_EQ(cm.connect("made"), result::unexpected);
    EXPECT_EQ(cm.find("made"), nullptr);
    EXPECT_TRUE(r.events.empty());
}

} // namespace
} // namespace vcplane::cm

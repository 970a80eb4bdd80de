// The reload plan (config/config_diff.hh): which differences are applied live as which contract
// operations, in which order, and which only a restart applies.

#include <fmt/format.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "config/config_diff.hh"

namespace vcplane {
namespace {

using ::testing::ElementsAre;
using ::testing::IsEmpty;

// A base file; `calls` replaces its calls section.
vcplane_config file(const std::string& calls, const std::string& extra = "") {
    return parse_config_string(fmt::format(R"([eal]
lcores = [0, 1]
[connections.in]
device = "in"
[connections.o1]
device = "o1"
[connections.o2]
device = "o2"
{}
{})",
                                           extra, calls),
                               "t.toml");
}

const std::string two_calls = R"(
[calls.feed]
connection = "in"
label = 1000
[[calls.feed.parties]]
name = "a"
connection = "o1"
label = 2001
next_hop = "02:00:00:00:00:01"
[[calls.feed.parties]]
name = "b"
connection = "o2"
label = 2002
next_hop = "02:00:00:00:00:02"
[calls.solo]
connection = "in"
label = 1001
[[calls.solo.parties]]
name = "x"
connection = "o1"
label = 3001
next_hop = "02:00:00:00:00:03"
)";

std::vector<std::string> texts(const reload_plan& p) {
    std::vector<std::string> out;
    for (const auto& s : p.steps) {
        out.push_back(s.text());
    }
    return out;
}

std::string replace(std::string s, const std::string& from, const std::string& to) {
    const auto at = s.find(from);
    EXPECT_NE(at, std::string::npos) << from;
    return s.replace(at, from.size(), to);
}

TEST(config_diff, the_same_file_changes_nothing) {
    const auto plan = diff_configs(file(two_calls), file(two_calls));
    EXPECT_TRUE(plan.empty());
    EXPECT_THAT(plan.unchanged, ElementsAre("feed", "solo"));
}

TEST(config_diff, new_and_removed_calls_are_made_and_closed) {
    const auto only_feed = two_calls.substr(0, two_calls.find("[calls.solo]"));
    EXPECT_THAT(texts(diff_configs(file(two_calls), file(only_feed))),
                ElementsAre("close_call call 'solo': removed from the file"));
    EXPECT_THAT(texts(diff_configs(file(only_feed), file(two_calls))),
                ElementsAre("make_call call 'solo': new (1 party)"));
}

TEST(config_diff, parties_are_added_dropped_and_changed_as_drop_then_add) {
    std::string next = replace(two_calls, "label = 2002", "label = 2012"); // b changes
    next = replace(next, R"([[calls.feed.parties]]
name = "a")",
                   R"([[calls.feed.parties]]
name = "c"
connection = "o2"
label = 2003
next_hop = "02:00:00:00:00:0c"
[[calls.feed.parties]]
name = "a")");
    auto plan = diff_configs(file(two_calls), file(next));
    EXPECT_THAT(texts(plan), ElementsAre("drop_party party 'b' of call 'feed': key 2002 -> 2012",
                                         "add_party party 'b' of call 'feed': key 2002 -> 2012",
                                         "add_party party 'c' of call 'feed': new"));
    EXPECT_THAT(plan.unchanged, ElementsAre("solo"));

    // Moving a party to another connection and removing one.
    next = replace(two_calls, R"(name = "a"
connection = "o1")",
                   R"(name = "a"
connection = "o2")");
    next = replace(next, R"([[calls.feed.parties]]
name = "b"
connection = "o2"
label = 2002
next_hop = "02:00:00:00:00:02")",
                   "");
    next = replace(next, R"(name = "x"
connection = "o1"
label = 3001
next_hop = "02:00:00:00:00:03")",
                   R"(name = "x"
connection = "o1"
label = 3001
next_hop = "02:00:00:00:00:03"
[[calls.solo.parties]]
name = "y"
connection = "o2"
label = 3002
next_hop = "02:00:00:00:00:04")");
    plan = diff_configs(file(two_calls), file(next));
    // feed keeps no party unchanged (a moves, b goes): it is made again.
    EXPECT_THAT(texts(plan),
                ElementsAre("close_call call 'feed': no party stays unchanged (made again)",
                            "add_party party 'y' of call 'solo': new",
                            "make_call call 'feed': no party stays unchanged"));
}

TEST(config_diff, a_new_label_or_ingress_makes_the_call_again) {
    const auto next = replace(two_calls, "label = 1001", "label = 1005");
    EXPECT_THAT(texts(diff_configs(file(two_calls), file(next))),
                ElementsAre("close_call call 'solo': key 1001 -> 1005 (made again)",
                            "make_call call 'solo': key 1001 -> 1005"));
}

TEST(config_diff, the_only_party_changing_makes_the_call_again) {
    const auto next = replace(two_calls, "02:00:00:00:00:03", "02:00:00:00:00:33");
    EXPECT_THAT(texts(diff_configs(file(two_calls), file(next))),
                ElementsAre("close_call call 'solo': no party stays unchanged (made again)",
                            "make_call call 'solo': no party stays unchanged"));
}

TEST(config_diff, a_new_traffic_contract_is_modified_in_place) {
    const auto next =
        replace(two_calls, "label = 1000\n", "label = 1000\nsustained_rate = 125000\n");
    const auto plan = diff_configs(file(two_calls), file(next));
    EXPECT_THAT(texts(plan),
                ElementsAre("modify_qos call 'feed': no contract -> sustained 125000 B/s"));
    const auto back = diff_configs(file(next), file(two_calls));
    EXPECT_THAT(texts(back),
                ElementsAre("modify_qos call 'feed': sustained 125000 B/s -> no contract"));
}

TEST(config_diff, steps_come_in_contract_order_close_drop_modify_add_make) {
    std::string next =
        replace(two_calls, "label = 1000\n", "label = 1000\nsustained_rate = 1000\n");
    next = replace(next, R"([[calls.feed.parties]]
name = "b"
connection = "o2"
label = 2002
next_hop = "02:00:00:00:00:02")",
                   "");
    next = replace(next, "[calls.solo]", "[calls.other]");
    next = replace(next, "[[calls.solo.parties]]", "[[calls.other.parties]]");
    next += R"([[calls.feed.parties]]
name = "d"
connection = "o2"
label = 2004
next_hop = "02:00:00:00:00:0d"
)";
    const auto plan = diff_configs(file(two_calls), file(next));
    std::vector<reload_op> ops;
    for (const auto& s : plan.steps) {
        ops.push_back(s.op);
    }
    EXPECT_THAT(ops,
                ElementsAre(reload_op::close_call, reload_op::drop_party, reload_op::modify_qos,
                            reload_op::add_party, reload_op::make_call));
}

TEST(config_diff, what_only_a_restart_changes_is_listed_and_not_planned) {
    const auto next = file(two_calls, R"([connections.o3]
device = "o3"
[metrics]
listen = "127.0.0.1:9999"
)");
    auto running = file(two_calls);
    auto changed = next;
    changed.eal.lcores = {0, 1, 2};
    changed.connections[0].mtu = 9000;
    changed.connections[1].rx_descriptors = 4096;
    changed.control.mode = 0600;
    const auto plan = diff_configs(running, changed);
    EXPECT_THAT(plan.steps, IsEmpty());
    EXPECT_THAT(plan.restart_required,
                ElementsAre("eal.lcores: [0, 1] -> [0, 1, 2]", "connections.in.mtu: 1500 -> 9000",
                            "connections.o1.rx_descriptors: 1024 -> 4096", "connections.o3: new",
                            "metrics.listen: 127.0.0.1:9469 -> 127.0.0.1:9999",
                            "control.mode: 0660 -> 0600"));
    EXPECT_FALSE(plan.empty());
}

} // namespace
} // namespace vcplane

namespace vcplane {
namespace {

TEST(config_diff, services_are_registered_changed_and_deleted_after_the_calls) {
    const auto was = file(two_calls, R"([services.ntp]
addresses = ["10.0.0.1"]
[services.old]
addresses = ["10.0.0.2"]
)");
    const auto is = file(two_calls.substr(0, two_calls.find("[calls.solo]")), R"([services.ntp]
addresses = ["10.0.0.1", "10.0.0.3"]
comment = "time"
[services.dns]
addresses = ["10.0.0.53"]
)");
    EXPECT_THAT(
        texts(diff_configs(was, is)),
        ElementsAre("close_call call 'solo': removed from the file",
                    "set_service service 'ntp': addresses [10.0.0.1] -> [10.0.0.1, 10.0.0.3]",
                    "delete_service service 'old': removed from the file",
                    "set_service service 'dns': new"));
}

} // namespace
} // namespace vcplane

// Every enum with names (vocab/enum_names.hh): each value named once, and printing and parsing
// read the one list, so what one prints the other parses.

#include <gtest/gtest.h>

#include <set>
#include <string>

#include "config/config_diff.hh"
#include "contracts/callmgmt/call_management.hh"
#include "contracts/cm/connection_manager.hh"
#include "contracts/nmr/nmr.hh"
#include "contracts/nsp/name_space.hh"
#include "vocab/media.hh"
#include "vocab/party_action.hh"

namespace vcplane {
namespace {

// The enums are dense from their first listed value: every value from there up to the list's
// length is named, each name once, and each name parses back to its value.
template <typename E>
void every_value_named_once_and_parsed_back() {
    const auto& list = enum_names<E>::list;
    std::set<std::string> names;
    std::set<long long> values;
    for (const auto& n : list) {
        EXPECT_TRUE(names.insert(n.name).second) << "named twice: " << n.name;
        EXPECT_TRUE(values.insert((long long)n.value).second) << "listed twice: " << n.name;
        EXPECT_STREQ(name_of(n.value), n.name);
        ASSERT_TRUE(parse_name<E>(n.name).has_value()) << n.name;
        EXPECT_EQ(*parse_name<E>(n.name), n.value);
    }
    EXPECT_FALSE(parse_name<E>("").has_value());
    EXPECT_FALSE(parse_name<E>("no such name").has_value());
}

TEST(enum_names, every_enum_names_each_value_once_and_parses_it_back) {
    every_value_named_once_and_parsed_back<media_kind>();
    every_value_named_once_and_parsed_back<payload_kind>();
    every_value_named_once_and_parsed_back<ttl_model>();
    every_value_named_once_and_parsed_back<party_action>();
    every_value_named_once_and_parsed_back<callmgmt::status>();
    every_value_named_once_and_parsed_back<cm::result>();
    every_value_named_once_and_parsed_back<cm::state>();
    every_value_named_once_and_parsed_back<nmr::status>();
    every_value_named_once_and_parsed_back<nsp::wsa>();
    every_value_named_once_and_parsed_back<reload_op>();
}

TEST(enum_names, the_dense_enums_have_a_name_for_every_value) {
    for (uint8_t v = 0; v <= uint8_t(party_action::untag); ++v) {
        EXPECT_STRNE(name_of(party_action(v)), "?") << int(v);
    }
    for (uint8_t v = 0; v <= uint8_t(media_kind::port); ++v) {
        EXPECT_STRNE(name_of(media_kind(v)), "?") << int(v);
    }
    EXPECT_STREQ(name_of(party_action(200)), "?");
}

TEST(enum_names, a_refusal_lists_the_names_in_order) {
    EXPECT_EQ(expected_names<media_kind>(), "\"mpls\", \"vlan\" or \"port\"");
    EXPECT_EQ(expected_names<ttl_model>(), "\"uniform\" or \"pipe\"");
}

} // namespace
} // namespace vcplane

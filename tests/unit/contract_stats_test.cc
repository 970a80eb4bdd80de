// The counters of contract outcomes (base/contract_stats.hh): each outcome is counted under
// the text it was given, whatever address the text is at and however many outcomes share the
// cache of recent ones.

#include <gtest/gtest.h>
#include <string>
#include <vector>

#include "base/contract_stats.hh"

using namespace vcplane;

namespace {

uint64_t counted(const contract_stats& s, const std::string& f, const std::string& o,
                 const std::string& st) {
    const auto it = s.all().find(contract_stats::key{f, o, st});
    return it == s.all().end() ? 0 : it->second;
}

} // namespace

TEST(contract_stats, the_same_text_at_other_addresses_is_one_outcome) {
    contract_stats s;
    s.count("ndis", "add_party", "SUCCESS");
    const std::string family = "ndis", op = "add_party", status = "SUCCESS";
    s.count(family, op, status);
    s.count(std::string(family), std::string(op), std::string(status));
    EXPECT_EQ(s.all().size(), 1u);
    EXPECT_EQ(counted(s, "ndis", "add_party", "SUCCESS"), 3u);
}

// A caller's buffer that held one status and now holds another (as a JSON reply's string
// may): the second is its own outcome, not the first one counted again.
TEST(contract_stats, a_buffer_holding_other_text_counts_that_text) {
    contract_stats s;
    char status[16] = "SUCCESS";
    s.count("nsp", "lookup_next", status);
    std::snprintf(status, sizeof status, "%s", "FAILURE");
    s.count("nsp", "lookup_next", status);
    std::snprintf(status, sizeof status, "%s", "SUCCES"); // shorter, same prefix
    s.count("nsp", "lookup_next", status);
    EXPECT_EQ(counted(s, "nsp", "lookup_next", "SUCCESS"), 1u);
    EXPECT_EQ(counted(s, "nsp", "lookup_next", "FAILURE"), 1u);
    EXPECT_EQ(counted(s, "nsp", "lookup_next", "SUCCES"), 1u);
    EXPECT_EQ(s.all().size(), 3u);
}

// More outcomes than the cache has entries, counted interleaved: every count lands on its own
// outcome (entries that collide replace each other; none is lost).
TEST(contract_stats, many_outcomes_interleaved_are_each_counted) {
    contract_stats s;
    std::vector<std::string> statuses;
    for (int i = 0; i < 300; ++i) {
        statuses.push_back("status_" + std::to_string(i));
    }
    for (int round = 0; round < 5; ++round) {
        for (size_t i = 0; i < statuses.size(); ++i) {
            for (size_t k = 0; k <= i % 3; ++k) {
                s.count(i % 2 == 0 ? "ndis" : "cm", "op", statuses[i]);
            }
        }
    }
    ASSERT_EQ(s.all().size(), statuses.size());
    for (size_t i = 0; i < statuses.size(); ++i) {
        EXPECT_EQ(counted(s, i % 2 == 0 ? "ndis" : "cm", "op", statuses[i]), 5 * (i % 3 + 1))
            << statuses[i];
    }
}

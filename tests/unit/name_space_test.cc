// The NSPv2 namespace (docs/contracts.md §3.4): SetServiceEx's table, lookups with
// cursors, the buffer protocol, End racing NextEx, quotas and the end of a session.

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <map>
#include <set>

#include "contracts/nsp/name_space.hh"

namespace vcplane::nsp {
namespace {

using nlohmann::json;

std::vector<json> switch_names() {
    return {json{{"name", "uplink0"}, {"kind", "connection"}},
            json{{"name", "feed-a"}, {"kind", "call"}},
            json{{"name", "feed-a/leaf0"}, {"kind", "party"}},
            json{{"name", "feed-b"}, {"kind", "call"}}};
}

struct ns_fixture : ::testing::Test {
    name_space ns{switch_names, quotas{4, 3, 4}};

    // Begin + every NextEx until the end, as a client with a big buffer would.
    std::vector<std::string> lookup(session_id s, const std::string& q,
                                    const std::string& kind = "") {
        lookup_handle h = 0;
        EXPECT_EQ(ns.lookup_begin(s, q, kind, &h), wsa::no_error);
        std::vector<std::string> names;
        for (;;) {
            EXPECT_EQ(ns.lookup_next(s, h, 1 << 20, 0), wsa::no_error);
            auto r = ns.complete_next(s, h);
            if (r->status != wsa::no_error) {
                EXPECT_TRUE(r->status == wsa::no_more || r->status == wsa::service_not_found);
                break;
            }
            names.push_back(r->result["name"]);
        }
        EXPECT_EQ(ns.lookup_end(s, h), wsa::no_error);
        return names;
    }
    json service(const std::string& name) {
        lookup_handle h = 0;
        ns.lookup_begin(1, name, "service", &h);
        ns.lookup_next(1, h, 1 << 20, 0);
        auto r = ns.complete_next(1, h);
        ns.lookup_end(1, h);
        return r->status == wsa::no_error ? r->result : json();
    }
};

TEST(wildcard, matches_runs_and_literals) {
    EXPECT_TRUE(wildcard_match("*", ""));
    EXPECT_TRUE(wildcard_match("feed-*", "feed-a"));
    EXPECT_TRUE(wildcard_match("*a*", "feed-a/leaf0"));
    EXPECT_TRUE(wildcard_match("f*d-?", "feed-?"));
    EXPECT_FALSE(wildcard_match("feed-*", "uplink0"));
    EXPECT_FALSE(wildcard_match("feed", "feed-a"));
    EXPECT_TRUE(wildcard_match("**x", "abx"));
}

TEST_F(ns_fixture, lookups_find_switch_names_and_services_by_wildcard_and_kind) {
    ASSERT_EQ(ns.set_service(1, set_op::register_service, 0, "feed-svc", {"10.0.0.1:9000"}, "x"),
              wsa::no_error);
    EXPECT_THAT(lookup(1, "feed-*"),
                ::testing::ElementsAre("feed-a", "feed-a/leaf0", "feed-b", "feed-svc"));
    EXPECT_THAT(lookup(1, "feed-*", "call"), ::testing::ElementsAre("feed-a", "feed-b"));
    EXPECT_THAT(lookup(2, "*", "service"), ::testing::ElementsAre("feed-svc"));
    EXPECT_TRUE(lookup(1, "nothing*").empty());
}

TEST_F(ns_fixture, set_service_follows_the_table) {
    // REGISTER/0: create, then overwrite with only the given addresses.
    EXPECT_EQ(ns.set_service(1, set_op::register_service, 0, "s", {"a", "b"}, ""), wsa::no_error);
    EXPECT_EQ(ns.set_service(1, set_op::register_service, 0, "s", {"c"}, ""), wsa::no_error);
    EXPECT_EQ(service("s")["addresses"], json({"c"}));
    // REGISTER/MULTIPLE: add.
    EXPECT_EQ(ns.set_service(1, set_op::register_service, service_multiple, "s", {"a", "c"}, ""),
              wsa::no_error);
    EXPECT_EQ(service("s")["addresses"], json({"c", "a"}));
    // DEREGISTER/MULTIPLE: remove the given ones; still registered while any is left.
    EXPECT_EQ(ns.set_service(1, set_op::deregister, service_multiple, "s", {"c"}, ""),
              wsa::no_error);
    EXPECT_EQ(service("s")["registered"], true);
    EXPECT_EQ(ns.set_service(1, set_op::deregister, service_multiple, "s", {"a"}, ""),
              wsa::no_error);
    EXPECT_EQ(service("s")["registered"], false); // none left: deregistered, object kept
    EXPECT_EQ(ns.services(), 1u);
    // DEREGISTER/0: all addresses, object kept.
    ns.set_service(1, set_op::register_service, 0, "s", {"a"}, "");
    EXPECT_EQ(ns.set_service(1, set_op::deregister, 0, "s", {}, ""), wsa::no_error);
    EXPECT_EQ(service("s")["addresses"], json::array());
    EXPECT_EQ(ns.services(), 1u);
    // DELETE/MULTIPLE: exact addresses only; the object goes with its last address.
    ns.set_service(1, set_op::register_service, 0, "s", {"a", "b"}, "");
    EXPECT_EQ(ns.set_service(1, set_op::remove, service_multiple, "s", {"zz"}, ""), wsa::invalid);
    EXPECT_EQ(ns.set_service(1, set_op::remove, service_multiple, "s", {"a"}, ""), wsa::no_error);
    EXPECT_EQ(ns.services(), 1u);
    EXPECT_EQ(ns.set_service(1, set_op::remove, service_multiple, "s", {"b"}, ""), wsa::no_error);
    EXPECT_EQ(ns.services(), 0u);
    // DELETE/0 removes the object; absent objects are not found.
    ns.set_service(1, set_op::register_service, 0, "s", {"a"}, "");
    EXPECT_EQ(ns.set_service(1, set_op::remove, 0, "s", {}, ""), wsa::no_error);
    EXPECT_EQ(ns.set_service(1, set_op::remove, 0, "s", {}, ""), wsa::service_not_found);
    EXPECT_EQ(ns.set_service(1, set_op::deregister, 0, "s", {}, ""), wsa::service_not_found);
}

TEST_F(ns_fixture, bad_requests_and_other_sessions_services_are_refused) {
    EXPECT_EQ(ns.set_service(1, set_op::register_service, 0, "", {}, ""), wsa::invalid);
    EXPECT_EQ(ns.set_service(1, set_op::register_service, 0, "a*", {}, ""), wsa::invalid);
    EXPECT_EQ(ns.set_service(1, set_op::register_service, 0x80, "a", {}, ""), wsa::invalid);
    ns.set_service(1, set_op::register_service, 0, "mine", {"x"}, "");
    EXPECT_EQ(ns.set_service(2, set_op::remove, 0, "mine", {}, ""), wsa::access_denied);
    lookup_handle h = 0;
    EXPECT_EQ(ns.lookup_begin(1, "", "", &h), wsa::invalid);
    EXPECT_EQ(ns.lookup_begin(1, "*", "nonsense", &h), wsa::invalid);
    EXPECT_EQ(ns.lookup_next(1, 999, 100, 0), wsa::invalid_handle);
    EXPECT_EQ(ns.lookup_end(1, 999), wsa::invalid_handle);
    ASSERT_EQ(ns.lookup_begin(1, "*", "", &h), wsa::no_error);
    EXPECT_EQ(ns.lookup_next(2, h, 100, 0), wsa::invalid_handle); // another session's cursor
    EXPECT_EQ(ns.lookup_end(2, h), wsa::invalid_handle);
}

// Found by namespace_fuzz: a service whose strings were not UTF-8 was registered, and the
// lookup that found it threw from JSON serialisation (the control thread would have died).
// Refused with WSAEINVAL at SetServiceEx; the namespace is unchanged and still answers.
TEST_F(ns_fixture, a_service_whose_strings_are_not_utf8_is_refused) {
    for (const std::string bad :
         {"\xA4", "ok\xC0\x80", "\xED\xA0\x80", "\xF4\x90\x80\x80", "\xE2\x82"}) {
        EXPECT_EQ(ns.set_service(1, set_op::register_service, 0, bad, {}, ""), wsa::invalid);
        EXPECT_EQ(ns.set_service(1, set_op::register_service, 0, "s", {bad}, ""), wsa::invalid);
        EXPECT_EQ(ns.set_service(1, set_op::register_service, 0, "s", {}, bad), wsa::invalid);
    }
    EXPECT_EQ(ns.services(), 0u);
    EXPECT_EQ(ns.set_service(1, set_op::register_service, 0, "cafe", {"\xE2\x82\xAC"},
                             "\xF0\x9F\x93\xA1"),
              wsa::no_error);
    EXPECT_THAT(lookup(1, "caf*", "service"), ::testing::ElementsAre("cafe"));
}

// A service's name obeys the file's name rule (vocab/names.hh), whichever road it comes by.
TEST_F(ns_fixture, a_service_name_that_breaks_the_name_rule_is_refused) {
    const std::string too_long(64, 'n');
    for (const std::string& bad :
         {std::string("caf\xC3\xA9"), std::string("a b"), std::string("x*"), std::string("a/b"),
          too_long, std::string()}) {
        EXPECT_EQ(ns.set_service(1, set_op::register_service, 0, bad, {}, ""), wsa::invalid) << bad;
    }
    EXPECT_EQ(ns.services(), 0u);
    EXPECT_EQ(ns.set_service(1, set_op::register_service, 0, std::string(63, 'n'), {}, ""),
              wsa::no_error);
}

TEST_F(ns_fixture, a_small_buffer_gets_wsaefault_with_the_size_and_the_result_waits) {
    lookup_handle h = 0;
    ASSERT_EQ(ns.lookup_begin(1, "feed-a", "call", &h), wsa::no_error);
    ns.lookup_next(1, h, 4, 0);
    auto r = ns.complete_next(1, h);
    ASSERT_EQ(r->status, wsa::fault);
    const size_t needed = r->needed;
    EXPECT_EQ(needed, json({{"name", "feed-a"}, {"kind", "call"}}).dump().size());
    ns.lookup_next(1, h, needed, 0);
    r = ns.complete_next(1, h);
    ASSERT_EQ(r->status, wsa::no_error);
    EXPECT_EQ(r->result["name"], "feed-a");
    ns.lookup_next(1, h, needed, 0);
    EXPECT_EQ(ns.complete_next(1, h)->status, wsa::no_more);
    ns.lookup_end(1, h);

    // LUP_FLUSHPREVIOUS drops the result that did not fit and moves on.
    ASSERT_EQ(ns.lookup_begin(1, "feed-*", "call", &h), wsa::no_error);
    ns.lookup_next(1, h, 4, 0);
    EXPECT_EQ(ns.complete_next(1, h)->status, wsa::fault);
    ns.lookup_next(1, h, 1000, lup_flushprevious);
    r = ns.complete_next(1, h);
    EXPECT_EQ(r->result["name"], "feed-b");
}

TEST_F(ns_fixture, end_racing_next_cancels_it_and_the_handle_dies) {
    lookup_handle h = 0;
    ASSERT_EQ(ns.lookup_begin(1, "*", "", &h), wsa::no_error);
    ASSERT_EQ(ns.lookup_next(1, h, 1000, 0), wsa::no_error);
    EXPECT_EQ(ns.lookup_next(1, h, 1000, 0), wsa::invalid); // one at a time
    EXPECT_EQ(ns.lookup_end(1, h), wsa::no_error);          // arrives while NextEx is in flight
    EXPECT_EQ(ns.complete_next(1, h)->status, wsa::cancelled);
    EXPECT_EQ(ns.lookup_end(1, h), wsa::invalid_handle);
    EXPECT_EQ(ns.lookups(), 0u);
}

TEST_F(ns_fixture, quotas_give_not_enough_memory) {
    std::vector<lookup_handle> hs(4);
    for (auto& h : hs) {
        ASSERT_EQ(ns.lookup_begin(1, "*", "", &h), wsa::no_error);
    }
    lookup_handle extra = 0;
    EXPECT_EQ(ns.lookup_begin(1, "*", "", &extra), wsa::not_enough_memory);
    EXPECT_EQ(ns.lookup_begin(2, "*", "", &extra), wsa::no_error); // per session
    for (int i = 0; i < 3; ++i) {
        ASSERT_EQ(
            ns.set_service(1, set_op::register_service, 0, std::string(1, char('0' + i)), {}, ""),
            wsa::no_error);
    }
    EXPECT_EQ(ns.set_service(1, set_op::register_service, 0, "s9", {}, ""), wsa::not_enough_memory);
    EXPECT_EQ(ns.set_service(1, set_op::register_service, 0, "s0", {"1", "2", "3", "4", "5"}, ""),
              wsa::not_enough_memory);
}

TEST_F(ns_fixture, the_end_of_a_session_frees_every_lookup_and_service_it_held) {
    lookup_handle a = 0, b = 0, other = 0;
    ns.lookup_begin(1, "*", "", &a);
    ns.lookup_begin(1, "*", "", &b);
    ns.lookup_next(1, b, 100, 0); // in flight when the session ends
    ns.lookup_begin(2, "*", "", &other);
    ns.set_service(1, set_op::register_service, 0, "gone", {"x"}, "");
    ns.set_service(2, set_op::register_service, 0, "kept", {"y"}, "");
    ns.end_session(1);
    ns.end_session(1); // idempotent
    EXPECT_EQ(ns.lookups(), 1u);
    EXPECT_EQ(ns.lookups_of(1), 0u);
    EXPECT_FALSE(ns.complete_next(1, b).has_value());
    EXPECT_EQ(ns.services(), 1u);
    EXPECT_EQ(service("kept")["name"], "kept");
}

// The status table of name_space.hh is the truth: one scenario produces every status it lists
// for every operation, and nothing unlisted.
TEST_F(ns_fixture, every_listed_status_is_produced_and_nothing_unlisted) {
    std::map<std::string, std::set<wsa>> produced;
    const auto rec = [&](const char* op, wsa e) {
        produced[op].insert(e);
        return e;
    };
    const auto next = [&](session_id s, lookup_handle h, size_t buffer, uint32_t flags = 0) {
        if (rec("lookup_next", ns.lookup_next(s, h, buffer, flags)) == wsa::no_error) {
            return rec("complete_next", ns.complete_next(s, h)->status);
        }
        return wsa::invalid;
    };
    // set_service
    rec("set_service", ns.set_service(1, set_op::register_service, 0, "svc", {"a"}, ""));
    rec("set_service", ns.set_service(1, set_op::register_service, 0, "bad*", {}, ""));
    rec("set_service", ns.set_service(2, set_op::remove, 0, "svc", {}, ""));
    rec("set_service",
        ns.set_service(1, set_op::register_service, 0, "svc", {"1", "2", "3", "4", "5"}, ""));
    rec("set_service", ns.set_service(1, set_op::deregister, 0, "absent", {}, ""));
    // lookups
    lookup_handle h = 0, dummy = 0;
    rec("lookup_begin", ns.lookup_begin(1, "", "", &dummy));
    ASSERT_EQ(rec("lookup_begin", ns.lookup_begin(1, "feed-*", "call", &h)), wsa::no_error);
    next(1, h, 4);    // WSAEFAULT
    next(1, h, 1000); // feed-a
    next(1, h, 1000); // feed-b
    next(1, h, 1000); // WSA_E_NO_MORE
    rec("lookup_end", ns.lookup_end(1, h));
    rec("lookup_end", ns.lookup_end(1, h)); // WSA_INVALID_HANDLE
    next(1, h, 1000);                       // WSA_INVALID_HANDLE
    ASSERT_EQ(ns.lookup_begin(1, "nothing-like-this", "", &h), wsa::no_error);
    next(1, h, 1000); // WSASERVICE_NOT_FOUND
    ns.lookup_end(1, h);
    ASSERT_EQ(ns.lookup_begin(1, "*", "", &h), wsa::no_error);
    ASSERT_EQ(rec("lookup_next", ns.lookup_next(1, h, 1000, 0)), wsa::no_error);
    rec("lookup_next", ns.lookup_next(1, h, 1000, 0)); // WSAEINVAL: one in flight
    ns.lookup_end(1, h);
    rec("complete_next", ns.complete_next(1, h)->status); // WSA_E_CANCELLED
    std::vector<lookup_handle> many(4);
    for (auto& m : many) {
        ns.lookup_begin(3, "*", "", &m);
    }
    rec("lookup_begin", ns.lookup_begin(3, "*", "", &dummy)); // WSA_NOT_ENOUGH_MEMORY

    std::map<std::string, std::set<wsa>> listed;
    for (const auto& op : operation_status_table()) {
        listed[op.operation].insert(op.statuses.begin(), op.statuses.end());
    }
    EXPECT_EQ(produced, listed);
}

// Defect: LUP_FLUSHPREVIOUS dropped the next result even after a NextEx that succeeded.
TEST_F(ns_fixture, flush_previous_after_a_result_that_fit_skips_nothing) {
    lookup_handle h = 0;
    ASSERT_EQ(ns.lookup_begin(1, "feed-*", "call", &h), wsa::no_error);
    ns.lookup_next(1, h, 1000, 0);
    EXPECT_EQ(ns.complete_next(1, h)->result["name"], "feed-a");
    ns.lookup_next(1, h, 1000, lup_flushprevious); // nothing failed: nothing to flush
    auto r = ns.complete_next(1, h);
    ASSERT_EQ(r->status, wsa::no_error);
    EXPECT_EQ(r->result["name"], "feed-b");
    // A fault, a retry that fits, then a flush: the flush has nothing to discard either.
    ASSERT_EQ(ns.lookup_begin(1, "feed-*", "call", &h), wsa::no_error);
    ns.lookup_next(1, h, 4, 0);
    EXPECT_EQ(ns.complete_next(1, h)->status, wsa::fault);
    ns.lookup_next(1, h, 1000, 0);
    EXPECT_EQ(ns.complete_next(1, h)->result["name"], "feed-a");
    ns.lookup_next(1, h, 1000, lup_flushprevious);
    EXPECT_EQ(ns.complete_next(1, h)->result["name"], "feed-b");
}

// Defect: a NextEx on a handle already ended (while a NextEx was in flight) was WSAEINVAL.
TEST_F(ns_fixture, next_on_an_ended_handle_is_an_invalid_handle) {
    lookup_handle h = 0;
    ASSERT_EQ(ns.lookup_begin(1, "*", "", &h), wsa::no_error);
    ASSERT_EQ(ns.lookup_next(1, h, 1000, 0), wsa::no_error);
    ASSERT_EQ(ns.lookup_end(1, h), wsa::no_error);
    EXPECT_EQ(ns.lookup_next(1, h, 1000, 0), wsa::invalid_handle); // ended, not busy
    EXPECT_EQ(ns.complete_next(1, h)->status, wsa::cancelled);
    EXPECT_EQ(ns.lookup_next(1, h, 1000, 0), wsa::invalid_handle);
}

// Defect: REGISTER | SERVICE_MULTIPLE past the address quota added some addresses, then failed.
TEST_F(ns_fixture, register_multiple_over_the_quota_changes_nothing) {
    ASSERT_EQ(ns.set_service(1, set_op::register_service, 0, "svc", {"a", "b"}, "c"),
              wsa::no_error);
    EXPECT_EQ(
        ns.set_service(1, set_op::register_service, service_multiple, "svc", {"c", "d", "e"}, ""),
        wsa::not_enough_memory);
    EXPECT_EQ(service("svc")["addresses"], json({"a", "b"}));
    // Within the quota (addresses already there count once) it applies whole.
    EXPECT_EQ(
        ns.set_service(1, set_op::register_service, service_multiple, "svc", {"b", "c", "d"}, ""),
        wsa::no_error);
    EXPECT_EQ(service("svc")["addresses"], json({"a", "b", "c", "d"}));
}

} // namespace
} // namespace vcplane::nsp

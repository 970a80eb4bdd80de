// CoNDIS call management through NMR-bound call managers, with a manual grace-period source
// (docs/contracts.md §4, invariants of §5.6): every request completes exactly once and
// never with PENDING; drop and close pend until the grace period and only then free state and
// send close data; handles die at their invalidation points; the last-party rule; the delete
// rules; bad input gets its status and changes nothing; removal of connections drops parties
// and closes calls; the provisioner re-makes what comes back.

#include <deque>
#include <fmt/format.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <map>
#include <memory>
#include <set>

#include "base/alloc_faults.hh"
#include "base/contract_stats.hh"
#include "control/call_manager.hh"
#include "control/provisioner.hh"
#include "support/call_client.hh"
#include "support/contract_counts.hh"

namespace vcplane {
namespace {

using callmgmt::party_handle;
using callmgmt::vc_handle;
using ::testing::ElementsAre;
using cstatus = callmgmt::status;

struct sent_close_data {
    std::string connection;
    std::string party;
    uint32_t key;
    std::vector<uint8_t> data;
};

// Per-VC and per-party counting on, with few slots, so that every test also checks that no
// slot outlives its object (the destructor below).
metrics_config counted_series(uint32_t max_series = 8) {
    metrics_config m;
    m.per_vc = true;
    m.per_party = true;
    m.max_series = max_series;
    return m;
}

struct harness {
    std::deque<std::function<void()>> posted;
    nmr::registrar reg{[this](std::function<void()> fn) { posted.push_back(std::move(fn)); }};
    manual_grace_periods gp;
    switch_state state{1, counted_series()};
    std::map<std::string, std::unique_ptr<call_manager>> cms;
    std::vector<sent_close_data> close_data;
    bool close_data_fails = false; // as when no buffer is left for the frame
    uint16_t next_port = 0;
    size_t parties_before = party_set::live();
    size_t vcs_before = switch_state::live_vcs();

    void run_posted() {
        while (!posted.empty()) {
            auto fn = std::move(posted.front());
            posted.pop_front();
            fn();
        }
    }
    void grace_period() {
        gp.flush();
        gp.complete_all();
        run_posted();
    }
    void up(const std::string& name, media_kind media = media_kind::mpls, uint32_t mtu = 1500,
            uint64_t bandwidth_bps = 0) {
        state.add_connection(name, name, next_port++, media, {2, 0, 0, 0, 0, 1}, mtu,
                             bandwidth_bps);
        cms[name] = std::make_unique<call_manager>(
            name, state, gp, reg,
            [this](const connection_state& out, const party_spec& p, uint32_t,
                   std::span<const uint8_t> data) {
                if (close_data_fails) {
                    return false;
                }
                close_data.push_back({out.name, p.name, p.key, {data.begin(), data.end()}});
                return true;
            });
        cms[name]->register_provider();
    }
    // What control_plane::down does, minus the ports.
    void down(const std::string& name) {
        for (auto& [n, m] : cms) {
            if (n != name) {
                m->egress_gone(name);
            }
        }
        bool done = false;
        cms[name]->deregister([&done] { done = true; });
        state.remove_connection(name);
        grace_period();
        EXPECT_TRUE(done) << name;
        cms.erase(name);
    }
    ~harness() {
        for (auto& [n, m] : cms) {
            m->deregister([] {});
        }
        grace_period();
        // Every per-VC and per-party object is freed, and so is every counter slot.
        EXPECT_EQ(party_set::live(), parties_before);
        EXPECT_EQ(switch_state::live_vcs(), vcs_before);
        state.release_retired_slots();
        EXPECT_EQ(state.vc_slots().in_use(), 0u);
        EXPECT_EQ(state.party_slots().in_use(), 0u);
        EXPECT_EQ(state.vc_slots().in_remainder(), 0u);
        EXPECT_EQ(state.party_slots().in_remainder(), 0u);
    }
};

// The recording client of tests/support, pumping this harness's grace periods.
class test_client : public test::call_client {
public:
    explicit test_client(harness& h)
        : call_client(h.reg, [&h] { h.grace_period(); }) {}
    ~test_client() override { EXPECT_THAT(violations, ::testing::IsEmpty()); }
};

using test::call;
using test::party;

const vc* published(harness& h, const std::string& conn, uint32_t key) {
    return h.state.find_connection(conn)->entry->keys.lookup(key);
}

// Defect: NMR deregistration was counted SUCCESS while it returned PENDING, and completions
// were not counted. Every request is counted once with the status it returned, every
// completion once with its own.
TEST(contract_counts, every_request_and_completion_is_counted_once_with_its_status) {
    const auto before = contract_stats::process().all();
    {
        harness h;
        h.up("in");
        h.up("out");
        test_client c(h);
        vc_handle v = 0;
        party_handle a = 0, b = 0;
        ASSERT_EQ(c.make("in", 0, call("x", 100), party("a", "out", 2000), &v, &a),
                  cstatus::success);
        ASSERT_EQ(c.add("in", v, party("b", "out", 2001), &b), cstatus::success);
        ASSERT_EQ(c.drop("in", b), cstatus::pending);
        ASSERT_EQ(c.drop("in", a), cstatus::failure); // the last party
        h.grace_period();
        ASSERT_EQ(c.close("in", v, a), cstatus::pending);
        h.grace_period();
        ASSERT_EQ(c.make("in", 0, call("y", 101), party("a", "out", 2000), &v, &a),
                  cstatus::success);
        h.down("out"); // its only party leaves: the call closes (incoming)
    }
    using ::testing::Pair;
    using ::testing::UnorderedElementsAre;
    EXPECT_THAT(test::counted_since(before, "ndis"),
                UnorderedElementsAre(
                    Pair(Pair("make_call", "SUCCESS"), 2), Pair(Pair("add_party", "SUCCESS"), 1),
                    Pair(Pair("drop_party", "PENDING"), 1), Pair(Pair("drop_party", "FAILURE"), 1),
                    Pair(Pair("drop_party_complete", "SUCCESS"), 1),
                    Pair(Pair("close_call", "PENDING"), 1),
                    Pair(Pair("close_call_complete", "SUCCESS"), 1),
                    Pair(Pair("incoming_close_call", "CLOSING"), 1)));
    const auto nmr = test::counted_since(before, "nmr");
    // Two providers and the client deregister: each returned PENDING, each completed once.
    EXPECT_EQ(nmr.count({"deregister_provider", "SUCCESS"}), 0u);
    EXPECT_EQ(nmr.at({"deregister_provider", "PENDING"}), 2u);
    EXPECT_EQ(nmr.at({"deregister_provider_complete", "SUCCESS"}), 2u);
    EXPECT_EQ(nmr.at({"deregister_client", "PENDING"}), 1u);
    EXPECT_EQ(nmr.at({"deregister_client_complete", "SUCCESS"}), 1u);
}

// The status table of call_management.hh is the truth: every status it lists for a request or
// completion is produced by some path here, and the call managers never return one it does
// not list (checked over everything this test binary counted).
TEST(status_tables, every_listed_status_is_produced_and_nothing_unlisted_ever_is) {
    const auto before = contract_stats::process().all();
    {
        harness h;
        h.up("in");
        h.up("out");
        h.up("out2");
        h.up("thin", media_kind::mpls, 1500, 1000); // 1000 bit/s: any contract overbooks it
        h.up("vin", media_kind::vlan);
        h.up("vout", media_kind::vlan);
        test_client c(h);
        vc_handle created = 0, v = 0, p2p = 0, x = 0, vl = 0;
        party_handle a = 0, b = 0, p = 0, va = 0, vb = 0;
        const traffic_contract metered{1000, 0, 0};
        // create_vc
        ASSERT_EQ(c.create("in", &created), cstatus::success);
        EXPECT_EQ(c.create("in", nullptr), cstatus::invalid_parameter);
        // make_call
        ASSERT_EQ(c.make("in", 0, call("multi", 100), party("a", "out", 2000), &v, &a),
                  cstatus::success);
        EXPECT_EQ(c.make("in", 0, call("y", 100), party("a", "out", 2000), &x, &p),
                  cstatus::failure); // label in use
        EXPECT_EQ(c.make("in", 0, call("y", 15), party("a", "out", 2000), &x, &p),
                  cstatus::invalid_parameter);
        EXPECT_EQ(c.make("vin", 0, call("y", 11), party("a", "out", 3), &x, &p),
                  cstatus::not_supported); // label 3 pops, and a VLAN frame has no label
        EXPECT_EQ(c.make("in", 0, call("y", 101, true, metered), party("a", "thin", 2000), &x, &p),
                  cstatus::resources); // overbooked
        EXPECT_EQ(c.make("in", 999, call("y", 101), party("a", "out", 2000), &x, &p),
                  cstatus::invalid_handle);
        // add_party
        ASSERT_EQ(c.add("in", v, party("b", "out2", 2001), &b), cstatus::success);
        EXPECT_EQ(c.add("in", v, party("b", "out", 2002), &p), cstatus::invalid_parameter);
        alloc_faults::arm(alloc_faults::site::party_array, 1);
        EXPECT_EQ(c.add("in", v, party("c", "out", 2002), &p), cstatus::resources);
        EXPECT_EQ(c.add("in", 999, party("c", "out", 2002), &p), cstatus::invalid_handle);
        ASSERT_EQ(c.make("in", 0, call("p2p", 102, false), party("a", "out", 2003), &p2p, &p),
                  cstatus::success);
        EXPECT_EQ(c.add("in", p2p, party("c", "out", 2004), &p), cstatus::failure);
        EXPECT_EQ(c.add("in", created, party("c", "out", 2004), &p), cstatus::failure); // no call
        // modify_call_qos
        EXPECT_EQ(c.qos("in", v, {0, 0, 0}), cstatus::success); // no contract: no meter
        // Meters count in TSC cycles: without EAL (as here) a contract cannot be metered.
        EXPECT_EQ(c.qos("in", v, {1000, 0, 0}), cstatus::not_supported);
        EXPECT_EQ(c.qos("in", v, {2000, 1000, 0}), cstatus::invalid_parameter);
        EXPECT_EQ(c.qos("in", created, {1000, 0, 0}), cstatus::failure);
        EXPECT_EQ(c.qos("in", 999, {1000, 0, 0}), cstatus::invalid_handle);
        ASSERT_EQ(c.add("in", v, party("t", "out", 2005), &p), cstatus::success);
        // drop_party
        alloc_faults::arm(alloc_faults::site::party_array, 1);
        EXPECT_EQ(c.drop("in", p), cstatus::resources); // out of memory: the party stays
        EXPECT_EQ(c.drop("in", p, std::vector<uint8_t>(2000, 'x')), cstatus::invalid_parameter);
        EXPECT_EQ(c.drop("in", 999), cstatus::invalid_handle);
        ASSERT_EQ(c.drop("in", p), cstatus::pending);
        EXPECT_EQ(c.drop("in", b), cstatus::pending);
        h.grace_period();
        EXPECT_EQ(c.drop("in", a), cstatus::failure); // the last party
        ASSERT_EQ(c.make("vin", 0, call("vl", 10), party("va", "vout", 20), &vl, &va),
                  cstatus::success);
        ASSERT_EQ(c.add("vin", vl, party("vb", "vout", 21), &vb), cstatus::success);
        EXPECT_EQ(c.add("vin", vl, party("vc", "out", 3), &p), cstatus::not_supported);
        EXPECT_EQ(c.drop("vin", vb, {1}), cstatus::invalid_data);
        // close_call
        EXPECT_EQ(c.close("vin", vl, va), cstatus::failure); // two parties left
        EXPECT_EQ(c.drop("vin", vb), cstatus::pending);
        h.grace_period();
        EXPECT_EQ(c.close("vin", vl, va, {1}), cstatus::invalid_data);
        EXPECT_EQ(c.close("in", v, a, std::vector<uint8_t>(2000, 'x')), cstatus::invalid_parameter);
        EXPECT_EQ(c.close("in", 999, 0), cstatus::invalid_handle);
        EXPECT_EQ(c.close("in", created, 0), cstatus::failure); // no call
        // A call on a VC the client created, closing: delete, make, add, modify and close see it.
        ASSERT_EQ(c.make("in", created, call("mine", 103), party("m", "out", 2006), &x, &p),
                  cstatus::success);
        EXPECT_EQ(c.remove("in", created), cstatus::not_accepted);
        ASSERT_EQ(c.close("in", created, p), cstatus::pending);
        EXPECT_EQ(c.close("in", created, p), cstatus::closing);
        EXPECT_EQ(c.remove("in", created), cstatus::closing);
        EXPECT_EQ(c.make("in", created, call("mine", 103), party("m", "out", 2006), &x, &p),
                  cstatus::closing);
        EXPECT_EQ(c.add("in", created, party("n", "out", 2007), &p), cstatus::closing);
        EXPECT_EQ(c.qos("in", created, {1000, 0, 0}), cstatus::closing);
        h.grace_period();
        // delete_vc
        EXPECT_EQ(c.remove("in", v), cstatus::failure); // the call manager created it
        EXPECT_EQ(c.remove("in", created), cstatus::success);
        EXPECT_EQ(c.remove("in", created), cstatus::invalid_handle);
        // modify_call_qos RESOURCES: a contract that overbooks a party's egress.
        ASSERT_EQ(c.make("in", 0, call("t", 104), party("t", "thin", 2008), &x, &p),
                  cstatus::success);
        EXPECT_EQ(c.qos("in", x, {1000, 0, 0}), cstatus::resources);
        // Incoming drop and close: connections go away under calls.
        ASSERT_EQ(c.add("in", v, party("o2", "out2", 2009), &p), cstatus::success);
        h.down("out2"); // o2 dropped (incoming), a stays
        h.down("thin"); // t's only party: its call closes (incoming)
        EXPECT_EQ(c.close("in", v, a), cstatus::pending);
        EXPECT_EQ(c.close("in", p2p, 0), cstatus::pending);
        h.grace_period();
        // Completions whose close data could not be sent.
        ASSERT_EQ(c.make("in", 0, call("cd", 105), party("a", "out", 2010), &x, &a),
                  cstatus::success);
        ASSERT_EQ(c.add("in", x, party("b", "out", 2011), &p), cstatus::success);
        h.close_data_fails = true;
        EXPECT_EQ(c.drop("in", p, {1}), cstatus::pending);
        EXPECT_EQ(c.close("in", x, a, {1}), cstatus::pending);
        h.grace_period();
        h.close_data_fails = false;
    }
    const auto listed = test::listed_statuses(callmgmt::request_statuses(), callmgmt::status_name);
    EXPECT_EQ(test::by_operation(test::counted_since(before, "ndis")), listed);
    // Nothing any test of this binary made a call manager return is missing from the table.
    EXPECT_THAT(test::unlisted_outcomes(listed, "ndis"), ::testing::IsEmpty());
}

TEST(call_manager, create_and_delete_vc_are_synchronous_and_the_handle_dies_with_delete) {
    harness h;
    h.up("in");
    test_client c(h);
    vc_handle v = 0;
    ASSERT_EQ(c.create("in", &v), cstatus::success);
    EXPECT_NE(v, 0u);
    EXPECT_EQ(c.remove("in", v), cstatus::success);
    EXPECT_EQ(c.remove("in", v), cstatus::invalid_handle);
    EXPECT_EQ(c.remove("in", 424242), cstatus::invalid_handle);
}

TEST(call_manager, delete_is_not_accepted_while_active_and_closing_while_the_close_is_pending) {
    harness h;
    h.up("in");
    h.up("out");
    test_client c(h);
    vc_handle v = 0, got = 0;
    party_handle p = 0;
    ASSERT_EQ(c.create("in", &v), cstatus::success);
    ASSERT_EQ(c.make("in", v, call("x", 100, false), party("a", "out", 2000), &got, &p),
              cstatus::success);
    EXPECT_EQ(got, v);
    EXPECT_EQ(p, 0u); // point-to-point: no party handle
    ASSERT_NE(published(h, "in", 100), nullptr);
    EXPECT_EQ(c.remove("in", v), cstatus::not_accepted);

    EXPECT_EQ(c.close("in", v, 0), cstatus::pending);
    EXPECT_EQ(published(h, "in", 100), nullptr); // unusable for transfers at once
    EXPECT_EQ(c.remove("in", v), cstatus::closing);
    EXPECT_EQ(c.close("in", v, 0), cstatus::closing);
    EXPECT_TRUE(c.events[v].empty()); // completes only after the grace period
    h.grace_period();
    EXPECT_THAT(c.events[v], ElementsAre("close_complete(0):SUCCESS"));
    h.grace_period();
    EXPECT_EQ(c.events[v].size(), 1u); // exactly once

    // Deactivated: the creator may reuse it for another call, then delete it.
    ASSERT_EQ(c.make("in", v, call("y", 101, false), party("a", "out", 2000), &got, &p),
              cstatus::success);
    EXPECT_EQ(c.close("in", v, 0), cstatus::pending);
    h.grace_period();
    EXPECT_EQ(c.remove("in", v), cstatus::success);
    EXPECT_EQ(c.close("in", v, 0), cstatus::invalid_handle);
}

TEST(call_manager, a_vc_the_call_manager_created_is_deleted_by_it_after_the_close) {
    harness h;
    h.up("in");
    h.up("out");
    test_client c(h);
    vc_handle v = 0;
    party_handle p = 0;
    ASSERT_EQ(c.make("in", 0, call("x", 100), party("a", "out", 2000), &v, &p), cstatus::success);
    EXPECT_NE(p, 0u);
    EXPECT_EQ(c.remove("in", v), cstatus::failure); // only the creator deletes
    EXPECT_EQ(c.close("in", v, p), cstatus::pending);
    h.grace_period();
    EXPECT_THAT(c.events[v], ElementsAre("close_complete(" + std::to_string(p) + "):SUCCESS"));
    EXPECT_EQ(c.remove("in", v), cstatus::invalid_handle); // gone with the completion
    EXPECT_EQ(h.cms["in"]->vc_count(), 0u);
}

TEST(call_manager, parties_join_and_leave_a_live_call_with_the_last_party_rule) {
    harness h;
    h.up("in");
    h.up("out1");
    h.up("out2");
    test_client c(h);
    vc_handle v = 0;
    party_handle a = 0, b = 0, d = 0;
    ASSERT_EQ(c.make("in", 0, call("fan", 100), party("a", "out1", 2001), &v, &a),
              cstatus::success);
    ASSERT_EQ(c.add("in", v, party("b", "out2", 2002), &b), cstatus::success);
    ASSERT_EQ(c.add("in", v, party("d", "out1", 2003), &d), cstatus::success);
    const vc* circuit = published(h, "in", 100);
    ASSERT_NE(circuit, nullptr);
    ASSERT_EQ(circuit->parties->size(), 3u);
    EXPECT_EQ((*circuit->parties)[1].out_key, 2002u);
    EXPECT_EQ((*circuit->parties)[1].tx_port, h.state.find_connection("out2")->port);

    // Drop: PENDING, the handle dies at once, the party array is republished at once.
    EXPECT_EQ(c.drop("in", b), cstatus::pending);
    EXPECT_EQ(circuit->parties->size(), 2u);
    EXPECT_EQ(c.drop("in", b), cstatus::invalid_handle);
    EXPECT_TRUE(c.events[b].empty());
    h.grace_period();
    EXPECT_THAT(c.events[b], ElementsAre("drop_complete:SUCCESS"));

    // Closing with more than one party fails; so does closing with a party that is not last.
    EXPECT_EQ(c.close("in", v, a), cstatus::failure);
    EXPECT_EQ(c.drop("in", d), cstatus::pending);
    h.grace_period();
    // The last party is never dropped: FAILURE, and nothing changes.
    EXPECT_EQ(c.drop("in", a), cstatus::failure);
    EXPECT_EQ(circuit->parties->size(), 1u);
    EXPECT_EQ(c.close("in", v, d), cstatus::invalid_handle); // d is dead
    EXPECT_EQ(c.close("in", v, a), cstatus::pending);
    h.grace_period();
    EXPECT_THAT(c.events[v], ElementsAre("close_complete(" + std::to_string(a) + "):SUCCESS"));
    EXPECT_EQ(c.drop("in", a), cstatus::invalid_handle);
}

// A call's parties are found by handle and checked by name record by record while it is small
// and through an index once it is large: the same answers on both sides of the line, while it
// grows past it and shrinks back.
TEST(call_manager, parties_are_found_by_handle_and_name_in_small_and_large_calls) {
    harness h;
    h.up("in");
    h.up("out1");
    test_client c(h);
    vc_handle v = 0;
    std::vector<party_handle> ps(1);
    ASSERT_EQ(c.make("in", 0, call("grow", 100), party("p0", "out1", 3000), &v, &ps[0]),
              cstatus::success);
    const auto expect_found = [&](size_t n) {
        // Every name taken is refused again; every live handle drops (checked at the end).
        for (size_t i = 0; i < n; ++i) {
            party_handle dup = 0;
            EXPECT_EQ(c.add("in", v, party(fmt::format("p{}", i), "out1", 9000), &dup),
                      cstatus::invalid_parameter)
                << n << " parties, p" << i;
        }
    };
    for (size_t i = 1; i < 40; ++i) {
        ps.push_back(0);
        ASSERT_EQ(
            c.add("in", v, party(fmt::format("p{}", i), "out1", uint32_t(3000 + i)), &ps.back()),
            cstatus::success)
            << i;
        if (i == 10 || i == 16 || i == 17 || i == 39) {
            expect_found(i + 1);
        }
    }
    // Shrink back below the line: drops by handle from the middle, names freed for reuse.
    for (size_t i = 35; i >= 5; --i) {
        ASSERT_EQ(c.drop("in", ps[i]), cstatus::pending) << i;
        EXPECT_EQ(c.drop("in", ps[i]), cstatus::invalid_handle) << i;
    }
    h.grace_period();
    expect_found(5);
    party_handle again = 0;
    EXPECT_EQ(c.add("in", v, party("p20", "out1", 3020), &again), cstatus::success);
    for (party_handle p : {ps[1], ps[36], ps[39], again}) {
        EXPECT_EQ(c.drop("in", p), cstatus::pending);
    }
    h.grace_period();
    EXPECT_EQ(published(h, "in", 100)->parties->size(), 6u); // p0, p2, p3, p4, p37, p38
}

TEST(call_manager, one_grace_period_serves_many_drops) {
    harness h;
    h.up("in");
    h.up("out");
    test_client c(h);
    vc_handle v = 0;
    party_handle first = 0;
    ASSERT_EQ(c.make("in", 0, call("fan", 100), party("p0", "out", 2000), &v, &first),
              cstatus::success);
    std::vector<party_handle> ps(64);
    for (uint32_t i = 0; i < ps.size(); ++i) {
        ASSERT_EQ(c.add("in", v, party(fmt::format("p{}", i + 1), "out", 3000 + i), &ps[i]),
                  cstatus::success);
    }
    for (party_handle p : ps) {
        ASSERT_EQ(c.drop("in", p), cstatus::pending);
    }
    h.gp.flush();
    EXPECT_EQ(h.gp.started(), 1u);
    h.gp.complete_all();
    EXPECT_EQ(h.gp.grace_periods(), 1u);
    for (party_handle p : ps) {
        EXPECT_EQ(c.events[p].size(), 1u);
    }
}

TEST(call_manager, close_data_goes_out_after_the_grace_period_as_the_last_thing_the_party_gets) {
    harness h;
    h.up("in");
    h.up("out", media_kind::mpls, 100);
    test_client c(h);
    vc_handle v = 0;
    party_handle a = 0, b = 0;
    ASSERT_EQ(c.make("in", 0, call("fan", 100), party("a", "out", 2001), &v, &a), cstatus::success);
    ASSERT_EQ(c.add("in", v, party("b", "out", 2002), &b), cstatus::success);
    // More than the MTU allows (100 - 12 bytes of G-ACh headers): refused, nothing changes.
    EXPECT_EQ(c.drop("in", b, std::vector<uint8_t>(89, 'x')), cstatus::invalid_parameter);
    EXPECT_THAT(c.error("in"), ::testing::HasSubstr("do not fit the MTU 100"));
    EXPECT_EQ(published(h, "in", 100)->parties->size(), 2u);

    EXPECT_EQ(c.drop("in", b, std::vector<uint8_t>(88, 'y')), cstatus::pending);
    EXPECT_TRUE(h.close_data.empty()); // not while a worker may still send copies to b
    h.grace_period();
    ASSERT_EQ(h.close_data.size(), 1u);
    EXPECT_EQ(h.close_data[0].party, "b");
    EXPECT_EQ(h.close_data[0].key, 2002u);
    EXPECT_EQ(h.close_data[0].data.size(), 88u);
    EXPECT_THAT(c.events[b], ElementsAre("drop_complete:SUCCESS"));

    EXPECT_EQ(c.close("in", v, a, {'b', 'y', 'e'}), cstatus::pending);
    h.grace_period();
    ASSERT_EQ(h.close_data.size(), 2u);
    EXPECT_EQ(h.close_data[1].party, "a");
    EXPECT_EQ(h.close_data[1].data, (std::vector<uint8_t>{'b', 'y', 'e'}));
}

// SUCCESS means the close data was sent: one that could not be (no buffer) completes the drop
// or close all the same, with RESOURCES.
TEST(call_manager, close_data_that_cannot_be_sent_completes_resources) {
    harness h;
    h.up("in");
    h.up("out");
    test_client c(h);
    vc_handle v = 0;
    party_handle a = 0, b = 0;
    ASSERT_EQ(c.make("in", 0, call("fan", 100), party("a", "out", 2001), &v, &a), cstatus::success);
    ASSERT_EQ(c.add("in", v, party("b", "out", 2002), &b), cstatus::success);
    h.close_data_fails = true;
    EXPECT_EQ(c.drop("in", b, {'x'}), cstatus::pending);
    h.grace_period();
    EXPECT_THAT(c.events[b], ElementsAre("drop_complete:RESOURCES"));
    EXPECT_EQ(published(h, "in", 100)->parties->size(), 1u); // dropped all the same
    EXPECT_EQ(c.close("in", v, a, {'y'}), cstatus::pending);
    h.grace_period();
    EXPECT_THAT(c.events[v], ElementsAre("close_complete(" + std::to_string(a) + "):RESOURCES"));
    EXPECT_EQ(published(h, "in", 100), nullptr);
    // Without close data there is nothing to send: SUCCESS.
    ASSERT_EQ(c.make("in", 0, call("fan", 101), party("a", "out", 2001), &v, &a), cstatus::success);
    EXPECT_EQ(c.close("in", v, a), cstatus::pending);
    h.grace_period();
    EXPECT_THAT(c.events[v], ElementsAre("close_complete(" + std::to_string(a) + "):SUCCESS"));
}

TEST(call_manager, vlan_cannot_carry_close_data) {
    harness h;
    h.up("vin", media_kind::vlan);
    h.up("vout", media_kind::vlan);
    test_client c(h);
    vc_handle v = 0;
    party_handle a = 0, b = 0;
    ASSERT_EQ(c.make("vin", 0, call("v", 10), party("a", "vout", 20), &v, &a), cstatus::success);
    ASSERT_EQ(c.add("vin", v, party("b", "vout", 21), &b), cstatus::success);
    EXPECT_EQ(c.drop("vin", b, {1}), cstatus::invalid_data);
    EXPECT_EQ(published(h, "vin", 10)->parties->size(), 2u);
    EXPECT_EQ(c.drop("vin", b), cstatus::pending); // without data it is fine
    h.grace_period();
    EXPECT_EQ(c.close("vin", v, a, {1}), cstatus::invalid_data);
    EXPECT_EQ(c.close("vin", v, a), cstatus::pending);
    h.grace_period();
    EXPECT_TRUE(h.close_data.empty());
}

TEST(call_manager, bad_requests_get_their_status_and_change_nothing) {
    harness h;
    h.up("in");
    h.up("out");
    h.up("vout", media_kind::vlan);
    test_client c(h);
    vc_handle v = 0, x = 0;
    party_handle a = 0, p = 0;
    ASSERT_EQ(c.make("in", 0, call("x", 100), party("a", "out", 2000), &v, &a), cstatus::success);
    const size_t parties = party_set::live(), vcs = switch_state::live_vcs();

    EXPECT_EQ(c.make("in", 0, call("y", 100), party("a", "out", 2000), &x, &p), cstatus::failure);
    EXPECT_THAT(c.error("in"), ::testing::HasSubstr("label 100 on 'in' is in use"));
    EXPECT_EQ(c.make("in", 0, call("y", 15), party("a", "out", 2000), &x, &p),
              cstatus::invalid_parameter);
    EXPECT_EQ(c.make("in", 0, call("y", 1048576), party("a", "out", 2000), &x, &p),
              cstatus::invalid_parameter);
    EXPECT_EQ(c.make("in", 0, call("y", 101), party("a", "out", 4), &x, &p),
              cstatus::invalid_parameter); // reserved (3 pops; 4..15 are nobody's)
    EXPECT_EQ(c.make("in", 0, call("y", 101), party_spec{"a", "out", 2000, mac_address{}}, &x, &p),
              cstatus::invalid_parameter); // a malformed (zero) MAC
    EXPECT_EQ(c.make("in", 0, call("y", 101), party("a", "nowhere", 2000), &x, &p),
              cstatus::invalid_parameter);
    EXPECT_THAT(c.error("in"), ::testing::HasSubstr("party 'a': no connection 'nowhere'"));
    auto pseudowire = call("y", 101);
    pseudowire.encap.payload = payload_kind::ethernet;
    EXPECT_EQ(c.make("in", 0, pseudowire, party("a", "out", 3), &x, &p),
              cstatus::not_supported); // implicit null cannot decapsulate
    EXPECT_THAT(c.error("in"), ::testing::HasSubstr("would hand a pseudowire's inner frame"));
    pseudowire.encap.payload = payload_kind::ip;
    pseudowire.encap.control_word = true;
    EXPECT_EQ(c.make("in", 0, pseudowire, party("a", "out", 2000), &x, &p),
              cstatus::invalid_parameter); // a control word belongs to a pseudowire
    auto bad_flow = call("y", 101);
    bad_flow.flow = {2000, 1000, 0}; // peak below sustained
    EXPECT_EQ(c.make("in", 0, bad_flow, party("a", "out", 2000), &x, &p),
              cstatus::invalid_parameter);
    bad_flow.flow = {0, 1000, 0}; // a peak without a sustained rate
    EXPECT_EQ(c.make("in", 0, bad_flow, party("a", "out", 2000), &x, &p),
              cstatus::invalid_parameter);
    EXPECT_EQ(c.add("in", v, party("a", "out", 2001), &p), cstatus::invalid_parameter); // name
    // The file's name rule holds for names that come through the socket (vocab/names.hh).
    EXPECT_EQ(c.make("in", 0, call("y z", 101), party("a", "out", 2000), &x, &p),
              cstatus::invalid_parameter);
    EXPECT_THAT(c.error("in"), ::testing::HasSubstr("'y z': a call name is 1..63 letters"));
    EXPECT_EQ(c.make("in", 0, call(std::string(64, 'y'), 101), party("a", "out", 2000), &x, &p),
              cstatus::invalid_parameter);
    EXPECT_EQ(c.add("in", v, party("b/c", "out", 2001), &p), cstatus::invalid_parameter);
    EXPECT_THAT(c.error("in"), ::testing::HasSubstr("'b/c': a party name is 1..63 letters"));
    EXPECT_EQ(c.add("in", v, party("", "out", 2001), &p), cstatus::invalid_parameter);
    EXPECT_EQ(c.add("in", v, party("b", "nowhere", 2001), &p), cstatus::invalid_parameter);
    EXPECT_THAT(c.error("in"), ::testing::HasSubstr("party 'b': no connection 'nowhere'"));
    EXPECT_EQ(c.add("in", v, party("b", "vout", 5000), &p), cstatus::invalid_parameter);
    EXPECT_THAT(c.error("in"),
                ::testing::HasSubstr("party 'b': vid 5000 is out of range (1..4094)"));
    EXPECT_EQ(c.add("in", 999, party("b", "out", 2001), &p), cstatus::invalid_handle);
    EXPECT_EQ(c.drop("in", 999), cstatus::invalid_handle);
    EXPECT_EQ(c.close("in", 999, 0), cstatus::invalid_handle);
    EXPECT_EQ(c.close("in", v, 0), cstatus::invalid_handle); // multipoint: the last party's handle
    // A call is handled by the call manager of its ingress, nowhere else.
    EXPECT_EQ(c.close("out", v, a), cstatus::invalid_handle);
    vc_handle p2p = 0;
    ASSERT_EQ(c.make("in", 0, call("p2p", 102, false), party("a", "out", 2000), &p2p, &p),
              cstatus::success);
    EXPECT_EQ(c.add("in", p2p, party("b", "out", 2001), &p), cstatus::failure);
    EXPECT_EQ(c.close("in", p2p, a), cstatus::invalid_handle);
    EXPECT_EQ(c.close("in", p2p, 0), cstatus::pending);
    h.grace_period();

    EXPECT_EQ(party_set::live(), parties);
    EXPECT_EQ(switch_state::live_vcs(), vcs);
    EXPECT_EQ(published(h, "in", 100)->parties->size(), 1u);
    EXPECT_EQ(published(h, "in", 101), nullptr);
    EXPECT_EQ(h.cms["in"]->active_calls(), 1u);
}

TEST(call_manager, removing_a_connection_detaches_its_clients_and_closes_their_calls) {
    harness h;
    h.up("in");
    h.up("out");
    test_client c(h);
    vc_handle v = 0, mine = 0, got = 0;
    party_handle a = 0;
    ASSERT_EQ(c.make("in", 0, call("x", 100), party("a", "out", 2000), &v, &a), cstatus::success);
    ASSERT_EQ(c.create("in", &mine), cstatus::success);
    ASSERT_EQ(c.make("in", mine, call("y", 101, false), party("b", "out", 2001), &got, &a),
              cstatus::success);
    const nmr::handle binding = c.bindings().find("in")->ref.binding;

    bool deregistered = false;
    h.cms["in"]->deregister([&] { deregistered = true; });
    // The provider's detach is PENDING while the calls' closes wait for their grace period.
    EXPECT_EQ(h.reg.counts().detaching, 1u);
    EXPECT_FALSE(h.reg.binding_usable(binding));
    vc_handle other = 0;
    EXPECT_EQ(c.make("in", 0, call("z", 102), party("a", "out", 2000), &other, &a),
              cstatus::nointerface);
    EXPECT_EQ(c.bindings().contexts(), 2u); // in and out: none cleaned up yet
    h.state.remove_connection("in");
    h.grace_period();
    EXPECT_THAT(c.events[v], ElementsAre("incoming_close:CLOSING"));
    EXPECT_THAT(c.events[mine], ElementsAre("incoming_close:CLOSING"));
    EXPECT_EQ(c.bindings().contexts(), 1u); // in's, after both sides finished
    EXPECT_TRUE(deregistered);
    EXPECT_FALSE(h.reg.binding_alive(binding));
    h.cms.erase("in");
}

TEST(call_manager, parties_leaving_through_a_removed_connection_are_dropped_the_last_closes) {
    harness h;
    h.up("in");
    h.up("out1");
    h.up("out2");
    test_client c(h);
    vc_handle multi = 0, single = 0;
    party_handle a = 0, b = 0, d = 0, e = 0;
    ASSERT_EQ(c.make("in", 0, call("multi", 100), party("a", "out1", 2001), &multi, &a),
              cstatus::success);
    ASSERT_EQ(c.add("in", multi, party("b", "out2", 2002), &b), cstatus::success);
    ASSERT_EQ(c.add("in", multi, party("d", "out1", 2003), &d), cstatus::success);
    ASSERT_EQ(c.make("in", 0, call("single", 101), party("e", "out2", 2004), &single, &e),
              cstatus::success);
    h.down("out2");
    EXPECT_THAT(c.events[b], ElementsAre("incoming_drop:CLOSING"));
    EXPECT_THAT(c.events[single], ElementsAre("incoming_close:CLOSING"));
    EXPECT_EQ(c.drop("in", b), cstatus::invalid_handle); // dead since the incoming drop
    const vc* m = published(h, "in", 100);
    ASSERT_NE(m, nullptr);
    EXPECT_EQ(m->parties->size(), 2u);
    EXPECT_EQ(published(h, "in", 101), nullptr);
    EXPECT_EQ(h.cms["in"]->active_parties(), 2u);
}

TEST(call_manager, link_down_on_the_ingress_closes_its_calls) {
    harness h;
    h.up("in");
    h.up("out");
    test_client c(h);
    vc_handle v = 0;
    party_handle a = 0;
    ASSERT_EQ(c.make("in", 0, call("x", 100), party("a", "out", 2000), &v, &a), cstatus::success);
    h.cms["in"]->ingress_down();
    h.grace_period();
    EXPECT_THAT(c.events[v], ElementsAre("incoming_close:CLOSING"));
    EXPECT_EQ(h.cms["in"]->active_calls(), 0u);
}

// Defect: after a link went down (its calls closed, its parties dropped), a session could make
// a call entering through it, or add a party leaving through it, and the call manager
// accepted: state that would carry nothing and would not be torn down again. Refused with
// FAILURE until the link is back.
TEST(call_manager, no_call_or_party_is_made_on_a_connection_without_link) {
    harness h;
    h.up("in");
    h.up("out");
    h.up("out2");
    test_client c(h);
    vc_handle v = 0, w = 0;
    party_handle a = 0, b = 0;
    ASSERT_EQ(c.make("in", 0, call("x", 100), party("a", "out", 2000), &v, &a), cstatus::success);
    h.state.set_link_up("out2", false);
    EXPECT_EQ(c.add("in", v, party("b", "out2", 2001), &b), cstatus::failure);
    EXPECT_THAT(c.error("in"), ::testing::HasSubstr("'out2' has no link"));
    EXPECT_EQ(c.make("in", 0, call("y", 101), party("b", "out2", 2001), &w, &b), cstatus::failure);
    h.state.set_link_up("in", false);
    EXPECT_EQ(c.make("in", 0, call("y", 101), party("b", "out", 2001), &w, &b), cstatus::failure);
    EXPECT_THAT(c.error("in"), ::testing::HasSubstr("'in' has no link"));
    EXPECT_EQ(h.cms["in"]->active_calls(), 1u);
    EXPECT_EQ(h.cms["in"]->active_parties(), 1u);
    h.state.set_link_up("in", true);
    h.state.set_link_up("out2", true);
    EXPECT_EQ(c.add("in", v, party("b", "out2", 2001), &b), cstatus::success);
    EXPECT_EQ(c.drop("in", b), cstatus::pending);
    EXPECT_EQ(c.close("in", v, a), cstatus::pending);
    h.grace_period();
}

// The provisioner's file: connections in, out1, out2 and `calls`.
vcplane_config reloaded(const std::string& calls) {
    return parse_config_string(R"([eal]
lcores = [0, 1]
[connections.in]
device = "in"
[connections.out1]
device = "out1"
[connections.out2]
device = "out2"
)" + calls,
                               "p.toml");
}

vcplane_config provisioned() {
    return reloaded(R"([calls.feed]
connection = "in"
label = 1000
[[calls.feed.parties]]
name = "one"
connection = "out1"
label = 2001
next_hop = "02:00:00:00:00:01"
[[calls.feed.parties]]
name = "two"
connection = "out2"
label = 2002
next_hop = "02:00:00:00:00:02"
)");
}

TEST(provisioner, makes_calls_when_connections_are_up_and_again_when_they_return) {
    const auto cfg = provisioned();
    harness h;
    provisioner p(cfg, h.state, h.reg,
                  [&h](std::function<void()> fn) { h.posted.push_back(std::move(fn)); });
    p.register_client();
    h.up("in");
    EXPECT_EQ(p.calls_made(), 0u); // no party connection yet
    h.up("out1");
    p.connection_up();
    ASSERT_EQ(p.calls_made(), 1u);
    EXPECT_EQ(published(h, "in", 1000)->parties->size(), 1u);
    h.up("out2");
    p.connection_up(); // the missing party joins the live call
    EXPECT_EQ(published(h, "in", 1000)->parties->size(), 2u);

    h.down("out2"); // its party is dropped ...
    EXPECT_EQ(published(h, "in", 1000)->parties->size(), 1u);
    h.up("out2");
    p.connection_up(); // ... and added again when it is back
    EXPECT_EQ(published(h, "in", 1000)->parties->size(), 2u);

    h.down("in"); // the call closes with its ingress ...
    EXPECT_EQ(p.calls_made(), 0u);
    h.up("in"); // ... and is made again when it returns
    ASSERT_EQ(p.calls_made(), 1u);
    EXPECT_EQ(published(h, "in", 1000)->parties->size(), 2u);

    p.deregister_and_wait([&] { h.grace_period(); });
    EXPECT_EQ(published(h, "in", 1000), nullptr);
    EXPECT_EQ(h.reg.counts().clients, 0u);
}

} // namespace
} // namespace vcplane

namespace vcplane {
namespace {

TEST(call_manager, modify_call_qos_changes_the_contract_in_place_or_nothing) {
    harness h;
    h.up("in");
    h.up("out");
    h.state.add_connection("thin", "thin", h.next_port++, media_kind::mpls, {2, 0, 0, 0, 0, 9},
                           1500, 8'000'000);
    h.cms["thin"] = std::make_unique<call_manager>("thin", h.state, h.gp, h.reg, nullptr);
    h.cms["thin"]->register_provider();
    test_client c(h);
    vc_handle v = 0;
    party_handle a = 0, b = 0;
    ASSERT_EQ(c.make("in", 0, call("x", 100), party("a", "out", 2000), &v, &a), cstatus::success);
    ASSERT_EQ(c.add("in", v, party("b", "thin", 2001), &b), cstatus::success);
    const vc* before = published(h, "in", 100);
    const uint32_t id = before->stats_slot;
    EXPECT_NE(id, counter_slots::remainder);

    // Overbooking the thin egress (8 Mbit/s) is refused and leaves the bookings as they were.
    EXPECT_EQ(c.qos("in", v, {2'000'000, 0, 0}), cstatus::resources);
    EXPECT_THAT(c.error("in"), ::testing::HasSubstr("'thin' would be overbooked"));
    EXPECT_EQ(h.state.booked("thin"), 0u);
    EXPECT_EQ(h.state.booked("out"), 0u);
    EXPECT_EQ(published(h, "in", 100), before);
    // Malformed traffic contracts, stale handles.
    EXPECT_EQ(c.qos("in", v, {1000, 500, 0}), cstatus::invalid_parameter);
    EXPECT_EQ(c.qos("in", v, {0, 0, 100}), cstatus::invalid_parameter);
    EXPECT_EQ(c.qos("in", 999, {}), cstatus::invalid_handle);
    EXPECT_EQ(c.qos("out", v, {}), cstatus::invalid_handle); // not its call manager
    EXPECT_EQ(published(h, "in", 100), before);

    // No contract -> no contract: a new VC object in the same slot, parties and counters kept.
    ASSERT_EQ(c.qos("in", v, {}), cstatus::success);
    const vc* after = published(h, "in", 100);
    EXPECT_NE(after, before);
    EXPECT_EQ(after->stats_slot, id);
    ASSERT_EQ(after->parties->size(), 2u);
    EXPECT_EQ((*after->parties)[1].out_key, 2001u);
    h.grace_period(); // the old VC is freed (the harness counts live objects at the end)

    // A closing call cannot be modified.
    ASSERT_EQ(c.drop("in", b), cstatus::pending);
    ASSERT_EQ(c.close("in", v, a), cstatus::pending);
    EXPECT_EQ(c.qos("in", v, {}), cstatus::closing);
    h.grace_period();
}

std::vector<std::string> outcomes(const std::vector<provisioner::step_outcome>& v) {
    std::vector<std::string> out;
    for (const auto& o : v) {
        out.push_back(fmt::format("{} {}{}: {}", reload_op_name(o.step.op), o.step.call,
                                  o.step.party.empty() ? "" : "." + o.step.party, o.status));
    }
    return out;
}

TEST(provisioner, a_reload_applies_its_plan_and_never_touches_a_sessions_calls) {
    const auto cfg = provisioned();
    harness h;
    provisioner p(cfg, h.state, h.reg,
                  [&h](std::function<void()> fn) { h.posted.push_back(std::move(fn)); });
    p.register_client();
    h.up("in");
    h.up("out1");
    h.up("out2");
    p.connection_up();
    ASSERT_EQ(published(h, "in", 1000)->parties->size(), 2u);
    // A session's call, on a label the new file wants too.
    test_client session(h);
    vc_handle mine = 0;
    party_handle mine_party = 0;
    ASSERT_EQ(
        session.make("in", 0, call("mine", 1500), party("m", "out1", 4000), &mine, &mine_party),
        cstatus::success);
    const vc* session_vc = published(h, "in", 1500);

    const auto next = reloaded(R"(
[calls.feed]
connection = "in"
label = 1000
[[calls.feed.parties]]
name = "one"
connection = "out1"
label = 2001
next_hop = "02:00:00:00:00:01"
[[calls.feed.parties]]
name = "three"
connection = "out1"
label = 2003
next_hop = "02:00:00:00:00:03"
[calls.extra]
connection = "in"
label = 1001
[[calls.extra.parties]]
connection = "out2"
label = 2100
next_hop = "02:00:00:00:00:04"
[calls.clash]
connection = "in"
label = 1500
[[calls.clash.parties]]
connection = "out2"
label = 2200
next_hop = "02:00:00:00:00:05"
)");
    const vc* feed_before = published(h, "in", 1000);
    auto got = p.apply(diff_configs(cfg, next), next.calls);
    EXPECT_THAT(outcomes(got),
                ElementsAre("drop_party feed.two: PENDING", "add_party feed.three: SUCCESS",
                            "make_call clash: FAILURE", "make_call extra: SUCCESS"));
    EXPECT_THAT(got[2].detail, ::testing::HasSubstr("label 1500 on 'in' is in use"));
    // feed kept its VC: only its party array changed.
    EXPECT_EQ(published(h, "in", 1000), feed_before);
    const party_set& feed = *published(h, "in", 1000)->parties;
    ASSERT_EQ(feed.size(), 2u);
    EXPECT_EQ(feed[0].out_key, 2001u);
    EXPECT_EQ(feed[1].out_key, 2003u);
    EXPECT_EQ(published(h, "in", 1001)->parties->size(), 1u);
    EXPECT_EQ(published(h, "in", 1500), session_vc); // the session's call, untouched
    EXPECT_EQ(p.calls_made(), 2u);
    EXPECT_EQ(p.calls_waiting(), 1u); // clash
    h.grace_period();

    // Everything the file provisioned goes; the session's call stays, with no event.
    const auto empty = reloaded("");
    got = p.apply(diff_configs(next, empty), empty.calls);
    EXPECT_THAT(outcomes(got), ElementsAre("close_call clash: SUCCESS", "close_call extra: PENDING",
                                           "close_call feed: PENDING"));
    EXPECT_EQ(published(h, "in", 1000), nullptr);
    EXPECT_EQ(published(h, "in", 1001), nullptr);
    h.grace_period();
    EXPECT_EQ(p.calls_made(), 0u);
    EXPECT_EQ(published(h, "in", 1500), session_vc);
    EXPECT_TRUE(session.events.empty());

    // The same file again: made again from nothing.
    got = p.apply(diff_configs(empty, cfg), cfg.calls);
    EXPECT_THAT(outcomes(got), ElementsAre("make_call feed: SUCCESS"));
    EXPECT_EQ(published(h, "in", 1000)->parties->size(), 2u);

    ASSERT_EQ(session.close("in", mine, mine_party), cstatus::pending);
    h.grace_period();
    p.deregister_and_wait([&] { h.grace_period(); });
    EXPECT_EQ(h.reg.counts().clients, 1u); // the session's registration only
}

// A VC's and a party's counter slot lives exactly as long as the object: kept across a new
// traffic contract and other parties' changes, retired only after the grace period, free for
// reuse only after release_retired_slots(), and given back zeroed. Beyond the configured
// number of slots, objects share the remainder.
TEST(call_manager, counter_slots_follow_their_objects) {
    harness h;
    h.up("in");
    h.up("out");
    test_client c(h);
    vc_handle v = 0;
    party_handle a = 0, b = 0;
    ASSERT_EQ(c.make("in", 0, call("x", 100), party("a", "out", 2000), &v, &a), cstatus::success);
    ASSERT_EQ(c.add("in", v, party("b", "out", 2001), &b), cstatus::success);
    const vc* circuit = published(h, "in", 100);
    const uint32_t vc_slot = circuit->stats_slot;
    const uint32_t slot_a = (*circuit->parties)[0].stats_slot;
    const uint32_t slot_b = (*circuit->parties)[1].stats_slot;
    EXPECT_NE(vc_slot, counter_slots::remainder);
    EXPECT_NE(slot_a, counter_slots::remainder);
    EXPECT_NE(slot_b, slot_a);
    EXPECT_EQ(h.state.vc_slots().in_use(), 1u);
    EXPECT_EQ(h.state.party_slots().in_use(), 2u);

    traffic_series_list list;
    h.cms["in"]->list_series(list);
    ASSERT_EQ(list.vcs.size(), 1u);
    EXPECT_EQ(list.vcs[0].call, "x");
    EXPECT_EQ(list.vcs[0].key, 100u);
    EXPECT_EQ(list.vcs[0].slot, vc_slot);
    ASSERT_EQ(list.parties.size(), 2u);
    EXPECT_EQ(list.parties[1].party, "b");
    EXPECT_EQ(list.parties[1].egress, "out");
    EXPECT_EQ(list.parties[1].slot, slot_b);

    // What the worker adds (here by hand, as worker 0 would).
    h.state.vc_slots().worker_array(0)[vc_slot].packets.add(7);
    h.state.party_slots().worker_array(0)[slot_b].packets.add(5);

    // Party b leaves: a keeps its slot in the new party array; b's slot is neither free nor
    // zeroed before its grace period and the next release.
    ASSERT_EQ(c.drop("in", b), cstatus::pending);
    EXPECT_EQ((*published(h, "in", 100)->parties)[0].stats_slot, slot_a);
    h.state.release_retired_slots();
    EXPECT_EQ(h.state.party_slots().in_use(), 2u);
    h.grace_period();
    EXPECT_EQ(h.state.party_slots().in_use(), 2u);
    EXPECT_EQ(h.state.party_slots().read(slot_b).packets, 5u);
    h.state.release_retired_slots();
    EXPECT_EQ(h.state.party_slots().in_use(), 1u);
    EXPECT_EQ(h.state.party_slots().read(slot_b).packets, 0u);

    // A new contract keeps the VC's slot and its count.
    ASSERT_EQ(c.qos("in", v, {}), cstatus::success); // (meters need EAL: none here)
    EXPECT_EQ(published(h, "in", 100)->stats_slot, vc_slot);
    EXPECT_EQ(h.state.vc_slots().read(vc_slot).packets, 7u);

    // More objects than slots (8 of each kind): the rest share the remainder.
    std::vector<vc_handle> vcs;
    std::vector<party_handle> parties;
    for (uint32_t i = 0; i < 10; ++i) {
        vc_handle w = 0;
        party_handle p = 0;
        ASSERT_EQ(c.make("in", 0, call(fmt::format("y{}", i), 200 + i), party("p", "out", 3000 + i),
                         &w, &p),
                  cstatus::success);
        vcs.push_back(w);
        parties.push_back(p);
    }
    EXPECT_EQ(h.state.vc_slots().in_use(), 8u);
    EXPECT_EQ(h.state.vc_slots().in_remainder(), 3u);
    EXPECT_EQ(h.state.vc_slots().suppressed_total(), 3u);
    EXPECT_EQ(published(h, "in", 209)->stats_slot, counter_slots::remainder);
    traffic_series_list more;
    h.cms["in"]->list_series(more);
    EXPECT_EQ(more.vcs.size(), 8u); // the remainder's objects are not listed

    // Closing gives everything back once the grace period and the release have run.
    for (size_t i = 0; i < vcs.size(); ++i) {
        ASSERT_EQ(c.close("in", vcs[i], parties[i]), cstatus::pending);
    }
    ASSERT_EQ(c.close("in", v, a), cstatus::pending);
    h.grace_period();
    h.state.release_retired_slots();
    EXPECT_EQ(h.state.vc_slots().in_use(), 0u);
    EXPECT_EQ(h.state.vc_slots().in_remainder(), 0u);
    EXPECT_EQ(h.state.vc_slots().read(vc_slot).packets, 0u);
    EXPECT_EQ(h.state.vc_slots().suppressed_total(), 3u); // a counter: it never goes back
}

} // namespace
} // namespace vcplane

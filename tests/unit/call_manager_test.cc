// Call managers bound through the NMR, with a manual grace-period source: close_call is
// PENDING and completes exactly once after the grace period; a connection's removal detaches
// its clients (closing their calls); parties leaving through a removed connection are dropped;
// the provisioner makes the config's calls when their connections are up, and again when they
// come back (reference/contracts.md §1.5, §5.6).

#include <deque>
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <map>
#include <memory>

#include "control/call_manager.hh"

namespace vcplane {
namespace {

using callmgmt::call_handle;
using cstatus = callmgmt::status;

struct harness {
    std::deque<std::function<void()>> posted;
    nmr::registrar reg{[this](std::function<void()> fn) { posted.push_back(std::move(fn)); }};
    manual_grace_periods gp;
    switch_state state;
    std::map<std::string, std::unique_ptr<call_manager>> cms;
    uint16_t next_port = 0;

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
    void up(const std::string& name) {
        state.add_connection(name, name, next_port++, media_kind::mpls, {2, 0, 0, 0, 0, 1}, 1500);
        cms[name] = std::make_unique<call_manager>(name, state, gp, reg);
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
    }
};

// A client that records every completion, for checking exactly-once.
class test_client : public nmr::client, public callmgmt::client_dispatch {
public:
    explicit test_client(harness& h)
        : h_(h) {}
    // A client leaves by deregistering: the call managers close what it still has.
    ~test_client() override {
        if (h_.reg.deregister_client(reg_) == nmr::status::pending) {
            h_.reg.wait_for_deregister_complete(reg_, [this] { h_.grace_period(); });
        }
    }
    void register_client() {
        nmr::registration_instance inst;
        inst.npi = &callmgmt::npi;
        inst.module = &id_;
        h_.reg.register_client(*this, inst, this, &reg_);
    }
    nmr::status attach_provider(nmr::handle b, void*,
                                const nmr::registration_instance& p) override {
        callmgmt::provider_ref ref;
        ref.binding = b;
        ref.connection = *static_cast<const std::string*>(p.npi_specific);
        const void* d = nullptr;
        const nmr::status s = h_.reg.client_attach_provider(
            b, this, static_cast<callmgmt::client_dispatch*>(this), &ref.provider_binding, &d);
        if (s == nmr::status::success) {
            ref.dispatch = static_cast<callmgmt::provider_dispatch*>(const_cast<void*>(d));
            providers[ref.connection] = ref;
        }
        return s;
    }
    nmr::status detach_provider(void*) override {
        ++detaches;
        return nmr::status::success;
    }
    void cleanup_binding_context(void*) override { ++cleanups; }

    void close_call_complete(void*, cstatus s, call_handle c, void*) override {
        EXPECT_NE(s, cstatus::pending);
        completions[c].push_back("close_complete:" + std::string(callmgmt::status_name(s)));
    }
    void incoming_close_call(void*, cstatus s, call_handle c, void*) override {
        completions[c].push_back("incoming_close:" + std::string(callmgmt::status_name(s)));
    }
    void incoming_drop_party(void*, cstatus, call_handle c, const std::string& party,
                             void*) override {
        completions[c].push_back("incoming_drop:" + party);
    }

    cstatus make(const std::string& conn, const callmgmt::call_spec& spec, call_handle* out) {
        return callmgmt::call_through(h_.reg, providers.at(conn),
                                      [&](callmgmt::provider_dispatch& d, void* pctx) {
                                          return d.make_call(pctx, spec, nullptr, out);
                                      });
    }
    cstatus close(const std::string& conn, call_handle c) {
        return callmgmt::call_through(
            h_.reg, providers.at(conn),
            [&](callmgmt::provider_dispatch& d, void* pctx) { return d.close_call(pctx, c); });
    }

    std::map<std::string, callmgmt::provider_ref> providers;
    std::map<call_handle, std::vector<std::string>> completions;
    int detaches = 0, cleanups = 0;

private:
    harness& h_;
    nmr::module_id id_{"test-client"};
    nmr::handle reg_;
};

callmgmt::call_spec spec(const std::string& name, uint32_t key,
                         std::vector<std::pair<std::string, std::string>> parties) {
    callmgmt::call_spec s{name, key, {}};
    uint32_t out = 5000;
    for (const auto& [pname, conn] : parties) {
        s.parties.push_back(callmgmt::party_spec{pname, conn, out++, {2, 0, 0, 0, 1, 1}});
    }
    return s;
}

TEST(call_manager, make_call_publishes_and_close_call_completes_once_after_the_grace_period) {
    harness h;
    h.up("in");
    h.up("out");
    test_client c(h);
    c.register_client();
    ASSERT_EQ(c.providers.size(), 2u);
    call_handle id = 0;
    ASSERT_EQ(c.make("in", spec("x", 100, {{"a", "out"}}), &id), cstatus::success);
    const connection_entry* in = h.state.find_connection("in")->entry;
    EXPECT_NE(in->keys.lookup(100), nullptr);

    EXPECT_EQ(c.close("in", id), cstatus::pending);
    EXPECT_EQ(in->keys.lookup(100), nullptr); // unpublished at once
    EXPECT_TRUE(c.completions[id].empty());   // but completed only after the grace period
    h.gp.flush();
    EXPECT_TRUE(c.completions[id].empty());
    h.gp.complete_all();
    EXPECT_THAT(c.completions[id], ::testing::ElementsAre("close_complete:SUCCESS"));
    h.grace_period();
    EXPECT_EQ(c.completions[id].size(), 1u); // exactly once
    EXPECT_TRUE(h.state.calls().empty());
    // The handle died at close: using it again is refused, nothing happens.
    EXPECT_EQ(c.close("in", id), cstatus::invalid_handle);
    EXPECT_EQ(c.close("in", 987654), cstatus::invalid_handle);
}

TEST(call_manager, one_grace_period_serves_many_closes) {
    harness h;
    h.up("in");
    h.up("out");
    test_client c(h);
    c.register_client();
    std::vector<call_handle> ids(50);
    for (uint32_t i = 0; i < 50; ++i) {
        ASSERT_EQ(c.make("in", spec("c" + std::to_string(i), 100 + i, {{"a", "out"}}), &ids[i]),
                  cstatus::success);
    }
    for (call_handle id : ids) {
        EXPECT_EQ(c.close("in", id), cstatus::pending);
    }
    h.gp.flush();
    EXPECT_EQ(h.gp.started(), 1u);
    h.gp.complete_all();
    EXPECT_EQ(h.gp.grace_periods(), 1u);
    for (call_handle id : ids) {
        EXPECT_EQ(c.completions[id].size(), 1u);
    }
}

TEST(call_manager, bad_calls_are_refused_and_change_nothing) {
    harness h;
    h.up("in");
    h.up("out");
    test_client c(h);
    c.register_client();
    call_handle id = 0;
    ASSERT_EQ(c.make("in", spec("x", 100, {{"a", "out"}}), &id), cstatus::success);
    call_handle other = 0;
    EXPECT_EQ(c.make("in", spec("y", 100, {{"a", "out"}}), &other),
              cstatus::failure); // label in use
    EXPECT_EQ(c.make("in", spec("x", 101, {{"a", "out"}}), &other),
              cstatus::failure); // name in use
    EXPECT_EQ(c.make("in", spec("z", 102, {{"a", "nowhere"}}), &other), cstatus::failure);
    EXPECT_EQ(c.make("in", spec("z", 7, {{"a", "out"}}), &other), cstatus::failure); // reserved
    EXPECT_EQ(c.make("in", spec("z", 103, {}), &other), cstatus::failure);
    EXPECT_EQ(h.state.calls().size(), 1u);
    // A call is closed through the call manager that made it, nowhere else.
    EXPECT_EQ(c.close("out", id), cstatus::invalid_handle);
    EXPECT_EQ(h.state.calls().size(), 1u);
}

TEST(call_manager, removing_a_connection_detaches_its_clients_and_closes_their_calls) {
    harness h;
    h.up("in");
    h.up("out");
    test_client c(h);
    c.register_client();
    call_handle id = 0;
    ASSERT_EQ(c.make("in", spec("x", 100, {{"a", "out"}}), &id), cstatus::success);
    const nmr::handle binding = c.providers.at("in").binding;

    bool deregistered = false;
    h.cms["in"]->deregister([&] { deregistered = true; });
    // The provider's detach is PENDING while the call's close waits for its grace period.
    EXPECT_EQ(h.reg.counts().detaching, 1u);
    EXPECT_FALSE(h.reg.binding_usable(binding));
    call_handle other = 0;
    EXPECT_EQ(c.make("in", spec("y", 101, {{"a", "out"}}), &other), cstatus::nointerface);
    EXPECT_EQ(c.cleanups, 0);
    h.state.remove_connection("in");
    h.grace_period();
    EXPECT_THAT(c.completions[id], ::testing::ElementsAre("incoming_close:CLOSING"));
    EXPECT_EQ(c.cleanups, 1); // after both sides finished
    EXPECT_TRUE(deregistered);
    EXPECT_FALSE(h.reg.binding_alive(binding));
    EXPECT_TRUE(h.state.calls().empty());
    h.cms.erase("in");
}

TEST(call_manager, parties_leaving_through_a_removed_connection_are_dropped_the_last_closes) {
    harness h;
    h.up("in");
    h.up("out1");
    h.up("out2");
    test_client c(h);
    c.register_client();
    call_handle multi = 0, single = 0;
    ASSERT_EQ(
        c.make("in", spec("multi", 100, {{"a", "out1"}, {"b", "out2"}, {"c", "out1"}}), &multi),
        cstatus::success);
    ASSERT_EQ(c.make("in", spec("single", 101, {{"d", "out2"}}), &single), cstatus::success);
    h.down("out2");
    EXPECT_THAT(c.completions[multi], ::testing::ElementsAre("incoming_drop:b"));
    EXPECT_THAT(c.completions[single], ::testing::ElementsAre("incoming_close:CLOSING"));
    const call_state* m = h.state.find_call(multi);
    ASSERT_NE(m, nullptr);
    ASSERT_EQ(m->parties.size(), 2u);
    EXPECT_EQ(m->circuit->parties->size(), 2u);
    EXPECT_EQ(h.state.find_call(single), nullptr);
}

vcplane_config provisioned() {
    return parse_config_string(R"([eal]
lcores = [0, 1]
[connections.in]
device = "in"
[connections.out1]
device = "out1"
[connections.out2]
device = "out2"
[calls.feed]
connection = "in"
label = 1000
[[calls.feed.parties]]
connection = "out1"
label = 2001
next_hop = "02:00:00:00:00:01"
[[calls.feed.parties]]
connection = "out2"
label = 2002
next_hop = "02:00:00:00:00:02"
)",
                               "p.toml");
}

TEST(provisioner, makes_each_call_once_its_connections_are_up_and_again_when_they_return) {
    const auto cfg = provisioned();
    harness h;
    provisioner p(cfg, h.state, h.reg);
    p.register_client();
    h.up("in");
    EXPECT_EQ(p.calls_made(), 0u); // waits for out1 and out2
    h.up("out1");
    p.connection_up();
    EXPECT_EQ(p.calls_made(), 0u);
    h.up("out2");
    p.connection_up();
    ASSERT_EQ(p.calls_made(), 1u);
    EXPECT_NE(h.state.find_call("feed"), nullptr);

    h.down("in");
    EXPECT_EQ(p.calls_made(), 0u);
    EXPECT_EQ(h.state.find_call("feed"), nullptr);
    h.up("in"); // the call manager comes back: the provisioner attaches and makes it again
    EXPECT_EQ(p.calls_made(), 1u);
    ASSERT_NE(h.state.find_call("feed"), nullptr);
    EXPECT_EQ(h.state.find_call("feed")->parties.size(), 2u);

    p.deregister_and_wait([&] { h.grace_period(); });
    EXPECT_TRUE(h.state.calls().empty());
    EXPECT_EQ(h.reg.counts().clients, 0u);
}

} // namespace
} // namespace vcplane

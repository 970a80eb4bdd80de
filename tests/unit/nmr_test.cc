// The NMR registrar: attach from either side, declines, detach SUCCESS and PENDING, cleanup
// order, deregistration completion, stale handles (docs/contracts.md §1).

#include <deque>
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <memory>
#include <string>
#include <vector>

#include "contracts/nmr/nmr.hh"
#include "support/contract_counts.hh"

namespace vcplane::nmr {
namespace {

using ::testing::ElementsAre;

const npi_id npi_a{1, 1, "a"};
const npi_id npi_b{2, 2, "b"};

struct world {
    std::vector<std::string> events;
    std::deque<std::function<void()>> posted;
    registrar reg{[this](std::function<void()> fn) { posted.push_back(std::move(fn)); }};
    void run_posted() {
        while (!posted.empty()) {
            auto fn = std::move(posted.front());
            posted.pop_front();
            fn();
        }
    }
};

struct context {
    std::string owner;
    handle binding;
    bool freed = false;
};

class fake_client : public client {
public:
    fake_client(world& w, std::string name, const npi_id& npi)
        : w_(w)
        , id_{std::move(name)} {
        inst.npi = &npi;
        inst.module = &id_;
    }
    status attach_provider(handle b, void*, const registration_instance& p) override {
        w_.events.push_back(id_.name + ".attach_provider(" + p.module->name + ")");
        if (decline) {
            return status::nointerface;
        }
        auto ctx = std::make_unique<context>(context{id_.name, b});
        void* pctx = nullptr;
        const void* pdisp = nullptr;
        const status s = w_.reg.client_attach_provider(b, ctx.get(), &dispatch, &pctx, &pdisp);
        if (s == status::success) {
            bindings.push_back(b);
            peer_dispatch = pdisp;
            live.push_back(std::move(ctx));
        } else {
            ++freed_on_failure; // the client frees its own context on failure
        }
        return s;
    }
    status detach_provider(void* ctx) override {
        w_.events.push_back(id_.name + ".detach_provider");
        auto* c = static_cast<context*>(ctx);
        if (detach_pending) {
            pending_detach.push_back(c->binding);
            return status::pending;
        }
        return status::success;
    }
    void cleanup_binding_context(void* ctx) override {
        auto* c = static_cast<context*>(ctx);
        w_.events.push_back(id_.name + ".cleanup");
        c->freed = true;
        for (auto it = live.begin(); it != live.end(); ++it) {
            if (it->get() == c) {
                live.erase(it);
                break;
            }
        }
    }

    registration_instance inst;
    handle reg_handle;
    bool decline = false;
    bool detach_pending = false;
    int freed_on_failure = 0;
    int dispatch = 0;
    const void* peer_dispatch = nullptr;
    std::vector<handle> bindings;
    std::vector<handle> pending_detach;
    std::vector<std::unique_ptr<context>> live;

private:
    world& w_;
    module_id id_;
};

class fake_provider : public provider {
public:
    fake_provider(world& w, std::string name, const npi_id& npi)
        : w_(w)
        , id_{std::move(name)} {
        inst.npi = &npi;
        inst.module = &id_;
    }
    status attach_client(handle b, void*, const registration_instance& c, void*, const void*,
                         void** pctx, const void** pdisp) override {
        w_.events.push_back(id_.name + ".attach_client(" + c.module->name + ")");
        if (decline) {
            return status::nointerface;
        }
        auto ctx = std::make_unique<context>(context{id_.name, b});
        *pctx = ctx.get();
        *pdisp = null_dispatch ? nullptr : &dispatch;
        live.push_back(std::move(ctx));
        return status::success;
    }
    status detach_client(void* ctx) override {
        w_.events.push_back(id_.name + ".detach_client");
        if (detach_pending) {
            pending_detach.push_back(static_cast<context*>(ctx)->binding);
            return status::pending;
        }
        return status::success;
    }
    void cleanup_binding_context(void* ctx) override {
        w_.events.push_back(id_.name + ".cleanup");
        for (auto it = live.begin(); it != live.end(); ++it) {
            if (it->get() == ctx) {
                live.erase(it);
                break;
            }
        }
    }

    registration_instance inst;
    handle reg_handle;
    bool decline = false;
    bool null_dispatch = false;
    bool detach_pending = false;
    int dispatch = 0;
    std::vector<handle> pending_detach;
    std::vector<std::unique_ptr<context>> live;

private:
    world& w_;
    module_id id_;
};

TEST(nmr, a_client_registering_attaches_to_every_provider_of_its_npi) {
    world w;
    fake_provider p1(w, "p1", npi_a), p2(w, "p2", npi_a), other(w, "other", npi_b);
    ASSERT_EQ(w.reg.register_provider(p1, p1.inst, nullptr, &p1.reg_handle), status::success);
    ASSERT_EQ(w.reg.register_provider(p2, p2.inst, nullptr, &p2.reg_handle), status::success);
    ASSERT_EQ(w.reg.register_provider(other, other.inst, nullptr, &other.reg_handle),
              status::success);
    fake_client c(w, "c", npi_a);
    ASSERT_EQ(w.reg.register_client(c, c.inst, nullptr, &c.reg_handle), status::success);
    EXPECT_THAT(w.events, ElementsAre("c.attach_provider(p1)", "p1.attach_client(c)",
                                      "c.attach_provider(p2)", "p2.attach_client(c)"));
    EXPECT_EQ(w.reg.counts().attached, 2u);
    ASSERT_EQ(c.bindings.size(), 2u);
    EXPECT_EQ(c.peer_dispatch, &p2.dispatch);
    EXPECT_TRUE(w.reg.binding_usable(c.bindings[0]));
}

TEST(nmr, a_provider_registering_is_offered_to_every_client_which_decides) {
    world w;
    fake_client c1(w, "c1", npi_a), c2(w, "c2", npi_a);
    c2.decline = true;
    w.reg.register_client(c1, c1.inst, nullptr, &c1.reg_handle);
    w.reg.register_client(c2, c2.inst, nullptr, &c2.reg_handle);
    EXPECT_TRUE(w.events.empty());
    fake_provider p(w, "p", npi_a);
    w.reg.register_provider(p, p.inst, nullptr, &p.reg_handle);
    // The client declined without calling the provider: the provider never heard of it.
    EXPECT_THAT(w.events, ElementsAre("c1.attach_provider(p)", "p.attach_client(c1)",
                                      "c2.attach_provider(p)"));
    EXPECT_EQ(w.reg.counts().attached, 1u);
}

TEST(nmr, a_provider_declining_returns_nointerface_and_the_client_frees_its_context) {
    world w;
    fake_provider p(w, "p", npi_a);
    p.decline = true;
    w.reg.register_provider(p, p.inst, nullptr, &p.reg_handle);
    fake_client c(w, "c", npi_a);
    w.reg.register_client(c, c.inst, nullptr, &c.reg_handle);
    EXPECT_EQ(c.freed_on_failure, 1);
    EXPECT_TRUE(c.bindings.empty());
    EXPECT_EQ(w.reg.counts().attached + w.reg.counts().attaching, 0u);
    // No cleanup callback for a binding that never attached.
    EXPECT_THAT(w.events, ElementsAre("c.attach_provider(p)", "p.attach_client(c)"));
}

TEST(nmr, a_provider_without_a_dispatch_table_is_refused_and_never_cleaned_up) {
    world w;
    fake_provider p(w, "p", npi_a);
    p.null_dispatch = true;
    w.reg.register_provider(p, p.inst, nullptr, &p.reg_handle);
    fake_client c(w, "c", npi_a);
    w.reg.register_client(c, c.inst, nullptr, &c.reg_handle);
    EXPECT_EQ(c.freed_on_failure, 1);
    EXPECT_EQ(w.reg.counts().attached + w.reg.counts().attaching, 0u);
    // The binding never attached: neither side's cleanup callback runs for it, now or when
    // either side deregisters.
    EXPECT_THAT(w.events, ElementsAre("c.attach_provider(p)", "p.attach_client(c)"));
    EXPECT_EQ(w.reg.deregister_provider(p.reg_handle), status::pending);
    EXPECT_EQ(w.reg.deregister_client(c.reg_handle), status::pending);
    w.run_posted();
    EXPECT_THAT(w.events, ElementsAre("c.attach_provider(p)", "p.attach_client(c)"));
}

TEST(nmr, client_attach_provider_outside_an_attach_is_invalid) {
    world w;
    void* pctx;
    const void* pdisp;
    EXPECT_EQ(w.reg.client_attach_provider(handle{0, 1}, nullptr, nullptr, &pctx, &pdisp),
              status::invalid_parameter);
    fake_provider p(w, "p", npi_a);
    w.reg.register_provider(p, p.inst, nullptr, &p.reg_handle);
    fake_client c(w, "c", npi_a);
    w.reg.register_client(c, c.inst, nullptr, &c.reg_handle);
    // Attaching an attached binding again.
    EXPECT_EQ(w.reg.client_attach_provider(c.bindings[0], nullptr, nullptr, &pctx, &pdisp),
              status::invalid_parameter);
}

TEST(nmr, deregistering_a_provider_detaches_both_sides_then_cleans_up_then_completes) {
    world w;
    fake_provider p(w, "p", npi_a);
    fake_client c(w, "c", npi_a);
    w.reg.register_provider(p, p.inst, nullptr, &p.reg_handle);
    w.reg.register_client(c, c.inst, nullptr, &c.reg_handle);
    w.events.clear();
    bool completed = false;
    EXPECT_EQ(w.reg.deregister_provider(p.reg_handle), status::pending); // the normal result
    EXPECT_EQ(w.reg.on_deregister_complete(p.reg_handle, [&] { completed = true; }),
              status::success);
    EXPECT_THAT(w.events,
                ElementsAre("c.detach_provider", "p.detach_client", "c.cleanup", "p.cleanup"));
    EXPECT_FALSE(completed); // posted, never run inside the registrar call
    w.run_posted();
    EXPECT_TRUE(completed);
    EXPECT_TRUE(c.live.empty());
    EXPECT_TRUE(p.live.empty());
    EXPECT_FALSE(w.reg.binding_alive(c.bindings[0]));
    EXPECT_EQ(w.reg.counts().providers, 0u);
    EXPECT_EQ(w.reg.counts().clients, 1u); // the client stays registered, unbound
    // The registration handle died with the completion.
    EXPECT_EQ(w.reg.deregister_provider(p.reg_handle), status::invalid_parameter);
}

TEST(nmr, pending_detach_holds_cleanup_until_both_sides_completed) {
    world w;
    fake_provider p(w, "p", npi_a);
    fake_client c(w, "c", npi_a);
    c.detach_pending = true;
    p.detach_pending = true;
    w.reg.register_provider(p, p.inst, nullptr, &p.reg_handle);
    w.reg.register_client(c, c.inst, nullptr, &c.reg_handle);
    w.events.clear();
    bool completed = false;
    EXPECT_EQ(w.reg.deregister_client(c.reg_handle), status::pending);
    w.reg.on_deregister_complete(c.reg_handle, [&] { completed = true; });
    EXPECT_THAT(w.events, ElementsAre("c.detach_provider", "p.detach_client"));
    EXPECT_EQ(w.reg.counts().detaching, 1u);
    // Detaching: no new calls through the binding; completions of calls in flight still may.
    EXPECT_FALSE(w.reg.binding_usable(c.bindings[0]));
    EXPECT_TRUE(w.reg.binding_alive(c.bindings[0]));

    w.reg.provider_detach_client_complete(p.pending_detach.at(0));
    w.run_posted();
    EXPECT_EQ(w.events.size(), 2u); // the client side is still pending: no cleanup yet
    EXPECT_FALSE(completed);
    w.reg.client_detach_provider_complete(c.pending_detach.at(0));
    EXPECT_THAT(w.events,
                ElementsAre("c.detach_provider", "p.detach_client", "c.cleanup", "p.cleanup"));
    w.run_posted();
    EXPECT_TRUE(completed);
}

TEST(nmr, a_second_complete_or_a_complete_after_success_changes_nothing) {
    world w;
    fake_provider p(w, "p", npi_a);
    fake_client c(w, "c", npi_a);
    p.detach_pending = true;
    w.reg.register_provider(p, p.inst, nullptr, &p.reg_handle);
    w.reg.register_client(c, c.inst, nullptr, &c.reg_handle);
    w.reg.deregister_provider(p.reg_handle);
    // The client returned SUCCESS: a complete from it is a stray and is ignored.
    w.reg.client_detach_provider_complete(c.bindings[0]);
    EXPECT_EQ(w.reg.counts().detaching, 1u);
    w.reg.provider_detach_client_complete(p.pending_detach[0]);
    EXPECT_EQ(w.reg.counts().detaching, 0u);
    const size_t n = w.events.size();
    w.reg.provider_detach_client_complete(p.pending_detach[0]); // stale now
    EXPECT_EQ(w.events.size(), n);
}

TEST(nmr, wait_for_deregister_complete_pumps_until_done_and_is_invalid_before_deregister) {
    world w;
    fake_provider p(w, "p", npi_a);
    fake_client c(w, "c", npi_a);
    c.detach_pending = true;
    w.reg.register_provider(p, p.inst, nullptr, &p.reg_handle);
    w.reg.register_client(c, c.inst, nullptr, &c.reg_handle);
    EXPECT_EQ(w.reg.wait_for_deregister_complete(p.reg_handle, [] {}), status::invalid_parameter);
    EXPECT_EQ(w.reg.wait_for_deregister_complete(handle{99, 1}, [] {}), status::invalid_parameter);
    ASSERT_EQ(w.reg.deregister_provider(p.reg_handle), status::pending);
    int pumps = 0;
    EXPECT_EQ(w.reg.wait_for_deregister_complete(p.reg_handle,
                                                 [&] {
                                                     if (++pumps == 3) {
                                                         w.reg.client_detach_provider_complete(
                                                             c.pending_detach.at(0));
                                                     }
                                                 }),
              status::success);
    EXPECT_EQ(pumps, 3);
    EXPECT_TRUE(p.live.empty());
    EXPECT_EQ(w.reg.counts().providers, 0u);
}

TEST(nmr, deregistering_twice_or_with_the_wrong_role_is_invalid) {
    world w;
    fake_client c(w, "c", npi_a);
    w.reg.register_client(c, c.inst, nullptr, &c.reg_handle);
    EXPECT_EQ(w.reg.deregister_provider(c.reg_handle), status::invalid_parameter);
    EXPECT_EQ(w.reg.deregister_client(c.reg_handle), status::pending);
    EXPECT_EQ(w.reg.deregister_client(c.reg_handle), status::invalid_parameter);
    EXPECT_EQ(w.reg.register_client(c, registration_instance{}, nullptr, &c.reg_handle),
              status::invalid_parameter);
}

TEST(nmr, both_sides_deregistering_share_the_bindings_detach) {
    world w;
    fake_provider p(w, "p", npi_a);
    fake_client c(w, "c", npi_a);
    p.detach_pending = true;
    w.reg.register_provider(p, p.inst, nullptr, &p.reg_handle);
    w.reg.register_client(c, c.inst, nullptr, &c.reg_handle);
    bool pdone = false, cdone = false;
    w.reg.deregister_provider(p.reg_handle);
    w.reg.on_deregister_complete(p.reg_handle, [&] { pdone = true; });
    w.reg.deregister_client(c.reg_handle); // its only binding is detaching already
    w.reg.on_deregister_complete(c.reg_handle, [&] { cdone = true; });
    w.run_posted();
    EXPECT_FALSE(pdone || cdone);
    w.reg.provider_detach_client_complete(p.pending_detach.at(0));
    w.run_posted();
    EXPECT_TRUE(pdone && cdone);
    EXPECT_EQ(std::count(w.events.begin(), w.events.end(), "c.detach_provider"), 1);
    const auto k = w.reg.counts();
    EXPECT_EQ(k.clients + k.providers + k.attached + k.detaching, 0u);
}

TEST(nmr, handles_of_reused_slots_are_not_confused) {
    world w;
    fake_provider p(w, "p", npi_a);
    fake_client c(w, "c", npi_a);
    w.reg.register_provider(p, p.inst, nullptr, &p.reg_handle);
    w.reg.register_client(c, c.inst, nullptr, &c.reg_handle);
    const handle old_binding = c.bindings.at(0);
    w.reg.deregister_provider(p.reg_handle);
    w.reg.on_deregister_complete(p.reg_handle, [] {});
    w.run_posted();
    fake_provider p2(w, "p2", npi_a);
    w.reg.register_provider(p2, p2.inst, nullptr, &p2.reg_handle);
    ASSERT_EQ(c.bindings.size(), 2u);
    EXPECT_EQ(c.bindings[1].slot, old_binding.slot); // the slot is reused ...
    EXPECT_FALSE(w.reg.binding_alive(old_binding));  // ... but the old handle stays dead
    EXPECT_TRUE(w.reg.binding_usable(c.bindings[1]));
    w.reg.deregister_client(c.reg_handle);
    w.reg.deregister_provider(p2.reg_handle);
    w.run_posted();
}

// The table in nmr.hh is the truth: every status it lists for a registrar call is produced by
// some path here, and nothing this test binary made the registrar return is missing from it.
TEST(status_tables, every_listed_status_is_produced_and_nothing_unlisted_ever_is) {
    const auto before = contract_stats::process().all();
    {
        world w;
        fake_provider p(w, "p", npi_a), refusing(w, "refusing", npi_a), blank(w, "blank", npi_a);
        fake_client c(w, "c", npi_a), shy(w, "shy", npi_a);
        refusing.decline = true;    // client_attach_provider NOINTERFACE, attach NOINTERFACE
        blank.null_dispatch = true; // client_attach_provider and attach INVALID_PARAMETER
        shy.decline = true;         // attach NOINTERFACE without asking the provider
        handle bad;
        EXPECT_EQ(w.reg.register_client(c, registration_instance{}, nullptr, &bad),
                  status::invalid_parameter);
        EXPECT_EQ(w.reg.register_provider(p, registration_instance{}, nullptr, &bad),
                  status::invalid_parameter);
        ASSERT_EQ(w.reg.register_provider(p, p.inst, nullptr, &p.reg_handle), status::success);
        ASSERT_EQ(w.reg.register_provider(refusing, refusing.inst, nullptr, &refusing.reg_handle),
                  status::success);
        ASSERT_EQ(w.reg.register_provider(blank, blank.inst, nullptr, &blank.reg_handle),
                  status::success);
        ASSERT_EQ(w.reg.register_client(c, c.inst, nullptr, &c.reg_handle), status::success);
        ASSERT_EQ(w.reg.register_client(shy, shy.inst, nullptr, &shy.reg_handle), status::success);
        void* pctx = nullptr;
        const void* pdisp = nullptr;
        EXPECT_EQ(w.reg.client_attach_provider(c.bindings.at(0), nullptr, nullptr, &pctx, &pdisp),
                  status::invalid_parameter); // not attaching any more
        EXPECT_EQ(w.reg.on_deregister_complete(p.reg_handle, [] {}), status::invalid_parameter);
        EXPECT_EQ(w.reg.wait_for_deregister_complete(p.reg_handle, [] {}),
                  status::invalid_parameter);
        EXPECT_EQ(w.reg.deregister_client(p.reg_handle), status::invalid_parameter);
        EXPECT_EQ(w.reg.deregister_provider(c.reg_handle), status::invalid_parameter);
        // Both detach callbacks PENDING, then their completions; a second one is stray.
        c.detach_pending = p.detach_pending = true;
        ASSERT_EQ(w.reg.deregister_provider(p.reg_handle), status::pending);
        ASSERT_EQ(c.pending_detach.size(), 1u);
        ASSERT_EQ(p.pending_detach.size(), 1u);
        w.reg.client_detach_provider_complete(c.pending_detach[0]);
        w.reg.provider_detach_client_complete(p.pending_detach[0]);
        w.reg.client_detach_provider_complete(c.pending_detach[0]);
        w.reg.provider_detach_client_complete(p.pending_detach[0]);
        // A binding detached at once on both sides (SUCCESS), when c deregisters below.
        c.detach_pending = false;
        fake_provider late(w, "late", npi_a);
        ASSERT_EQ(w.reg.register_provider(late, late.inst, nullptr, &late.reg_handle),
                  status::success);
        bool done = false;
        EXPECT_EQ(w.reg.on_deregister_complete(p.reg_handle, [&] { done = true; }),
                  status::success);
        w.run_posted();
        EXPECT_TRUE(done);
        ASSERT_EQ(w.reg.deregister_client(c.reg_handle), status::pending);
        EXPECT_EQ(w.reg.wait_for_deregister_complete(c.reg_handle, [&] { w.run_posted(); }),
                  status::success);
        for (fake_provider* q : {&refusing, &blank, &late}) {
            ASSERT_EQ(w.reg.deregister_provider(q->reg_handle), status::pending);
        }
        ASSERT_EQ(w.reg.deregister_client(shy.reg_handle), status::pending);
        w.run_posted();
        EXPECT_EQ(w.reg.counts().attached, 0u);
    }
    const auto listed = test::listed_statuses(operation_status_table(), status_name);
    EXPECT_EQ(test::by_operation(test::counted_since(before, "nmr")), listed);
    EXPECT_THAT(test::unlisted_outcomes(listed, "nmr"), ::testing::IsEmpty());
}

} // namespace
} // namespace vcplane::nmr

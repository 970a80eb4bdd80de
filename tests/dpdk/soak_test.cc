// Soak: minutes of forwarding with churn on a real control plane and a worker on its own
// lcore, ending with every mbuf back in its pool and no VC or party array left alive.
//
// A steady multipoint call (label 1000 -> parties a, b, c) carries sequence-numbered frames
// of 64 and 1500 bytes alternately (whole copies and chained replicas); every party must get
// every frame once, in order. Meanwhile the control thread adds and drops parties on a second
// call whose frames also flow (so replicas are made for parties that are leaving), and closes
// and makes a third call again and again. At the end the plane is stopped and every mempool
// in the process (frames, replica headers, payload references) must be full.
//
// VCPLANE_SOAK_SECONDS sets the length (default 150 s; scripts/test runs the default).

#include <atomic>
#include <chrono>
#include <cstdlib>
#include <fmt/format.h>
#include <gtest/gtest.h>
#include <rte_launch.h>
#include <rte_mempool.h>

#include "base/log.hh"
#include "control/control_plane.hh"
#include "control/switch_state.hh"
#include "dataplane/wire.hh"
#include "support/call_client.hh"
#include "support/control_loop.hh"
#include "support/worker_launch.hh"
#include "tests/dpdk/harness.hh"

namespace vcplane::test {
namespace {

using clock_type = std::chrono::steady_clock;

double soak_seconds() {
    const char* s = std::getenv("VCPLANE_SOAK_SECONDS");
    return s != nullptr ? std::atof(s) : 150.0;
}

struct mempool_census {
    std::vector<std::string> short_pools;
};

TEST(soak, minutes_of_churn_lose_nothing_and_leave_every_mbuf_in_its_pool) {
    start_eal();
    rcu_register_thread();
    rcu_thread_offline();
    log::set_threshold(log::level::warning);
    rte_mempool* pool =
        rte_pktmbuf_pool_create("soak_pool", 16383, 256, 0, RTE_MBUF_DEFAULT_BUF_SIZE, 0);
    ASSERT_NE(pool, nullptr);
    // A party's TX ring holds every copy that a full RX ring can make for it (up to 1.4 per
    // frame on b): if this thread is descheduled while the worker runs, its rings fill before
    // it drains them, and a TX-full drop would be the test's loss, not the switch's.
    const ring_port in = make_ring_port("sk_in", 4096, false),
                    a = make_ring_port("sk_a", 8192, false),
                    b = make_ring_port("sk_b", 8192, false),
                    c = make_ring_port("sk_c", 8192, false);
    const auto cfg = parse_config_string(R"([eal]
lcores = [0, 1]
[connections.in]
device = "net_ring_sk_in"
[connections.a]
device = "net_ring_sk_a"
[connections.b]
device = "net_ring_sk_b"
[connections.c]
device = "net_ring_sk_c"
)",
                                         "soak.toml");
    const size_t vcs_before = switch_state::live_vcs(), sets_before = party_set::live();
    uint64_t injected = 0, pairs = 0, remade = 0, other = 0;
    uint64_t received[3] = {0, 0, 0}, disorder[3] = {0, 0, 0};
    {
        control_loop ctl;
        control_plane plane(cfg, ctl.gp, pool, 1, ctl.post());
        plane.start();
        std::atomic<bool> stop{false};
        worker_launch launched{plane.workers()[0].get(), &stop};
        ASSERT_EQ(launched.launch(1), 0);
        {
            const auto pump = [&] { ctl.pump(0); };
            call_client client(plane.registrar(), pump);
            using callmgmt::status;
            callmgmt::vc_handle steady = 0, churned = 0, remade_vc = 0;
            callmgmt::party_handle p = 0, remade_party = 0;
            ASSERT_EQ(
                client.make("in", 0, call("steady", 1000), party("a", "a", 2001), &steady, &p),
                status::success);
            ASSERT_EQ(client.add("in", steady, party("b", "b", 2002), &p), status::success);
            ASSERT_EQ(client.add("in", steady, party("c", "c", 2003), &p), status::success);
            ASSERT_EQ(client.make("in", 0, call("churned", 3000), party("anchor", "c", 3001),
                                  &churned, &p),
                      status::success);
            ASSERT_EQ(client.make("in", 0, call("remade", 4000), party("r", "a", 4001), &remade_vc,
                                  &remade_party),
                      status::success);

            const ring_port* outs[3] = {&a, &b, &c};
            uint32_t expect[3] = {0, 0, 0};
            uint32_t next_seq = 0, serial = 0;
            const auto drain_outs = [&] {
                for (int k = 0; k < 3; ++k) {
                    void* objs[256];
                    unsigned n;
                    while ((n = rte_ring_sc_dequeue_burst(outs[k]->tx, objs, 256, nullptr)) != 0) {
                        for (unsigned i = 0; i < n; ++i) {
                            auto* m = static_cast<rte_mbuf*>(objs[i]);
                            uint8_t head[22];
                            const auto* f = static_cast<const uint8_t*>(
                                rte_pktmbuf_read(m, 0, sizeof head, head));
                            const uint32_t label = wire::load_be32(f + 14) >> 12;
                            if (label == 2001 + uint32_t(k)) {
                                const uint32_t seq = wire::load_be32(f + 18);
                                disorder[k] += seq != expect[k];
                                expect[k] = seq + 1;
                                ++received[k];
                            } else {
                                ++other;
                            }
                            rte_pktmbuf_free(m);
                        }
                    }
                }
            };
            const auto end = clock_type::now() + std::chrono::duration<double>(soak_seconds());
            unsigned round = 0;
            while (clock_type::now() < end) {
                // 32 frames of the steady call (alternately 64 and 1500 bytes) and 8 of the
                // churned and remade calls, when the ring has room.
                if (rte_ring_free_count(in.rx) >= 48) {
                    std::vector<std::vector<uint8_t>> frames;
                    for (int i = 0; i < 32; ++i) {
                        frames.push_back(mpls_frame({.label = 1000,
                                                     .seq = next_seq++,
                                                     .size = (next_seq & 1) ? 1500u : 64u}));
                    }
                    for (int i = 0; i < 8; ++i) {
                        frames.push_back(mpls_frame(
                            {.label = i % 2 ? 3000u : 4000u, .size = i % 4 ? 64u : 1500u}));
                    }
                    inject(in, frames);
                    injected += 32;
                }
                // Churn: an add+drop pair every round, the third call closed and made again
                // every 64 rounds.
                callmgmt::party_handle q = 0;
                const std::string conn = std::string(1, char('a' + serial % 3));
                ASSERT_EQ(client.add("in", churned,
                                     party(fmt::format("x{}", serial), conn, 5000 + serial % 1000),
                                     &q),
                          status::success)
                    << client.error("in");
                ++serial;
                ASSERT_EQ(client.drop("in", q), status::pending) << client.error("in");
                ++pairs;
                if (++round % 64 == 0) {
                    const auto s = client.close("in", remade_vc, remade_party);
                    ASSERT_TRUE(s == status::success || s == status::pending) << client.error("in");
                    ASSERT_EQ(client.make("in", 0, call(fmt::format("remade{}", round), 4000),
                                          party("r", "b", 4001), &remade_vc, &remade_party),
                              status::success)
                        << client.error("in");
                    ++remade;
                }
                pump();
                drain_outs();
            }
            // Let the last frames through: the in ring may be full (the loop injects whenever
            // it has room) and pump() never waits, so the wait is bounded by time, not by a
            // count of pumps (2000 of them once ran out before the worker had caught up).
            const auto last = clock_type::now() + std::chrono::seconds(10);
            while ((received[0] < injected || received[1] < injected || received[2] < injected) &&
                   clock_type::now() < last) {
                pump();
                drain_outs();
            }
        }
        plane.stop([&] { ctl.pump(); });
        stop = true;
        rte_eal_wait_lcore(1);
        for (const ring_port* r : {&in, &a, &b, &c}) {
            drain(*r);
        }
    }
    std::printf("soak: %.0f s, %llu frames of the steady call to each of 3 parties, %llu other "
                "copies, %llu add+drop pairs, %llu calls closed and made again\n",
                soak_seconds(), (unsigned long long)injected, (unsigned long long)other,
                (unsigned long long)pairs, (unsigned long long)remade);
    EXPECT_GT(injected, 0u);
    for (int k = 0; k < 3; ++k) {
        EXPECT_EQ(received[k], injected) << "party " << char('a' + k);
        EXPECT_EQ(disorder[k], 0u) << "party " << char('a' + k);
    }
    EXPECT_GT(pairs, 0u);
    EXPECT_GT(remade, 0u);
    // No VC or party array outlives the plane.
    EXPECT_EQ(switch_state::live_vcs(), vcs_before);
    EXPECT_EQ(party_set::live(), sets_before);
    // Every mbuf of every pool in the process is back.
    mempool_census census;
    rte_mempool_walk(
        [](rte_mempool* mp, void* arg) {
            if (rte_mempool_avail_count(mp) != mp->size) {
                static_cast<mempool_census*>(arg)->short_pools.push_back(fmt::format(
                    "{}: {} of {} free", mp->name, rte_mempool_avail_count(mp), mp->size));
            }
        },
        &census);
    EXPECT_TRUE(census.short_pools.empty())
        << fmt::format("{}", fmt::join(census.short_pools, "; "));
}

} // namespace
} // namespace vcplane::test

// Two workers at once, as on a machine with more cores: each owns queue i of every port (RX
// and TX), both read the same tables, and the control thread changes a call they both carry
// while they run, retiring the old party array after a real QSBR grace period. The machine
// has 2 CPUs, so the workers are EAL lcores 1 and 2 both on CPU 1 (--lcores 0@0,1@1,2@1): this
// tests correctness under true concurrency of the two threads, not their speed.
//
// Checked: every frame of a VC received on queue i leaves on TX queue i of each party's port,
// once, in order, rewritten; the call changed under both workers loses none of the frames of
// the party it always had; per-VC counters summed over the workers are exact; each worker
// counted only its own queue; every mbuf is back in the pool at the end.

#include <algorithm>
#include <atomic>
#include <chrono>
#include <fmt/format.h>
#include <gtest/gtest.h>
#include <map>
#include <numeric>
#include <rte_eth_ring.h>
#include <rte_ethdev.h>
#include <rte_launch.h>
#include <rte_lcore.h>
#include <unistd.h>

#include "control/switch_state.hh"
#include "dataplane/wire.hh"
#include "dataplane/worker.hh"
#include "port/eal.hh"
#include "port/ports.hh"
#include "support/worker_launch.hh"
#include "tests/dpdk/harness.hh"

namespace vcplane::test {
namespace {

constexpr uint16_t queues = 2;

struct two_queue_port {
    uint16_t port;
    rte_ring* rx[queues];
    rte_ring* tx[queues];
    mac_address mac;
};

two_queue_port make_port(const std::string& name, rte_mempool* pool) {
    two_queue_port p{};
    for (uint16_t q = 0; q < queues; ++q) {
        p.rx[q] = rte_ring_create(fmt::format("{}_rx{}", name, q).c_str(), 4096, 0,
                                  RING_F_SP_ENQ | RING_F_SC_DEQ);
        p.tx[q] = rte_ring_create(fmt::format("{}_tx{}", name, q).c_str(), 8192, 0,
                                  RING_F_SP_ENQ | RING_F_SC_DEQ);
    }
    const int id = rte_eth_from_rings(name.c_str(), p.rx, queues, p.tx, queues, 0);
    if (id < 0) {
        throw std::runtime_error("rte_eth_from_rings: " + std::string(rte_strerror(rte_errno)));
    }
    p.port = uint16_t(id);
    start_port(port_plan{p.port, name, queues, queues, 512, 512, 1500}, pool);
    p.mac = port_mac(p.port);
    return p;
}

// What one TX queue of one port sent, by out-label: the sequence numbers in order.
using by_label = std::map<uint32_t, std::vector<uint32_t>>;

void drain(rte_ring* r, by_label& into) {
    void* objs[64];
    unsigned n;
    while ((n = rte_ring_sc_dequeue_burst(r, objs, 64, nullptr)) != 0) {
        for (unsigned i = 0; i < n; ++i) {
            auto* m = static_cast<rte_mbuf*>(objs[i]);
            const uint8_t* f = rte_pktmbuf_mtod(m, const uint8_t*);
            into[wire::load_be32(f + 14) >> 12].push_back(wire::load_be32(f + 18));
            rte_pktmbuf_free(m);
        }
    }
}

TEST(multi_worker, two_workers_each_on_its_own_queues_share_the_tables_under_change) {
    if (sysconf(_SC_NPROCESSORS_ONLN) < 2) {
        GTEST_SKIP() << "needs 2 CPUs (lcore 0 on CPU 0, the workers on CPU 1)";
    }
    eal_start({"vcplane-test", "--lcores", "0@0,1@1,2@1", "--main-lcore", "0", "--no-huge", "-m",
               "512", "--no-pci", "--no-shconf", "--file-prefix",
               "vcplane-mw-" + std::to_string(getpid()), "--log-level=error"});
    rte_mempool* pool =
        rte_pktmbuf_pool_create("mw_pool", 16383, 256, 0, RTE_MBUF_DEFAULT_BUF_SIZE, 0);
    ASSERT_NE(pool, nullptr);
    const two_queue_port in = make_port("mw_in", pool), out1 = make_port("mw_out1", pool),
                         out2 = make_port("mw_out2", pool);
    const unsigned pool_free = rte_mempool_avail_count(pool);

    metrics_config series;
    series.per_vc = series.per_party = true;
    switch_state state(2, series);
    state.add_connection("in", "in", in.port, media_kind::mpls, in.mac, 1500);
    state.add_connection("out1", "out1", out1.port, media_kind::mpls, out1.mac, 1500);
    state.add_connection("out2", "out2", out2.port, media_kind::mpls, out2.mac, 1500);
    const connection_state& in_conn = *state.find_connection("in");
    const mac_address nh{2, 0xaa, 0, 0, 0, 1};
    table_error error;
    auto parties = [&](std::vector<party_spec> specs) {
        std::vector<uint32_t> slots;
        for (size_t i = 0; i < specs.size(); ++i) {
            slots.push_back(state.party_slots().acquire());
        }
        party_set* set = state.build_parties(in_conn, specs, slots, &error);
        EXPECT_NE(set, nullptr) << error.why;
        return set;
    };
    auto publish = [&](uint32_t label, party_set* set) {
        vc* v = state.new_vc(in_conn, label, state.vc_slots().acquire(), set, {}, &error);
        EXPECT_NE(v, nullptr) << error.why;
        EXPECT_TRUE(state.publish_vc(in_conn, v));
        return v;
    };
    // VC 1000 arrives on queue 0 only, VC 2000 on queue 1 only (as RSS on the label would
    // keep each VC on one worker); VC 3000 on both, and its parties change while they run.
    vc* v1 = publish(1000, parties({{"a", "out1", 5000, nh}, {"b", "out2", 5001, nh}}));
    vc* v2 = publish(2000, parties({{"c", "out1", 6000, nh}, {"d", "out2", 6001, nh}}));
    vc* v3 = publish(3000, parties({{"e", "out1", 7000, nh}}));

    std::vector<std::unique_ptr<worker>> workers;
    std::atomic<bool> stop{false};
    worker_launch args[queues];
    for (uint16_t q = 0; q < queues; ++q) {
        workers.push_back(std::make_unique<worker>(q, state.table(), pool, q));
        workers[q]->set_counter_slots(state.vc_slots().worker_array(q),
                                      state.party_slots().worker_array(q));
        auto* list = new rx_queue_list{};
        for (uint16_t port : {in.port, out1.port, out2.port}) {
            list->queues[list->count++] = rx_queue_ref{port, q};
        }
        workers[q]->publish_rx_queues(list);
        args[q] = {workers[q].get(), &stop};
        ASSERT_EQ(args[q].launch(q + 1), 0);
    }

    constexpr uint32_t frames_per_vc = 60000;
    by_label sent_on[2][queues]; // [out1, out2][TX queue]
    uint32_t next[queues] = {0, 0}, shared_sent = 0, shared_on[queues] = {0, 0}, changes = 0;
    bool with_f = false;
    auto drain_all = [&] {
        for (uint16_t q = 0; q < queues; ++q) {
            drain(out1.tx[q], sent_on[0][q]);
            drain(out2.tx[q], sent_on[1][q]);
        }
    };
    auto all_out = [&] {
        return sent_on[0][0][5000].size() == frames_per_vc &&
               sent_on[0][1][6000].size() == frames_per_vc &&
               sent_on[1][0][5001].size() == frames_per_vc &&
               sent_on[1][1][6001].size() == frames_per_vc &&
               sent_on[0][0][7000].size() + sent_on[0][1][7000].size() == shared_sent;
    };
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(120);
    while (std::chrono::steady_clock::now() < deadline) {
        for (uint16_t q = 0; q < queues; ++q) {
            // A burst: 31 frames of the queue's own VC and one of the shared VC.
            if (next[q] == frames_per_vc || rte_ring_free_count(in.rx[q]) < 32) {
                continue;
            }
            rte_mbuf* burst[32];
            unsigned n = 0;
            for (; n < 31 && next[q] < frames_per_vc; ++n) {
                burst[n] =
                    to_mbuf(mpls_frame({.label = q == 0 ? 1000u : 2000u, .seq = next[q]++}), pool);
            }
            burst[n++] = to_mbuf(mpls_frame({.label = 3000, .seq = shared_sent++}), pool);
            ++shared_on[q];
            ASSERT_EQ(
                rte_ring_sp_enqueue_bulk(in.rx[q], reinterpret_cast<void**>(burst), n, nullptr), n);
        }
        drain_all();
        // Every 16 shared frames: VC 3000 gains or loses party f under both workers. The old
        // array is freed after a real grace period (both workers' quiescent states).
        if (shared_sent / 16 > changes) {
            ++changes;
            with_f = !with_f;
            std::vector<party_spec> specs{{"e", "out1", 7000, nh}};
            if (with_f) {
                specs.push_back({"f", "out2", 7001, nh});
            }
            party_set* old = v3->parties;
            rcu_assign_pointer(v3->parties, parties(specs));
            synchronize_rcu();
            for (const party& p : *old) {
                state.retire_party_slot(p.stats_slot);
            }
            party_set::destroy(old);
        }
        if (next[0] == frames_per_vc && next[1] == frames_per_vc && all_out()) {
            break;
        }
    }
    stop = true;
    rte_eal_mp_wait_lcore();
    drain_all();

    ASSERT_TRUE(all_out()) << "not every frame came out within the time limit";
    std::vector<uint32_t> in_order(frames_per_vc);
    std::iota(in_order.begin(), in_order.end(), 0u);
    // Each VC on its own worker's TX queue only, in order, once.
    EXPECT_EQ(sent_on[0][0][5000], in_order);
    EXPECT_EQ(sent_on[1][0][5001], in_order);
    EXPECT_EQ(sent_on[0][1][6000], in_order);
    EXPECT_EQ(sent_on[1][1][6001], in_order);
    EXPECT_EQ(sent_on[0][1].count(5000) + sent_on[1][1].count(5001), 0u);
    EXPECT_EQ(sent_on[0][0].count(6000) + sent_on[1][0].count(6001), 0u);
    // The shared VC: party e got every frame, each queue's share in order; f only some.
    EXPECT_GT(changes, 100u);
    for (uint16_t q = 0; q < queues; ++q) {
        for (uint32_t label : {7000u, 7001u}) {
            const auto& seqs = sent_on[label == 7000 ? 0 : 1][q][label];
            EXPECT_TRUE(std::is_sorted(seqs.begin(), seqs.end())) << label << " queue " << q;
        }
        EXPECT_EQ(sent_on[0][q][7000].size(), shared_on[q]) << q;
    }
    const size_t f_copies = sent_on[1][0][7001].size() + sent_on[1][1][7001].size();
    EXPECT_GT(f_copies, 0u);
    EXPECT_LT(f_copies, shared_sent);
    // Counters: per VC summed over both workers; per worker only its own queue; no drops.
    EXPECT_EQ(state.vc_slots().read(v1->stats_slot).packets, frames_per_vc);
    EXPECT_EQ(state.vc_slots().read(v2->stats_slot).packets, frames_per_vc);
    EXPECT_EQ(state.vc_slots().read(v3->stats_slot).packets, shared_sent);
    for (uint16_t q = 0; q < queues; ++q) {
        const worker_counters& c = workers[q]->counters();
        EXPECT_EQ(c.port[in.port].rx_packets.read(), frames_per_vc + shared_on[q]) << q;
        for (size_t r = 0; r < drop_reason_count; ++r) {
            EXPECT_EQ(c.drops[r].read(), 0u) << drop_reason_name(drop_reason(r)) << " worker " << q;
        }
    }

    for (vc* v : {v1, v2, v3}) {
        state.unpublish_vc(in_conn, v->key);
        switch_state::free_vc(v); // the workers have stopped
    }
    workers.clear();
    EXPECT_EQ(party_set::live(), 0u);
    EXPECT_EQ(rte_mempool_avail_count(pool), pool_free);
}

} // namespace
} // namespace vcplane::test

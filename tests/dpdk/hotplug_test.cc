// Ports that come and go under a running worker, through the real control plane: the claim
// loop names hot-plugged ports, a CM-connected port is disconnected synchronously, and a port
// removed while traffic flows on another call costs that call nothing (issue 3).

#include <array>
#include <atomic>
#include <chrono>
#include <cstring>
#include <fmt/format.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <map>
#include <rte_eth_ring.h>
#include <rte_ethdev.h>
#include <rte_launch.h>
#include <thread>

#include "control/control_plane.hh"
#include "dataplane/wire.hh"
#include "support/call_client.hh"
#include "support/control_loop.hh"
#include "tests/dpdk/harness.hh"

namespace vcplane::test {
namespace {

using callmgmt::party_handle;
using callmgmt::vc_handle;
using ::testing::HasSubstr;
using cstatus = callmgmt::status;

const char* config_text = R"([eal]
lcores = [0, 1]
[connections.in]
device = "net_ring_hp_in"
[connections.out]
device = "net_ring_hp_out"
[connections.hot]
device = "net_null7"
[connections.made]
devargs = "net_null8"

[calls.feed]
connection = "in"
label = 1000
[[calls.feed.parties]]
name = "a"
connection = "out"
label = 2001
next_hop = "02:00:00:00:00:0a"

[calls.side]
connection = "in"
label = 1001
[[calls.side.parties]]
name = "stays"
connection = "out"
label = 3001
next_hop = "02:00:00:00:00:0b"
[[calls.side.parties]]
name = "leaves"
connection = "hot"
label = 3002
next_hop = "02:00:00:00:00:0c"
)";

struct launch {
    worker* w;
    std::atomic<bool>* stop;
};

TEST(hotplug, ports_are_claimed_named_and_removed_under_traffic_without_loss) {
    start_eal();
    rcu_register_thread();
    rcu_thread_offline(); // this thread is the control thread: a writer, never holding readers up

    const auto cfg = parse_config_string(config_text, "hotplug.toml");
    ring_port in = make_ring_port("hp_in", 4096, false);
    ring_port out = make_ring_port("hp_out", 8192, false);
    ring_port stray = make_ring_port("hp_stray", 64, false);
    const unsigned pool_before = rte_mempool_avail_count(shared_pool());

    {
        control_loop ctl;
        const auto pump = [&] { ctl.pump(); };
        control_plane plane(cfg, ctl.gp, shared_pool(), 1, ctl.post());
        plane.start();
        pump();

        // Claimed by the config CSP and named; the CM connected the devargs port itself.
        const auto& cm = plane.connections();
        ASSERT_NE(cm.find("in"), nullptr);
        EXPECT_TRUE(cm.find("in")->out_of_band);
        ASSERT_NE(cm.find("made"), nullptr);
        EXPECT_FALSE(cm.find("made")->out_of_band);
        EXPECT_EQ(cm.find("hot"), nullptr);
        ASSERT_EQ(cm.unmanaged().size(), 1u);
        EXPECT_EQ(cm.unmanaged()[0].port.device, "net_ring_hp_stray");
        EXPECT_THAT(cm.unmanaged()[0].reason, HasSubstr("config: INVALID_CONNECTION"));
        call_manager* in_calls = plane.find_call_manager("in");
        ASSERT_NE(in_calls, nullptr);
        // 'side' is made with the party whose connection is up; 'leaves' waits for 'hot'.
        EXPECT_EQ(in_calls->active_calls(), 2u);
        EXPECT_EQ(in_calls->active_parties(), 2u);
        EXPECT_EQ(plane.config_provisioner().calls_waiting(), 0u);

        std::atomic<bool> stop{false};
        launch args{plane.workers()[0].get(), &stop};
        ASSERT_EQ(rte_eal_remote_launch(
                      [](void* a) {
                          auto* l = static_cast<launch*>(a);
                          l->w->run(*l->stop);
                          return 0;
                      },
                      &args, 1),
                  0);

        // Hot-plug: probed at run time, claimed, named; the waiting call is made.
        const probe_result hot = plane.attach_port("net_null7");
        ASSERT_TRUE(hot.port) << hot.error;
        pump();
        ASSERT_NE(cm.find("hot"), nullptr);
        EXPECT_EQ(cm.find("hot")->port.device, "net_null7");
        EXPECT_EQ(in_calls->active_calls(), 2u);
        EXPECT_EQ(in_calls->active_parties(), 3u); // feed: a; side: stays, leaves

        // Traffic on both calls while 'hot' (a party of 'side') is removed half-way.
        constexpr uint32_t frames = 4000;
        std::vector<std::vector<uint8_t>> got;
        const auto collect = [&] {
            for (auto& f : drain(out)) {
                got.push_back(std::move(f));
            }
        };
        for (uint32_t s = 0; s < frames; s += 200) {
            std::vector<std::vector<uint8_t>> batch;
            for (uint32_t i = s; i < s + 200; ++i) {
                batch.push_back(mpls_frame({.label = i % 2 ? 1001u : 1000u, .seq = i}));
            }
            inject(in, batch);
            if (s == frames / 2) {
                std::string error;
                ASSERT_TRUE(plane.detach_port("net_null7", &error)) << error;
            }
            for (int spin = 0; spin < 500 && got.size() < s + 200; ++spin) {
                collect();
                pump();
            }
        }
        for (int spin = 0; spin < 200 && got.size() < frames; ++spin) {
            collect();
            pump();
        }
        // Every frame of both calls reached 'out' exactly once and in order.
        ASSERT_EQ(got.size(), frames);
        for (uint32_t i = 0; i < frames; ++i) {
            ASSERT_EQ(wire::load_be32(got[i].data() + 18), i);
            const wire::mpls_entry e{wire::load_be32(got[i].data() + 14)};
            ASSERT_EQ(e.label(), i % 2 ? 3001u : 2001u);
        }
        // 'hot' is gone: connection, device, and the party that left through it.
        uint16_t gone;
        EXPECT_NE(rte_eth_dev_get_port_by_name("net_null7", &gone), 0);
        EXPECT_EQ(cm.find("hot"), nullptr);
        EXPECT_EQ(in_calls->active_calls(), 2u);
        EXPECT_EQ(in_calls->active_parties(), 2u);

        // Disconnect: refused for a claimed port, synchronous for the CM's own.
        EXPECT_EQ(plane.disconnect("in"), cm::result::not_supported);
        EXPECT_EQ(plane.disconnect("made"), cm::result::success);
        EXPECT_NE(rte_eth_dev_get_port_by_name("net_null8", &gone), 0);
        EXPECT_EQ(cm.find("made"), nullptr);

        plane.stop(pump);
        stop = true;
        EXPECT_EQ(rte_eal_wait_lcore(1), 0);
        drain(out);
        drain(in);
        EXPECT_EQ(plane.find_call_manager("in"), nullptr);
        EXPECT_EQ(plane.registrar().counts().attached, 0u);
    }
    // Every buffer is back: the removed ports' and the replicas' alike.
    EXPECT_EQ(rte_mempool_avail_count(shared_pool()), pool_before);
    (void)stray;
    rcu_unregister_thread();
}

// Invariant: a Connection Manager disconnect returns only when no worker can see the port
// (docs/contracts.md §2, §5.6). The canary is a QSBR reader like a worker: it loads the RX
// queue list the worker polls, holds it a while as a worker holds it during a burst, and then
// checks whether any port in it has been reported disconnected. A disconnect that returned
// before every reader passed a quiescent state is caught holding the port.
TEST(hotplug, a_disconnect_returns_only_when_no_reader_can_still_see_the_port) {
    start_eal();
    rcu_register_thread();
    rcu_thread_offline();
    constexpr int ports = 8;
    std::string text = "[eal]\nlcores = [0, 1]\n";
    for (int i = 0; i < ports; ++i) {
        text += fmt::format("[connections.made{0}]\ndevargs = \"net_null{1}\"\n", i, 20 + i);
    }
    const auto cfg = parse_config_string(text, "canary.toml");
    control_loop ctl;
    const auto pump = [&] { ctl.pump(); };
    control_plane plane(cfg, ctl.gp, shared_pool(), 1, ctl.post());
    plane.start();
    pump();

    std::array<std::atomic<bool>, RTE_MAX_ETHPORTS> disconnected{};
    std::atomic<bool> stop{false};
    std::atomic<uint64_t> held{0}, caught{0};
    const worker& w = *plane.workers()[0];
    std::thread canary([&] {
        rcu_register_thread();
        while (!stop.load(std::memory_order_relaxed)) {
            const rx_queue_list* list = w.rx_queues();
            const auto until = std::chrono::steady_clock::now() + std::chrono::microseconds(20);
            while (std::chrono::steady_clock::now() < until) {
            }
            for (uint16_t i = 0; list != nullptr && i < list->count; ++i) {
                if (disconnected[list->queues[i].port].load(std::memory_order_acquire)) {
                    caught.fetch_add(1, std::memory_order_relaxed);
                }
            }
            held.fetch_add(list != nullptr && list->count != 0, std::memory_order_relaxed);
            rcu_quiescent_state();
        }
        rcu_unregister_thread();
    });
    for (int i = 0; i < ports; ++i) {
        const std::string name = fmt::format("made{}", i);
        const cm::connection* c = plane.connections().find(name);
        ASSERT_NE(c, nullptr) << name;
        const uint16_t port = c->port.port;
        // The canary is holding lists with the port (bounded: a stuck canary fails the test).
        const uint64_t before = held.load();
        const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(5);
        while (held.load() < before + 10 && std::chrono::steady_clock::now() < deadline) {
            std::this_thread::yield();
        }
        ASSERT_GE(held.load(), before + 10) << "the canary stopped reading";
        ASSERT_EQ(plane.disconnect(name), cm::result::success);
        disconnected[port].store(true, std::memory_order_release);
        std::this_thread::sleep_for(std::chrono::milliseconds(2));
    }
    stop = true;
    canary.join();
    EXPECT_EQ(caught.load(), 0u) << "a reader still held a disconnected port";
    EXPECT_TRUE(plane.connections().connections().empty());
    plane.stop(pump);
    rcu_unregister_thread();
}

// A port connection is one VC: its frames must reach one worker, in order, whatever the NIC
// hashes on. It gets one RX queue, polled by one worker; a labelled connection gets one per
// worker (RSS on the label keeps each VC on one of them).
TEST(hotplug, a_port_connection_is_polled_by_one_worker_on_one_queue) {
    start_eal();
    rcu_register_thread();
    rcu_thread_offline();
    const auto cfg = parse_config_string(R"([eal]
lcores = [0, 1, 2]
[connections.whole]
devargs = "net_null40"
media = "port"
[connections.labels]
devargs = "net_null41"
)",
                                         "ports.toml");
    control_loop ctl;
    const auto pump = [&] { ctl.pump(); };
    control_plane plane(cfg, ctl.gp, shared_pool(), 2, ctl.post());
    plane.start();
    const auto port_of = [&](const char* name) {
        const cm::connection* c = plane.connections().find(name);
        EXPECT_NE(c, nullptr) << name;
        return c != nullptr ? c->port.port : uint16_t(RTE_MAX_ETHPORTS);
    };
    const uint16_t whole = port_of("whole");
    const uint16_t labels = port_of("labels");
    ASSERT_LT(whole, RTE_MAX_ETHPORTS);
    ASSERT_LT(labels, RTE_MAX_ETHPORTS);
    // Which (worker, queue) pairs poll each port.
    std::map<uint16_t, std::vector<std::pair<size_t, uint16_t>>> pollers;
    for (size_t w = 0; w < plane.workers().size(); ++w) {
        const rx_queue_list* list = plane.workers()[w]->rx_queues();
        ASSERT_NE(list, nullptr);
        for (unsigned i = 0; i < list->count; ++i) {
            pollers[list->queues[i].port].push_back({w, list->queues[i].queue});
        }
    }
    ASSERT_EQ(pollers[whole].size(), 1u);
    EXPECT_EQ(pollers[whole][0].second, 0u);
    EXPECT_EQ(pollers[labels], (std::vector<std::pair<size_t, uint16_t>>{{0, 0}, {1, 1}}));
    rte_eth_dev_info info{};
    ASSERT_EQ(rte_eth_dev_info_get(whole, &info), 0);
    EXPECT_EQ(info.nb_rx_queues, 1u);
    EXPECT_EQ(info.nb_tx_queues, 2u); // every worker may send a copy through it
    ASSERT_EQ(rte_eth_dev_info_get(labels, &info), 0);
    EXPECT_EQ(info.nb_rx_queues, 2u);
    plane.stop(pump);
    rcu_unregister_thread();
}

// Seed CmCspClaimConnection: an adapter the file's CSP would create by connecting one of its
// connections, activated out of band instead, is claimed under that connection's name, and
// the CSP then refuses to disconnect it (it belongs to whoever brought it up).
TEST(hotplug, a_device_the_csp_would_connect_activated_out_of_band_is_claimed) {
    start_eal();
    rcu_register_thread();
    rcu_thread_offline();
    const auto cfg = parse_config_string(R"([eal]
lcores = [0, 1]
[connections.made]
devargs = "net_null42"
)",
                                         "oob.toml");
    control_loop ctl;
    const auto pump = [&] { ctl.pump(); };
    control_plane plane(cfg, ctl.gp, shared_pool(), 1, ctl.post());
    plane.start();
    ASSERT_NE(plane.connections().find("made"), nullptr);
    // Connected by vcplane: it may disconnect it, which removes the device.
    ASSERT_EQ(plane.disconnect("made"), cm::result::success);
    pump();
    EXPECT_EQ(plane.connections().find("made"), nullptr);
    // The operator brings the same device up: offered to the CSPs, claimed, named.
    const probe_result up = plane.attach_port("net_null42");
    ASSERT_TRUE(up.port.has_value()) << up.error;
    pump();
    const cm::connection* c = plane.connections().find("made");
    ASSERT_NE(c, nullptr) << "the adapter stayed unmanaged";
    EXPECT_EQ(c->port.device, "net_null42");
    for (const auto& u : plane.connections().unmanaged()) {
        EXPECT_NE(u.port.device, "net_null42");
    }
    EXPECT_NE(plane.find_call_manager("made"), nullptr);
    // Claimed out of band: the Connection Manager may not disconnect it.
    EXPECT_EQ(plane.disconnect("made"), cm::result::not_supported);
    EXPECT_NE(plane.connections().find("made"), nullptr);
    std::string error;
    EXPECT_TRUE(plane.detach_port("net_null42", &error)) << error;
    plane.stop(pump);
    rcu_unregister_thread();
}

// Seed ProtocolCmDropParty: close data is the party's last frame on its call. With two workers
// it must leave through the TX queue that carried the party's copies (queues of one port keep
// no order between them), not always worker 0's. The workers are not launched here: the test
// runs each one's pass itself and reads each TX queue's ring.
TEST(hotplug, close_data_leaves_behind_the_copies_on_the_serving_workers_queue) {
    start_eal();
    rcu_register_thread();
    // Ring ports: "whole" (a port connection, one RX queue) and "out" with a TX ring per queue.
    const auto ring = [](const std::string& n) {
        return rte_ring_create(n.c_str(), 1024, 0, RING_F_SP_ENQ | RING_F_SC_DEQ);
    };
    rte_ring* in_rx = ring("cd_in_rx");
    rte_ring* in_tx[2] = {ring("cd_in_tx0"), ring("cd_in_tx1")};
    rte_ring* out_rx[2] = {ring("cd_out_rx0"), ring("cd_out_rx1")};
    rte_ring* out_tx[2] = {ring("cd_out_tx0"), ring("cd_out_tx1")};
    // The port connection's worker is its port id modulo 2: make it worker 1, whose queue is
    // not the one close data used to take.
    int in_k = -1;
    for (int k = 0; k < 2 && in_k < 0; ++k) {
        const int id =
            rte_eth_from_rings(fmt::format("cd_in{}", k).c_str(), &in_rx, 1, in_tx, 2, 0);
        ASSERT_GE(id, 0);
        in_k = id % 2 == 1 ? k : -1; // an even one stays, unclaimed
    }
    ASSERT_GE(rte_eth_from_rings("cd_out", out_rx, 2, out_tx, 2, 0), 0);
    const auto cfg = parse_config_string(fmt::format(R"([eal]
lcores = [0, 1, 2]
[connections.whole]
device = "net_ring_cd_in{}"
media = "port"
[connections.out]
device = "net_ring_cd_out"
)",
                                                     in_k),
                                         "cd.toml");
    control_loop ctl;
    const auto pump = [&] { ctl.pump(); };
    {
        control_plane plane(cfg, ctl.gp, shared_pool(), 2, ctl.post());
        plane.start();
        ASSERT_NE(plane.connections().find("whole"), nullptr);
        call_client client(plane.registrar(), pump);
        vc_handle v = 0;
        party_handle a = 0, b = 0;
        const callmgmt::call_spec pseudowire{
            "feed", port_key, true, {}, call_encapsulation{payload_kind::ethernet}};
        ASSERT_EQ(client.make("whole", 0, pseudowire, party("a", "out", 2001), &v, &a),
                  cstatus::success);
        ASSERT_EQ(client.add("whole", v, party("b", "out", 2002), &b), cstatus::success);
        const auto run_workers = [&] {
            rcu_thread_online();
            for (const auto& w : plane.workers()) {
                w->poll_once();
            }
            rcu_thread_offline();
        };
        std::vector<void*> frames;
        for (uint32_t s = 0; s < 4; ++s) {
            const auto f = mpls_frame({.label = 77, .seq = s});
            rte_mbuf* m = rte_pktmbuf_alloc(shared_pool());
            std::memcpy(rte_pktmbuf_append(m, uint16_t(f.size())), f.data(), f.size());
            frames.push_back(m);
        }
        ASSERT_EQ(rte_ring_enqueue_bulk(in_rx, frames.data(), unsigned(frames.size()), nullptr),
                  frames.size());
        run_workers();
        ASSERT_EQ(client.drop("whole", b, {'b', 'y', 'e'}), cstatus::pending);
        ASSERT_TRUE(client.wait_for(b));
        EXPECT_THAT(client.events[b], ::testing::ElementsAre("drop_complete:SUCCESS"));
        run_workers();
        // Worker 1 made b's four copies on TX queue 1; its close data follows them there.
        std::vector<uint32_t> labels[2];
        for (int q = 0; q < 2; ++q) {
            void* m;
            while (rte_ring_dequeue(out_tx[q], &m) == 0) {
                const uint8_t* f = rte_pktmbuf_mtod(static_cast<rte_mbuf*>(m), const uint8_t*);
                labels[q].push_back(wire::mpls_label_of(wire::load_be32(f + 14)));
                rte_pktmbuf_free(static_cast<rte_mbuf*>(m));
            }
        }
        EXPECT_TRUE(labels[0].empty());
        ASSERT_EQ(labels[1].size(), 9u); // 4 x (a, b), then b's close data
        EXPECT_EQ(labels[1].back(), 2002u);
        plane.stop(pump);
    }
    for (rte_ring* r : {in_rx, in_tx[0], in_tx[1], out_rx[0], out_rx[1], out_tx[0], out_tx[1]}) {
        rte_ring_free(r);
    }
    rcu_unregister_thread();
}

} // namespace
} // namespace vcplane::test

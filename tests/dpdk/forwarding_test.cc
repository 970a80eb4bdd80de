// Frames through a real worker on real (ring-backed) ethdev ports: classification, every byte
// of every copy (whole copies of small frames, chained header + shared payload for large ones),
// drops by reason, TX-full and mbuf exhaustion, and the lcore loop itself.

#include <algorithm>
#include <atomic>
#include <fmt/format.h>
#include <gtest/gtest.h>
#include <map>
#include <memory>
#include <rte_cycles.h>
#include <rte_ethdev.h>
#include <rte_launch.h>
#include <rte_mempool.h>

#include "control/switch_state.hh"
#include "dataplane/wire.hh"
#include "dataplane/worker.hh"
#include "tests/dpdk/harness.hh"

namespace vcplane::test {
namespace {

struct ports {
    ring_port in, out1, out2, small, vin, vout, stray;
};

// The pools of chained replicas, as control_plane makes them.
rte_mempool* header_pool() {
    static rte_mempool* p =
        rte_pktmbuf_pool_create("test_hdr", 4095, 0, 0, RTE_PKTMBUF_HEADROOM + 64, 0);
    return p;
}
rte_mempool* payload_ref_pool() {
    static rte_mempool* p = rte_pktmbuf_pool_create("test_ref", 4095, 0, 0, 0, 0);
    return p;
}

// Linear buffers, as control_plane makes them (fewer: a test holds at most a few).
rte_mempool* linear_pool() {
    static rte_mempool* p =
        rte_pktmbuf_pool_create("test_lin", 15, 0, 0, RTE_PKTMBUF_HEADROOM + linear_buffer_len, 0);
    return p;
}

ports& test_ports() {
    static std::unique_ptr<ports> p;
    if (!p) {
        start_eal();
        rcu_register_thread();
        p = std::make_unique<ports>(ports{make_ring_port("in"), make_ring_port("out1"),
                                          make_ring_port("out2"), make_ring_port("small", 16),
                                          make_ring_port("vin"), make_ring_port("vout"),
                                          make_ring_port("stray")});
    }
    return *p;
}

party_config party_on(const std::string& name, const std::string& conn, uint32_t key,
                      const mac_address& next_hop) {
    party_config p;
    p.name = name;
    p.connection = conn;
    p.key = key;
    p.next_hop = next_hop;
    return p;
}

mac_address nh(uint8_t i) {
    return {0x02, 0xaa, 0, 0, 0, i};
}

class forwarding : public ::testing::Test {
protected:
    void SetUp() override {
        P = &test_ports();
        pool_free_before_ = rte_mempool_avail_count(shared_pool());
        headers_free_before_ = rte_mempool_avail_count(header_pool());
        refs_free_before_ = rte_mempool_avail_count(payload_ref_pool());
        state_ = std::make_unique<switch_state>();
        state_->add_connection("in", "in", P->in.port, media_kind::mpls, P->in.mac, 1500);
        state_->add_connection("out1", "out1", P->out1.port, media_kind::mpls, P->out1.mac, 1500);
        state_->add_connection("out2", "out2", P->out2.port, media_kind::mpls, P->out2.mac, 1500);
        state_->add_connection("small", "small", P->small.port, media_kind::mpls, P->small.mac,
                               1500);
        state_->add_connection("vin", "vin", P->vin.port, media_kind::vlan, P->vin.mac, 1500);
        state_->add_connection("vout", "vout", P->vout.port, media_kind::vlan, P->vout.mac, 1500);
        // "stray" is deliberately left unclaimed.
        make_worker(shared_pool());
    }

    void make_worker(rte_mempool* replica_pool, rte_mempool* headers = header_pool(),
                     rte_mempool* refs = payload_ref_pool()) {
        worker_ = std::make_unique<worker>(0, state_->table(), replica_pool, 0);
        worker_->set_chain_pools(headers, refs);
        worker_->set_counter_slots(vc_slots_.worker_array(0), party_slots_.worker_array(0));
        auto* queues = new rx_queue_list{};
        for (const ring_port* p :
             {&P->in, &P->out1, &P->out2, &P->small, &P->vin, &P->vout, &P->stray}) {
            queues->queues[queues->count++] = rx_queue_ref{p->port, 0};
        }
        worker_->publish_rx_queues(queues); // nothing was published before: nothing to free
    }

    void TearDown() override {
        for (const ring_port* p :
             {&P->in, &P->out1, &P->out2, &P->small, &P->vin, &P->vout, &P->stray}) {
            drain(*p);
        }
        worker_.reset();
        for (auto& [conn, v] : published_) {
            state_->unpublish_vc(*state_->find_connection(conn), v->key);
            switch_state::free_vc(v); // no worker runs: no grace period to wait for
        }
        state_.reset();
        // Every mbuf the test or the worker took is back: nothing leaked on any path.
        EXPECT_EQ(rte_mempool_avail_count(shared_pool()), pool_free_before_);
        EXPECT_EQ(rte_mempool_avail_count(header_pool()), headers_free_before_);
        EXPECT_EQ(rte_mempool_avail_count(payload_ref_pool()), refs_free_before_);
    }

    // Publishes a VC straight into the tables (the call manager's bookkeeping is tested
    // elsewhere; here only what the workers see matters).
    void call(const std::string&, const std::string& conn, uint32_t key,
              std::vector<party_config> parties, const traffic_contract& flow = {}) {
        vc* v = build_vc(conn, key, parties, flow);
        ASSERT_NE(v, nullptr);
        ASSERT_TRUE(state_->publish_vc(*state_->find_connection(conn), v));
        published_.push_back({conn, v});
    }

    // Publishes a new vc for a published key (as a new traffic contract does) and frees the one
    // it replaces (no worker runs between polls: nothing to wait for). Returns the new vc.
    vc* replace(const std::string& conn, uint32_t key, std::vector<party_config> parties) {
        auto it = std::find_if(published_.begin(), published_.end(), [&](const auto& p) {
            return p.first == conn && p.second->key == key;
        });
        if (it == published_.end()) {
            ADD_FAILURE() << "no vc published for " << key;
            return nullptr;
        }
        vc* v = build_vc(conn, key, parties);
        if (v == nullptr || !state_->publish_vc(*state_->find_connection(conn), v)) {
            ADD_FAILURE() << "cannot publish a new vc for " << key;
            switch_state::free_vc(v);
            return nullptr;
        }
        switch_state::free_vc(it->second);
        it->second = v;
        return v;
    }

    vc* build_vc(const std::string& conn, uint32_t key, const std::vector<party_config>& parties,
                 const traffic_contract& flow = {}) {
        const std::vector<party_spec> specs(parties.begin(), parties.end());
        const connection_state& in = *state_->find_connection(conn);
        table_error error;
        // Slot i + 1 for party i, slot 1 for the VC (one VC per test counts).
        std::vector<uint32_t> slots;
        for (size_t i = 0; i < specs.size(); ++i) {
            slots.push_back(uint32_t(i + 1));
        }
        party_set* set = state_->build_parties(in, specs, slots, &error);
        EXPECT_NE(set, nullptr) << error.why;
        vc* v = set != nullptr ? state_->new_vc(in, key, 1, set, flow, &error) : nullptr;
        EXPECT_NE(v, nullptr) << error.why;
        return v;
    }

    void poll() {
        worker_->poll_once();
        rcu_quiescent_state();
    }

    uint64_t drops(drop_reason r) const { return worker_->counters().drops[size_t(r)].read(); }
    uint64_t total_drops() const {
        uint64_t n = 0;
        for (size_t r = 0; r < drop_reason_count; ++r) {
            n += worker_->counters().drops[r].read();
        }
        return n;
    }

public:
    // The frame a party must receive for an ingress MPLS frame: new MACs, label swapped, TC
    // and S kept, TTL one less, every other byte the same.
    static std::vector<uint8_t> expected_mpls(std::vector<uint8_t> in, const mac_address& dst,
                                              const mac_address& src, uint32_t out_label) {
        wire::write_macs(in.data(), dst.data(), src.data());
        const wire::mpls_entry e{wire::load_be32(in.data() + 14)};
        wire::store_be32(in.data() + 14, wire::make_mpls_entry(out_label, e.tc(), e.bottom(),
                                                               uint8_t(e.ttl() - 1)));
        return in;
    }

protected:
    // n parties alternating between out1 and out2, party i with label 5000 + i and next hop nh(i).
    static std::vector<party_config> alternating_parties(int n) {
        std::vector<party_config> ps;
        for (int i = 0; i < n; ++i) {
            ps.push_back(party_on(fmt::format("p{}", i), i % 2 ? "out2" : "out1",
                                  uint32_t(5000 + i), nh(uint8_t(i))));
        }
        return ps;
    }

    // Every copy of `in` (sent to alternating_parties(n)) is its party's header chained to one
    // shared original, every segment of which holds one reference per party, and is byte-exact.
    // Frees the copies.
    void expect_shared_copies(std::vector<rte_mbuf*> out1, std::vector<rte_mbuf*> out2,
                              const std::vector<uint8_t>& in, int n) {
        ASSERT_EQ(out1.size() + out2.size(), size_t(n));
        rte_mbuf* shared = out1.at(0)->next;
        ASSERT_NE(shared, nullptr);
        for (const rte_mbuf* seg = shared; seg != nullptr; seg = seg->next) {
            EXPECT_TRUE(RTE_MBUF_DIRECT(seg));
            EXPECT_EQ(rte_mbuf_refcnt_read(seg), n);
        }
        size_t i1 = 0, i2 = 0;
        for (int i = 0; i < n; ++i) {
            const bool on2 = i % 2;
            rte_mbuf* m = on2 ? out2.at(i2++) : out1.at(i1++);
            EXPECT_EQ(m->next, shared) << "party " << i;
            EXPECT_EQ(m->nb_segs, 1 + shared->nb_segs) << "party " << i;
            EXPECT_EQ(m->data_len, replica_header_len);
            EXPECT_EQ(to_bytes(m),
                      expected_mpls(in, nh(uint8_t(i)), on2 ? P->out2.mac : P->out1.mac,
                                    uint32_t(5000 + i)))
                << "party " << i;
        }
        rte_pktmbuf_free_bulk(out1.data(), unsigned(out1.size()));
        rte_pktmbuf_free_bulk(out2.data(), unsigned(out2.size()));
    }

    ports* P = nullptr;
    std::unique_ptr<switch_state> state_;
    std::unique_ptr<worker> worker_;
    std::vector<std::pair<std::string, vc*>> published_;
    unsigned pool_free_before_ = 0, headers_free_before_ = 0, refs_free_before_ = 0;
    counter_slots vc_slots_{1, true, 4};
    counter_slots party_slots_{1, true, max_parties_per_call};
};

TEST_F(forwarding, point_to_point_rewrites_macs_label_and_ttl) {
    call("p2p", "in", 1000, {party_on("x", "out1", 2000, nh(1))});
    const auto in = mpls_frame({.label = 1000, .tc = 5, .ttl = 64, .seq = 7, .size = 128});
    inject(P->in, {in});
    poll();
    const auto out = drain(P->out1);
    ASSERT_EQ(out.size(), 1u);
    EXPECT_EQ(out[0], expected_mpls(in, nh(1), P->out1.mac, 2000));
    EXPECT_TRUE(drain(P->out2).empty());
    EXPECT_EQ(total_drops(), 0u);
    const auto& c = worker_->counters();
    EXPECT_EQ(c.port[P->in.port].rx_packets.read(), 1u);
    EXPECT_EQ(c.port[P->in.port].rx_bytes.read(), 128u);
    EXPECT_EQ(c.port[P->out1.port].tx_packets.read(), 1u);
    EXPECT_EQ(c.port[P->out1.port].tx_bytes.read(), 128u);
}

TEST_F(forwarding, ttl_two_leaves_with_one_and_bottom_of_stack_is_kept_clear) {
    call("p2p", "in", 77777, {party_on("x", "out1", 1048575, nh(1))});
    auto in = mpls_frame({.label = 77777, .tc = 7, .ttl = 2});
    wire::store_be32(in.data() + 14, wire::make_mpls_entry(77777, 7, false, 2)); // S = 0
    inject(P->in, {in});
    poll();
    const auto out = drain(P->out1);
    ASSERT_EQ(out.size(), 1u);
    const wire::mpls_entry e{wire::load_be32(out[0].data() + 14)};
    EXPECT_EQ(e.label(), 1048575u);
    EXPECT_EQ(e.tc(), 7);
    EXPECT_FALSE(e.bottom());
    EXPECT_EQ(e.ttl(), 1);
    EXPECT_EQ(out[0], expected_mpls(in, nh(1), P->out1.mac, 1048575));
}

// One frame in, one correctly rewritten copy per party out, at every fan-out and size.
class fan_out : public forwarding, public ::testing::WithParamInterface<std::tuple<int, size_t>> {};

TEST_P(fan_out, every_party_gets_exactly_one_byte_exact_copy) {
    const auto [parties, size] = GetParam();
    // Alternate egress ports: copies for one port and for another interleave.
    call("fan", "in", 3000, alternating_parties(parties));
    const auto in = mpls_frame({.label = 3000, .tc = 3, .ttl = 200, .seq = 42, .size = size});
    inject(P->in, {in});
    poll();
    auto out1 = drain(P->out1);
    auto out2 = drain(P->out2);
    ASSERT_EQ(out1.size() + out2.size(), size_t(parties));
    size_t i1 = 0, i2 = 0;
    for (int i = 0; i < parties; ++i) {
        const bool on2 = i % 2;
        const auto& got = on2 ? out2.at(i2++) : out1.at(i1++);
        EXPECT_EQ(got, expected_mpls(in, nh(uint8_t(i)), on2 ? P->out2.mac : P->out1.mac,
                                     uint32_t(5000 + i)))
            << "party " << i;
    }
    EXPECT_EQ(total_drops(), 0u);
}

INSTANTIATE_TEST_SUITE_P(sizes, fan_out,
                         ::testing::Combine(::testing::Values(1, 2, 4, 8, 16, 64, 256, 1024),
                                            ::testing::Values(size_t(64), copy_whole_max,
                                                              copy_whole_max + 1, size_t(1500))));

// Dequeues what a port transmitted as mbufs (the caller frees them).
std::vector<rte_mbuf*> take(const ring_port& p) {
    std::vector<rte_mbuf*> out;
    void* obj;
    while (rte_ring_dequeue(p.tx, &obj) == 0) {
        out.push_back(static_cast<rte_mbuf*>(obj));
    }
    return out;
}

TEST_F(forwarding, large_replicas_are_a_header_chained_to_the_shared_payload) {
    call("fan", "in", 3000,
         {party_on("a", "out1", 5000, nh(1)), party_on("b", "out1", 5001, nh(2)),
          party_on("c", "out2", 5002, nh(3))});
    const auto small = mpls_frame({.label = 3000, .seq = 1, .size = copy_whole_max});
    const auto large = mpls_frame({.label = 3000, .seq = 2, .size = 1500});
    inject(P->in, {small, large});
    poll();
    auto out1 = take(P->out1);
    auto out2 = take(P->out2);
    ASSERT_EQ(out1.size(), 4u);
    ASSERT_EQ(out2.size(), 2u);
    // Small: whole copies. Large: every party (the last one too) two segments, the first
    // exactly its rewritten header, the second the original itself, shared: its header cut
    // off, one reference per party.
    EXPECT_EQ(out1[0]->nb_segs, 1);
    EXPECT_EQ(out1[1]->nb_segs, 1);
    EXPECT_EQ(out2[0]->nb_segs, 1);
    rte_mbuf* shared = out2[1]->next;
    ASSERT_NE(shared, nullptr);
    for (rte_mbuf* m : {out1[2], out1[3], out2[1]}) {
        ASSERT_EQ(m->nb_segs, 2);
        EXPECT_EQ(m->data_len, replica_header_len);
        EXPECT_EQ(m->pkt_len, 1500u);
        EXPECT_EQ(m->next, shared);
    }
    EXPECT_TRUE(RTE_MBUF_DIRECT(shared));
    EXPECT_EQ(shared->nb_segs, 1);
    EXPECT_EQ(shared->data_len, 1500u - replica_header_len);
    EXPECT_EQ(rte_mbuf_refcnt_read(shared), 3);
    EXPECT_EQ(to_bytes(out1[2]), expected_mpls(large, nh(1), P->out1.mac, 5000));
    EXPECT_EQ(to_bytes(out1[3]), expected_mpls(large, nh(2), P->out1.mac, 5001));
    EXPECT_EQ(to_bytes(out2[1]), expected_mpls(large, nh(3), P->out2.mac, 5002));
    // Freed in any order, the payload goes back once, with the last reference.
    rte_pktmbuf_free(out2[1]);
    rte_pktmbuf_free_bulk(out1.data(), unsigned(out1.size()));
    rte_pktmbuf_free(out2[0]);
    // Per VC: two frames; per party: one copy of each frame, all bytes counted.
    EXPECT_EQ(vc_slots_.read(1).packets, 2u);
    EXPECT_EQ(vc_slots_.read(1).bytes, copy_whole_max + 1500u);
    for (uint32_t slot = 1; slot <= 3; ++slot) {
        EXPECT_EQ(party_slots_.read(slot).packets, 2u) << slot;
        EXPECT_EQ(party_slots_.read(slot).bytes, copy_whole_max + 1500u) << slot;
    }
}

TEST_F(forwarding, a_large_frame_to_1024_parties_shares_one_payload) {
    // Past one chunk of header buffers (copy_chunk): still one header per party over the
    // original, not a payload reference (a clone) of its own for each party past the chunk.
    call("fan", "in", 3000, alternating_parties(1024));
    const auto large = mpls_frame({.label = 3000, .tc = 2, .ttl = 9, .seq = 5, .size = 1500});
    inject(P->in, {large});
    poll();
    expect_shared_copies(take(P->out1), take(P->out2), large, 1024);
    EXPECT_EQ(total_drops(), 0u);
    EXPECT_EQ(rte_mempool_avail_count(payload_ref_pool()), refs_free_before_);
}

TEST_F(forwarding, a_multi_segment_frame_is_shared_by_every_party_byte_exact) {
    // A 9000-byte frame as a NIC's RX hands it over, in 2048-byte segments, and a small one in
    // two segments: to 8 and to 1024 parties, each segment shared, no byte copied but headers.
    call("eight", "in", 3000, alternating_parties(8));
    call("many", "in", 3001, alternating_parties(1024));
    for (const auto& [label, n] : {std::pair{3000u, 8}, std::pair{3001u, 1024}}) {
        for (const auto& [size, segment] :
             {std::pair{size_t(9000), uint16_t(2048)}, std::pair{size_t(200), uint16_t(100)}}) {
            const auto in = mpls_frame({.label = label, .ttl = 30, .seq = 1, .size = size});
            rte_mbuf* m = to_chain(in, shared_pool(), segment);
            ASSERT_EQ(m->nb_segs, (size + segment - 1) / segment);
            inject(P->in, m);
            poll();
            expect_shared_copies(take(P->out1), take(P->out2), in, n);
        }
    }
    EXPECT_EQ(total_drops(), 0u);
}

TEST_F(forwarding, a_multi_segment_frame_to_many_parties_is_made_one_segment_first) {
    // With linear buffers: from linear_copy_min_parties on, a 9000-byte frame in 2048-byte
    // segments is copied once into one buffer and that is shared (one reference per copy);
    // below it, and when no linear buffer is free, the segments are shared as they are. Every
    // copy is byte-exact either way, and every buffer goes back to its pool.
    worker_->set_linear_pool(linear_pool());
    const unsigned linear_free = rte_mempool_avail_count(linear_pool());
    const int many = int(linear_copy_min_parties);
    call("few", "in", 3000, alternating_parties(many - 1));
    call("many", "in", 3001, alternating_parties(many));
    call("all", "in", 3002, alternating_parties(1024));
    const auto send = [&](uint32_t label) {
        const auto in = mpls_frame({.label = label, .ttl = 30, .seq = 7, .size = 9000});
        inject(P->in, to_chain(in, shared_pool(), 2048));
        poll();
        return in;
    };
    for (const auto& [label, n] : {std::pair{3001u, many}, std::pair{3002u, 1024}}) {
        const auto in = send(label);
        auto out1 = take(P->out1), out2 = take(P->out2);
        ASSERT_FALSE(out1.empty());
        const rte_mbuf* shared = out1[0]->next;
        EXPECT_EQ(shared->pool, linear_pool()) << n << " parties";
        EXPECT_EQ(shared->nb_segs, 1) << n << " parties";
        EXPECT_EQ(shared->data_len, 9000 - replica_header_len);
        expect_shared_copies(out1, out2, in, n);
    }
    {
        const auto in = send(3000);
        auto out1 = take(P->out1), out2 = take(P->out2);
        ASSERT_FALSE(out1.empty());
        EXPECT_EQ(out1[0]->next->nb_segs, 5) << "below the threshold the segments are shared";
        expect_shared_copies(out1, out2, in, many - 1);
    }
    {
        std::vector<rte_mbuf*> held(linear_free);
        ASSERT_EQ(rte_pktmbuf_alloc_bulk(linear_pool(), held.data(), linear_free), 0);
        const auto in = send(3001);
        auto out1 = take(P->out1), out2 = take(P->out2);
        ASSERT_FALSE(out1.empty());
        EXPECT_EQ(out1[0]->next->nb_segs, 5) << "no linear buffer: the segments are shared";
        expect_shared_copies(out1, out2, in, many);
        rte_pktmbuf_free_bulk(held.data(), linear_free);
    }
    EXPECT_EQ(total_drops(), 0u);
    EXPECT_EQ(rte_mempool_avail_count(linear_pool()), linear_free);
}

TEST_F(forwarding, a_multi_segment_frame_to_one_party_is_forwarded_in_place) {
    call("p2p", "in", 1000, {party_on("x", "out1", 2000, nh(1))});
    const auto in = mpls_frame({.label = 1000, .seq = 3, .size = 9000});
    inject(P->in, to_chain(in, shared_pool(), 2048));
    poll();
    auto out = take(P->out1);
    ASSERT_EQ(out.size(), 1u);
    EXPECT_EQ(out[0]->nb_segs, 5);
    EXPECT_EQ(to_bytes(out[0]), expected_mpls(in, nh(1), P->out1.mac, 2000));
    rte_pktmbuf_free(out[0]);
}

TEST_F(forwarding, a_port_without_multi_segment_tx_gets_whole_copies) {
    // "flat" is out2's port seen as a connection that cannot send chains.
    state_ = std::make_unique<switch_state>();
    state_->add_connection("in", "in", P->in.port, media_kind::mpls, P->in.mac, 1500);
    state_->add_connection("out1", "out1", P->out1.port, media_kind::mpls, P->out1.mac, 1500);
    state_->add_connection("flat", "flat", P->out2.port, media_kind::mpls, P->out2.mac, 1500, 0,
                           false);
    make_worker(shared_pool());
    call("fan", "in", 3000,
         {party_on("a", "flat", 5000, nh(1)), party_on("b", "out1", 5001, nh(2)),
          party_on("c", "out1", 5002, nh(3))});
    const auto large = mpls_frame({.label = 3000, .size = 1500});
    inject(P->in, {large});
    poll();
    auto flat = take(P->out2);
    ASSERT_EQ(flat.size(), 1u);
    EXPECT_EQ(flat[0]->nb_segs, 1);
    EXPECT_EQ(to_bytes(flat[0]), expected_mpls(large, nh(1), P->out2.mac, 5000));
    rte_pktmbuf_free(flat[0]);
    const auto out1 = drain(P->out1);
    ASSERT_EQ(out1.size(), 2u);
    EXPECT_EQ(out1[0], expected_mpls(large, nh(2), P->out1.mac, 5001));
}

TEST_F(forwarding, header_or_reference_exhaustion_is_counted_per_vc_and_party_and_recovers) {
    rte_mempool* headers =
        rte_pktmbuf_pool_create("few_hdr", 3, 0, 0, RTE_PKTMBUF_HEADROOM + 64, 0);
    rte_mempool* refs = rte_pktmbuf_pool_create("few_ref", 3, 0, 0, 0, 0);
    ASSERT_NE(headers, nullptr);
    ASSERT_NE(refs, nullptr);
    make_worker(shared_pool(), headers, refs);
    call("fan", "in", 3000,
         {party_on("a", "out1", 5000, nh(1)), party_on("b", "out1", 5001, nh(2)),
          party_on("c", "out2", 5002, nh(3))});
    const auto large = mpls_frame({.label = 3000, .size = 1000});
    std::vector<rte_mbuf*> held(3);
    auto all_back = [&] {
        EXPECT_EQ(rte_mempool_avail_count(headers), 3u);
        EXPECT_EQ(rte_mempool_avail_count(refs), 3u);
    };
    // No header at all: the shared way needs one per party, so copies are made one by one;
    // both replicas fail, the last party still gets the original.
    ASSERT_EQ(rte_pktmbuf_alloc_bulk(headers, held.data(), 3), 0);
    inject(P->in, {large});
    poll();
    EXPECT_TRUE(drain(P->out1).empty());
    EXPECT_EQ(drain(P->out2).size(), 1u);
    rte_pktmbuf_free_bulk(held.data(), 3);
    all_back();
    // Two headers, no payload reference: one by one again (two headers are not three); each
    // replica gets a header, finds no reference, gives the header back and is lost.
    ASSERT_EQ(rte_pktmbuf_alloc_bulk(headers, held.data(), 1), 0);
    ASSERT_EQ(rte_pktmbuf_alloc_bulk(refs, held.data() + 1, 2), 0);
    rte_mbuf* last_ref = rte_pktmbuf_alloc(refs);
    ASSERT_NE(last_ref, nullptr);
    inject(P->in, {large});
    poll();
    EXPECT_TRUE(drain(P->out1).empty());
    EXPECT_EQ(drain(P->out2).size(), 1u);
    EXPECT_EQ(rte_mempool_avail_count(headers), 2u);
    rte_pktmbuf_free_bulk(held.data(), 3);
    rte_pktmbuf_free(last_ref);
    all_back();
    EXPECT_EQ(drops(drop_reason::no_mbuf), 4u);
    EXPECT_EQ(vc_slots_.read(1).drops, 4u);
    EXPECT_EQ(party_slots_.read(1).drops, 2u);
    EXPECT_EQ(party_slots_.read(2).drops, 2u);
    EXPECT_EQ(party_slots_.read(3).drops, 0u);
    // No payload reference but three headers: the shared way needs none; every party gets
    // its copy.
    ASSERT_EQ(rte_pktmbuf_alloc_bulk(refs, held.data(), 3), 0);
    inject(P->in, {large});
    poll();
    EXPECT_EQ(drain(P->out1).size(), 2u);
    EXPECT_EQ(drain(P->out2).size(), 1u);
    rte_pktmbuf_free_bulk(held.data(), 3);
    // Recovered: one by one (two headers) and the shared way (three) both deliver everything.
    ASSERT_EQ(rte_pktmbuf_alloc_bulk(headers, held.data(), 1), 0);
    inject(P->in, {large});
    poll();
    EXPECT_EQ(drain(P->out1).size(), 2u);
    EXPECT_EQ(drain(P->out2).size(), 1u);
    rte_pktmbuf_free(held[0]);
    inject(P->in, {large});
    poll();
    EXPECT_EQ(drain(P->out1).size(), 2u);
    EXPECT_EQ(drain(P->out2).size(), 1u);
    EXPECT_EQ(drops(drop_reason::no_mbuf), 4u);
    worker_.reset();
    all_back();
    rte_mempool_free(headers);
    rte_mempool_free(refs);
}

// Which party each copy on `out` was for, frame by frame (each party's out-label is 5000 + i),
// after checking it byte-exact against frame k of `in`.
std::vector<std::vector<uint32_t>> copy_order(const std::vector<std::vector<uint8_t>>& out,
                                              const std::vector<std::vector<uint8_t>>& in,
                                              uint32_t parties) {
    std::vector<std::vector<uint32_t>> order(in.size());
    for (size_t c = 0; c < out.size(); ++c) {
        const size_t k = c / parties;
        const uint32_t p = wire::mpls_label_of(wire::load_be32(out[c].data() + 14)) - 5000;
        EXPECT_LT(p, parties);
        if (k < in.size() && p < parties) {
            EXPECT_EQ(out[c], forwarding::expected_mpls(in[k], nh(uint8_t(p)),
                                                        test_ports().out1.mac, 5000 + p))
                << "copy " << c;
            order[k].push_back(p);
        }
    }
    return order;
}

TEST_F(forwarding, a_fair_call_rotates_the_order_of_copies_frame_by_frame) {
    // Four parties on one port: the port's TX ring shows the order the copies were made in.
    // Small (whole copies) and large frames (a shared payload) alike.
    std::vector<party_config> ps;
    for (uint32_t i = 0; i < 4; ++i) {
        ps.push_back(party_on(fmt::format("p{}", i), "out1", 5000 + i, nh(uint8_t(i))));
    }
    call("fair", "in", 3000, ps, {.fair = true});
    call("plain", "in", 3001, ps);
    for (size_t size : {size_t(64), size_t(1500)}) {
        std::vector<std::vector<uint8_t>> fair, plain;
        for (uint32_t k = 0; k < 8; ++k) {
            fair.push_back(mpls_frame({.label = 3000, .seq = k, .size = size}));
            plain.push_back(mpls_frame({.label = 3001, .seq = k, .size = size}));
        }
        inject(P->in, fair);
        poll();
        const auto rotated = copy_order(drain(P->out1), fair, 4);
        inject(P->in, plain);
        poll();
        const auto in_order = copy_order(drain(P->out1), plain, 4);
        std::vector<unsigned> first_of_fair(4), first_of_plain(4);
        for (size_t k = 0; k < 8; ++k) {
            ASSERT_EQ(rotated[k].size(), 4u) << size << " B frame " << k;
            ASSERT_EQ(in_order[k].size(), 4u) << size << " B frame " << k;
            // Every party once per frame, in party order from the first, wrapping round.
            for (size_t c = 0; c < 4; ++c) {
                EXPECT_EQ(rotated[k][c], (rotated[k][0] + c) % 4) << size << " B frame " << k;
                EXPECT_EQ(in_order[k][c], c) << size << " B frame " << k;
            }
            // From one frame to the next, the first party moves on by one.
            if (k > 0) {
                EXPECT_EQ(rotated[k][0], (rotated[k - 1][0] + 1) % 4) << size << " B frame " << k;
            }
            ++first_of_fair[rotated[k][0]];
            ++first_of_plain[in_order[k][0]];
        }
        EXPECT_EQ(first_of_fair, (std::vector<unsigned>{2, 2, 2, 2})) << size;
        EXPECT_EQ(first_of_plain, (std::vector<unsigned>{8, 0, 0, 0})) << size;
    }
    EXPECT_EQ(total_drops(), 0u);
}

// The order in which ports take copies from the worker (rte_eth_tx_burst), frame by frame:
// what a receiver on each port measures, whatever order the copies were made in.
struct tx_order_log {
    std::vector<uint16_t> ports; // one entry per burst a port took
    std::vector<const rte_eth_rxtx_callback*> callbacks;
    std::vector<uint16_t> watched;

    static uint16_t record(uint16_t port, uint16_t, rte_mbuf**, uint16_t n, void* self) {
        if (n != 0) {
            static_cast<tx_order_log*>(self)->ports.push_back(port);
        }
        return n;
    }
    void watch(uint16_t port) {
        callbacks.push_back(rte_eth_add_tx_callback(port, 0, record, this));
        watched.push_back(port);
    }
    ~tx_order_log() {
        for (size_t i = 0; i < callbacks.size(); ++i) {
            rte_eth_remove_tx_callback(watched[i], 0, callbacks[i]);
        }
        rte_delay_ms(1); // no burst runs: the callbacks' memory may go
    }
};

TEST_F(forwarding, a_fair_call_rotates_which_port_takes_its_copy_first) {
    // One party on each of three ports, one frame per pass: with fair on, each port is the
    // first to take its copy in a third of the frames; without, always the lowest port.
    const std::vector<party_config> ps = {party_on("a", "out1", 5000, nh(0)),
                                          party_on("b", "out2", 5001, nh(1)),
                                          party_on("c", "small", 5002, nh(2))};
    call("fair", "in", 3000, ps, {.fair = true});
    call("plain", "in", 3001, ps);
    for (uint32_t label : {3000u, 3001u}) {
        tx_order_log log;
        for (uint16_t port : {P->out1.port, P->out2.port, P->small.port}) {
            log.watch(port);
        }
        constexpr uint32_t frames = 30;
        std::map<uint16_t, unsigned> first;
        std::map<uint16_t, unsigned> rank_sum;
        for (uint32_t k = 0; k < frames; ++k) {
            log.ports.clear();
            inject(P->in, {mpls_frame({.label = label, .seq = k})});
            poll();
            ASSERT_EQ(log.ports.size(), 3u) << "frame " << k;
            for (const ring_port* p : {&P->out1, &P->out2, &P->small}) {
                ASSERT_EQ(drain(*p).size(), 1u) << "frame " << k;
            }
            ++first[log.ports[0]];
            for (unsigned r = 0; r < 3; ++r) {
                rank_sum[log.ports[r]] += r;
            }
        }
        for (const ring_port* p : {&P->out1, &P->out2, &P->small}) {
            if (label == 3000) {
                EXPECT_EQ(first[p->port], frames / 3) << "port " << p->port;
                EXPECT_EQ(rank_sum[p->port], frames) << "port " << p->port; // mean rank 1
            }
        }
        if (label == 3001) {
            EXPECT_EQ(first[std::min({P->out1.port, P->out2.port, P->small.port})], frames);
        }
    }
    EXPECT_EQ(total_drops(), 0u);
}

TEST_F(forwarding, a_fair_call_of_chunks_rotates_across_them_byte_exact) {
    // 130 parties: a chunked array (64 + 64 + 2), whose copies wrap round its chunks.
    constexpr uint32_t n = 130;
    static_assert(n > 2 * party_set::chunk_parties);
    std::vector<party_config> ps;
    for (uint32_t i = 0; i < n; ++i) {
        ps.push_back(party_on(fmt::format("p{}", i), "out1", 5000 + i, nh(uint8_t(i))));
    }
    call("fair", "in", 3000, ps, {.fair = true});
    for (size_t size : {size_t(64), size_t(1500)}) {
        std::vector<std::vector<uint8_t>> frames;
        for (uint32_t k = 0; k < 3; ++k) {
            frames.push_back(mpls_frame({.label = 3000, .seq = k, .size = size}));
        }
        inject(P->in, frames);
        poll();
        const auto rotated = copy_order(drain(P->out1), frames, n);
        for (size_t k = 0; k < frames.size(); ++k) {
            ASSERT_EQ(rotated[k].size(), n) << size << " B frame " << k;
            for (size_t c = 0; c < n; ++c) {
                ASSERT_EQ(rotated[k][c], (rotated[k][0] + c) % n) << size << " B frame " << k;
            }
            if (k > 0) {
                EXPECT_EQ(rotated[k][0], (rotated[k - 1][0] + 1) % n) << size << " B frame " << k;
            }
        }
    }
    EXPECT_EQ(total_drops(), 0u);
}

TEST_F(forwarding, headers_running_out_within_a_large_call_lose_only_the_rest) {
    // Headers for one chunk and a few more: the first copy_chunk parties get theirs, the rest
    // are lost and counted, their references given back (the original returns to its pool once
    // the copies sent are freed: TearDown checks every pool).
    rte_mempool* headers =
        rte_pktmbuf_pool_create("mid_hdr", copy_chunk + 6, 0, 0, RTE_PKTMBUF_HEADROOM + 64, 0);
    ASSERT_NE(headers, nullptr);
    make_worker(shared_pool(), headers, payload_ref_pool());
    call("fan", "in", 3000, alternating_parties(100));
    const auto large = mpls_frame({.label = 3000, .seq = 4, .size = 1500});
    inject(P->in, {large});
    poll();
    auto out1 = take(P->out1);
    auto out2 = take(P->out2);
    ASSERT_EQ(out1.size() + out2.size(), size_t(copy_chunk));
    ASSERT_EQ(out1.size(), copy_chunk / 2);
    for (size_t i = 0; i < out1.size(); ++i) {
        EXPECT_EQ(to_bytes(out1[i]),
                  expected_mpls(large, nh(uint8_t(2 * i)), P->out1.mac, uint32_t(5000 + 2 * i)));
        EXPECT_EQ(to_bytes(out2[i]), expected_mpls(large, nh(uint8_t(2 * i + 1)), P->out2.mac,
                                                   uint32_t(5000 + 2 * i + 1)));
    }
    EXPECT_EQ(rte_mbuf_refcnt_read(out1[0]->next), copy_chunk);
    EXPECT_EQ(drops(drop_reason::no_mbuf), 100u - copy_chunk);
    EXPECT_EQ(vc_slots_.read(1).drops, 100u - copy_chunk);
    EXPECT_EQ(party_slots_.read(copy_chunk + 1).drops, 1u); // party copy_chunk's slot
    EXPECT_EQ(party_slots_.read(copy_chunk).drops, 0u);
    rte_pktmbuf_free_bulk(out1.data(), unsigned(out1.size()));
    rte_pktmbuf_free_bulk(out2.data(), unsigned(out2.size()));
    EXPECT_EQ(rte_mempool_avail_count(headers), copy_chunk + 6);
    worker_.reset();
    rte_mempool_free(headers);
}

TEST_F(forwarding, a_sampling_worker_counts_one_burst_in_1024_frames_per_ingress_port) {
    worker_->enable_latency_samples();
    call("p2p", "in", 1000, {party_on("x", "out1", 2000, nh(1))});
    std::vector<std::vector<uint8_t>> frames;
    for (uint32_t s = 0; s < 2 * latency_sample_every; ++s) {
        frames.push_back(mpls_frame({.label = 1000, .seq = s}));
    }
    inject(P->in, frames);
    for (uint32_t i = 0; i < 2 * latency_sample_every / rx_burst_size; ++i) {
        poll();
    }
    EXPECT_EQ(drain(P->out1).size(), frames.size());
    // The first burst, and then one every 1024 frames: bursts 1, 32 and 64 of 32 frames.
    const latency_samples& l = *worker_->latency();
    uint64_t in = 0, elsewhere = 0;
    for (uint16_t port = 0; port < RTE_MAX_ETHPORTS; ++port) {
        for (const counter& b : l.ports[port].buckets) {
            (port == P->in.port ? in : elsewhere) += b.read();
        }
    }
    EXPECT_EQ(in, 3u);
    EXPECT_EQ(elsewhere, 0u);
    EXPECT_GT(l.ports[P->in.port].sum_cycles.read(), 0u);
}

TEST_F(forwarding, a_burst_keeps_order_per_party) {
    call("feed", "in", 1000,
         {party_on("a", "out1", 2001, nh(1)), party_on("b", "out2", 2002, nh(2))});
    std::vector<std::vector<uint8_t>> frames;
    for (uint32_t s = 0; s < 100; ++s) {
        frames.push_back(mpls_frame({.label = 1000, .seq = s}));
    }
    inject(P->in, frames);
    poll();
    poll();
    poll();
    poll();
    for (const ring_port* p : {&P->out1, &P->out2}) {
        const auto out = drain(*p);
        ASSERT_EQ(out.size(), 100u);
        for (uint32_t s = 0; s < 100; ++s) {
            EXPECT_EQ(wire::load_be32(out[s].data() + 18), s);
        }
    }
}

struct bad_frame {
    const char* name;
    std::vector<uint8_t> bytes;
    drop_reason reason;
};

TEST_F(forwarding, malformed_and_unknown_frames_are_dropped_and_counted_by_reason) {
    call("p2p", "in", 1000, {party_on("x", "out1", 2000, nh(1))});
    auto ipv4 = mpls_frame({.label = 1000});
    wire::store_be16(ipv4.data() + 12, 0x0800);
    auto short_frame = mpls_frame({.label = 1000});
    short_frame.resize(17); // the label stack entry is cut
    const std::vector<bad_frame> cases = {
        {"unknown label", mpls_frame({.label = 1001}), drop_reason::unknown_key},
        {"reserved label 3", mpls_frame({.label = 3}), drop_reason::reserved_key},
        {"GAL label 13", mpls_frame({.label = 13}), drop_reason::reserved_key},
        {"IPv4", ipv4, drop_reason::wrong_ethertype},
        {"truncated", short_frame, drop_reason::truncated},
        {"TTL 1", mpls_frame({.label = 1000, .ttl = 1}), drop_reason::ttl_expired},
        {"TTL 0", mpls_frame({.label = 1000, .ttl = 0}), drop_reason::ttl_expired},
        {"VLAN on MPLS", vlan_frame(nh(9), nh(8), 10, 0, 64), drop_reason::wrong_ethertype},
    };
    for (const auto& c : cases) {
        const uint64_t before = drops(c.reason);
        inject(P->in, {c.bytes});
        poll();
        EXPECT_EQ(drops(c.reason), before + 1) << c.name;
        EXPECT_TRUE(drain(P->out1).empty()) << c.name;
    }
    EXPECT_EQ(total_drops(), cases.size());
}

// From large_table_min_vcs VCs on a connection the worker requests a burst's table lines
// before classifying it (worker::start_lookahead), in stages that differ with counters on and
// off; what it forwards and counts must not change: every label of a large table, one-party
// VCs (party array in the vc's line) mixed with two-party ones (an array of its own), in bursts
// mixed with unknown labels and malformed frames, each port's copies in order. (Passes here
// outlast the 2 µs quiescent bound, so the worker announces quiescent states within bursts:
// the vcs looked up ahead are dropped mid-burst and the rest looked up again — handing on a
// wrong vc after that point fails this test.) Some VCs were replaced, as a new traffic contract
// replaces them: once while the old vc was in the slot (the new one lives in a block of its
// own: a second line for the worker), and some once more after that (back in the slot).
class large_table : public forwarding {
protected:
    void forwards_every_frame_as_a_small_table_does(bool counted) {
        if (!counted) {
            worker_->set_counter_slots(nullptr, nullptr);
        }
        const uint32_t vcs = large_table_min_vcs + 100;
        auto multipoint = [](uint32_t k) { return k % 7 == 3; };
        auto parties = [&](uint32_t k, uint32_t out1) {
            std::vector<party_config> ps{party_on("x", "out1", out1, nh(1))};
            if (multipoint(k)) {
                ps.push_back(party_on("y", "out2", 100000 + k, nh(2)));
            }
            return ps;
        };
        for (uint32_t k = 0; k < vcs; ++k) {
            call("big", "in", 16 + k, parties(k, 1048575 - k));
        }
        // The out-label of the first party, after the replacements below.
        auto out_label = [](uint32_t k) {
            return k % 10 == 1 ? 600000 + k : k % 5 == 1 ? 700000 + k : 1048575 - k;
        };
        for (uint32_t k = 1; k < vcs; k += 5) {
            const vc* v = replace("in", 16 + k, parties(k, 700000 + k));
            ASSERT_NE(v, nullptr);
            EXPECT_FALSE(v->at_home) << k; // the vc it replaced was in the slot
        }
        for (uint32_t k = 1; k < vcs; k += 10) {
            const vc* v = replace("in", 16 + k, parties(k, out_label(k)));
            ASSERT_NE(v, nullptr);
            EXPECT_TRUE(v->at_home) << k; // the slot's vc has been freed
        }
        ASSERT_GE(state_->find_connection("in")->entry->keys.size(), large_table_min_vcs);
        std::vector<std::vector<uint8_t>> frames, expected1, expected2;
        uint64_t expected_unknown = 0, expected_truncated = 0, expected_ethertype = 0,
                 expected_ttl = 0;
        uint32_t x = 12345;
        for (int i = 0; i < 3000; ++i) {
            x = x * 1103515245u + 12345u;
            const uint32_t pick = (x >> 8) % (vcs + 200); // some beyond the table: unknown
            if (i % 97 == 5) {
                auto cut = mpls_frame({.label = 16});
                cut.resize(16);
                frames.push_back(cut);
                ++expected_truncated;
                continue;
            }
            auto f = mpls_frame({.label = 16 + pick, .seq = uint32_t(i)});
            if (i % 89 == 7 && pick < vcs) {
                // A known VC's label behind another ethertype (IPv4): not MPLS, dropped.
                f[12] = 0x08;
                f[13] = 0x00;
                frames.push_back(f);
                ++expected_ethertype;
                continue;
            }
            if (i % 83 == 11 && pick < vcs) {
                frames.push_back(mpls_frame({.label = 16 + pick, .ttl = 1, .seq = uint32_t(i)}));
                ++expected_ttl;
                continue;
            }
            frames.push_back(f);
            if (pick >= vcs) {
                ++expected_unknown;
                continue;
            }
            expected1.push_back(expected_mpls(f, nh(1), P->out1.mac, out_label(pick)));
            if (multipoint(pick)) {
                expected2.push_back(expected_mpls(f, nh(2), P->out2.mac, 100000 + pick));
            }
        }
        ASSERT_GT(expected2.size(), 100u);
        std::vector<std::vector<uint8_t>> out1, out2;
        for (size_t i = 0; i < frames.size(); i += 256) {
            inject(P->in, {frames.begin() + long(i),
                           frames.begin() + long(std::min(frames.size(), i + 256))});
            for (int k = 0; k < 16; ++k) {
                poll();
            }
            for (auto& f : drain(P->out1)) {
                out1.push_back(std::move(f));
            }
            for (auto& f : drain(P->out2)) {
                out2.push_back(std::move(f));
            }
        }
        ASSERT_EQ(out1.size(), expected1.size());
        for (size_t i = 0; i < out1.size(); ++i) {
            ASSERT_EQ(out1[i], expected1[i]) << "out1 frame " << i;
        }
        ASSERT_EQ(out2.size(), expected2.size());
        for (size_t i = 0; i < out2.size(); ++i) {
            ASSERT_EQ(out2[i], expected2[i]) << "out2 frame " << i;
        }
        EXPECT_EQ(drops(drop_reason::unknown_key), expected_unknown);
        EXPECT_EQ(drops(drop_reason::truncated), expected_truncated);
        EXPECT_EQ(drops(drop_reason::wrong_ethertype), expected_ethertype);
        EXPECT_EQ(drops(drop_reason::ttl_expired), expected_ttl);
        ASSERT_GT(expected_ethertype, 10u);
        ASSERT_GT(expected_ttl, 10u);
        EXPECT_EQ(total_drops(),
                  expected_unknown + expected_truncated + expected_ethertype + expected_ttl);
        // Every VC counts in slot 1 (a frame whose TTL expired too, as a drop), every first
        // party in slot 1, every second in slot 2.
        const uint64_t counted_vcs = counted ? expected1.size() : 0;
        EXPECT_EQ(vc_slots_.read(1).packets, counted ? expected1.size() + expected_ttl : 0);
        EXPECT_EQ(vc_slots_.read(1).drops, counted ? expected_ttl : 0);
        EXPECT_EQ(party_slots_.read(1).packets, counted_vcs);
        EXPECT_EQ(party_slots_.read(2).packets, counted ? expected2.size() : 0);
    }
};

TEST_F(large_table, forwards_every_frame_as_a_small_table_does_with_counters) {
    forwards_every_frame_as_a_small_table_does(true);
}

TEST_F(large_table, forwards_every_frame_as_a_small_table_does_without_counters) {
    forwards_every_frame_as_a_small_table_does(false);
}

TEST_F(forwarding, frames_on_an_unclaimed_port_are_dropped) {
    inject(P->stray, {mpls_frame({.label = 1000}), mpls_frame({.label = 1000})});
    poll();
    EXPECT_EQ(drops(drop_reason::no_connection), 2u);
    EXPECT_EQ(worker_->counters().port[P->stray.port].rx_packets.read(), 2u);
}

TEST_F(forwarding, vlan_rewrites_vid_and_macs_and_keeps_pcp_and_dei) {
    call("v", "vin", 100, {party_on("x", "vout", 200, nh(1)), party_on("y", "vout", 4094, nh(2))});
    const uint16_t tci = uint16_t(5 << 13 | 1 << 12 | 100); // PCP 5, DEI 1, VID 100
    const auto in = vlan_frame(nh(9), nh(8), tci, 1, 80);
    inject(P->vin, {in});
    poll();
    const auto out = drain(P->vout);
    ASSERT_EQ(out.size(), 2u);
    for (size_t i = 0; i < 2; ++i) {
        auto want = in;
        wire::write_macs(want.data(), nh(uint8_t(i + 1)).data(), P->vout.mac.data());
        wire::store_be16(want.data() + 14, uint16_t(5 << 13 | 1 << 12 | (i == 0 ? 200 : 4094)));
        EXPECT_EQ(out[i], want) << "party " << i;
    }
    for (uint16_t vid : {0, 4095}) {
        inject(P->vin, {vlan_frame(nh(9), nh(8), vid, 1, 64)});
    }
    inject(P->vin, {vlan_frame(nh(9), nh(8), 101, 1, 64), mpls_frame({.label = 100})});
    poll();
    EXPECT_EQ(drops(drop_reason::reserved_key), 2u);
    EXPECT_EQ(drops(drop_reason::unknown_key), 1u);
    EXPECT_EQ(drops(drop_reason::wrong_ethertype), 1u);
    EXPECT_TRUE(drain(P->vout).empty());
}

TEST_F(forwarding, a_full_tx_queue_drops_and_counts_instead_of_waiting) {
    call("p2p", "in", 1000, {party_on("x", "small", 2000, nh(1))});
    std::vector<std::vector<uint8_t>> frames(32, mpls_frame({.label = 1000}));
    inject(P->in, frames);
    poll();
    const auto out = drain(P->small);
    // The ring holds 15 (a ring of 16 keeps one slot free).
    EXPECT_EQ(out.size(), 15u);
    EXPECT_EQ(drops(drop_reason::tx_full), 17u);
    EXPECT_EQ(worker_->counters().port[P->small.port].tx_packets.read(), 15u);
}

TEST_F(forwarding, replica_pool_exhaustion_is_counted_and_recovers) {
    // The pool the test empties serves both ways a small frame's copy is taken (the line pool
    // first, the replica pool when that has none): copies fail, the last party still gets the
    // original.
    rte_mempool* tiny = rte_pktmbuf_pool_create("tiny", 7, 0, 0, RTE_MBUF_DEFAULT_BUF_SIZE, 0);
    ASSERT_NE(tiny, nullptr);
    make_worker(tiny, tiny);
    call("fan", "in", 1000,
         {party_on("a", "out1", 2001, nh(1)), party_on("b", "out1", 2002, nh(2)),
          party_on("c", "out2", 2003, nh(3))});
    std::vector<rte_mbuf*> held(7);
    ASSERT_EQ(rte_pktmbuf_alloc_bulk(tiny, held.data(), 7), 0);
    inject(P->in, {mpls_frame({.label = 1000})});
    poll();
    EXPECT_EQ(drops(drop_reason::no_mbuf), 2u);
    EXPECT_TRUE(drain(P->out1).empty());
    EXPECT_EQ(drain(P->out2).size(), 1u);
    rte_pktmbuf_free_bulk(held.data(), 7);
    inject(P->in, {mpls_frame({.label = 1000})});
    poll();
    EXPECT_EQ(drain(P->out1).size(), 2u);
    EXPECT_EQ(drain(P->out2).size(), 1u);
    EXPECT_EQ(drops(drop_reason::no_mbuf), 2u);
    worker_.reset();
    EXPECT_EQ(rte_mempool_avail_count(tiny), 7u);
    rte_mempool_free(tiny);
}

TEST_F(forwarding, small_copies_take_replica_buffers_when_the_header_pool_is_empty) {
    // Copies of a frame of one line come from the header pool's small buffers; with none
    // left there, each is taken from the replica pool instead, byte-exact, and nothing is lost.
    rte_mempool* headers =
        rte_pktmbuf_pool_create("empty_hdr", 3, 0, 0, RTE_PKTMBUF_HEADROOM + 64, 0);
    ASSERT_NE(headers, nullptr);
    make_worker(shared_pool(), headers, payload_ref_pool());
    call("fan", "in", 1000,
         {party_on("a", "out1", 2001, nh(1)), party_on("b", "out1", 2002, nh(2)),
          party_on("c", "out2", 2003, nh(3))});
    const auto in = mpls_frame({.label = 1000, .seq = 9, .size = 60});
    for (bool empty : {false, true}) {
        std::vector<rte_mbuf*> held(3);
        if (empty) {
            ASSERT_EQ(rte_pktmbuf_alloc_bulk(headers, held.data(), 3), 0);
        }
        inject(P->in, {in});
        poll();
        // The two copies on out1's ring hold two of the header pool's three buffers.
        EXPECT_EQ(rte_mempool_avail_count(headers), empty ? 0u : 1u);
        const auto out1 = drain(P->out1);
        ASSERT_EQ(out1.size(), 2u) << (empty ? "header pool empty" : "header pool full");
        EXPECT_EQ(out1[0], expected_mpls(in, nh(1), P->out1.mac, 2001));
        EXPECT_EQ(out1[1], expected_mpls(in, nh(2), P->out1.mac, 2002));
        const auto out2 = drain(P->out2);
        ASSERT_EQ(out2.size(), 1u);
        EXPECT_EQ(out2[0], expected_mpls(in, nh(3), P->out2.mac, 2003));
        EXPECT_EQ(drops(drop_reason::no_mbuf), 0u);
        if (empty) {
            rte_pktmbuf_free_bulk(held.data(), 3);
        }
    }
    worker_.reset();
    EXPECT_EQ(rte_mempool_avail_count(headers), 3u);
    rte_mempool_free(headers);
}

struct launch {
    worker* w;
    std::atomic<bool>* stop;
};

TEST_F(forwarding, the_lcore_loop_forwards_until_stopped) {
    call("feed", "in", 1000,
         {party_on("a", "out1", 2001, nh(1)), party_on("b", "out2", 2002, nh(2))});
    std::atomic<bool> stop{false};
    launch args{worker_.get(), &stop};
    ASSERT_EQ(rte_eal_remote_launch(
                  [](void* a) {
                      auto* l = static_cast<launch*>(a);
                      l->w->run(*l->stop);
                      return 0;
                  },
                  &args, 1),
              0);
    // The test thread is an RCU reader too; it must not block grace periods while it waits.
    rcu_thread_offline();
    std::vector<std::vector<uint8_t>> frames;
    for (uint32_t s = 0; s < 2000; ++s) {
        frames.push_back(mpls_frame({.label = 1000, .seq = s}));
    }
    std::vector<std::vector<uint8_t>> got1, got2;
    for (size_t at = 0; at < frames.size(); at += 500) {
        inject(P->in, {frames.begin() + long(at), frames.begin() + long(at + 500)});
        for (int spin = 0; spin < 2000 && (got1.size() < at + 500 || got2.size() < at + 500);
             ++spin) {
            for (auto& f : drain(P->out1)) {
                got1.push_back(std::move(f));
            }
            for (auto& f : drain(P->out2)) {
                got2.push_back(std::move(f));
            }
            rte_delay_us_sleep(100);
        }
    }
    stop.store(true);
    EXPECT_EQ(rte_eal_wait_lcore(1), 0);
    rcu_thread_online();
    ASSERT_EQ(got1.size(), 2000u);
    ASSERT_EQ(got2.size(), 2000u);
    for (uint32_t s = 0; s < 2000; ++s) {
        ASSERT_EQ(wire::load_be32(got1[s].data() + 18), s);
        ASSERT_EQ(wire::load_be32(got2[s].data() + 18), s);
    }
    EXPECT_GT(worker_->counters().loops.read(), 0u);
    EXPECT_GT(worker_->counters().busy_cycles.read(), 0u);
}

} // namespace
} // namespace vcplane::test

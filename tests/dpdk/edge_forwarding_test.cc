// Edge actions through a real worker on ring-backed ethdev ports: a port-based VC fanned out
// to an MPLS, a VLAN and an untagged party at once, a pseudowire's egress handing back the
// inner frames, large multi-segment frames, mixed swap and pop, copies refused by reason,
// and every mbuf back in its pool. The expected frames are written out here by hand.

#include <gtest/gtest.h>
#include <memory>
#include <rte_mempool.h>

#include "control/switch_state.hh"
#include "dataplane/wire.hh"
#include "dataplane/worker.hh"
#include "support/frame_bytes.hh"
#include "tests/dpdk/harness.hh"

namespace vcplane::test {
namespace {

struct ports {
    ring_port feed, core, access, host, pw;
};

ports& test_ports() {
    static std::unique_ptr<ports> p;
    if (!p) {
        start_eal();
        rcu_register_thread();
        p = std::make_unique<ports>(ports{make_ring_port("feed"), make_ring_port("core"),
                                          make_ring_port("access"), make_ring_port("host"),
                                          make_ring_port("pw")});
    }
    return *p;
}

mac_address nh(uint8_t i) {
    return {0x02, 0xaa, 0, 0, 0, i};
}
bytes mac_bytes(const mac_address& m) {
    return bytes(m.begin(), m.end());
}
bytes tail(const bytes& b, size_t from) {
    return bytes(b.begin() + long(from), b.end());
}

// An untagged IPv4/UDP frame of `size` bytes, TOS 0x20 (precedence 1), TTL 64, numbered seq.
bytes ipv4_frame(size_t size, uint32_t seq) {
    bytes f = cat({bytes{0x02, 0, 0, 0, 0, 0xfe, 0x02, 0, 0, 0, 0, 0x01}, be16(0x0800)});
    bytes ip = {0x45,
                0x20,
                uint8_t((size - 14) >> 8),
                uint8_t(size - 14),
                0,
                0,
                0,
                0,
                64,
                17,
                0,
                0,
                192,
                0,
                2,
                1,
                239,
                1,
                1,
                1};
    const uint16_t sum = test::ipv4_checksum(ip.data());
    ip[10] = uint8_t(sum >> 8);
    ip[11] = uint8_t(sum);
    f = cat({f, ip, be32(seq)});
    for (size_t i = f.size(); i < size; ++i) {
        f.push_back(uint8_t(i * 7));
    }
    return f;
}

class edge_forwarding : public ::testing::Test {
protected:
    void SetUp() override {
        P = &test_ports();
        pool_free_before_ = rte_mempool_avail_count(shared_pool());
        state_ = std::make_unique<switch_state>();
        state_->add_connection("feed", "feed", P->feed.port, media_kind::port, P->feed.mac, 9600);
        state_->add_connection("core", "core", P->core.port, media_kind::mpls, P->core.mac, 9600);
        state_->add_connection("access", "access", P->access.port, media_kind::vlan, P->access.mac,
                               9600);
        state_->add_connection("host", "host", P->host.port, media_kind::port, P->host.mac, 9600);
        state_->add_connection("pw", "pw", P->pw.port, media_kind::mpls, P->pw.mac, 9600);
        worker_ = std::make_unique<worker>(0, state_->table(), shared_pool(), 0);
        auto* queues = new rx_queue_list{};
        for (const ring_port* p : all()) {
            queues->queues[queues->count++] = rx_queue_ref{p->port, 0};
        }
        worker_->publish_rx_queues(queues);
    }

    void TearDown() override {
        for (const ring_port* p : all()) {
            drain(*p);
        }
        worker_.reset();
        for (auto& [conn, v] : published_) {
            state_->unpublish_vc(*state_->find_connection(conn), v->key);
            switch_state::free_vc(v);
        }
        state_.reset();
        EXPECT_EQ(rte_mempool_avail_count(shared_pool()), pool_free_before_);
    }

    std::vector<const ring_port*> all() const {
        return {&P->feed, &P->core, &P->access, &P->host, &P->pw};
    }

    void call(const std::string& conn, uint32_t key, std::vector<party_spec> parties,
              const call_encapsulation& encap = {}) {
        const connection_state& in = *state_->find_connection(conn);
        std::vector<uint32_t> slots(parties.size(), counter_slots::remainder);
        table_error error;
        party_set* set = state_->build_parties(in, parties, slots, &error, encap);
        ASSERT_NE(set, nullptr) << error.why;
        vc* v = state_->new_vc(in, key, 0, set, {}, &error);
        ASSERT_NE(v, nullptr) << error.why;
        ASSERT_TRUE(state_->publish_vc(in, v));
        published_.push_back({conn, v});
    }

    void poll() {
        worker_->poll_once();
        rcu_quiescent_state();
    }
    uint64_t drops(drop_reason r) const { return worker_->counters().drops[size_t(r)].read(); }

    ports* P = nullptr;
    std::unique_ptr<switch_state> state_;
    std::unique_ptr<worker> worker_;
    std::vector<std::pair<std::string, vc*>> published_;
    unsigned pool_free_before_ = 0;
};

// What each party of the port-based call below must receive for frame f.
bytes pushed(const bytes& f, const mac_address& src, uint32_t label) {
    return cat({mac_bytes(nh(1)), mac_bytes(src), be16(0x8847),
                be32(wire::make_mpls_entry(label, 1, true, 63)), tail(f, 14)});
}
bytes tagged(const bytes& f, const mac_address& src, uint16_t vid) {
    return cat({mac_bytes(nh(2)), mac_bytes(src), be16(0x8100), be16(uint16_t(1 << 13 | vid)),
                tail(f, 12)});
}
bytes forwarded(const bytes& f, const mac_address& src) {
    return cat({mac_bytes(nh(3)), mac_bytes(src), tail(f, 12)});
}

TEST_F(edge_forwarding, a_port_vc_fans_out_to_mpls_vlan_and_untagged_at_once) {
    call("feed", port_key,
         {{"lsp", "core", 100, nh(1)}, {"vlan", "access", 20, nh(2)}, {"plain", "host", 0, nh(3)}});
    std::vector<bytes> sent;
    for (uint32_t seq = 0; seq < 16; ++seq) {
        // Every size class: whole copies, one cache line, and beyond copy_whole_max.
        sent.push_back(ipv4_frame(seq % 2 ? 60 : 1400, seq));
    }
    inject(P->feed, sent);
    poll();
    const auto lsp = drain(P->core), vlan = drain(P->access), plain = drain(P->host);
    ASSERT_EQ(lsp.size(), sent.size());
    ASSERT_EQ(vlan.size(), sent.size());
    ASSERT_EQ(plain.size(), sent.size());
    for (size_t i = 0; i < sent.size(); ++i) {
        EXPECT_EQ(lsp[i], pushed(sent[i], P->core.mac, 100)) << i;
        EXPECT_EQ(vlan[i], tagged(sent[i], P->access.mac, 20)) << i;
        EXPECT_EQ(plain[i], forwarded(sent[i], P->host.mac)) << i;
    }
    // Any frame is the port VC's: a non-IP one is forwarded and tagged, its push refused.
    const bytes arp = cat({bytes(12, 0x02), be16(0x0806), bytes(46, 0x11)});
    inject(P->feed, {arp});
    poll();
    EXPECT_TRUE(drain(P->core).empty());
    EXPECT_EQ(drain(P->access).size(), 1u);
    EXPECT_EQ(drain(P->host).size(), 1u);
    EXPECT_EQ(drops(drop_reason::unreadable_payload), 1u);
}

TEST_F(edge_forwarding, a_pseudowire_egress_hands_back_the_inner_frames_bit_for_bit) {
    call("pw", 500, {{"lan", "host", 0, {}}, {"vlan", "access", 30, {}}},
         {payload_kind::ethernet, true});
    std::vector<bytes> inner, sent;
    for (uint32_t seq = 0; seq < 8; ++seq) {
        inner.push_back(ipv4_frame(seq % 2 ? 64 : 1500, seq));
        sent.push_back(cat({bytes(12, 0x0c), be16(0x8847),
                            be32(wire::make_mpls_entry(500, 4, true, 64)), be32(0), inner.back()}));
    }
    inject(P->pw, sent);
    poll();
    const auto lan = drain(P->host), vlan = drain(P->access);
    ASSERT_EQ(lan.size(), inner.size());
    ASSERT_EQ(vlan.size(), inner.size());
    for (size_t i = 0; i < inner.size(); ++i) {
        EXPECT_EQ(lan[i], inner[i]) << i;
        EXPECT_EQ(vlan[i], cat({bytes(inner[i].begin(), inner[i].begin() + 12), be16(0x8100),
                                be16(4 << 13 | 30), tail(inner[i], 12)}))
            << i;
    }
}

TEST_F(edge_forwarding, the_pseudowire_ingress_and_egress_are_inverse) {
    // Encapsulated on the way in (feed -> core), decapsulated on the way out (pw -> host).
    call("feed", port_key, {{"in", "core", 600, nh(1)}}, {payload_kind::ethernet, false});
    call("pw", 600, {{"out", "host", 0, {}}}, {payload_kind::ethernet, false});
    const bytes f = ipv4_frame(300, 1);
    inject(P->feed, {f});
    poll();
    auto lsp = drain(P->core);
    ASSERT_EQ(lsp.size(), 1u);
    EXPECT_EQ(lsp[0], cat({mac_bytes(nh(1)), mac_bytes(P->core.mac), be16(0x8847),
                           be32(wire::make_mpls_entry(600, 1, true, 255)), f}));
    inject(P->pw, {lsp[0]});
    poll();
    const auto back = drain(P->host);
    ASSERT_EQ(back.size(), 1u);
    EXPECT_EQ(back[0], f);
}

TEST_F(edge_forwarding, large_multi_segment_frames_are_copied_whole_across_segments) {
    call("feed", port_key,
         {{"lsp", "core", 100, nh(1)}, {"vlan", "access", 20, nh(2)}, {"plain", "host", 0, nh(3)}});
    const bytes f = ipv4_frame(9000, 9);
    inject(P->feed, to_chain(f, shared_pool(), 2048));
    poll();
    const auto lsp = drain(P->core), vlan = drain(P->access), plain = drain(P->host);
    ASSERT_EQ(lsp.size(), 1u);
    ASSERT_EQ(vlan.size(), 1u);
    ASSERT_EQ(plain.size(), 1u);
    EXPECT_EQ(lsp[0], pushed(f, P->core.mac, 100));
    EXPECT_EQ(vlan[0], tagged(f, P->access.mac, 20));
    EXPECT_EQ(plain[0], forwarded(f, P->host.mac));
}

TEST_F(edge_forwarding, swap_and_pop_in_one_call_and_the_core_path_for_swaps_alone) {
    // A call whose parties swap and pop (implicit null, and to a port).
    call("pw", 700,
         {{"next", "core", 800, nh(1)}, {"php", "core", 3, nh(2)}, {"host", "host", 0, nh(3)}});
    const bytes ip = tail(ipv4_frame(200, 3), 14);
    const bytes f =
        cat({bytes(12, 0x0c), be16(0x8847), be32(wire::make_mpls_entry(700, 2, true, 10)), ip});
    inject(P->pw, {f});
    poll();
    const auto core = drain(P->core), host = drain(P->host);
    ASSERT_EQ(core.size(), 2u);
    ASSERT_EQ(host.size(), 1u);
    EXPECT_EQ(core[0], cat({mac_bytes(nh(1)), mac_bytes(P->core.mac), be16(0x8847),
                            be32(wire::make_mpls_entry(800, 2, true, 9)), ip}));
    // Uniform: the IPv4 TTL is the label's less one (9), its checksum still right.
    ASSERT_EQ(core[1].size(), 14 + ip.size());
    EXPECT_EQ(bytes(core[1].begin(), core[1].begin() + 14),
              cat({mac_bytes(nh(2)), mac_bytes(P->core.mac), be16(0x0800)}));
    EXPECT_EQ(core[1][14 + 8], 9);
    EXPECT_EQ(test::ipv4_checksum(core[1].data() + 14), 0);
    EXPECT_NE(bytes(core[1].begin() + 24, core[1].begin() + 26),
              bytes(ip.begin() + 10, ip.begin() + 12));
    EXPECT_EQ(tail(core[1], 14 + 12), tail(ip, 12));
    EXPECT_EQ(bytes(host[0].begin() + 12, host[0].end()), tail(core[1], 12));
}

TEST_F(edge_forwarding, a_point_to_point_edge_call_rewrites_the_frame_in_place) {
    call("feed", port_key, {{"lsp", "core", 100, nh(1)}});
    rte_mbuf* m = to_mbuf(ipv4_frame(128, 5), shared_pool());
    const bytes f = to_bytes(m);
    inject(P->feed, m);
    poll();
    void* obj = nullptr;
    ASSERT_EQ(rte_ring_dequeue(P->core.tx, &obj), 0);
    auto* out = static_cast<rte_mbuf*>(obj);
    EXPECT_EQ(out, m); // the same mbuf, grown into its headroom
    EXPECT_EQ(to_bytes(out), pushed(f, P->core.mac, 100));
    rte_pktmbuf_free(out);
}

} // namespace
} // namespace vcplane::test

// Chained replicas on the wire through real kernel interfaces: 1500-byte frames of a call with
// three parties — one on net_af_packet over a veth pair, one on net_tap, one on a ring port —
// leave as chains, both ways the worker makes them (dataplane/worker.hh): first as an
// 18-byte header mbuf per party chained to the original itself (shared, one reference per
// party), then, with too few headers for that, as header + indirect mbuf for the two kernel
// ports and the original for the ring port. Each copy is captured from the kernel side with a
// packet socket and compared byte for byte. Then jumbo frames: 9000 bytes in 2048-byte
// segments, as a NIC's RX hands them over, to a call of 16 parties on net_af_packet over a
// veth pair at MTU 9000, each frame made one segment and shared. Needs root and veth/tun
// support; skipped, with the reason, without.

#include <arpa/inet.h>
#include <fmt/format.h>
#include <gtest/gtest.h>
#include <linux/if_packet.h>
#include <net/ethernet.h>
#include <net/if.h>
#include <poll.h>
#include <rte_bus_vdev.h>
#include <rte_ethdev.h>
#include <sys/socket.h>
#include <unistd.h>

#include "control/switch_state.hh"
#include "dataplane/wire.hh"
#include "dataplane/worker.hh"
#include "port/ports.hh"
#include "tests/dpdk/harness.hh"

namespace vcplane::test {
namespace {

const std::string veth_host = "vcpch0", veth_peer = "vcpch0p", tap_iface = "vcptap0";

void sh(const std::string& cmd) {
    if (std::system((cmd + " >/dev/null 2>&1").c_str()) != 0) {
        throw std::runtime_error("failed: " + cmd);
    }
}

std::string skip_reason() {
    if (geteuid() != 0) {
        return "needs root (veth pair, tap interface, packet sockets)";
    }
    if (access("/dev/net/tun", R_OK | W_OK) != 0) {
        return "no /dev/net/tun (net_tap)";
    }
    if (std::system("ip link add vcpchk type veth peer name vcpchkp >/dev/null 2>&1") != 0) {
        return "cannot create a veth pair (kernel without veth?)";
    }
    std::system("ip link del vcpchk >/dev/null 2>&1");
    return "";
}

// A packet socket on `iface` that sees what arrives there, MPLS frames only kept.
class capture {
public:
    explicit capture(const std::string& iface) {
        fd_ = socket(AF_PACKET, SOCK_RAW, htons(ETH_P_ALL));
        if (fd_ < 0) {
            throw std::runtime_error("packet socket: " + std::string(strerror(errno)));
        }
        sockaddr_ll sll{};
        sll.sll_family = AF_PACKET;
        sll.sll_protocol = htons(ETH_P_ALL);
        sll.sll_ifindex = int(if_nametoindex(iface.c_str()));
        if (sll.sll_ifindex == 0 || bind(fd_, reinterpret_cast<sockaddr*>(&sll), sizeof sll) != 0) {
            throw std::runtime_error("bind to " + iface + ": " + strerror(errno));
        }
        // Room for every copy a test sends before it reads (48 jumbo frames are 432 kB; the
        // default buffer would drop the rest).
        const int room = 8 << 20;
        if (setsockopt(fd_, SOL_SOCKET, SO_RCVBUFFORCE, &room, sizeof room) != 0) {
            throw std::runtime_error("SO_RCVBUFFORCE on " + iface + ": " + strerror(errno));
        }
    }
    ~capture() { close(fd_); }
    // The MPLS frames received within `ms` milliseconds, up to `count`.
    std::vector<std::vector<uint8_t>> frames(size_t count, int ms) {
        std::vector<std::vector<uint8_t>> got;
        for (int waited = 0; got.size() < count && waited < ms; waited += 10) {
            pollfd p{fd_, POLLIN, 0};
            if (poll(&p, 1, 10) <= 0) {
                continue;
            }
            std::vector<uint8_t> buf(9216);
            sockaddr_ll from{};
            socklen_t len = sizeof from;
            const ssize_t n =
                recvfrom(fd_, buf.data(), buf.size(), 0, reinterpret_cast<sockaddr*>(&from), &len);
            if (n >= 18 && from.sll_pkttype != PACKET_OUTGOING &&
                wire::load_be16(buf.data() + 12) == wire::ethertype_mpls) {
                buf.resize(size_t(n));
                got.push_back(std::move(buf));
            }
        }
        return got;
    }

private:
    int fd_ = -1;
};

// A veth pair, both ends up at `mtu`, without IPv6 (no router solicitations on the capture).
void make_veth(const std::string& host, const std::string& peer, uint32_t mtu) {
    std::system(("ip link del " + host + " >/dev/null 2>&1").c_str());
    sh(fmt::format("ip link add {} type veth peer name {}", host, peer));
    for (const auto& i : {host, peer}) {
        sh(fmt::format("sysctl -qw net.ipv6.conf.{}.disable_ipv6=1", i));
        sh(fmt::format("ip link set {} mtu {} up", i, mtu));
    }
}

// The test's thread reads the tables as a worker's would: one registration for every test.
void register_reader() {
    static const bool registered = (rcu_register_thread(), true);
    (void)registered;
}

// A call on connection "in" of `state`, label 1000, to `parties`, published: its vc, or null
// with the reason in *why.
vc* publish_call(switch_state& state, const std::vector<party_spec>& parties, std::string* why) {
    table_error error;
    party_set* set = state.build_parties(*state.find_connection("in"), parties,
                                         std::vector<uint32_t>(parties.size(), 0), &error);
    vc* v = set != nullptr ? state.new_vc(*state.find_connection("in"), 1000, 0, set, {}, &error)
                           : nullptr;
    if (v == nullptr || !state.publish_vc(*state.find_connection("in"), v)) {
        *why = v == nullptr ? error.why : "not published";
        return nullptr;
    }
    return v;
}

// w polls `in`'s only RX queue.
void serve(worker& w, const ring_port& in) {
    auto* queues = new rx_queue_list{};
    queues->queues[queues->count++] = rx_queue_ref{in.port, 0};
    w.publish_rx_queues(queues); // nothing was published before: nothing to free
}

uint16_t probe(const std::string& devargs, const std::string& name) {
    if (rte_dev_probe(devargs.c_str()) != 0) {
        throw std::runtime_error("probe " + devargs);
    }
    uint16_t port = 0;
    if (rte_eth_dev_get_port_by_name(name.c_str(), &port) != 0) {
        throw std::runtime_error("no port " + name);
    }
    return port;
}

TEST(kernel_ports, chained_replicas_leave_byte_exact_through_af_packet_and_tap) {
    if (auto why = skip_reason(); !why.empty()) {
        GTEST_SKIP() << why;
    }
    start_eal();
    register_reader();
    make_veth(veth_host, veth_peer, 1500);
    rte_mempool* pool = shared_pool();
    rte_mempool* headers =
        rte_pktmbuf_pool_create("kp_hdr", 1023, 0, 0, RTE_PKTMBUF_HEADROOM + 64, 0);
    rte_mempool* refs = rte_pktmbuf_pool_create("kp_ref", 1023, 0, 0, 0, 0);
    ASSERT_NE(headers, nullptr);
    ASSERT_NE(refs, nullptr);
    const unsigned pool_free = rte_mempool_avail_count(pool);

    const ring_port in = make_ring_port("kp_in"), last = make_ring_port("kp_last");
    const uint16_t afp = probe("net_af_packet_kp,iface=" + veth_host, "net_af_packet_kp");
    const uint16_t tap = probe("net_tap_kp,iface=" + tap_iface, "net_tap_kp");
    const bool afp_chains = start_port(port_plan{afp, "afp", 1, 1, 256, 256, 1500}, pool);
    const bool tap_chains = start_port(port_plan{tap, "tap", 1, 1, 256, 256, 1500}, pool);
    sh(fmt::format("sysctl -qw net.ipv6.conf.{}.disable_ipv6=1", tap_iface));
    sh(fmt::format("ip link set {} up", tap_iface));
    // Both announce multi-segment TX: the copies through them are chains, not whole copies.
    EXPECT_TRUE(afp_chains) << "net_af_packet without MULTI_SEGS: replicas would be copied";
    EXPECT_TRUE(tap_chains) << "net_tap without MULTI_SEGS: replicas would be copied";

    capture on_veth(veth_peer), on_tap(tap_iface);
    {
        switch_state state;
        state.add_connection("in", "in", in.port, media_kind::mpls, in.mac, 1500);
        state.add_connection("afp", "afp", afp, media_kind::mpls, port_mac(afp), 1500, 0,
                             afp_chains);
        state.add_connection("tap", "tap", tap, media_kind::mpls, port_mac(tap), 1500, 0,
                             tap_chains);
        state.add_connection("last", "last", last.port, media_kind::mpls, last.mac, 1500);
        const mac_address nh_afp{2, 0xaa, 0, 0, 0, 1}, nh_tap{2, 0xaa, 0, 0, 0, 2},
            nh_last{2, 0xaa, 0, 0, 0, 3};
        std::string why;
        vc* v = publish_call(
            state,
            {{"a", "afp", 3001, nh_afp}, {"t", "tap", 3002, nh_tap}, {"l", "last", 3003, nh_last}},
            &why);
        ASSERT_NE(v, nullptr) << why;

        worker w(0, state.table(), pool, 0);
        w.set_chain_pools(headers, refs);
        serve(w, in);

        std::vector<std::vector<uint8_t>> sent;
        for (uint32_t seq = 0; seq < 10; ++seq) {
            sent.push_back(
                mpls_frame({.label = 1000, .tc = 3, .ttl = 17, .seq = seq, .size = 1500}));
        }
        const auto forward = [&] {
            for (int i = 0; i < 4; ++i) {
                w.poll_once();
                rcu_quiescent_state();
            }
        };
        // Frames 0-4, the shared way: the ring port's copy is a header chained to the original.
        inject(in, {sent.begin(), sent.begin() + 5});
        forward();
        std::vector<uint8_t> shared_last;
        {
            void* obj = nullptr;
            ASSERT_EQ(rte_ring_count(last.tx), 5u);
            ASSERT_EQ(rte_ring_dequeue(last.tx, &obj), 0);
            auto* m = static_cast<rte_mbuf*>(obj);
            EXPECT_EQ(m->nb_segs, 2);
            EXPECT_EQ(m->data_len, replica_header_len);
            EXPECT_TRUE(RTE_MBUF_DIRECT(m->next)); // the original, not a reference to it
            shared_last = to_bytes(m);
            rte_pktmbuf_free(m);
        }
        auto got_last = drain(last);
        got_last.insert(got_last.begin(), shared_last);
        // Frames 5-9 one by one with two free headers (not one per party): header + indirect
        // mbuf to the kernel ports (each frees its copy as it sends it), the original to the
        // ring port.
        std::vector<rte_mbuf*> held(rte_mempool_avail_count(headers) - 2);
        ASSERT_EQ(rte_pktmbuf_alloc_bulk(headers, held.data(), unsigned(held.size())), 0);
        for (size_t i = 5; i < sent.size(); ++i) {
            inject(in, {sent[i]});
            forward();
            void* obj = nullptr;
            ASSERT_EQ(rte_ring_dequeue(last.tx, &obj), 0) << i;
            auto* m = static_cast<rte_mbuf*>(obj);
            EXPECT_EQ(m->nb_segs, 1) << i;
            got_last.push_back(to_bytes(m));
            rte_pktmbuf_free(m);
        }
        rte_pktmbuf_free_bulk(held.data(), unsigned(held.size()));
        EXPECT_EQ(w.counters().drops[size_t(drop_reason::no_mbuf)].read(), 0u);
        const auto expect = [&](const std::vector<uint8_t>& f, const mac_address& dst,
                                const mac_address& src, uint32_t label) {
            auto e = f;
            wire::write_macs(e.data(), dst.data(), src.data());
            wire::store_be32(e.data() + 14, wire::make_mpls_entry(label, 3, true, 16));
            return e;
        };
        const auto got_afp = on_veth.frames(sent.size(), 3000);
        const auto got_tap = on_tap.frames(sent.size(), 3000);
        ASSERT_EQ(got_afp.size(), sent.size());
        ASSERT_EQ(got_tap.size(), sent.size());
        ASSERT_EQ(got_last.size(), sent.size());
        for (size_t i = 0; i < sent.size(); ++i) {
            EXPECT_EQ(got_afp[i], expect(sent[i], nh_afp, port_mac(afp), 3001))
                << "af_packet " << i;
            EXPECT_EQ(got_tap[i], expect(sent[i], nh_tap, port_mac(tap), 3002)) << "tap " << i;
            EXPECT_EQ(got_last[i], expect(sent[i], nh_last, last.mac, 3003)) << "last " << i;
        }
        state.unpublish_vc(*state.find_connection("in"), 1000);
        switch_state::free_vc(v);
    }
    stop_port(afp);
    stop_port(tap);
    rte_eal_hotplug_remove("vdev", "net_af_packet_kp");
    rte_eal_hotplug_remove("vdev", "net_tap_kp");
    std::system(("ip link del " + veth_host + " >/dev/null 2>&1").c_str());
    // Every header, reference and buffer is back once the kernel ports have sent them.
    EXPECT_EQ(rte_mempool_avail_count(headers), 1023u);
    EXPECT_EQ(rte_mempool_avail_count(refs), 1023u);
    EXPECT_EQ(rte_mempool_avail_count(pool), pool_free);
}

TEST(kernel_ports, jumbo_frames_to_sixteen_parties_leave_byte_exact_through_af_packet) {
    if (auto why = skip_reason(); !why.empty()) {
        GTEST_SKIP() << why;
    }
    static_assert(linear_copy_min_parties <= 16, "the call must take the linear way");
    start_eal();
    register_reader();
    const std::string host = "vcpjb0", peer = "vcpjb0p";
    constexpr uint32_t parties_n = 16;
    make_veth(host, peer, 9000);
    rte_mempool* pool = shared_pool();
    rte_mempool* headers =
        rte_pktmbuf_pool_create("jb_hdr", 1023, 0, 0, RTE_PKTMBUF_HEADROOM + 64, 0);
    rte_mempool* refs = rte_pktmbuf_pool_create("jb_ref", 1023, 0, 0, 0, 0);
    rte_mempool* linear =
        rte_pktmbuf_pool_create("jb_lin", 63, 0, 0, RTE_PKTMBUF_HEADROOM + linear_buffer_len, 0);
    // DPDK 22.11's af_packet refuses an MTU above 1500 (its largest RX frame is 1518 bytes), and
    // net_tap, which caps what it sends at its MTU, likewise: af_packet is the vdev that can
    // send a jumbo frame, bounded by its ring frames and the kernel interface's MTU (9000
    // above), not by its own MTU. Its RX buffers must hold a whole ring frame.
    rte_mempool* afp_rx =
        rte_pktmbuf_pool_create("jb_afp_rx", 511, 0, 0, RTE_PKTMBUF_HEADROOM + 16384, 0);
    ASSERT_NE(headers, nullptr);
    ASSERT_NE(refs, nullptr);
    ASSERT_NE(linear, nullptr);
    ASSERT_NE(afp_rx, nullptr);
    const unsigned pool_free = rte_mempool_avail_count(pool);

    const ring_port in = make_ring_port("jb_in");
    const uint16_t afp = probe(
        fmt::format("net_af_packet_jb,iface={},blocksz=16384,framesz=16384,framecnt=64", host),
        "net_af_packet_jb");
    ASSERT_TRUE(start_port(port_plan{afp, "afp", 1, 1, 256, 256, 1500}, afp_rx));
    sh(fmt::format("ip link set {} mtu 9000", host)); // the port set its interface's to 1500

    capture on_veth(peer);
    const auto next_hop = [](uint32_t i) { return mac_address{2, 0xbb, 0, 0, 0, uint8_t(i)}; };
    std::vector<std::vector<uint8_t>> sent;
    {
        switch_state state;
        state.add_connection("in", "in", in.port, media_kind::mpls, in.mac, 9000);
        state.add_connection("afp", "afp", afp, media_kind::mpls, port_mac(afp), 9000);
        std::vector<party_spec> parties;
        for (uint32_t i = 0; i < parties_n; ++i) {
            parties.push_back({fmt::format("p{}", i), "afp", 4000 + i, next_hop(i)});
        }
        std::string why;
        vc* v = publish_call(state, parties, &why);
        ASSERT_NE(v, nullptr) << why;

        worker w(0, state.table(), pool, 0);
        w.set_chain_pools(headers, refs);
        w.set_linear_pool(linear);
        serve(w, in);

        for (uint32_t seq = 0; seq < 3; ++seq) {
            sent.push_back(
                mpls_frame({.label = 1000, .tc = 5, .ttl = 9, .seq = seq, .size = 9000}));
            inject(in, to_chain(sent.back(), pool, 2048));
            for (int i = 0; i < 4; ++i) {
                w.poll_once();
                rcu_quiescent_state();
            }
        }
        for (size_t d = 0; d < std::size(w.counters().drops); ++d) {
            EXPECT_EQ(w.counters().drops[d].read(), 0u) << drop_reason_name(drop_reason(d));
        }
        state.unpublish_vc(*state.find_connection("in"), 1000);
        switch_state::free_vc(v);
    }
    const auto got = on_veth.frames(sent.size() * parties_n, 3000);
    const mac_address afp_mac = port_mac(afp);
    stop_port(afp);
    rte_eal_hotplug_remove("vdev", "net_af_packet_jb");
    std::system(("ip link del " + host + " >/dev/null 2>&1").c_str());
    // Every header, linear buffer and segment is back once the port has sent them.
    EXPECT_EQ(rte_mempool_avail_count(headers), 1023u);
    EXPECT_EQ(rte_mempool_avail_count(refs), 1023u);
    EXPECT_EQ(rte_mempool_avail_count(linear), 63u);
    EXPECT_EQ(rte_mempool_avail_count(pool), pool_free);
    for (rte_mempool* p : {headers, refs, linear, afp_rx}) {
        rte_mempool_free(p);
    }
    // Every copy on the wire, frame by frame, in party order within a frame.
    ASSERT_EQ(got.size(), sent.size() * parties_n);
    for (size_t f = 0; f < sent.size(); ++f) {
        for (uint32_t i = 0; i < parties_n; ++i) {
            auto want = sent[f];
            wire::write_macs(want.data(), next_hop(i).data(), afp_mac.data());
            wire::store_be32(want.data() + 14, wire::make_mpls_entry(4000 + i, 5, true, 8));
            EXPECT_EQ(got[f * parties_n + i], want) << "frame " << f << ", party " << i;
        }
    }
}

} // namespace
} // namespace vcplane::test

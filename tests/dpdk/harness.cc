#include "tests/dpdk/harness.hh"

#include <algorithm>
#include <cstring>
#include <rte_eal.h>
#include <rte_errno.h>
#include <rte_eth_ring.h>
#include <rte_ethdev.h>
#include <stdexcept>
#include <unistd.h>

#include "dataplane/wire.hh"
#include "port/eal.hh"
#include "port/ports.hh"

namespace vcplane::test {

void start_eal() {
    static bool started = false;
    if (started) {
        return;
    }
    const std::string prefix = "vcplane-test-" + std::to_string(getpid());
    eal_start({"vcplane-test", "-l", "0-1", "--main-lcore", "0", "--no-huge", "-m", "512",
               "--no-pci", "--no-shconf", "--file-prefix", prefix, "--log-level=error"});
    started = true;
}

rte_mempool* shared_pool() {
    static rte_mempool* pool = nullptr;
    if (pool == nullptr) {
        pool = rte_pktmbuf_pool_create("test_pool", 8191, 0, 0, RTE_MBUF_DEFAULT_BUF_SIZE, 0);
        if (pool == nullptr) {
            throw std::runtime_error(std::string("pool: ") + rte_strerror(rte_errno));
        }
    }
    return pool;
}

ring_port make_ring_port(const std::string& name, unsigned tx_capacity, bool start) {
    ring_port p{};
    p.rx = rte_ring_create((name + "_rx").c_str(), 4096, 0, RING_F_SP_ENQ | RING_F_SC_DEQ);
    p.tx = rte_ring_create((name + "_tx").c_str(), tx_capacity, 0, RING_F_SP_ENQ | RING_F_SC_DEQ);
    if (p.rx == nullptr || p.tx == nullptr) {
        throw std::runtime_error("ring: " + std::string(rte_strerror(rte_errno)));
    }
    const int id = rte_eth_from_rings(name.c_str(), &p.rx, 1, &p.tx, 1, 0);
    if (id < 0) {
        throw std::runtime_error("rte_eth_from_rings: " + std::string(rte_strerror(rte_errno)));
    }
    p.port = uint16_t(id);
    if (start) {
        start_port(port_plan{p.port, name, 1, 1, 512, 512, 1500}, shared_pool());
    }
    p.mac = port_mac(p.port);
    return p;
}

std::vector<uint8_t> mpls_frame(const mpls_frame_spec& s) {
    std::vector<uint8_t> f(s.size, 0);
    wire::write_macs(f.data(), s.dst.data(), s.src.data());
    wire::store_be16(f.data() + 12, wire::ethertype_mpls);
    wire::store_be32(f.data() + 14, wire::make_mpls_entry(s.label, s.tc, true, s.ttl));
    wire::store_be32(f.data() + 18, s.seq);
    for (size_t i = 22; i < f.size(); ++i) {
        f[i] = uint8_t(i * 7 + s.seq); // a payload pattern that a wrong offset would break
    }
    return f;
}

std::vector<uint8_t> vlan_frame(const mac_address& dst, const mac_address& src, uint16_t tci,
                                uint32_t seq, size_t size) {
    std::vector<uint8_t> f(size, 0);
    wire::write_macs(f.data(), dst.data(), src.data());
    wire::store_be16(f.data() + 12, wire::ethertype_vlan);
    wire::store_be16(f.data() + 14, tci);
    wire::store_be16(f.data() + 16, 0x0800);
    wire::store_be32(f.data() + 18, seq);
    return f;
}

rte_mbuf* to_mbuf(const std::vector<uint8_t>& bytes, rte_mempool* pool) {
    rte_mbuf* m = rte_pktmbuf_alloc(pool);
    if (m == nullptr) {
        throw std::runtime_error("mbuf pool empty");
    }
    char* d = rte_pktmbuf_append(m, uint16_t(bytes.size()));
    if (!bytes.empty()) { // an empty vector's data() may be null, which memcpy may not take
        std::memcpy(d, bytes.data(), bytes.size());
    }
    return m;
}

rte_mbuf* to_chain(const std::vector<uint8_t>& bytes, rte_mempool* pool, uint16_t segment_size) {
    rte_mbuf* head = nullptr;
    for (size_t at = 0; at < bytes.size(); at += segment_size) {
        const size_t len = std::min<size_t>(segment_size, bytes.size() - at);
        rte_mbuf* seg = to_mbuf(
            std::vector<uint8_t>(bytes.begin() + long(at), bytes.begin() + long(at + len)), pool);
        if (head == nullptr) {
            head = seg;
        } else if (rte_pktmbuf_chain(head, seg) != 0) {
            rte_pktmbuf_free(seg);
            rte_pktmbuf_free(head);
            throw std::runtime_error("too many segments");
        }
    }
    return head;
}

std::vector<uint8_t> to_bytes(const rte_mbuf* m) {
    std::vector<uint8_t> out(rte_pktmbuf_pkt_len(m));
    const void* p = rte_pktmbuf_read(m, 0, uint32_t(out.size()), out.data());
    if (p != out.data()) {
        std::memcpy(out.data(), p, out.size());
    }
    return out;
}

void inject(const ring_port& p, const std::vector<std::vector<uint8_t>>& frames) {
    for (const auto& f : frames) {
        rte_mbuf* m = to_mbuf(f, shared_pool());
        if (rte_ring_enqueue(p.rx, m) != 0) {
            rte_pktmbuf_free(m);
            throw std::runtime_error("rx ring full");
        }
    }
}

void inject(const ring_port& p, rte_mbuf* m) {
    if (rte_ring_enqueue(p.rx, m) != 0) {
        rte_pktmbuf_free(m);
        throw std::runtime_error("rx ring full");
    }
}

std::vector<std::vector<uint8_t>> drain(const ring_port& p) {
    std::vector<std::vector<uint8_t>> out;
    void* obj;
    while (rte_ring_dequeue(p.tx, &obj) == 0) {
        auto* m = static_cast<rte_mbuf*>(obj);
        out.push_back(to_bytes(m));
        rte_pktmbuf_free(m);
    }
    return out;
}

} // namespace vcplane::test

#pragma once
// Shared set-up for the DPDK integration tests: one real EAL per test process (--no-huge,
// --no-pci, no shared files), ring-backed ethdev ports whose RX side the test fills and whose
// TX side the test drains, and frame builders. Ports go through the daemon's own start_port.
// No test framework: the fuzz targets use it too.

#include <rte_ether.h>
#include <rte_mbuf.h>
#include <rte_ring.h>
#include <string>
#include <vector>

#include "config/config.hh"

namespace vcplane::test {

struct ring_port {
    uint16_t port;
    rte_ring* rx; // the test enqueues here; the port's RX queue 0 reads it
    rte_ring* tx; // the port's TX queue 0 writes here; the test dequeues
    mac_address mac;
};

// Starts EAL with lcores 0-1 once per process; later calls return at once.
void start_eal();
rte_mempool* shared_pool(); // 8191 mbufs, created on first use

// A ring port with RX/TX rings of the given capacity, started through start_port() unless
// `start` is false (then whoever claims it starts it).
ring_port make_ring_port(const std::string& name, unsigned tx_capacity = 4096, bool start = true);

struct mpls_frame_spec {
    mac_address dst{0x02, 0, 0, 0, 0, 0xfe};
    mac_address src{0x02, 0, 0, 0, 0, 0x01};
    uint32_t label = 1000;
    uint8_t tc = 0;
    uint8_t ttl = 64;
    uint32_t seq = 0;
    size_t size = 64; // frame length without FCS
};
std::vector<uint8_t> mpls_frame(const mpls_frame_spec& s);
std::vector<uint8_t> vlan_frame(const mac_address& dst, const mac_address& src, uint16_t tci,
                                uint32_t seq, size_t size);

rte_mbuf* to_mbuf(const std::vector<uint8_t>& bytes, rte_mempool* pool);
// The bytes as a chain of segments of at most segment_size bytes each.
rte_mbuf* to_chain(const std::vector<uint8_t>& bytes, rte_mempool* pool, uint16_t segment_size);
std::vector<uint8_t> to_bytes(const rte_mbuf* m); // whole packet, across segments

void inject(const ring_port& p, const std::vector<std::vector<uint8_t>>& frames);
void inject(const ring_port& p, rte_mbuf* m); // the port's RX takes m over
// Dequeues and frees everything the port transmitted, returning its bytes.
std::vector<std::vector<uint8_t>> drain(const ring_port& p);

} // namespace vcplane::test

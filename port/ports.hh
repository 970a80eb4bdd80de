#pragma once
// Ethdev set-up for the ports vcplane uses: finding a port by device name or MAC, the mbuf
// pool, queue and descriptor set-up, start and stop. Control thread only.

#include <cstdint>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

#include <rte_mempool.h>

#include "config/config.hh"

namespace vcplane {

class port_error : public std::runtime_error {
public:
    using std::runtime_error::runtime_error;
};

std::vector<uint16_t> present_ports();
std::string port_device_name(uint16_t port);
mac_address port_mac(uint16_t port);
std::optional<uint16_t> find_port_by_device(const std::string& device);
std::optional<uint16_t> find_port_by_mac(const mac_address& mac);

struct port_plan {
    uint16_t port = 0;
    std::string connection; // for messages
    uint16_t rx_queues = 1;
    uint16_t tx_queues = 1;
    uint16_t rx_descriptors = 1024;
    uint16_t tx_descriptors = 1024;
    uint32_t mtu = 1500;
    // With several RX queues (one per worker), what RSS must hash on so that every frame of
    // a VC lands on the same queue (the MPLS label or the VLAN ID, never inner headers).
    media_kind media = media_kind::mpls;
};

struct pool_plan {
    unsigned mbufs;
    uint16_t data_room;
    unsigned cache;
};

// Enough buffers for every RX and TX descriptor, every worker's RX burst and TX buffers, the
// per-lcore caches, and replication headroom; data room for the largest MTU.
pool_plan plan_mbuf_pool(const std::vector<port_plan>& ports, unsigned workers, unsigned lcores);
rte_mempool* create_mbuf_pool(const std::string& name, const pool_plan& plan, int socket);

// Configure queues and start the port. Throws port_error naming the connection and what to fix.
// Returns whether the port takes multi-segment frames (chained replicas, dataplane/worker.hh):
// it announces and got RTE_ETH_TX_OFFLOAD_MULTI_SEGS, or it is a software port that hands
// mbufs on without reading their segments (net_ring, net_null).
bool start_port(const port_plan& plan, rte_mempool* pool);
void stop_port(uint16_t port) noexcept;

} // namespace vcplane

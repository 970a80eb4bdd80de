#include "port/ports.hh"

#include <algorithm>
#include <cstring>
#include <fmt/format.h>
#include <rte_ethdev.h>
#include <rte_mbuf.h>

#include "base/log.hh"
#include "dataplane/worker.hh"

namespace vcplane {

std::vector<uint16_t> present_ports() {
    std::vector<uint16_t> out;
    uint16_t p;
    RTE_ETH_FOREACH_DEV(p) {
        out.push_back(p);
    }
    return out;
}

std::string port_device_name(uint16_t port) {
    char name[RTE_ETH_NAME_MAX_LEN];
    if (rte_eth_dev_get_name_by_port(port, name) != 0) {
        return fmt::format("port{}", port);
    }
    return name;
}

mac_address port_mac(uint16_t port) {
    rte_ether_addr a{};
    rte_eth_macaddr_get(port, &a);
    mac_address m;
    std::memcpy(m.data(), a.addr_bytes, 6);
    return m;
}

std::optional<uint16_t> find_port_by_device(const std::string& device) {
    uint16_t p;
    if (rte_eth_dev_get_port_by_name(device.c_str(), &p) == 0) {
        return p;
    }
    return std::nullopt;
}

std::optional<uint16_t> find_port_by_mac(const mac_address& mac) {
    for (uint16_t p : present_ports()) {
        if (port_mac(p) == mac) {
            return p;
        }
    }
    return std::nullopt;
}

pool_plan plan_mbuf_pool(const std::vector<port_plan>& ports, unsigned workers, unsigned lcores) {
    constexpr unsigned cache = 256;
    unsigned n = 0;
    uint32_t max_mtu = 1500;
    for (const auto& p : ports) {
        n += p.rx_queues * p.rx_descriptors + p.tx_queues * p.tx_descriptors;
        max_mtu = std::max(max_mtu, p.mtu);
    }
    // In flight inside each worker: one RX burst plus a full TX buffer per port.
    n += workers * (large_rx_burst_size + unsigned(ports.size()) * tx_burst_size);
    // Buffers parked in per-lcore caches can hold up to 1.5x the cache size.
    n += lcores * cache * 3 / 2;
    // Replication headroom: replicas wait in TX buffers and descriptors already counted
    // above; this covers bursts of replicas in transit between the two.
    n += 8192;
    // Ethernet + one tag/label + a second label for G-ACh frames, and the headroom; and room
    // for what a device writes into the buffer ahead of the frame (virtio-net's 12-byte
    // header: without it net_virtio refuses a 9000-byte MTU's RX queue, tests/vm).
    constexpr unsigned device_header_room = 32;
    const unsigned frame = max_mtu + RTE_ETHER_HDR_LEN + 8 + RTE_ETHER_CRC_LEN + device_header_room;
    const unsigned room =
        std::max<unsigned>(RTE_MBUF_DEFAULT_BUF_SIZE, frame + RTE_PKTMBUF_HEADROOM);
    return pool_plan{n, static_cast<uint16_t>(room), cache};
}

rte_mempool* create_mbuf_pool(const std::string& name, const pool_plan& plan, int socket) {
    rte_mempool* mp =
        rte_pktmbuf_pool_create(name.c_str(), plan.mbufs, plan.cache, 0, plan.data_room, socket);
    if (mp == nullptr) {
        throw port_error(fmt::format(
            "cannot create the mbuf pool ({} buffers of {} bytes, {} MiB): {}; fix: raise "
            "eal.memory_mb (or reserve more hugepages)",
            plan.mbufs, plan.data_room,
            (uint64_t(plan.mbufs) * (plan.data_room + sizeof(rte_mbuf)) >> 20) + 1,
            rte_strerror(rte_errno)));
    }
    return mp;
}

namespace {

// Drivers whose interrupt-driven link status was seen to go stale under QEMU's emulation of
// their NICs (tests/vm): with LSC interrupts on, ethdev reports the status the last interrupt
// left and the poll can no longer correct it. They are polled instead.
//   net_e1000_em  e1000e: stale after the first event; e1000: "down" for ever
//   net_vmxnet3   no event ever comes
bool lsc_interrupts_hold(std::string_view driver) {
    return driver != "net_e1000_em" && driver != "net_vmxnet3";
}

// What the device is asked for: multi-segment TX where it takes chains, RSS on the VC's key
// where it can hash on it. *chains: whether the port takes chained replicas.
rte_eth_conf port_conf_for(const port_plan& plan, const rte_eth_dev_info& info,
                           const std::string& who, bool* chains) {
    rte_eth_conf conf{};
    // Large replicas are a header mbuf chained to the original's reference-counted payload:
    // ask for MULTI_SEGS, and never for MBUF_FAST_FREE (it promises single-segment mbufs of
    // one pool with a reference count of 1, which replicas are not).
    *chains = false;
    if (info.tx_offload_capa & RTE_ETH_TX_OFFLOAD_MULTI_SEGS) {
        conf.txmode.offloads |= RTE_ETH_TX_OFFLOAD_MULTI_SEGS;
        *chains = true;
    }
    const std::string_view driver = info.driver_name != nullptr ? info.driver_name : "";
    if (driver == "net_ring" || driver == "net_null") {
        *chains = true; // they enqueue or free the mbuf as it is, whatever its segments
    }
    // Link changes: by interrupt where the device offers it and its status stays true, so
    // that a link loss reaches the Connection Manager at once; every port is also polled once
    // a second (control_plane::poll_links), which is all the others get.
    const bool offers_lsc = info.dev_flags != nullptr && (*info.dev_flags & RTE_ETH_DEV_INTR_LSC);
    if (offers_lsc && lsc_interrupts_hold(driver)) {
        conf.intr_conf.lsc = 1;
    }
    log::info("{}: link changes by {}", who,
              conf.intr_conf.lsc ? "interrupt, and a poll once a second" : "a poll once a second");
    // Several workers, each with its own RX queue on every port: RSS spreads frames over the
    // queues, hashing only on what names the VC (the label, the VID), so that a VC's frames
    // all reach one worker and stay in order. A device that cannot hash on it gets no RSS:
    // its frames all arrive on queue 0, worker 0 forwards them, and the operator is told.
    if (plan.rx_queues > 1) {
        const bool mpls = plan.media == media_kind::mpls;
        const uint64_t want = mpls ? RTE_ETH_RSS_MPLS : RTE_ETH_RSS_C_VLAN;
        const char* key = mpls ? "MPLS label" : "VLAN ID";
        if ((info.flow_type_rss_offloads & want) != 0) {
            conf.rxmode.mq_mode = RTE_ETH_MQ_RX_RSS;
            conf.rx_adv_conf.rss_conf.rss_key = nullptr; // the device's own key
            conf.rx_adv_conf.rss_conf.rss_hf = want;
            log::info("{}: RSS on the {} over {} RX queues", who, key, plan.rx_queues);
        } else {
            log::warning("{}: {} workers, but the device cannot hash on the {}: no RSS, so "
                         "a NIC delivers all its frames to RX queue 0 and worker 0 alone "
                         "forwards them (hashing on inner headers would reorder a VC's frames "
                         "across workers; a software port such as net_af_packet with qpairs "
                         "spreads by its own kernel hash); spread the load by giving each "
                         "worker ports of its own traffic, or use a NIC with RSS on the {}",
                         who, plan.rx_queues, key, key);
        }
    }
    return conf;
}

void setup_queues(const port_plan& plan, const rte_eth_dev_info& info, const rte_eth_conf& conf,
                  rte_mempool* pool, const std::string& who, uint16_t rxd, uint16_t txd) {
    int socket = rte_eth_dev_socket_id(plan.port);
    if (socket < 0) {
        socket = 0;
    }
    for (uint16_t q = 0; q < plan.rx_queues; ++q) {
        if (int rc = rte_eth_rx_queue_setup(plan.port, q, rxd, socket, nullptr, pool); rc != 0) {
            throw port_error(
                fmt::format("{}: RX queue {} setup failed: {}", who, q, rte_strerror(-rc)));
        }
    }
    rte_eth_txconf txconf = info.default_txconf;
    txconf.offloads = conf.txmode.offloads;
    for (uint16_t q = 0; q < plan.tx_queues; ++q) {
        if (int rc = rte_eth_tx_queue_setup(plan.port, q, txd, socket, &txconf); rc != 0) {
            throw port_error(
                fmt::format("{}: TX queue {} setup failed: {}", who, q, rte_strerror(-rc)));
        }
    }
}

} // namespace

bool start_port(const port_plan& plan, rte_mempool* pool) {
    const uint16_t port = plan.port;
    const std::string who =
        fmt::format("connection '{}' ({})", plan.connection, port_device_name(port));
    rte_eth_dev_info info{};
    if (int rc = rte_eth_dev_info_get(port, &info); rc != 0) {
        throw port_error(fmt::format("{}: cannot read device info: {}", who, rte_strerror(-rc)));
    }
    if (plan.rx_queues > info.max_rx_queues || plan.tx_queues > info.max_tx_queues) {
        throw port_error(fmt::format(
            "{}: needs {} RX and {} TX queues (one per worker) but the device has at most {} "
            "and {}; fix: use fewer workers in eal.lcores, or (net_af_packet) add qpairs={} to "
            "its vdev",
            who, plan.rx_queues, plan.tx_queues, info.max_rx_queues, info.max_tx_queues,
            std::max(plan.rx_queues, plan.tx_queues)));
    }
    bool chains = false;
    const rte_eth_conf conf = port_conf_for(plan, info, who, &chains);
    if (int rc = rte_eth_dev_configure(port, plan.rx_queues, plan.tx_queues, &conf); rc != 0) {
        throw port_error(fmt::format("{}: configure failed: {}", who, rte_strerror(-rc)));
    }
    if (int rc = rte_eth_dev_set_mtu(port, static_cast<uint16_t>(plan.mtu));
        rc != 0 && rc != -ENOTSUP) {
        throw port_error(fmt::format("{}: MTU {} refused: {}; fix: lower connections.{}.mtu", who,
                                     plan.mtu, rte_strerror(-rc), plan.connection));
    }
    uint16_t rxd = plan.rx_descriptors;
    uint16_t txd = plan.tx_descriptors;
    if (int rc = rte_eth_dev_adjust_nb_rx_tx_desc(port, &rxd, &txd); rc != 0) {
        throw port_error(fmt::format("{}: descriptor counts refused: {}", who, rte_strerror(-rc)));
    }
    setup_queues(plan, info, conf, pool, who, rxd, txd);
    if (int rc = rte_eth_dev_start(port); rc != 0) {
        throw port_error(fmt::format("{}: start failed: {}", who, rte_strerror(-rc)));
    }
    // Frames are addressed to next hops, not to us: every port listens to all of them.
    if (int rc = rte_eth_promiscuous_enable(port); rc != 0 && rc != -ENOTSUP) {
        log::warning("{}: cannot enable promiscuous mode: {}", who, rte_strerror(-rc));
    }
    log::info("{}: started, {} RX / {} TX queues, {} / {} descriptors{}", who, plan.rx_queues,
              plan.tx_queues, rxd, txd, chains ? "" : ", no multi-segment TX (replicas copied)");
    return chains;
}

void stop_port(uint16_t port) noexcept {
    if (int rc = rte_eth_dev_stop(port); rc != 0) {
        log::warning("port {}: stop failed: {}", port_device_name(port), rte_strerror(-rc));
    }
    rte_eth_dev_close(port);
}

} // namespace vcplane

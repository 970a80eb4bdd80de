#include "dataplane/tx_buffers.hh"

#include <rte_ethdev.h>

namespace vcplane {

tx_buffers::~tx_buffers() {
    for (auto& b : buffers_) {
        rte_pktmbuf_free_bulk(b.pkts, b.count);
        b.count = 0;
    }
}

void tx_buffers::transmit_run(rte_mbuf* const* frames, const uint16_t* ports, uint16_t from,
                              uint16_t to) noexcept {
    uint16_t j = from;
    while (j < to) {
        const uint16_t port = ports[j];
        if (port == no_port) {
            ++j;
            continue;
        }
        buffer& b = buffers_[port];
        uint16_t count = b.count;
        do {
            b.pkts[count++] = frames[j++];
            if (count == tx_burst_size) [[unlikely]] {
                b.count = count;
                flush(port);
                count = 0;
            }
        } while (j < to && ports[j] == port);
        b.count = count;
        if (count != 0) {
            pending_ |= uint64_t(1) << port;
        }
    }
}

void tx_buffers::flush(uint16_t port) noexcept {
    buffer& b = buffers_[port];
    uint64_t bytes = 0;
    for (uint16_t i = 0; i < b.count; ++i) {
        bytes += rte_pktmbuf_pkt_len(b.pkts[i]);
    }
    const uint16_t sent = rte_eth_tx_burst(port, queue_, b.pkts, b.count);
    if (sent < b.count) [[unlikely]] {
        for (uint16_t i = sent; i < b.count; ++i) {
            bytes -= rte_pktmbuf_pkt_len(b.pkts[i]);
        }
        rte_pktmbuf_free_bulk(b.pkts + sent, b.count - sent);
        counters_.drop(drop_reason::tx_full, b.count - sent);
    }
    port_counters& pc = counters_.port[port];
    pc.tx_packets.add(sent);
    pc.tx_bytes.add(bytes);
    b.count = 0;
    pending_ &= ~(uint64_t(1) << port);
}

} // namespace vcplane

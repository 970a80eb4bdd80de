#pragma once
// A worker's TX buffers: the frames and copies it has forwarded, held per egress port until a
// burst is full or the pass ends, then handed to the worker's own TX queue on that port.
//
// Worker path only (docs/design.md §4): owned by one worker and touched by its lcore alone.
// A full TX queue is a drop counted as tx_full, never a wait: waiting on one port would stall
// every other. Whoever announces a quiescent state flushes first (worker::quiescent_if_due):
// after a grace period no worker holds a removed port's frames.

#include <array>
#include <cstdint>

#include <rte_config.h>
#include <rte_mbuf.h>

#include "dataplane/counters.hh"

namespace vcplane {

inline constexpr uint16_t tx_burst_size = 32;
// A frame with no egress port of its own in a run given to transmit_run (dropped, or sent as
// copies).
inline constexpr uint16_t no_port = UINT16_MAX;
static_assert(RTE_MAX_ETHPORTS <= 64, "tx_buffers::pending_ is a 64-bit port mask");

class tx_buffers {
public:
    // queue: the TX queue the worker owns on every port; counters: the worker's, which
    // count what each port took (tx_packets, tx_bytes) and what it refused (tx_full).
    tx_buffers(uint16_t queue, worker_counters& counters) noexcept
        : counters_(counters)
        , queue_(queue) {}
    ~tx_buffers(); // frees what is still buffered (a worker stopped without a final flush)
    tx_buffers(const tx_buffers&) = delete;
    tx_buffers& operator=(const tx_buffers&) = delete;

    // Buffers m for port; a full buffer goes out at once. For copies and control frames, one
    // at a time.
    void transmit(uint16_t port, rte_mbuf* m) noexcept {
        buffer& b = buffers_[port];
        b.pkts[b.count++] = m;
        pending_ |= uint64_t(1) << port;
        if (b.count == tx_burst_size) [[unlikely]] {
            flush(port);
        }
    }
    // Buffers frames[from, to) in order, frame j for ports[j] (no_port: skipped). A run of
    // frames to one port is appended with the buffer's count kept in a register: appended one
    // by one, each frame would wait for the store of the previous one's count.
    void transmit_run(rte_mbuf* const* frames, const uint16_t* ports, uint16_t from,
                      uint16_t to) noexcept;
    void flush(uint16_t port) noexcept;
    void flush_all() noexcept {
        while (pending_ != 0) {
            flush(static_cast<uint16_t>(__builtin_ctzll(pending_)));
        }
    }

private:
    struct buffer {
        uint16_t count = 0;
        rte_mbuf* pkts[tx_burst_size];
    };

    worker_counters& counters_;
    uint16_t queue_;
    uint64_t pending_ = 0; // bit p: buffers_[p] holds frames
    std::array<buffer, RTE_MAX_ETHPORTS> buffers_{};
};

} // namespace vcplane

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
    // Hands every buffer on, port `lead` first, then the ports above it, then those below.
    void flush_all() noexcept {
        for (uint64_t from_lead = pending_ & (~uint64_t(0) << lead_); from_lead != 0;
             from_lead &= from_lead - 1) {
            flush(static_cast<uint16_t>(__builtin_ctzll(from_lead)));
        }
        while (pending_ != 0) {
            flush(static_cast<uint16_t>(__builtin_ctzll(pending_)));
        }
    }
    // The port flush_all starts from, until another is named (a fair call's first copy's:
    // a receiver measures fairness by when the port takes the copy, not when it is made).
    void lead_with(uint16_t port) noexcept { lead_ = port; }

private:
    struct buffer {
        uint16_t count = 0;
        rte_mbuf* pkts[tx_burst_size];
    };

    worker_counters& counters_;
    uint16_t queue_;
    uint64_t pending_ = 0; // bit p: buffers_[p] holds frames
    uint16_t lead_ = 0;    // < RTE_MAX_ETHPORTS
    std::array<buffer, RTE_MAX_ETHPORTS> buffers_{};
};

} // namespace vcplane

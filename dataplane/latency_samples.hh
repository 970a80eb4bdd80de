#pragma once
// Sampled forwarding latency (opt-in: [metrics] forwarding_latency), per ingress port.
//
// A worker that samples takes one RX burst in every latency_sample_every frames it receives:
// it reads the clock when the burst arrives and again when the pass that forwarded it has
// flushed its TX buffers, and counts that wait in the port's bucket. Every copy of the burst's
// frames was handed to its port by then, so a sample is the longest any of them waited in the
// switch, TX buffering included. The cost is one clock reading and a few counter stores per
// sample; a worker that does not sample pays one well-predicted branch per burst.
//
// The buckets are this worker's own (one writer, dataplane/counters.hh); a reader sums them
// over the workers.

#include <array>
#include <cstdint>

#include <rte_config.h>

#include "dataplane/counters.hh"

namespace vcplane {

inline constexpr uint32_t latency_sample_every = 1024;
// Upper bounds of the buckets, in seconds; a last bucket takes every longer wait.
inline constexpr std::array<double, 12> latency_bounds_seconds = {
    1e-6, 2e-6, 5e-6, 1e-5, 2e-5, 5e-5, 1e-4, 2e-4, 5e-4, 1e-3, 1e-2, 1e-1};

struct latency_samples {
    struct per_port {
        // buckets[i]: waits above bound i - 1 and at most bound i; the last, above them all.
        std::array<counter, latency_bounds_seconds.size() + 1> buckets;
        counter sum_cycles;
    };
    std::array<per_port, RTE_MAX_ETHPORTS> ports;
};

} // namespace vcplane

// Latency and fair fan-out: how long a frame waits in the switch, from the moment the worker
// receives it to the moment each of its copies is handed to the egress port, at 10 %, 50 % and
// 90 % of the capacity measured in the same run, for a point-to-point call and calls of 8 and
// 64 parties; the skew between a frame's first and last copy; and, per party, the mean wait of
// its copies, with and without `fair` (the spread between the best and the worst party's mean,
// as a share of the mean skew), and what fair costs in copies per second.
//
//   latency_bench [--seconds S] [--parties 1,8,64] [--loads 10,50,90] [--rounds R]
//
// Set-up: as fanout_bench, all on lcore 1: net_null1 as the source, whose RX callback writes
// a 64-byte MPLS frame into each buffer with its sequence number and the TSC read at receive
// (and, paced, hands on only as many frames as are due at the load: the rest are freed before
// the worker sees them); every party on net_null0 (no-rx), whose TX callback reads each copy's
// stamp when the worker hands it over (rte_eth_tx_burst): that wait includes classification,
// the copies made before it and the time in the TX buffer until its flush. Both callbacks cost
// the measured core a few cycles per frame; they are in the capacity too.
// A TX burst's copies are all handed over at one instant, so the skew is measured in whole
// bursts: a call of up to tx_burst_size parties on one port shows none.

#include <CLI/CLI.hpp>
#include <algorithm>
#include <array>
#include <cstdio>
#include <cstring>
#include <fmt/format.h>
#include <map>
#include <rte_cycles.h>
#include <rte_ethdev.h>
#include <rte_mbuf.h>
#include <string>
#include <vector>

#include "base/log.hh"
#include "dataplane/wire.hh"
#include "perf/bench_support.hh"
#include "support/call_client.hh"

using namespace vcplane;

namespace {

constexpr size_t seq_offset = wire::ether_header_len + wire::mpls_entry_len;
constexpr size_t stamp_offset = seq_offset + 4;
constexpr uint32_t party_label_base = 100000; // party i of every call: label base + i
constexpr unsigned max_parties = 64;

// Waits in TSC cycles, counted in buckets of 16 cycles (a few ns) up to a million cycles
// (about 0.4 ms at 2.5 GHz); longer ones in the last bucket (the maximum is kept exactly).
class wait_histogram {
public:
    void add(uint64_t cycles) noexcept {
        ++buckets_[std::min<uint64_t>(cycles >> 4, buckets_.size() - 1)];
        ++count_;
        max_ = std::max(max_, cycles);
    }
    // The wait below which a share q of the samples lie, in cycles.
    double quantile(double q) const noexcept {
        const uint64_t want = uint64_t(q * double(count_));
        uint64_t seen = 0;
        for (size_t i = 0; i < buckets_.size(); ++i) {
            seen += buckets_[i];
            if (seen > want) {
                return double(i) * 16 + 8;
            }
        }
        return double(max_);
    }
    uint64_t count() const noexcept { return count_; }
    uint64_t max() const noexcept { return max_; }
    void clear() noexcept { *this = wait_histogram{}; }

private:
    std::array<uint64_t, 1 << 16> buckets_{};
    uint64_t count_ = 0, max_ = 0;
};

// What both callbacks share (lcore 1 only while the worker runs; main reads it after).
struct probe {
    // The source.
    uint32_t call_label = 0;     // 0: no call, every frame freed
    double frames_per_cycle = 0; // 0: unpaced
    uint64_t paced_from = 0;
    uint64_t handed = 0; // frames handed to the worker since paced_from
    uint32_t next_seq = 0;
    // The sink.
    bool recording = false;
    wait_histogram waits;
    uint32_t frame_seq = UINT32_MAX; // the frame whose copies are being seen
    uint64_t first_copy = 0, last_copy = 0;
    double skew_sum = 0;
    uint64_t skews = 0;
    std::array<double, max_parties> party_sum{};
    std::array<uint64_t, max_parties> party_count{};

    void clear_records() {
        waits.clear();
        frame_seq = UINT32_MAX;
        skew_sum = 0;
        skews = 0;
        party_sum.fill(0);
        party_count.fill(0);
    }
};

probe the_probe;

uint16_t source_cb(uint16_t, uint16_t, rte_mbuf* pkts[], uint16_t n, uint16_t, void* user) {
    auto& p = *static_cast<probe*>(user);
    const uint64_t now = rte_rdtsc();
    uint16_t keep = n;
    if (p.frames_per_cycle > 0) {
        const double due = double(now - p.paced_from) * p.frames_per_cycle - double(p.handed);
        keep = uint16_t(std::clamp(due, 0.0, double(n)));
        if (keep < n) {
            rte_pktmbuf_free_bulk(pkts + keep, n - keep);
        }
        p.handed += keep;
    }
    for (uint16_t i = 0; i < keep; ++i) {
        rte_mbuf* m = pkts[i];
        m->data_len = 64;
        m->pkt_len = 64;
        uint8_t* f = rte_pktmbuf_mtod(m, uint8_t*);
        bench::write_mpls_header(f, p.call_label, 64);
        wire::store_be32(f + seq_offset, p.next_seq++);
        std::memcpy(f + stamp_offset, &now, sizeof now);
    }
    return keep;
}

uint16_t sink_cb(uint16_t, uint16_t, rte_mbuf* pkts[], uint16_t n, void* user) {
    auto& p = *static_cast<probe*>(user);
    if (!p.recording) {
        return n;
    }
    const uint64_t now = rte_rdtsc();
    for (uint16_t i = 0; i < n; ++i) {
        const uint8_t* f = rte_pktmbuf_mtod(pkts[i], const uint8_t*);
        uint64_t stamp;
        std::memcpy(&stamp, f + stamp_offset, sizeof stamp);
        const uint64_t wait = now - stamp;
        p.waits.add(wait);
        const uint32_t party =
            wire::mpls_label_of(wire::load_be32(f + wire::ether_header_len)) - party_label_base;
        if (party < max_parties) {
            p.party_sum[party] += double(wait);
            ++p.party_count[party];
        }
        const uint32_t seq = wire::load_be32(f + seq_offset);
        if (seq != p.frame_seq) {
            if (p.frame_seq != UINT32_MAX) {
                p.skew_sum += double(p.last_copy - p.first_copy);
                ++p.skews;
            }
            p.frame_seq = seq;
            p.first_copy = now;
        }
        p.last_copy = now;
    }
    return n;
}

struct measured {
    double frames_mpps = 0, copies_mpps = 0;
    double p50 = 0, p99 = 0, p999 = 0, max = 0, skew = 0; // µs
    double party_spread = 0;                              // µs: best to worst party mean
};

double us(double cycles) {
    return cycles / double(rte_get_tsc_hz()) * 1e6;
}

// One run of the call on `label` with n parties at frames_per_second (0: unpaced).
measured run(worker& w, uint16_t in, uint16_t sink, uint32_t label, unsigned n,
             double frames_per_second, double seconds) {
    probe& p = the_probe;
    p.call_label = label;
    p.frames_per_cycle = frames_per_second / double(rte_get_tsc_hz());
    p.handed = 0;
    p.paced_from = rte_rdtsc();
    p.clear_records();
    p.recording = true;
    const bench::window win = bench::run_worker_for(w, seconds);
    p.recording = false;
    measured m;
    m.frames_mpps = win.mpps(win.rx_packets[in]);
    m.copies_mpps = win.mpps(win.tx_packets[sink]);
    m.p50 = us(p.waits.quantile(0.5));
    m.p99 = us(p.waits.quantile(0.99));
    m.p999 = us(p.waits.quantile(0.999));
    m.max = us(double(p.waits.max()));
    m.skew = p.skews != 0 ? us(p.skew_sum / double(p.skews)) : 0;
    double best = 1e300, worst = 0;
    for (unsigned i = 0; i < n && i < max_parties; ++i) {
        if (p.party_count[i] != 0) {
            const double mean = p.party_sum[i] / double(p.party_count[i]);
            best = std::min(best, mean);
            worst = std::max(worst, mean);
        }
    }
    m.party_spread = worst > 0 ? us(worst - best) : 0;
    return m;
}

} // namespace

int main(int argc, char** argv) {
    CLI::App app{"latency_bench: receive-to-port latency, skew and fair fan-out"};
    double seconds = 2;
    std::vector<unsigned> fanouts{1, 8, 64};
    std::vector<unsigned> loads{10, 50, 90};
    unsigned rounds = 3;
    app.add_option("--seconds", seconds, "length of each run (after 0.3 s of warm-up)");
    app.add_option("--parties", fanouts, "fan-outs to measure")
        ->delimiter(',')
        ->check(CLI::Range(1u, max_parties));
    app.add_option("--loads", loads, "loads, in % of the capacity measured")
        ->delimiter(',')
        ->check(CLI::Range(1u, 100u));
    app.add_option("--rounds", rounds, "alternated capacity runs, plain and fair")
        ->check(CLI::Range(1u, 20u));
    CLI11_PARSE(app, argc, argv);
    log::set_threshold(log::level::warning);

    bench::start_eal("latency-bench", 1024, {"net_null0,no-rx=1", "net_null1"});
    rte_mempool* pool = bench::make_pool(65535);
    bench::plane bp({{"in", "net_null1"}, {"sink", "net_null0"}}, pool);
    test::call_client& client = bp.client();
    // For each fan-out a plain call (label 1000 + n) and a fair one (2000 + n).
    for (unsigned n : fanouts) {
        for (bool fair : {false, true}) {
            callmgmt::vc_handle v = 0;
            callmgmt::party_handle first = 0;
            const uint32_t label = (fair ? 2000 : 1000) + n;
            if (client.make("in", 0,
                            test::call(fmt::format("c{}", label), label, true, {.fair = fair}),
                            test::party("p0", "sink", party_label_base), &v,
                            &first) != callmgmt::status::success) {
                std::fprintf(stderr, "latency_bench: make_call: %s\n", client.error("in").c_str());
                return 1;
            }
            for (unsigned i = 1; i < n; ++i) {
                callmgmt::party_handle h = 0;
                if (client.add("in", v,
                               test::party(fmt::format("p{}", i), "sink", party_label_base + i),
                               &h) != callmgmt::status::success) {
                    std::fprintf(stderr, "latency_bench: add_party: %s\n",
                                 client.error("in").c_str());
                    return 1;
                }
            }
        }
    }
    const uint16_t in = bp.port("in"), sink = bp.port("sink");
    if (rte_eth_add_rx_callback(in, 0, source_cb, &the_probe) == nullptr ||
        rte_eth_add_tx_callback(sink, 0, sink_cb, &the_probe) == nullptr) {
        std::fprintf(stderr, "latency_bench: cannot add the RX/TX callbacks: %s\n",
                     rte_strerror(rte_errno));
        return 1;
    }
    worker& w = bp.first_worker();
    std::printf("latency_bench: 1 worker (lcore 1), 64 B frames stamped at receive (net_null1 "
                "RX callback), waits read when each copy is handed to net_null0 (TX callback); "
                "%.1f s per run; tsc %.0f MHz\n",
                seconds, double(rte_get_tsc_hz()) / 1e6);
    std::printf("%7s %5s %6s %9s %10s %9s %9s %9s %9s %9s %11s\n", "parties", "fair", "load",
                "in Mpps", "copies Mpps", "p50 us", "p99 us", "p99.9 us", "max us", "skew us",
                "spread us");
    auto print = [](unsigned n, bool fair, const std::string& load, const measured& m) {
        std::printf("%7u %5s %6s %9.2f %10.2f %9.2f %9.2f %9.2f %9.2f %9.3f %11.3f\n", n,
                    fair ? "yes" : "no", load.c_str(), m.frames_mpps, m.copies_mpps, m.p50, m.p99,
                    m.p999, m.max, m.skew, m.party_spread);
        std::fflush(stdout);
    };
    std::map<unsigned, double> fair_cost;    // [n]: fair copies/s / plain copies/s (median)
    std::map<unsigned, measured> at_half[2]; // [fair][n]: at 50 %
    double worst_p999_at_90 = 0;
    for (unsigned n : fanouts) {
        // Capacity: plain and fair alternated, each round's order swapped.
        std::vector<double> plain_caps, ratios;
        for (unsigned r = 0; r < rounds; ++r) {
            measured plain, fair;
            for (bool f : r % 2 == 0 ? std::array{false, true} : std::array{true, false}) {
                (f ? fair : plain) = run(w, in, sink, (f ? 2000 : 1000) + n, n, 0, seconds);
            }
            print(n, false, "max", plain);
            print(n, true, "max", fair);
            plain_caps.push_back(plain.frames_mpps);
            ratios.push_back(plain.copies_mpps > 0 ? fair.copies_mpps / plain.copies_mpps : 0);
        }
        fair_cost[n] = bench::median(ratios);
        const double capacity = bench::median(plain_caps) * 1e6; // frames/s
        for (unsigned load : loads) {
            for (bool f : {false, true}) {
                if (n == 1 && f) {
                    continue; // one party: nothing to be fair about
                }
                const measured m =
                    run(w, in, sink, (f ? 2000 : 1000) + n, n, capacity * load / 100.0, seconds);
                print(n, f, fmt::format("{}%", load), m);
                if (load == 50) {
                    at_half[f][n] = m;
                }
                if (load == 90) {
                    worst_p999_at_90 = std::max(worst_p999_at_90, m.p999);
                }
            }
        }
    }
    std::printf("(waits: receive to hand-over to the port, TX buffering included; skew: the "
                "mean time from a frame's first copy to its last; spread: the best party's mean "
                "wait to the worst's)\n");
    for (unsigned n : fanouts) {
        if (n > 1) {
            bench::summary("latency", fmt::format("{} parties: fair copies per second / plain", n),
                           fair_cost[n], 0.98);
        }
    }
    for (unsigned n : fanouts) {
        if (n > 1 && at_half[1].count(n) != 0 && at_half[1][n].skew > 0) {
            bench::summary_at_most(
                "latency",
                fmt::format("{} parties at 50 %, fair: party mean spread / mean skew", n),
                at_half[1][n].party_spread / at_half[1][n].skew, 0.05);
            bench::summary(
                "latency",
                fmt::format("{} parties at 50 %, plain: party mean spread / skew "
                            "(what fair removes)",
                            n),
                at_half[0][n].skew > 0 ? at_half[0][n].party_spread / at_half[0][n].skew : 0, 0);
        }
    }
    for (unsigned n : fanouts) {
        if (at_half[0].count(n) != 0) {
            bench::summary("latency", fmt::format("{} parties at 50 %: p99 wait (us)", n),
                           at_half[0][n].p99, 0);
        }
    }
    bench::summary("latency", "worst p99.9 wait at 90 % (us)", worst_p999_at_90, 0);
    std::fflush(stdout);
    std::_Exit(0);
}

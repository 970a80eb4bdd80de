#include "perf/bench_support.hh"

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <fmt/format.h>
#include <rte_cycles.h>
#include <rte_errno.h>
#include <rte_eth_ring.h>
#include <rte_ethdev.h>
#include <rte_launch.h>
#include <unistd.h>

#include "dataplane/wire.hh"
#include "port/eal.hh"
#include "support/worker_launch.hh"

namespace vcplane::bench {

namespace {
vcplane_config parse_as_reader(const std::string& toml) {
    rcu_register_thread(); // the control thread is a reader that stays offline
    rcu_thread_offline();
    return parse_config_string(toml, "bench.toml");
}
} // namespace

plane::plane(const std::string& config_toml, rte_mempool* pool)
    : config_(parse_as_reader(config_toml))
    , plane_(config_, ctl_.gp, pool, 1, ctl_.post()) {
    plane_.start();
    client_.emplace(plane_.registrar(), [this] { ctl_.pump(0); });
}

namespace {
std::string connections_toml(const std::vector<std::pair<std::string, std::string>>& connections) {
    std::string toml = "[eal]\nlcores = [0, 1]\n";
    for (const auto& [name, device] : connections) {
        toml += fmt::format("[connections.{}]\ndevice = \"{}\"\n", name, device);
    }
    return toml;
}
} // namespace

plane::plane(const std::vector<std::pair<std::string, std::string>>& connections, rte_mempool* pool,
             const std::string& extra_toml)
    : plane(connections_toml(connections) + extra_toml, pool) {}

uint16_t plane::port(const std::string& connection) const {
    return plane_.state().find_connection(connection)->port;
}

rte_mempool* make_pool(unsigned buffers) {
    rte_mempool* pool =
        rte_pktmbuf_pool_create("bench_pool", buffers, 256, 0, RTE_MBUF_DEFAULT_BUF_SIZE, 0);
    if (pool == nullptr) {
        std::fprintf(stderr, "cannot create a pool of %u mbufs: %s\n", buffers,
                     rte_strerror(rte_errno));
        std::exit(1);
    }
    return pool;
}

void start_eal(const std::string& program, unsigned memory_mb,
               const std::vector<std::string>& vdevs) {
    std::vector<std::string> args{program,
                                  "-l",
                                  "0-1",
                                  "--main-lcore",
                                  "0",
                                  "--no-huge",
                                  "-m",
                                  std::to_string(memory_mb),
                                  "--no-pci",
                                  "--file-prefix",
                                  fmt::format("{}-{}", program, getpid()),
                                  "--log-level",
                                  "warning"};
    for (const auto& v : vdevs) {
        args.push_back("--vdev=" + v);
    }
    eal_start(args);
}

bool make_ring_port(const std::string& name, rte_ring* rx, rte_ring* tx) {
    return rx != nullptr && tx != nullptr &&
           rte_eth_from_rings(name.c_str(), &rx, 1, &tx, 1, 0) >= 0;
}

void launch_worker(worker& w, std::atomic<bool>& stop) {
    static test::worker_launch launched; // read by lcore 1 until it stops
    stop = false;
    launched = {&w, &stop};
    launched.launch(1);
}

void stop_worker(std::atomic<bool>& stop) {
    stop = true;
    rte_eal_wait_lcore(1);
}

uint64_t window::tx_total() const noexcept {
    uint64_t n = 0;
    for (uint64_t t : tx_packets) {
        n += t;
    }
    return n;
}

window run_worker_for(worker& w, double seconds) {
    const worker_counters& c = w.counters();
    const auto snapshot = [&c](window& s) {
        s.busy_cycles = c.busy_cycles.read();
        for (uint16_t p = 0; p < RTE_MAX_ETHPORTS; ++p) {
            s.rx_packets[p] = c.port[p].rx_packets.read();
            s.tx_packets[p] = c.port[p].tx_packets.read();
        }
    };
    std::atomic<bool> stop;
    launch_worker(w, stop);
    rte_delay_us_sleep(300000); // warm-up
    window before, after;
    snapshot(before);
    const uint64_t t0 = rte_rdtsc();
    rte_delay_us_sleep(unsigned(seconds * 1e6));
    snapshot(after);
    after.seconds = double(rte_rdtsc() - t0) / double(rte_get_tsc_hz());
    stop_worker(stop);
    after.busy_cycles -= before.busy_cycles;
    for (uint16_t p = 0; p < RTE_MAX_ETHPORTS; ++p) {
        after.rx_packets[p] -= before.rx_packets[p];
        after.tx_packets[p] -= before.tx_packets[p];
    }
    return after;
}

double testpmd_tx_mpps(const std::string& vdevs, const std::string& options, unsigned ports,
                       double seconds) {
    // Without hugepages testpmd takes several seconds to start: hence the generous timeout.
    const std::string prefix = fmt::format("bench-ref-{}", getpid());
    const std::string cmd =
        fmt::format("timeout -s INT {} dpdk-testpmd -l 0-1 --main-lcore 0 --no-huge -m 1024 "
                    "--no-pci {} --file-prefix={} --log-level=error -- --total-num-mbufs=16384 "
                    "--nb-cores=1 --stats-period 1 {} 2>&1",
                    int(seconds + 12), vdevs, prefix, options);
    FILE* p = popen(cmd.c_str(), "r");
    if (p == nullptr) {
        std::fprintf(stderr, "bench: cannot run dpdk-testpmd\n");
        return 0;
    }
    std::vector<double> per_port, summed;
    std::string output;
    char line[512];
    while (std::fgets(line, sizeof line, p) != nullptr) {
        output += line;
        unsigned long long v = 0;
        if (std::sscanf(line, " Tx-pps: %llu", &v) == 1) {
            per_port.push_back(double(v));
            if (per_port.size() == ports) {
                double sum = 0;
                for (double x : per_port) {
                    sum += x;
                }
                summed.push_back(sum);
                per_port.clear();
            }
        }
    }
    pclose(p);
    std::system(fmt::format("rm -rf /var/run/dpdk/{}", prefix).c_str());
    if (summed.size() < 3) {
        std::fprintf(stderr, "bench: dpdk-testpmd gave %zu readings:\n%s\n", summed.size(),
                     output.c_str());
        return 0;
    }
    summed.erase(summed.begin(), summed.begin() + 2);
    return median(std::move(summed)) / 1e6;
}

void write_mpls_header(uint8_t* f, uint32_t label, uint8_t ttl) {
    static const uint8_t dst[6] = {2, 0, 0, 0, 0, 0xfe}, src[6] = {2, 0, 0, 0, 0, 1};
    wire::write_macs(f, dst, src);
    wire::store_be16(f + wire::ethertype_offset, wire::ethertype_mpls);
    wire::store_be32(f + wire::ether_header_len, wire::make_mpls_entry(label, 0, true, ttl));
}

bool add_header_source(uint16_t port, header_source& src) {
    auto write_headers = [](uint16_t, uint16_t, rte_mbuf* pkts[], uint16_t n, uint16_t,
                            void* user) -> uint16_t {
        auto& s = *static_cast<header_source*>(user);
        for (uint16_t i = 0; i < n; ++i) {
            rte_mbuf* m = pkts[i];
            m->data_len = uint16_t(std::min<uint32_t>(s.size, s.segment));
            m->pkt_len = m->data_len;
            for (rte_mbuf* last = m; m->pkt_len < s.size && s.tail_pool != nullptr;) {
                rte_mbuf* t = rte_pktmbuf_alloc(s.tail_pool);
                if (t == nullptr) {
                    break; // a shorter frame: the copies counted are still copies
                }
                t->data_len = uint16_t(std::min<uint32_t>(s.size - m->pkt_len, s.segment));
                last->next = t;
                last = t;
                m->pkt_len += t->data_len;
                ++m->nb_segs;
            }
            write_mpls_header(rte_pktmbuf_mtod(m, uint8_t*), s.first_label + s.next, s.ttl);
            if (++s.next == s.labels) {
                s.next = 0;
            }
        }
        return n;
    };
    if (rte_eth_add_rx_callback(port, 0, write_headers, &src) == nullptr) {
        std::fprintf(stderr, "cannot add an RX callback on port %u: %s\n", port,
                     rte_strerror(rte_errno));
        return false;
    }
    return true;
}

double source_alone_mpps(uint16_t port, double seconds) {
    struct args_t {
        uint16_t port;
        double seconds;
        uint64_t frames = 0;
        double elapsed = 0;
    };
    static args_t args;
    args = {port, seconds};
    rte_eal_remote_launch(
        [](void* p) {
            auto& a = *static_cast<args_t*>(p);
            rte_mbuf* pkts[32];
            const uint64_t hz = rte_get_tsc_hz();
            const uint64_t start = rte_rdtsc(), end = start + uint64_t(a.seconds * double(hz));
            uint64_t now = start;
            for (; now < end; now = rte_rdtsc()) {
                for (int k = 0; k < 64; ++k) { // clock read once per 64 bursts
                    const uint16_t n = rte_eth_rx_burst(a.port, 0, pkts, 32);
                    rte_pktmbuf_free_bulk(pkts, n);
                    a.frames += n;
                }
            }
            a.elapsed = double(now - start) / double(hz);
            return 0;
        },
        &args, 1);
    rte_eal_wait_lcore(1);
    return args.elapsed > 0 ? double(args.frames) / args.elapsed / 1e6 : 0;
}

void summary(const std::string& benchmark, const std::string& measure, double value,
             double target_ratio) {
    const std::string target = target_ratio > 0 ? fmt::format(">= {:.2f}", target_ratio) : "-";
    const char* verdict = target_ratio <= 0 ? "-" : value >= target_ratio ? "met" : "NOT MET";
    std::printf("summary: %s | %s | %.3f | %s | %s\n", benchmark.c_str(), measure.c_str(), value,
                target.c_str(), verdict);
    std::fflush(stdout);
}

void summary_at_most(const std::string& benchmark, const std::string& measure, double value,
                     double limit) {
    std::printf("summary: %s | %s | %.3f | <= %.2f | %s\n", benchmark.c_str(), measure.c_str(),
                value, limit, value <= limit ? "met" : "NOT MET");
    std::fflush(stdout);
}

double median(std::vector<double> v) {
    std::sort(v.begin(), v.end());
    return v.empty() ? 0 : v[v.size() / 2];
}

uint64_t tx_packets(const worker_counters& c) {
    uint64_t n = 0;
    for (uint16_t p = 0; p < RTE_MAX_ETHPORTS; ++p) {
        n += c.port[p].tx_packets.read();
    }
    return n;
}

} // namespace vcplane::bench

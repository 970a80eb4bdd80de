// libFuzzer target: received frames through a real worker on real EAL ports. EAL runs once
// (no hugepages, ring-backed ethdev ports started by the daemon's own start_port); the table
// holds a few MPLS and VLAN calls, point-to-point and multipoint (one of more than 64 parties,
// so its party array is in chunks), fair and in order, one metered, some parties on a port
// that cannot send chains and some on a port whose TX ring holds 16 frames. Each input is a
// burst of up to 48 frames: for each, the port it arrives on, its bytes (or a well-formed
// header for one of a few keys, known, unknown and reserved, followed by the fuzzer's bytes),
// and whether it arrives in one segment or chained; and which worker reads them: one with
// ample pools, or one whose replica, header and reference pools hold a few buffers each.
//
// The target keeps its own description of the table and its own reading of the wire format
// (docs/design.md §3), written apart from the worker's, and holds the worker to it.
//
// Invariants, each a crash when broken (ASan and UBSan add theirs):
//   - every frame is counted as received on its port, frames and bytes;
//   - a frame leaves only as the copy that a party of the VC its key names is owed: the party's
//     next hop and its port's MAC, the party's label (TC and S kept, TTL one less) or VID (PCP
//     and DEI kept), every other byte as received, on the party's port; a well-formed mbuf;
//     each party gets at most one copy of each frame;
//   - every frame that is not forwarded is dropped for the reason the format gives (too short,
//     wrong ethertype, reserved key, unknown key, TTL, no connection), counted once; a frame of
//     the metered call leaves to all its parties or is counted policed;
//   - every copy owed is sent, or counted lost (no_mbuf, tx_full): sent + lost = owed, and each
//     port counts as transmitted exactly the frames that left it;
//   - once the copies are freed, every mbuf is back in its pool.

#include <fuzzer/FuzzedDataProvider.h>

#include <array>
#include <cstdio>
#include <cstdlib>
#include <fmt/format.h>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include <rte_mbuf.h>
#include <rte_mempool.h>
#include <rte_ring.h>
#include <urcu-qsbr.h>

#include "control/switch_state.hh"
#include "dataplane/counter_slots.hh"
#include "dataplane/worker.hh"
#include "tests/dpdk/harness.hh"

namespace {

using namespace vcplane;
using namespace vcplane::test;

[[noreturn]] void broken(const char* rule, const std::string& detail) {
    std::fprintf(stderr, "frames_fuzz: broken invariant: %s (%s)\n", rule, detail.c_str());
    std::abort();
}

// The wire format as this target reads it (not the worker's helpers).
constexpr size_t header_len = 18; // Ethernet and one label stack entry or tag
constexpr uint16_t mpls_type = 0x8847;
constexpr uint16_t vlan_type = 0x8100;

uint32_t be32(const uint8_t* p) {
    return uint32_t(p[0]) << 24 | uint32_t(p[1]) << 16 | uint32_t(p[2]) << 8 | p[3];
}
uint16_t be16(const uint8_t* p) {
    return uint16_t(p[0] << 8 | p[1]);
}
void put_be32(uint8_t* p, uint32_t v) {
    p[0] = uint8_t(v >> 24);
    p[1] = uint8_t(v >> 16);
    p[2] = uint8_t(v >> 8);
    p[3] = uint8_t(v);
}

struct model_party {
    unsigned port; // index into the rig's ports
    uint32_t out_key;
    mac_address next_hop;
};

struct model_vc {
    std::vector<model_party> parties;
    bool metered = false;
};

enum class outcome { forward, truncated, wrong_ethertype, reserved_key, unknown_key, ttl, stray };

drop_reason reason_of(outcome o) {
    switch (o) {
    case outcome::truncated: return drop_reason::truncated;
    case outcome::wrong_ethertype: return drop_reason::wrong_ethertype;
    case outcome::reserved_key: return drop_reason::reserved_key;
    case outcome::unknown_key: return drop_reason::unknown_key;
    case outcome::ttl: return drop_reason::ttl_expired;
    default: return drop_reason::no_connection;
    }
}

// The ports: index, name, media (null: claimed by nothing), TX ring size, sends chains.
struct port_spec {
    const char* name;
    const char* media;
    unsigned tx_capacity;
    bool takes_chains;
};
constexpr std::array<port_spec, 9> port_specs{{
    {"in", "mpls", 4096, true},
    {"out1", "mpls", 4096, true},
    {"out2", "mpls", 4096, true},
    {"nochain", "mpls", 4096, false},
    {"small", "mpls", 16, true},
    {"vin", "vlan", 4096, true},
    {"vout", "vlan", 4096, true},
    {"vout2", "vlan", 4096, false},
    {"stray", nullptr, 4096, true},
}};
enum port_index : unsigned { in, out1, out2, nochain, small, vin, vout, vout2, stray };
// Where frames may arrive: both ingress connections, an egress connection with no VCs of its
// own, and the port no connection claims.
constexpr std::array<unsigned, 5> arrival_ports{in, vin, out1, vout, stray};

// Keys a well-formed header may carry, per media: known, reserved and unknown ones.
constexpr std::array<uint32_t, 7> mpls_keys{100, 101, 102, 103, 104, 7, 999};
constexpr std::array<uint32_t, 6> vlan_keys{10, 11, 12, 0, 4095, 99};

mac_address next_hop(unsigned n) {
    return {0x02, 0xaa, 0, 0, uint8_t(n >> 8), uint8_t(n)};
}

class rig {
public:
    rig() {
        start_eal();
        rcu_register_thread();
        for (const port_spec& s : port_specs) {
            ports_.push_back(make_ring_port(s.name, s.tx_capacity));
        }
        for (unsigned i = 0; i < port_specs.size(); ++i) {
            const port_spec& s = port_specs[i];
            if (s.media != nullptr) {
                state_.add_connection(s.name, s.name, ports_[i].port,
                                      std::string(s.media) == "vlan" ? media_kind::vlan
                                                                     : media_kind::mpls,
                                      ports_[i].mac, 1500, 0, s.takes_chains);
            }
        }
        unsigned hop = 1;
        auto parties = [&](std::initializer_list<unsigned> at, unsigned n, uint32_t first_key) {
            std::vector<model_party> ps;
            for (unsigned i = 0; i < n; ++i) {
                ps.push_back({std::data(at)[i % at.size()], first_key + i, next_hop(hop++)});
            }
            return ps;
        };
        add_call(in, 100, {parties({out1}, 1, 200)});
        add_call(in, 101, {parties({out1, out2, small}, 3, 300)});
        add_call(in, 102, {parties({out1, out2, nochain}, 70, 1000)});
        add_call(in, 103, {parties({out1, out2}, 2, 400), true},
                 traffic_contract{.sustained_rate = 20000, .burst = 3000});
        add_call(in, 104, {parties({out1, nochain, out2}, 5, 500)}, traffic_contract{.fair = true});
        add_call(vin, 10, {parties({vout}, 1, 20)});
        add_call(vin, 11, {parties({vout, vout2}, 3, 21)});
        add_call(vin, 12, {parties({vout, vout2}, 66, 100)}, traffic_contract{.fair = true});

        // Linear buffers for frames of several segments to the 66-party call: enough, and one
        // (a frame that finds none shares its segments instead).
        constexpr uint16_t linear_room = RTE_PKTMBUF_HEADROOM + linear_buffer_len;
        ample_ = make_worker(0, shared_pool(), pool("ample_hdr", 4095, RTE_PKTMBUF_HEADROOM + 64),
                             pool("ample_ref", 4095, 0), pool("ample_lin", 63, linear_room));
        scarce_ = make_worker(1, pool("scarce_copy", 24, RTE_MBUF_DEFAULT_BUF_SIZE),
                              pool("scarce_hdr", 12, RTE_PKTMBUF_HEADROOM + 64),
                              pool("scarce_ref", 12, 0), pool("scarce_lin", 1, linear_room));
    }

    void run(FuzzedDataProvider& fdp);

private:
    static rte_mempool* pool(const char* name, unsigned n, uint16_t data_room) {
        rte_mempool* p = rte_pktmbuf_pool_create(name, n, 0, 0, data_room, 0);
        if (p == nullptr) {
            broken("set-up", fmt::format("pool {}", name));
        }
        return p;
    }

    void add_call(unsigned at, uint32_t key, model_vc v, const traffic_contract& flow = {}) {
        const connection_state& conn = *state_.find_connection(port_specs[at].name);
        std::vector<party_spec> specs;
        std::vector<uint32_t> slots;
        for (const model_party& p : v.parties) {
            specs.push_back(
                {fmt::format("p{}", specs.size()), port_specs[p.port].name, p.out_key, p.next_hop});
            slots.push_back(uint32_t(slots.size() + 1));
        }
        table_error error;
        party_set* set = state_.build_parties(conn, specs, slots, &error);
        vc* made = set != nullptr
                       ? state_.new_vc(conn, key, uint32_t(calls_.size() + 1), set, flow, &error)
                       : nullptr;
        if (made == nullptr || !state_.publish_vc(conn, made)) {
            broken("set-up", fmt::format("call {}: {}", key, error.why));
        }
        calls_[{at, key}] = std::move(v);
    }

    struct worker_rig {
        std::unique_ptr<worker> w;
        std::vector<rte_mempool*> pools;
    };

    worker_rig make_worker(unsigned id, rte_mempool* copies, rte_mempool* headers,
                           rte_mempool* refs, rte_mempool* linear) {
        worker_rig r;
        r.w = std::make_unique<worker>(id, state_.table(), copies, 0);
        r.w->set_chain_pools(headers, refs);
        r.w->set_linear_pool(linear);
        r.w->set_counter_slots(vc_slots_.worker_array(id), party_slots_.worker_array(id));
        auto* queues = new rx_queue_list{};
        for (const ring_port& p : ports_) {
            queues->queues[queues->count++] = rx_queue_ref{p.port, 0};
        }
        delete r.w->publish_rx_queues(queues); // the first list replaces none
        r.pools = {shared_pool(), copies, headers, refs, linear};
        return r;
    }

    struct arrival {
        unsigned port;
        std::vector<uint8_t> bytes;
        size_t first_segment;
    };
    arrival next_frame(FuzzedDataProvider& fdp) const;
    // What the format says becomes of f (the model's VC in *v when it is forwarded).
    outcome judge(const arrival& f, const model_vc** v) const;

    switch_state state_{2};
    counter_slots vc_slots_{2, true, 16};
    counter_slots party_slots_{2, true, max_parties_per_call};
    std::vector<ring_port> ports_;
    std::map<std::pair<unsigned, uint32_t>, model_vc> calls_;
    worker_rig ample_, scarce_;
};

rig::arrival rig::next_frame(FuzzedDataProvider& fdp) const {
    arrival a;
    a.port = arrival_ports[fdp.ConsumeIntegralInRange<size_t>(0, arrival_ports.size() - 1)];
    const uint8_t shape = fdp.ConsumeIntegral<uint8_t>();
    const size_t len = shape & 4 ? fdp.ConsumeIntegralInRange<size_t>(0, 9000)
                                 : fdp.ConsumeIntegralInRange<size_t>(0, 300);
    a.bytes = fdp.ConsumeBytes<uint8_t>(len);
    if (shape & 1) { // a well-formed header for one of the keys, the rest the fuzzer's
        a.bytes.resize(std::max(a.bytes.size(), header_len));
        const bool vlan = shape & 2;
        const uint32_t key =
            vlan ? vlan_keys[fdp.ConsumeIntegralInRange<size_t>(0, vlan_keys.size() - 1)]
                 : mpls_keys[fdp.ConsumeIntegralInRange<size_t>(0, mpls_keys.size() - 1)];
        a.bytes[12] = uint8_t((vlan ? vlan_type : mpls_type) >> 8);
        a.bytes[13] = uint8_t(vlan ? vlan_type : mpls_type);
        const uint32_t low = be32(&a.bytes[14]); // TC, S, TTL or PCP, DEI and the inner type
        put_be32(&a.bytes[14],
                 vlan ? (key << 16 | (low & 0xf000ffff)) : (key << 12 | (low & 0xfff)));
    }
    // Whole, or in segments (at most 16, so a burst cannot empty the pool).
    const size_t whole_max = RTE_MBUF_DEFAULT_DATAROOM;
    a.first_segment = a.bytes.size();
    if ((shape & 8) || a.bytes.size() > whole_max) {
        const size_t least = std::max<size_t>(1, (a.bytes.size() + 15) / 16);
        a.first_segment = fdp.ConsumeIntegralInRange<size_t>(least, whole_max);
    }
    return a;
}

outcome rig::judge(const arrival& f, const model_vc** v) const {
    const char* media = port_specs[f.port].media;
    if (media == nullptr) {
        return outcome::stray;
    }
    if (std::min(f.first_segment, f.bytes.size()) < header_len) {
        return outcome::truncated;
    }
    const bool vlan = std::string(media) == "vlan";
    if (be16(&f.bytes[12]) != (vlan ? vlan_type : mpls_type)) {
        return outcome::wrong_ethertype;
    }
    const uint32_t word = be32(&f.bytes[14]);
    const uint32_t key = vlan ? (word >> 16) & 0xfff : word >> 12;
    if (vlan ? key == 0 || key == 4095 : key < 16) {
        return outcome::reserved_key;
    }
    const auto it = calls_.find({f.port, key});
    if (it == calls_.end()) {
        return outcome::unknown_key;
    }
    if (!vlan && (word & 0xff) <= 1) {
        return outcome::ttl;
    }
    *v = &it->second;
    return outcome::forward;
}

// The copy of `in` that party p is owed.
std::vector<uint8_t> owed_copy(std::vector<uint8_t> in, const model_party& p,
                               const mac_address& port_mac, bool vlan) {
    std::copy(p.next_hop.begin(), p.next_hop.end(), in.begin());
    std::copy(port_mac.begin(), port_mac.end(), in.begin() + 6);
    const uint32_t word = be32(&in[14]);
    put_be32(&in[14], vlan ? (word & 0xf000ffff) | p.out_key << 16
                           : p.out_key << 12 | (word & 0xf00) | ((word & 0xff) - 1));
    return in;
}

void rig::run(FuzzedDataProvider& fdp) {
    worker_rig& wr = fdp.ConsumeBool() ? scarce_ : ample_;
    worker& w = *wr.w;
    const worker_counters& c = w.counters();
    std::vector<unsigned> pool_free;
    for (rte_mempool* p : wr.pools) {
        pool_free.push_back(rte_mempool_avail_count(p));
    }
    std::array<uint64_t, drop_reason_count> drops_before;
    for (size_t r = 0; r < drop_reason_count; ++r) {
        drops_before[r] = c.drops[r].read();
    }
    std::vector<std::array<uint64_t, 4>> port_before;
    for (const ring_port& p : ports_) {
        const port_counters& pc = c.port[p.port];
        port_before.push_back(
            {pc.rx_packets.read(), pc.rx_bytes.read(), pc.tx_packets.read(), pc.tx_bytes.read()});
    }

    std::vector<arrival> burst;
    const size_t n = fdp.ConsumeIntegralInRange<size_t>(1, 48);
    while (burst.size() < n && fdp.remaining_bytes() > 0) {
        burst.push_back(next_frame(fdp));
    }
    std::vector<uint64_t> rx_frames(ports_.size()), rx_bytes(ports_.size());
    for (const arrival& a : burst) {
        rte_mbuf* m = a.first_segment >= a.bytes.size()
                          ? to_mbuf(a.bytes, shared_pool())
                          : to_chain(a.bytes, shared_pool(), uint16_t(a.first_segment));
        inject(ports_[a.port], m);
        ++rx_frames[a.port];
        rx_bytes[a.port] += a.bytes.size();
    }
    for (int pass = 0; pass < 8; ++pass) { // 48 frames on one queue: two passes
        w.poll_once();
        rcu_quiescent_state();
    }

    // What each frame is owed, and the drops the format gives.
    std::array<uint64_t, drop_reason_count> drops_owed{};
    std::vector<const model_vc*> vc_of(burst.size(), nullptr);
    uint64_t metered_frames = 0, metered_parties = 0, copies_owed = 0;
    for (size_t i = 0; i < burst.size(); ++i) {
        const outcome o = judge(burst[i], &vc_of[i]);
        if (o != outcome::forward) {
            ++drops_owed[size_t(reason_of(o))];
        } else if (vc_of[i]->metered) {
            ++metered_frames;
            metered_parties = vc_of[i]->parties.size();
        } else {
            copies_owed += vc_of[i]->parties.size();
        }
    }
    const auto dropped = [&](drop_reason r) {
        return c.drops[size_t(r)].read() - drops_before[size_t(r)];
    };
    for (drop_reason r :
         {drop_reason::truncated, drop_reason::wrong_ethertype, drop_reason::reserved_key,
          drop_reason::unknown_key, drop_reason::ttl_expired, drop_reason::no_connection}) {
        if (dropped(r) != drops_owed[size_t(r)]) {
            broken("a frame not forwarded is dropped for its reason, once",
                   fmt::format("{}: counted {}, owed {}", drop_reason_name(r), dropped(r),
                               drops_owed[size_t(r)]));
        }
    }
    const uint64_t policed = dropped(drop_reason::policed);
    if (policed > metered_frames) {
        broken("only the metered call's frames are policed",
               fmt::format("{} policed of {}", policed, metered_frames));
    }
    copies_owed += (metered_frames - policed) * metered_parties;

    // Every frame that left, matched to the copy a party of a received frame was owed.
    std::vector<std::vector<bool>> delivered(burst.size());
    for (size_t i = 0; i < burst.size(); ++i) {
        delivered[i].assign(vc_of[i] != nullptr ? vc_of[i]->parties.size() : 0, false);
    }
    uint64_t sent = 0;
    for (unsigned pi = 0; pi < ports_.size(); ++pi) {
        const ring_port& port = ports_[pi];
        const port_counters& pc = c.port[port.port];
        if (pc.rx_packets.read() - port_before[pi][0] != rx_frames[pi] ||
            pc.rx_bytes.read() - port_before[pi][1] != rx_bytes[pi]) {
            broken("every frame is counted as received on its port", port_specs[pi].name);
        }
        uint64_t frames = 0, bytes = 0;
        void* obj;
        while (rte_ring_dequeue(port.tx, &obj) == 0) {
            auto* m = static_cast<rte_mbuf*>(obj);
            const char* why = nullptr;
            if (rte_mbuf_check(m, 1, &why) != 0) {
                broken("a copy is a well-formed mbuf", why);
            }
            const std::vector<uint8_t> out = to_bytes(m);
            rte_pktmbuf_free(m);
            ++frames;
            bytes += out.size();
            bool matched = false;
            for (size_t i = 0; i < burst.size() && !matched; ++i) {
                if (vc_of[i] == nullptr || burst[i].bytes.size() != out.size()) {
                    continue;
                }
                const bool vlan = burst[i].port == vin;
                for (size_t j = 0; j < vc_of[i]->parties.size() && !matched; ++j) {
                    const model_party& p = vc_of[i]->parties[j];
                    if (!delivered[i][j] && p.port == pi &&
                        owed_copy(burst[i].bytes, p, port.mac, vlan) == out) {
                        delivered[i][j] = matched = true;
                    }
                }
            }
            if (!matched) {
                broken("a frame leaves only as a copy a party is owed, once",
                       fmt::format("{} bytes on {}", out.size(), port_specs[pi].name));
            }
        }
        if (pc.tx_packets.read() - port_before[pi][2] != frames ||
            pc.tx_bytes.read() - port_before[pi][3] != bytes) {
            broken("a port counts as transmitted the frames that left it",
                   fmt::format("{}: {} frames left", port_specs[pi].name, frames));
        }
        sent += frames;
    }
    const uint64_t lost = dropped(drop_reason::no_mbuf) + dropped(drop_reason::tx_full);
    if (sent + lost != copies_owed) {
        broken("every copy owed is sent or counted lost",
               fmt::format("sent {} + lost {} != owed {}", sent, lost, copies_owed));
    }
    for (size_t i = 0; i < wr.pools.size(); ++i) {
        if (rte_mempool_avail_count(wr.pools[i]) != pool_free[i]) {
            broken("every mbuf returns to its pool",
                   fmt::format("{}: {} free, {} before", wr.pools[i]->name,
                               rte_mempool_avail_count(wr.pools[i]), pool_free[i]));
        }
    }
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    static rig* r = new rig; // lives for the process: EAL cannot start twice
    FuzzedDataProvider fdp(data, size);
    r->run(fdp);
    return 0;
}

#include "client/top.hh"

#include <algorithm>
#include <fmt/format.h>
#include <map>
#include <stdexcept>
#include <tuple>

namespace vcplane {
namespace {

using nlohmann::json;

uint64_t u(const json& j, const char* key) {
    const auto it = j.find(key);
    if (it == j.end() || !it->is_number_integer() || it->get<int64_t>() < 0) {
        throw std::invalid_argument(fmt::format("stats reply: '{}' is not a count", key));
    }
    return it->get<uint64_t>();
}

// A counter's increase; a counter that went backwards (a port detached and attached again
// under the same name starts from 0) counts from 0.
double grew(uint64_t before, uint64_t after) {
    return after >= before ? double(after - before) : double(after);
}

// "1.23 M", "950 k", "12": rates for a terminal.
std::string si(double x) {
    if (x >= 1e9) {
        return fmt::format("{:.2f} G", x / 1e9);
    }
    if (x >= 1e6) {
        return fmt::format("{:.2f} M", x / 1e6);
    }
    if (x >= 1e4) {
        return fmt::format("{:.1f} k", x / 1e3);
    }
    return fmt::format("{:.0f}", x);
}

std::string duration(double seconds) {
    if (seconds <= 0) {
        return "-";
    }
    if (seconds < 1e-3) {
        return fmt::format("{:.1f} us", seconds * 1e6);
    }
    return fmt::format("{:.2f} ms", seconds * 1e3);
}

} // namespace

double histogram_quantile(double q, const std::vector<double>& bounds,
                          const std::vector<uint64_t>& le_delta, uint64_t count_delta) {
    if (count_delta == 0 || bounds.empty() || le_delta.size() != bounds.size()) {
        return 0;
    }
    const double rank = q * double(count_delta);
    double lower = 0;
    uint64_t below = 0;
    for (size_t i = 0; i < bounds.size(); ++i) {
        if (double(le_delta[i]) >= rank) {
            const uint64_t in_bucket = le_delta[i] - below;
            const double within = in_bucket == 0 ? 1 : (rank - double(below)) / double(in_bucket);
            return lower + (bounds[i] - lower) * within;
        }
        lower = bounds[i];
        below = le_delta[i];
    }
    return bounds.back();
}

namespace {

// Per worker: its busy share, frames and copies per second, cycles per frame.
void add_workers(const json& before, const json& after, double per_s, top_view& v) {
    std::map<unsigned, const json*> workers_before;
    for (const auto& w : before.at("workers")) {
        workers_before[unsigned(u(w, "worker"))] = &w;
    }
    for (const auto& w : after.at("workers")) {
        const unsigned id = unsigned(u(w, "worker"));
        const auto it = workers_before.find(id);
        if (it == workers_before.end()) {
            continue;
        }
        const json& b = *it->second;
        const double busy = grew(u(b, "busy_cycles"), u(w, "busy_cycles"));
        const double idle = grew(u(b, "idle_cycles"), u(w, "idle_cycles"));
        const double rx = grew(u(b, "rx_packets"), u(w, "rx_packets"));
        const double tx = grew(u(b, "tx_packets"), u(w, "tx_packets"));
        v.workers.push_back({id, busy + idle > 0 ? 100 * busy / (busy + idle) : 0, rx * per_s,
                             tx * per_s, rx > 0 ? busy / rx : 0});
    }
}

// Per connection: frames and bits per second each way, and the port's errors.
void add_connections(const json& before, const json& after, double per_s, top_view& v) {
    std::map<std::pair<std::string, std::string>, const json*> ports_before;
    for (const auto& p : before.at("connections")) {
        ports_before[{p.at("connection").get<std::string>(), p.at("device").get<std::string>()}] =
            &p;
    }
    for (const auto& p : after.at("connections")) {
        top_view::connection_row row;
        row.connection = p.at("connection").get<std::string>();
        row.device = p.at("device").get<std::string>();
        row.link_up = p.value("link_up", false);
        const auto it = ports_before.find({row.connection, row.device});
        if (it != ports_before.end()) {
            const json& b = *it->second;
            row.rx_frames_per_s = grew(u(b, "rx_packets"), u(p, "rx_packets")) * per_s;
            row.rx_bits_per_s = 8 * grew(u(b, "rx_bytes"), u(p, "rx_bytes")) * per_s;
            row.tx_frames_per_s = grew(u(b, "tx_packets"), u(p, "tx_packets")) * per_s;
            row.tx_bits_per_s = 8 * grew(u(b, "tx_bytes"), u(p, "tx_bytes")) * per_s;
            double errors = 0;
            for (const char* k : {"rx_missed", "rx_errors", "tx_errors", "rx_nombuf"}) {
                errors += grew(u(b, k), u(p, k));
            }
            row.errors_per_s = errors * per_s;
        }
        v.connections.push_back(std::move(row));
    }
}

// Drops by reason, per second.
void add_drops(const json& before, const json& after, double per_s, top_view& v) {
    const json& drops_before = before.at("drops");
    for (const auto& [reason, n] : after.at("drops").items()) {
        const uint64_t was = drops_before.value(reason, uint64_t(0));
        v.drops_per_s.emplace_back(reason, grew(was, n.get<uint64_t>()) * per_s);
    }
}

// The busiest calls (per_vc), at most top_calls.
void add_busiest_calls(const json& before, const json& after, double per_s, top_view& v) {
    v.per_vc = after.value("per_vc", false);
    using call_key = std::tuple<std::string, std::string, uint64_t>;
    std::map<call_key, const json*> calls_before;
    for (const auto& c : before.at("calls")) {
        calls_before[{c.at(0).get<std::string>(), c.at(1).get<std::string>(),
                      c.at(2).get<uint64_t>()}] = &c;
    }
    for (const auto& c : after.at("calls")) {
        top_view::call_row row{c.at(0).get<std::string>(), c.at(1).get<std::string>(),
                               c.at(2).get<uint64_t>()};
        const auto it = calls_before.find({row.connection, row.call, row.key});
        const uint64_t p0 = it == calls_before.end() ? 0 : it->second->at(3).get<uint64_t>();
        const uint64_t b0 = it == calls_before.end() ? 0 : it->second->at(4).get<uint64_t>();
        const uint64_t d0 = it == calls_before.end() ? 0 : it->second->at(5).get<uint64_t>();
        row.frames_per_s = grew(p0, c.at(3).get<uint64_t>()) * per_s;
        row.bits_per_s = 8 * grew(b0, c.at(4).get<uint64_t>()) * per_s;
        row.drops_per_s = grew(d0, c.at(5).get<uint64_t>()) * per_s;
        v.busiest_calls.push_back(std::move(row));
    }
    std::stable_sort(v.busiest_calls.begin(), v.busiest_calls.end(),
                     [](const auto& a, const auto& b) { return a.frames_per_s > b.frames_per_s; });
    if (v.busiest_calls.size() > top_calls) {
        v.busiest_calls.resize(top_calls);
    }
}

// Grace periods per second, with p50 and p99 of their length.
void add_grace_periods(const json& before, const json& after, double per_s, top_view& v) {
    const json& g0 = before.at("grace_periods");
    const json& g1 = after.at("grace_periods");
    const auto bounds = g1.at("bounds_seconds").get<std::vector<double>>();
    const auto le0 = g0.at("le").get<std::vector<uint64_t>>();
    const auto le1 = g1.at("le").get<std::vector<uint64_t>>();
    if (le0.size() != bounds.size() || le1.size() != bounds.size()) {
        throw std::invalid_argument("stats reply: grace-period buckets do not match their bounds");
    }
    std::vector<uint64_t> le(bounds.size());
    for (size_t i = 0; i < bounds.size(); ++i) {
        le[i] = le1[i] >= le0[i] ? le1[i] - le0[i] : 0;
    }
    const uint64_t n0 = u(g0, "count"), n1 = u(g1, "count");
    const uint64_t n = n1 >= n0 ? n1 - n0 : 0;
    v.grace_periods_per_s = double(n) * per_s;
    v.grace_p50_seconds = histogram_quantile(0.50, bounds, le, n);
    v.grace_p99_seconds = histogram_quantile(0.99, bounds, le, n);
}

} // namespace

top_view make_top_view(const json& before, const json& after) {
    const uint64_t hz = u(after, "tsc_hz");
    const uint64_t t0 = u(before, "tsc"), t1 = u(after, "tsc");
    if (hz == 0 || t1 <= t0) {
        throw std::invalid_argument("stats reply: the second reading is not later than the first");
    }
    top_view v;
    v.seconds = double(t1 - t0) / double(hz);
    const double per_s = 1 / v.seconds;
    add_workers(before, after, per_s, v);
    add_connections(before, after, per_s, v);
    add_drops(before, after, per_s, v);
    add_busiest_calls(before, after, per_s, v);
    add_grace_periods(before, after, per_s, v);
    return v;
}

std::string render_top(const top_view& v, const std::string& version) {
    std::string out =
        fmt::format("vcplane {}  over {:.2f} s  {} worker(s)  (q or Ctrl-C: quit)\n\n", version,
                    v.seconds, v.workers.size());
    out += fmt::format("{:<8}{:>7}{:>12}{:>12}{:>14}\n", "WORKER", "BUSY%", "FRAMES/S", "COPIES/S",
                       "CYCLES/FRAME");
    for (const auto& w : v.workers) {
        out += fmt::format("{:<8}{:>7.1f}{:>12}{:>12}{:>14.0f}\n", w.worker, w.busy_percent,
                           si(w.frames_per_s), si(w.copies_per_s), w.cycles_per_frame);
    }
    out +=
        fmt::format("\n{:<16}{:<20}{:>5}{:>12}{:>12}{:>12}{:>12}{:>10}\n", "CONNECTION", "DEVICE",
                    "LINK", "RX FRAMES/S", "RX BITS/S", "TX FRAMES/S", "TX BITS/S", "ERRORS/S");
    for (const auto& c : v.connections) {
        out +=
            fmt::format("{:<16}{:<20}{:>5}{:>12}{:>12}{:>12}{:>12}{:>10}\n", c.connection, c.device,
                        c.link_up ? "up" : "down", si(c.rx_frames_per_s), si(c.rx_bits_per_s),
                        si(c.tx_frames_per_s), si(c.tx_bits_per_s), si(c.errors_per_s));
    }
    out += "\nDROPS/S ";
    bool any = false;
    for (const auto& [reason, rate] : v.drops_per_s) {
        if (rate > 0) {
            out += fmt::format(" {} {}", reason, si(rate));
            any = true;
        }
    }
    out += any ? "\n" : " none\n";
    if (!v.per_vc) {
        out += "\nBUSIEST CALLS  (per-VC counters are off: metrics.per_vc = true)\n";
    } else {
        out += fmt::format("\n{:<16}{:<20}{:>9}{:>12}{:>12}{:>10}\n", "CALL", "CONNECTION", "KEY",
                           "FRAMES/S", "BITS/S", "DROPS/S");
        for (const auto& c : v.busiest_calls) {
            out += fmt::format("{:<16}{:<20}{:>9}{:>12}{:>12}{:>10}\n", c.call, c.connection, c.key,
                               si(c.frames_per_s), si(c.bits_per_s), si(c.drops_per_s));
        }
    }
    out += fmt::format("\nGRACE PERIODS  {}/s  p50 {}  p99 {}\n", si(v.grace_periods_per_s),
                       duration(v.grace_p50_seconds), duration(v.grace_p99_seconds));
    return out;
}

json top_json(const top_view& v) {
    json workers = json::array(), connections = json::array(), calls = json::array();
    for (const auto& w : v.workers) {
        workers.push_back({{"worker", w.worker},
                           {"busy_percent", w.busy_percent},
                           {"frames_per_s", w.frames_per_s},
                           {"copies_per_s", w.copies_per_s},
                           {"cycles_per_frame", w.cycles_per_frame}});
    }
    for (const auto& c : v.connections) {
        connections.push_back({{"connection", c.connection},
                               {"device", c.device},
                               {"link_up", c.link_up},
                               {"rx_frames_per_s", c.rx_frames_per_s},
                               {"rx_bits_per_s", c.rx_bits_per_s},
                               {"tx_frames_per_s", c.tx_frames_per_s},
                               {"tx_bits_per_s", c.tx_bits_per_s},
                               {"errors_per_s", c.errors_per_s}});
    }
    for (const auto& c : v.busiest_calls) {
        calls.push_back({{"connection", c.connection},
                         {"call", c.call},
                         {"key", c.key},
                         {"frames_per_s", c.frames_per_s},
                         {"bits_per_s", c.bits_per_s},
                         {"drops_per_s", c.drops_per_s}});
    }
    json drops = json::object();
    for (const auto& [reason, rate] : v.drops_per_s) {
        drops[reason] = rate;
    }
    return {{"seconds", v.seconds},
            {"workers", workers},
            {"connections", connections},
            {"drops_per_s", drops},
            {"per_vc", v.per_vc},
            {"busiest_calls", calls},
            {"grace_periods",
             {{"per_s", v.grace_periods_per_s},
              {"p50_seconds", v.grace_p50_seconds},
              {"p99_seconds", v.grace_p99_seconds}}}};
}

} // namespace vcplane

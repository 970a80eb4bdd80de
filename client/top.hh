#pragma once
// vcplanectl top: what the switch did between two `stats` readings (daemon/handlers_switch.cc),
// as rates. The readings are totals since the daemon started; a view is their difference over
// the TSC cycles between them, so it does not depend on when the client woke up.
//
// Pure functions of the two replies: the terminal loop lives in vcplanectl, the arithmetic
// here, where a test can hold it to known counters.

#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

namespace vcplane {

struct top_view {
    double seconds = 0; // between the two readings
    struct worker_row {
        unsigned worker = 0;
        double busy_percent = 0; // busy cycles of all polling cycles
        double frames_per_s = 0, copies_per_s = 0;
        double cycles_per_frame = 0; // busy cycles per frame received; 0 without frames
    };
    struct connection_row {
        std::string connection, device;
        bool link_up = false;
        double rx_frames_per_s = 0, rx_bits_per_s = 0, tx_frames_per_s = 0, tx_bits_per_s = 0;
        double errors_per_s = 0; // the port's own: missed, RX and TX errors, no RX buffer
    };
    struct call_row {
        std::string connection, call;
        uint64_t key = 0;
        double frames_per_s = 0, bits_per_s = 0, drops_per_s = 0;
    };
    std::vector<worker_row> workers;
    std::vector<connection_row> connections;
    std::vector<std::pair<std::string, double>> drops_per_s; // every reason, by name
    bool per_vc = false;
    std::vector<call_row> busiest_calls; // by frames per second, at most top_calls
    double grace_periods_per_s = 0;
    double grace_p50_seconds = 0, grace_p99_seconds = 0; // over the interval; 0 without any
};

inline constexpr size_t top_calls = 10;

// Throws std::invalid_argument when a reading is not a stats reply or `after` is not later.
top_view make_top_view(const nlohmann::json& before, const nlohmann::json& after);
// The view as a terminal screen (no escape sequences; the caller clears the screen).
std::string render_top(const top_view& v, const std::string& version);
nlohmann::json top_json(const top_view& v);

// The q-th quantile (0..1) of the observations counted between two readings of a cumulative
// histogram (le[i]: observations <= bounds[i]; count: all), interpolated within its bucket as
// Prometheus' histogram_quantile does; the last bound for observations past it. 0 when there are
// none.
double histogram_quantile(double q, const std::vector<double>& bounds,
                          const std::vector<uint64_t>& le_delta, uint64_t count_delta);

} // namespace vcplane

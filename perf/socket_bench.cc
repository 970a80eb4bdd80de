// Call setup through the control socket: operations per second that one real client process
// gets from a running vcplaned, with requests in flight and every reply counted. The daemon is
// started as a child (net_null ports, a call 'feed' on the ingress connection); the client is
// this process. It keeps --in-flight independent chains going, each add_party -> drop_party ->
// add_party ... on a call the session made: an add's reply names the party its drop needs, and
// a drop is answered when it completes, after a grace period. Every reply is checked (SUCCESS),
// and the operations per second are the replies per second. The client writes its requests as
// text and reads replies with a SAX parser (no JSON trees), as a client that counts its cycles
// would.
//
//   socket_bench [--seconds S] [--in-flight N] [--batch]
//
// The daemon's worker (lcore 1) forwards nothing (net_null RX frames are dropped as unknown);
// its control thread and this client share lcore 0's core with the grace-period helper, so
// each side's CPU per operation is reported too.

#include <CLI/CLI.hpp>
#include <algorithm>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <ctime>
#include <filesystem>
#include <fmt/format.h>
#include <fstream>
#include <iterator>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <unistd.h>
#include <vector>

#include "client/client.hh"
#include "perf/bench_support.hh"
#include "support/process.hh"

using namespace vcplane;
using json = nlohmann::json;
using clock_type = std::chrono::steady_clock;

namespace {

// Seconds of CPU the daemon's threads other than its workers have run (the control thread, the
// grace-period helper, EAL's service threads), from the scheduler's per-thread account. The
// workers poll whether or not there is work, so their time says nothing about a request's cost.
double control_side_cpu_seconds(pid_t daemon) {
    uint64_t ns = 0;
    std::error_code ec;
    for (const auto& task :
         std::filesystem::directory_iterator(fmt::format("/proc/{}/task", daemon), ec)) {
        std::string comm;
        std::getline(std::ifstream(task.path() / "comm"), comm);
        if (comm.starts_with("rte-worker-")) {
            continue;
        }
        uint64_t ran = 0;
        std::ifstream(task.path() / "schedstat") >> ran;
        ns += ran;
    }
    return double(ns) * 1e-9;
}

// What the chains need of a reply.
struct reply_fields {
    std::optional<uint64_t> id, party;
    int64_t code = -1;
};

// Reads a message (one reply, or an array of them) without building a JSON tree: the members
// id, code and party of each top-level object.
class reply_reader : public nlohmann::json_sax<json> {
public:
    bool read(const std::string& message, std::vector<reply_fields>& out) {
        out_ = &out;
        depth_ = 0;
        return json::sax_parse(message, this);
    }

    bool null() override { return true; }
    bool boolean(bool) override { return true; }
    bool number_integer(number_integer_t v) override {
        if (depth_ == 1 && key_ == field::code) {
            out_->back().code = v;
        }
        return true;
    }
    bool number_unsigned(number_unsigned_t v) override {
        if (depth_ == 1) {
            switch (key_) {
            case field::id: out_->back().id = v; break;
            case field::code: out_->back().code = int64_t(v); break;
            case field::party: out_->back().party = v; break;
            case field::other: break;
            }
        }
        return true;
    }
    bool number_float(number_float_t, const string_t&) override { return true; }
    bool string(string_t&) override { return true; }
    bool binary(binary_t&) override { return true; }
    bool start_object(std::size_t) override {
        if (++depth_ == 1) {
            out_->emplace_back();
        }
        return true;
    }
    bool key(string_t& k) override {
        if (depth_ == 1) {
            key_ = k == "id"      ? field::id
                   : k == "code"  ? field::code
                   : k == "party" ? field::party
                                  : field::other;
        }
        return true;
    }
    bool end_object() override {
        --depth_;
        return true;
    }
    bool start_array(std::size_t) override {
        depth_ += depth_ == 0 ? 0 : 1; // a message's own array is not a level of a reply
        return true;
    }
    bool end_array() override {
        depth_ -= depth_ == 0 ? 0 : 1;
        return true;
    }
    bool parse_error(std::size_t, const std::string&, const nlohmann::detail::exception&) override {
        return false;
    }

private:
    enum class field { id, code, party, other };
    std::vector<reply_fields>* out_ = nullptr;
    int depth_ = 0;
    field key_ = field::other;
};

double own_cpu_seconds() {
    timespec t{};
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t);
    return double(t.tv_sec) + double(t.tv_nsec) * 1e-9;
}

} // namespace

int main(int argc, char** argv) {
    CLI::App app{"socket_bench: call-setup operations per second through the control socket"};
    double seconds = 3;
    unsigned in_flight = 64;
    bool batch = false;
    app.add_option("--seconds", seconds, "measuring time");
    app.add_flag("--batch", batch,
                 "packed replies (hello's pack_replies) and the follow-up requests a message's "
                 "replies call for sent as one batch message");
    app.add_option("--in-flight", in_flight, "add/drop chains kept in flight (1..512)")
        ->check(CLI::Range(1u, 512u));
    CLI11_PARSE(app, argc, argv);

    const std::string socket = fmt::format("/tmp/vcplane-bench-{}.sock", getpid());
    const std::string cfg = fmt::format(R"([eal]
lcores = [0, 1]
no_huge = true
memory_mb = 512
vdevs = ["net_null0", "net_null1"]
file_prefix = "vcplane-sockbench-{0}"
[metrics]
enabled = false
[control]
socket = "{1}"
max_queued_replies = 4096
[connections.in]
device = "net_null0"
[connections.out]
device = "net_null1"
)",
                                        getpid(), socket);
    test::process daemon({VCPLANED_PATH, "--config", test::write_temp_file("sockbench.toml", cfg)});
    if (!daemon.wait_for_output("forwarding:", std::chrono::seconds(60))) {
        std::fprintf(stderr, "socket_bench: vcplaned did not start:\n%s\n",
                     daemon.output().c_str());
        return 1;
    }
    control_client c(socket);
    c.call("hello", batch ? json{{"pack_replies", true}} : json::object());
    const json first{
        {"name", "p0"}, {"connection", "out"}, {"label", 2000}, {"next_hop", "02:00:00:00:00:02"}};
    const json made = c.call(
        "make_call", {{"connection", "in"}, {"name", "bench"}, {"label", 1000}, {"party", first}});
    if (!control_client::ok(made)) {
        std::fprintf(stderr, "socket_bench: make_call: %s\n", made.dump().c_str());
        return 1;
    }
    const uint64_t vc = made["vc"].get<uint64_t>();

    // Chain k: request ids k (mod in_flight) tell which chain a reply belongs to; its state is
    // whether an add or a drop is outstanding.
    struct chain {
        bool adding = true;
    };
    std::vector<chain> chains(in_flight);
    uint64_t next_id = 1u << 20; // above the ids control_client used
    std::vector<int> owner;      // request id - base -> chain
    const uint64_t base = next_id;
    // Requests are written as text, and replies read by a SAX parser into what the chains need
    // (id, code, party): an application that counts its cycles does no more, and the client
    // shares the daemon's core. Batch mode: requests wait here until the message being read is
    // done, then go as one.
    std::string waiting;
    size_t waiting_count = 0;
    const auto send_waiting = [&] {
        if (waiting_count != 0) {
            waiting += ']';
            c.send_raw(waiting);
            waiting.clear();
            waiting_count = 0;
        }
    };
    std::string one;
    const auto send = [&](auto&& write) {
        if (!batch) {
            one.clear();
            write(one);
            c.send_raw(one);
            return;
        }
        waiting += waiting_count == 0 ? '[' : ',';
        write(waiting);
        if (++waiting_count == control_client::max_batch) {
            send_waiting();
        }
    };
    auto send_add = [&](unsigned k) {
        owner.push_back(int(k));
        const uint64_t id = next_id++;
        send([&](std::string& out) {
            fmt::format_to(std::back_inserter(out),
                           R"({{"id":{},"op":"add_party","vc":{},"party":{{"name":"s{}",)"
                           R"("connection":"out","label":{},"next_hop":"02:00:00:00:00:03"}}}})",
                           id, vc, k, 3000 + k);
        });
        chains[k].adding = true;
    };
    auto send_drop = [&](unsigned k, uint64_t party) {
        owner.push_back(int(k));
        const uint64_t id = next_id++;
        send([&](std::string& out) {
            fmt::format_to(std::back_inserter(out), R"({{"id":{},"op":"drop_party","party":{}}})",
                           id, party);
        });
        chains[k].adding = false;
    };
    uint64_t replies = 0, adds = 0, drops = 0, failed = 0;
    const double daemon_cpu_start = control_side_cpu_seconds(daemon.pid());
    const double client_cpu_start = own_cpu_seconds();
    const auto start = clock_type::now();
    const auto end = start + std::chrono::duration<double>(seconds);
    for (unsigned k = 0; k < in_flight; ++k) {
        send_add(k);
    }
    send_waiting();
    unsigned outstanding = in_flight;
    bool stopping = false;
    uint64_t messages = 0;
    reply_reader reader;
    std::vector<reply_fields> got;
    std::string message;
    size_t next = 0;
    while (outstanding != 0) {
        if (next == got.size()) {
            send_waiting(); // the last message is read through: its follow-ups go together
            message = c.receive_raw(std::chrono::seconds(10));
            ++messages;
            got.clear();
            next = 0;
            if (!reader.read(message, got)) {
                std::fprintf(stderr, "socket_bench: not JSON: %s\n", message.c_str());
                ++failed;
                break;
            }
            continue;
        }
        const reply_fields& r = got[next++];
        if (!r.id) {
            continue; // an event (none expected)
        }
        const uint64_t id = *r.id;
        if (id < base || id - base >= owner.size()) {
            continue;
        }
        const unsigned k = unsigned(owner[id - base]);
        ++replies;
        --outstanding;
        if (r.code != 0) {
            ++failed;
            std::fprintf(stderr, "socket_bench: request %llu failed in: %s\n",
                         static_cast<unsigned long long>(id), message.c_str());
            stopping = true;
        }
        if (!stopping && clock_type::now() >= end) {
            stopping = true;
        }
        if (chains[k].adding) {
            ++adds;
            if (r.party) {
                send_drop(k, *r.party); // a party added is dropped, even now
                ++outstanding;
            } else if (r.code == 0) {
                ++failed; // an add that succeeded names its party
                std::fprintf(stderr, "socket_bench: add_party without a party in: %s\n",
                             message.c_str());
                stopping = true;
            }
        } else {
            ++drops;
            if (!stopping) {
                send_add(k);
                ++outstanding;
            }
        }
    }
    const double elapsed = std::chrono::duration<double>(clock_type::now() - start).count();
    const double daemon_cpu = control_side_cpu_seconds(daemon.pid()) - daemon_cpu_start;
    const double client_cpu = own_cpu_seconds() - client_cpu_start;
    c.call("goodbye");
    daemon.signal(SIGTERM);
    const int rc = daemon.wait(std::chrono::seconds(30));
    std::printf("socket_bench: one client process, %u add/drop chains in flight, %.1f s%s\n",
                in_flight, seconds, batch ? ", batches and packed replies" : "");
    std::printf("%-40s %14.0f\n", "operations (replies) per second", double(replies) / elapsed);
    std::printf("%-40s %14.0f\n", "add + drop pairs per second", double(drops) / elapsed);
    std::printf("%-40s %14.1f\n", "replies per message read", double(replies) / double(messages));
    // CPU per operation, and what one core's worth of it serves: the daemon's side alone is
    // what a client on another core would meet.
    const double ops = double(std::max<uint64_t>(replies, 1));
    std::printf("%-40s %14.2f\n", "daemon CPU per operation, us", daemon_cpu / ops * 1e6);
    std::printf("%-40s %14.2f\n", "client CPU per operation, us", client_cpu / ops * 1e6);
    std::printf("%-40s %14.0f\n", "operations/s per core of daemon CPU",
                daemon_cpu > 0 ? ops / daemon_cpu : 0.0);
    std::printf("%-40s %14llu\n", "adds answered", static_cast<unsigned long long>(adds));
    std::printf("%-40s %14llu\n", "drops answered", static_cast<unsigned long long>(drops));
    std::printf("%-40s %14llu\n", "replies other than SUCCESS",
                static_cast<unsigned long long>(failed));
    std::printf("%-40s %14d\n", "daemon exit status", rc);
    bench::summary("socket",
                   batch ? "operations per second through the socket, batched / 200 000"
                         : "operations per second through the socket / 200 000",
                   double(replies) / elapsed / 2e5, 1.0);
    bench::summary("socket", "every reply SUCCESS, daemon exits 0 (1 = yes)",
                   failed == 0 && rc == 0 ? 1 : 0, 1.0);
    return failed == 0 && rc == 0 ? 0 : 1;
}

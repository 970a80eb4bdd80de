// The chaos soak: vcplaned on af_packet ports joined by veth pairs to network namespaces,
// carrying sequence-numbered traffic on calls nothing touches (MPLS and VLAN, point-to-point
// and multipoint, whole and chained copies) while, at random, parties are added and dropped
// on another call, calls made and closed, the file reloaded (valid and invalid), control
// clients killed with SIGKILL mid-operation, a port detached and attached again, and the
// control socket flooded past max_queued_replies and max_sessions. Then vcplaned is killed
// with SIGKILL under traffic and started again, as systemd would.
//
// It passes when: every party nothing touched got every frame once and in order; no party
// got a frame twice or out of order; once the clients are gone the switch holds exactly the
// file's calls and parties, no session, lookup or service but the checker's, nothing waiting
// for a grace period, and every mbuf pool as full as it was at the start; resident memory over
// the last two thirds of the run grew by at most 1 % (checked in runs of 10 minutes or more;
// printed always); after the restart the file's calls carry traffic again, the file is
// byte for byte what it was, and a client finds the state clean.
//
//   chaos_soak [--seconds N] [--seed S]      (default 60 s; issue figures: --seconds 1800)
//
// Prints the count of each fault injected and the figures; exits 0 on a pass, 1 on a failure,
// 77 (skipped) without root or network namespaces.

#include <CLI/CLI.hpp>
#include <algorithm>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <fcntl.h>
#include <fmt/format.h>
#include <fstream>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <random>
#include <sstream>
#include <string>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <thread>
#include <unistd.h>
#include <vector>

#include "client/client.hh"
#include "support/process.hh"

namespace {

using namespace vcplane;
using namespace vcplane::test;
using namespace std::chrono_literals;
using nlohmann::json;
using steady = std::chrono::steady_clock;

int failures = 0;
void check(bool ok, const std::string& what) {
    std::printf("chaos_soak: %s %s\n", ok ? "ok  " : "FAIL", what.c_str());
    std::fflush(stdout);
    failures += ok ? 0 : 1;
}

bool sh(const std::string& cmd) {
    return std::system((cmd + " >/dev/null 2>&1").c_str()) == 0;
}

std::string read_text(const std::string& path) {
    std::ifstream in(path);
    std::stringstream ss;
    ss << in.rdbuf();
    return ss.str();
}

// Namespaces "<tag>-<name>" with eth0, joined by veth to host interfaces of the same name.
struct topology {
    std::string tag = fmt::format("vk{}", getpid() % 100000);
    std::vector<std::pair<std::string, std::string>> hosts; // name, MAC inside
    explicit topology(std::vector<std::pair<std::string, std::string>> h)
        : hosts(std::move(h)) {
        for (const auto& [name, mac] : hosts) {
            const std::string n = ns(name);
            if (!sh("ip netns add " + n) ||
                !sh(fmt::format("ip link add {} type veth peer name eth0 netns {}", n, n)) ||
                !sh(fmt::format("ip -n {} link set eth0 address {}", n, mac)) ||
                !sh(fmt::format("ip -n {} link set eth0 up", n)) ||
                !sh(fmt::format("ip link set {} up", n))) {
                throw std::runtime_error("cannot build the namespace " + n);
            }
            sh(fmt::format("sysctl -qw net.ipv6.conf.{}.disable_ipv6=1", n));
            sh(fmt::format("ip netns exec {} sysctl -qw net.ipv6.conf.all.disable_ipv6=1", n));
        }
    }
    ~topology() {
        for (const auto& [name, mac] : hosts) {
            sh("ip netns del " + ns(name));
            sh("ip link del " + ns(name));
        }
    }
    std::string ns(const std::string& name) const { return tag + "-" + name; }
    std::string mac(const std::string& name) const {
        for (const auto& [n, m] : hosts) {
            if (n == name) {
                return m;
            }
        }
        return "";
    }
};

// What flows and where: a sender's key and frame size, and the parties that must get it.
struct stream {
    const char* from; // sending namespace
    bool vlan;        // VID rather than label
    uint32_t key;     // label or VID sent
    unsigned size;    // frame bytes
    bool touched;     // its call is churned: loss allowed, never a repeat or reorder
    std::vector<std::pair<const char*, uint32_t>> to; // (party namespace, key received)
};

const std::vector<stream> streams = {
    {"src", false, 1000, 64, false, {{"a", 2001}, {"b", 2002}, {"c", 2003}}},
    {"src", false, 1001, 1400, false, {{"a", 2101}, {"b", 2102}}},
    {"src", false, 1002, 64, false, {{"c", 2201}}},
    {"vsrc", true, 10, 64, false, {{"va", 20}, {"vb", 21}}},
    {"src", false, 1100, 200, true, {{"a", 2501}}}, // the churned call (its anchor party)
    {"src", false, 1003, 64, true, {{"d", 2301}}},  // the file call reloads toggle
};

// Which streams' calls the file provisions: not the churned one (a client's), and the extra one
// only while the reloads have it in.
constexpr uint32_t churned_key = 1100, extra_key = 1003;
bool in_file(const stream& s, bool with_extra) {
    return s.key != churned_key && (s.key != extra_key || with_extra);
}

std::string config_text(const topology& t, const std::string& sock, bool with_extra) {
    std::string c = fmt::format(R"([eal]
lcores = [0, 1]
no_huge = true
memory_mb = 512
vdevs = ["net_af_packet0,iface={}", "net_af_packet1,iface={}", "net_af_packet2,iface={}",
         "net_af_packet3,iface={}", "net_af_packet4,iface={}", "net_af_packet5,iface={}",
         "net_af_packet6,iface={}", "net_af_packet7,iface={}"]
file_prefix = "vcplane-chaos-{}"
[metrics]
enabled = false
[control]
socket = "{}"
max_sessions = 8
max_queued_replies = 256
[connections.src]
device = "net_af_packet0"
[connections.vsrc]
device = "net_af_packet1"
media = "vlan"
[connections.a]
device = "net_af_packet2"
[connections.b]
device = "net_af_packet3"
[connections.c]
device = "net_af_packet4"
[connections.va]
device = "net_af_packet5"
media = "vlan"
[connections.vb]
device = "net_af_packet6"
media = "vlan"
[connections.d]
device = "net_af_packet7"
)",
                                t.ns("src"), t.ns("vsrc"), t.ns("a"), t.ns("b"), t.ns("c"),
                                t.ns("va"), t.ns("vb"), t.ns("d"), getpid(), sock);
    for (const stream& s : streams) {
        if (!in_file(s, with_extra)) {
            continue;
        }
        const std::string name = fmt::format("k{}", s.key);
        c += fmt::format("[calls.{}]\nconnection = \"{}\"\n{} = {}\n", name, s.from,
                         s.vlan ? "vid" : "label", s.key);
        for (const auto& [party, key] : s.to) {
            c += fmt::format("[[calls.{}.parties]]\nconnection = \"{}\"\n{} = {}\nnext_hop = "
                             "\"{}\"\n",
                             name, party, s.vlan ? "vid" : "label", key, t.mac(party));
        }
    }
    return c;
}

size_t file_calls(bool with_extra) {
    return size_t(std::count_if(streams.begin(), streams.end(),
                                [&](const stream& s) { return in_file(s, with_extra); }));
}
size_t file_parties(bool with_extra) {
    size_t n = 0;
    for (const stream& s : streams) {
        n += in_file(s, with_extra) ? s.to.size() : 0;
    }
    return n;
}

// A receiver in summary mode: per key, frames, distinct, repeats, reordered.
struct tally {
    uint64_t frames = 0, distinct = 0, repeats = 0, reordered = 0;
};
class summary_receiver {
public:
    summary_receiver(const topology& t, const std::string& name, const std::string& wire)
        : ready_(fmt::format("/tmp/{}-summary-ready", t.ns(name)))
        , p_({"/usr/sbin/ip", "netns", "exec", t.ns(name), wire, "recv", "--iface", "eth0",
              "--summary", "--ready-file", ready_}) {}
    ~summary_receiver() { unlink(ready_.c_str()); }
    // Its socket is open: every frame sent from now on is counted.
    bool wait_ready() { return wait_for_file(ready_, 10s); }
    std::map<uint32_t, tally> finish() {
        p_.signal(SIGTERM);
        p_.wait(10s);
        std::map<uint32_t, tally> out;
        std::istringstream in(p_.output());
        std::string line;
        while (std::getline(in, line)) {
            unsigned key = 0;
            unsigned long f = 0, d = 0, r = 0, o = 0;
            if (std::sscanf(line.c_str(),
                            "key %u frames %lu distinct %lu repeats %lu reordered %lu", &key, &f,
                            &d, &r, &o) == 5) {
                out[key] = {f, d, r, o};
            }
        }
        return out;
    }

private:
    std::string ready_;
    process p_;
};

uint64_t rss_kib(pid_t pid) {
    std::istringstream in(read_text(fmt::format("/proc/{}/status", pid)));
    std::string line;
    while (std::getline(in, line)) {
        if (line.rfind("VmRSS:", 0) == 0) {
            return std::stoull(line.substr(6));
        }
    }
    return 0;
}

// The faults, each counted.
struct chaos {
    const topology& t;
    std::string sock, config_path, vcplanectl;
    std::mt19937 rng;
    std::map<std::string, unsigned> counts;
    bool with_extra = true;
    std::unique_ptr<control_client> churner;
    uint64_t churn_vc = 0;
    std::vector<uint64_t> churn_parties; // beyond the anchor
    unsigned next_party = 0, next_call = 0;

    std::map<std::string, std::vector<double>> seconds_taken; // per timed operation

    // A request whose time is part of the figures; a slow one is not a failure (two minutes).
    json timed(control_client& c, const std::string& op, const json& args) {
        const auto t0 = steady::now();
        json r = c.call(op, args, 120s);
        seconds_taken[op].push_back(std::chrono::duration<double>(steady::now() - t0).count());
        return r;
    }

    unsigned pick(unsigned n) { return std::uniform_int_distribution<unsigned>(0, n - 1)(rng); }

    void make_churn_call() {
        churner = std::make_unique<control_client>(sock);
        churner->call("hello", {{"name", "churner"}});
        const json r = churner->call("make_call", {{"connection", "src"},
                                                   {"name", "churned"},
                                                   {"label", churned_key},
                                                   {"multipoint", true},
                                                   {"party",
                                                    {{"name", "anchor"},
                                                     {"connection", "a"},
                                                     {"label", 2501},
                                                     {"next_hop", t.mac("a")}}}});
        if (!control_client::ok(r)) {
            throw std::runtime_error("the churned call: " + r.dump());
        }
        churn_vc = r["vc"];
        churn_parties.clear();
    }

    void churn() {
        static const char* const at[] = {"b", "c", "d"};
        if (churn_parties.empty() || (churn_parties.size() < 40 && pick(2) == 0)) {
            const char* conn = at[pick(3)];
            const json r = churner->call("add_party", {{"vc", churn_vc},
                                                       {"party",
                                                        {{"name", fmt::format("p{}", next_party)},
                                                         {"connection", conn},
                                                         {"label", 2600 + next_party % 1000},
                                                         {"next_hop", t.mac(conn)}}}});
            ++next_party;
            if (control_client::ok(r)) {
                churn_parties.push_back(r["party"]);
            }
            ++counts["party added"];
        } else {
            const size_t i = pick(unsigned(churn_parties.size()));
            churner->call("drop_party", {{"party", churn_parties[i]}});
            churn_parties.erase(churn_parties.begin() + long(i));
            ++counts["party dropped"];
        }
        churner->events().clear(); // a detached port's parties leave by incoming drops
    }

    void make_and_close() {
        control_client c(sock);
        c.call("hello", {{"name", "transient"}});
        const uint32_t label = 1200 + next_call++ % 100;
        const json r = c.call(
            "make_call",
            {{"connection", "src"},
             {"name", fmt::format("t{}", label)},
             {"label", label},
             {"party",
              {{"name", "x"}, {"connection", "b"}, {"label", 2700}, {"next_hop", t.mac("b")}}}});
        ++counts["call made"];
        if (control_client::ok(r) && pick(2) == 0) {
            c.call("close_call", {{"vc", r["vc"]}});
            ++counts["call closed"];
        } // else the session's end closes it
    }

    void reload() {
        control_client c(sock);
        c.call("hello", {{"name", "reloader"}});
        if (pick(3) == 0) {
            const std::string good = read_text(config_path);
            std::ofstream(config_path) << good << "\n[connections.broken\ndevice = 7\n";
            const json r = c.call("reload");
            check(!control_client::ok(r), "an invalid file is refused on reload");
            std::ofstream(config_path) << good;
            ++counts["reload refused (invalid file)"];
            return;
        }
        with_extra = !with_extra;
        std::ofstream(config_path) << config_text(t, sock, with_extra);
        const json r = c.call("reload");
        if (!control_client::ok(r)) {
            check(false, "a valid reload: " + r.dump());
        }
        ++counts["reload (valid file)"];
    }

    void kill_client() {
        const std::string fifo = fmt::format("/tmp/vcplane-chaos-{}.in", getpid());
        unlink(fifo.c_str());
        mkfifo(fifo.c_str(), 0600);
        process shell(
            {"/bin/sh", "-c", fmt::format("exec {} -s {} shell < {}", vcplanectl, sock, fifo)});
        const int in = open(fifo.c_str(), O_WRONLY);
        std::string lines;
        for (unsigned i = 0; i < 20; ++i) {
            lines += fmt::format("make src k{} {} d@d:{}:{}\n", i, 1300 + i, 2800 + i, t.mac("d"));
        }
        [[maybe_unused]] ssize_t n = write(in, lines.data(), lines.size());
        std::this_thread::sleep_for(std::chrono::milliseconds(pick(30)));
        shell.signal(SIGKILL);
        shell.wait(5s);
        close(in);
        unlink(fifo.c_str());
        ++counts["client killed (SIGKILL)"];
    }

    void bounce_port() {
        control_client c(sock);
        c.call("hello", {{"name", "hotplug"}});
        const json down = timed(c, "port_detach", {{"device", "net_af_packet7"}});
        check(control_client::ok(down), "port d detaches: " + down.dump());
        std::this_thread::sleep_for(std::chrono::milliseconds(50 + pick(200)));
        const json up = timed(c, "port_attach",
                              {{"devargs", fmt::format("net_af_packet7,iface={}", t.ns("d"))}});
        check(control_client::ok(up), "port d attaches again: " + up.dump());
        ++counts["port detached and attached"];
    }

    void flood_replies() {
        // Requests sent and never read: the daemon ends the session past max_queued_replies.
        const int fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
        sockaddr_un addr{};
        addr.sun_family = AF_UNIX;
        std::snprintf(addr.sun_path, sizeof(addr.sun_path), "%s", sock.c_str());
        if (connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0) {
            const std::string hello = R"({"id":1,"op":"hello","name":"flood"})";
            send(fd, hello.data(), hello.size(), MSG_NOSIGNAL);
            for (unsigned i = 2; i < 4000; ++i) {
                const std::string m = fmt::format(R"({{"id":{},"op":"status"}})", i);
                if (send(fd, m.data(), m.size(), MSG_NOSIGNAL | MSG_DONTWAIT) < 0) {
                    break; // the daemon has ended it
                }
            }
        }
        close(fd);
        ++counts["socket flooded past max_queued_replies"];
    }

    void flood_sessions() {
        std::vector<std::unique_ptr<control_client>> many;
        unsigned refused = 0;
        for (unsigned i = 0; i < 12; ++i) {
            try {
                auto c = std::make_unique<control_client>(sock);
                const json r = c->call("hello", {{"name", "many"}}, 2s);
                if (r.value("status", "") == "WSA_NOT_ENOUGH_MEMORY") {
                    ++refused;
                } else {
                    many.push_back(std::move(c));
                }
            } catch (const client_error&) {
                ++refused; // refused, and closed before the hello was read
            }
        }
        check(refused > 0,
              fmt::format("sessions past max_sessions are refused ({} of 12)", refused));
        ++counts["sessions flooded past max_sessions"];
    }

    // One fault. A control request that fails outright is a failed check, and the soak goes
    // on (the churned call made again if its session was the one lost).
    void one() {
        try {
            inject();
        } catch (const std::exception& e) {
            check(false, std::string("a control request is answered: ") + e.what());
            try {
                make_churn_call();
            } catch (const std::exception& again) {
                check(false, std::string("the churned call is made again: ") + again.what());
            }
        }
    }

    void inject() {
        switch (pick(20)) {
        case 0: reload(); break;
        case 1: kill_client(); break;
        case 2: bounce_port(); break;
        case 3: flood_replies(); break;
        case 4: flood_sessions(); break;
        case 5:
        case 6:
        case 7: make_and_close(); break;
        default: churn(); break;
        }
    }
};

// The senders of every stream for `seconds` at about 1000 frames/s each; returns their count.
std::vector<std::unique_ptr<process>> start_senders(const topology& t, const std::string& wire,
                                                    unsigned frames, unsigned first_seq) {
    std::vector<std::unique_ptr<process>> out;
    for (const stream& s : streams) {
        std::vector<std::string> argv = {"/usr/sbin/ip",
                                         "netns",
                                         "exec",
                                         t.ns(s.from),
                                         wire,
                                         "send",
                                         "--iface",
                                         "eth0",
                                         "--src",
                                         t.mac(s.from),
                                         "--count",
                                         std::to_string(frames),
                                         "--interval-ms",
                                         "1",
                                         "--seq",
                                         std::to_string(first_seq),
                                         "--size",
                                         std::to_string(s.size)};
        argv.insert(argv.end(), {s.vlan ? "--vid" : "--label", std::to_string(s.key)});
        out.push_back(std::make_unique<process>(argv));
    }
    return out;
}

int soak(int argc, char** argv) {
    CLI::App app{"chaos_soak: vcplaned under traffic and faults, then killed and restarted"};
    unsigned seconds = 60, seed = 1;
    std::string vcplaned = VCPLANED_PATH, wire = WIRE_PATH, vcplanectl = VCPLANECTL_PATH;
    app.add_option("--seconds", seconds, "how long the traffic and the faults last");
    app.add_option("--seed", seed, "the faults' random order");
    CLI11_PARSE(app, argc, argv);
    if (geteuid() != 0 || !sh("ip netns list")) {
        std::printf("chaos_soak: skipped: needs root and iproute2 (network namespaces, "
                    "AF_PACKET)\n");
        return 77;
    }
    std::signal(SIGPIPE, SIG_IGN);

    topology t({{"src", "02:76:63:05:00:01"},
                {"vsrc", "02:76:63:05:00:02"},
                {"a", "02:76:63:05:00:0a"},
                {"b", "02:76:63:05:00:0b"},
                {"c", "02:76:63:05:00:0c"},
                {"va", "02:76:63:05:00:1a"},
                {"vb", "02:76:63:05:00:1b"},
                {"d", "02:76:63:05:00:0d"}});
    const std::string sock = fmt::format("/tmp/vcplane-chaos-{}.sock", getpid());
    const std::string config_path = write_temp_file("chaos.toml", config_text(t, sock, true));
    auto daemon =
        std::make_unique<process>(std::vector<std::string>{vcplaned, "--config", config_path});
    if (!daemon->wait_for_output("forwarding:", 30s)) {
        std::printf("%s\n", daemon->output().c_str());
        check(false, "vcplaned starts");
        return 1;
    }
    control_client checker(sock);
    checker.call("hello", {{"name", "checker"}});
    std::this_thread::sleep_for(500ms);
    const json pools_at_start = checker.call("status")["mbuf_pools"];

    chaos faults{t, sock, config_path, vcplanectl, std::mt19937(seed)};
    faults.make_churn_call();

    std::map<std::string, std::unique_ptr<summary_receiver>> receivers;
    for (const char* n : {"a", "b", "c", "va", "vb", "d"}) {
        receivers[n] = std::make_unique<summary_receiver>(t, n, wire);
    }
    for (auto& [n, r] : receivers) {
        if (!r->wait_ready()) {
            check(false, "the receiver in " + n + " listens");
            return 1;
        }
    }
    const unsigned frames = seconds * 1000;
    auto senders = start_senders(t, wire, frames, 0);

    // Faults until the senders are done; resident memory sampled once a second.
    std::vector<uint64_t> rss;
    const auto start = steady::now();
    auto next_sample = start;
    bool sending = true;
    while (sending) {
        faults.one();
        std::this_thread::sleep_for(std::chrono::milliseconds(20 + faults.pick(100)));
        if (steady::now() >= next_sample) {
            rss.push_back(rss_kib(daemon->pid()));
            next_sample += 1s;
        }
        sending = false;
        for (auto& s : senders) {
            sending = sending || s->running();
        }
        if (!daemon->running()) {
            check(false, "vcplaned lives through the faults");
            std::printf("%s\n", daemon->output().c_str());
            return 1;
        }
    }
    const double sent_for = std::chrono::duration<double>(steady::now() - start).count();
    faults.churner.reset(); // the churned call ends with its session
    std::this_thread::sleep_for(1s);
    std::map<std::string, std::map<uint32_t, tally>> got;
    for (auto& [n, r] : receivers) {
        got[n] = r->finish();
    }

    std::printf("chaos_soak: %.0f s of traffic, %u frames per stream, seed %u\n", sent_for, frames,
                seed);
    for (const auto& [what, n] : faults.counts) {
        std::printf("chaos_soak: fault %-40s %u\n", what.c_str(), n);
    }
    for (auto& [op, taken] : faults.seconds_taken) {
        std::sort(taken.begin(), taken.end());
        std::printf("chaos_soak: %s took p50 %.3f s, p99 %.3f s, max %.3f s (%zu requests)\n",
                    op.c_str(), taken[taken.size() / 2], taken[taken.size() * 99 / 100],
                    taken.back(), taken.size());
    }
    for (const stream& s : streams) {
        for (const auto& [party, key] : s.to) {
            const tally k = got[party][key];
            const std::string line =
                fmt::format("{} {} {} -> {} {}: {} frames, {} distinct, {} repeated, {} reordered",
                            s.touched ? "churned" : "untouched", s.vlan ? "vid" : "label", s.key,
                            party, key, k.frames, k.distinct, k.repeats, k.reordered);
            if (s.touched) {
                check(k.repeats == 0 && k.reordered == 0, line);
            } else {
                check(k.frames == frames && k.distinct == frames && k.repeats == 0 &&
                          k.reordered == 0,
                      line);
            }
        }
    }
    // Every party key seen anywhere: none repeated or reordered (churned parties included).
    for (const auto& [party, keys] : got) {
        for (const auto& [key, k] : keys) {
            if (k.repeats != 0 || k.reordered != 0) {
                check(false, fmt::format("{} key {}: {} repeated, {} reordered", party, key,
                                         k.repeats, k.reordered));
            }
        }
    }

    // Nothing left over once every client is gone.
    std::this_thread::sleep_for(500ms);
    const json st = checker.call("status");
    check(st["calls"] == file_calls(faults.with_extra) &&
              st["parties"] == file_parties(faults.with_extra),
          fmt::format("the switch holds the file's calls and parties: {} calls, {} parties",
                      st["calls"].dump(), st["parties"].dump()));
    check(st["sessions"] == 1 && st["lookups"] == 0 && st["services"] == 0 &&
              st["grace_pending"] == 0 && st["calls_waiting"] == 0,
          "no session, lookup, service or grace period left: " + st.dump());
    check(st["mbuf_pools"] == pools_at_start,
          "every mbuf pool as full as at the start: " + st["mbuf_pools"].dump());
    if (rss.size() >= 3) {
        const uint64_t third = rss[rss.size() / 3];
        uint64_t peak = 0;
        for (size_t i = rss.size() / 3; i < rss.size(); ++i) {
            peak = std::max(peak, rss[i]);
        }
        const double growth = 100.0 * (double(peak) - double(third)) / double(third);
        const std::string line =
            fmt::format("resident memory: {} KiB at a third, {} KiB peak after, {:+.2f} %", third,
                        peak, growth);
        if (seconds >= 600) {
            check(growth <= 1.0, line);
        } else {
            std::printf("chaos_soak: info %s (checked from 600 s)\n", line.c_str());
        }
    }

    // Restart: SIGKILL under traffic, started again as systemd would; the time until the
    // file's calls carry frames again.
    const std::string file_before = read_text(config_path);
    auto restart_senders = start_senders(t, wire, 10000, 1 << 20);
    std::this_thread::sleep_for(1s);
    daemon->signal(SIGKILL);
    daemon->wait(10s);
    const auto killed = steady::now();
    process first_frame({"/usr/sbin/ip", "netns", "exec", t.ns("a"), wire, "recv", "--iface",
                         "eth0", "--count", "50", "--timeout-ms", "30000"});
    daemon = std::make_unique<process>(std::vector<std::string>{vcplaned, "--config", config_path});
    const bool started = daemon->wait_for_output("forwarding:", 30s);
    const double to_forwarding = std::chrono::duration<double>(steady::now() - killed).count();
    const int rc = first_frame.wait(35s);
    const double to_traffic = std::chrono::duration<double>(steady::now() - killed).count();
    check(started && rc == 0,
          fmt::format("after SIGKILL and a restart: forwarding after {:.2f} s, party a has "
                      "frames again after {:.2f} s",
                      to_forwarding, to_traffic));
    check(read_text(config_path) == file_before, "the file is untouched by the kill");
    try {
        control_client again(sock);
        again.call("hello", {{"name", "after-restart"}});
        const json s2 = again.call("status");
        check(s2["sessions"] == 1 && s2["lookups"] == 0 &&
                  s2["calls"] == file_calls(faults.with_extra) && s2["calls_waiting"] == 0,
              "a client that reconnects finds a clean state: " + s2.dump());
    } catch (const client_error& e) {
        check(false, std::string("a client reconnects: ") + e.what());
    }
    for (auto& s : restart_senders) {
        s->signal(SIGTERM);
    }
    daemon->signal(SIGTERM);
    check(daemon->wait(20s) == 0, "vcplaned stops cleanly");
    unlink(config_path.c_str());
    std::printf("chaos_soak: %s (%d failed checks)\n", failures == 0 ? "PASS" : "FAIL", failures);
    return failures == 0 ? 0 : 1;
}

} // namespace

int main(int argc, char** argv) {
    // Caught here so that the namespaces and every child process are cleaned up on the way.
    try {
        return soak(argc, argv);
    } catch (const std::exception& e) {
        std::printf("chaos_soak: FAIL %s\n", e.what());
        return 1;
    }
}

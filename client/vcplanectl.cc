// vcplanectl: the operator's and the scripts' client of vcplaned's control socket.
//
// One-shot commands open a session, do one thing, and say goodbye:
//   vcplanectl status | connections | calls | stats | names QUERY [--kind K] [--bare]
//   vcplanectl port attach DEVARGS | port detach DEVICE | disconnect CONNECTION
//   vcplanectl reload [--dry-run]
//   vcplanectl top [--once] [--interval SECONDS]   a live view (client/top.hh) until q or Ctrl-C
// Calls belong to the session that made them (NSPv2): they are torn down when it ends. To make
// and keep calls, hold a session open:
//   vcplanectl shell        reads one command per line from stdin, e.g.
//     make CONNECTION NAME LABEL PARTY@CONNECTION:LABEL:MAC [--p2p] [--rate B/s] [--fair]
//          [--payload ip|ethernet] [--control-word] [--ttl uniform|pipe]
//     add VC PARTY@CONNECTION:LABEL:MAC | drop PARTY [DATA] | close VC [PARTY] [DATA]
//   (LABEL "-" for a call on a port connection; a party's LABEL empty on a port connection,
//   its MAC empty for a pseudowire's decapsulated copies)
//     register NAME [ADDRESS...] | lookup QUERY | status | calls | connections | quit
//   A line that cannot become a request is refused on stderr; the session and its calls stay,
//   and the shell's exit status says that a line failed.
// Human tables by default, --json for scripts. Exit status 0 on success; otherwise non-zero
// with the status name and a one-line explanation on stderr.

#include <CLI/CLI.hpp>
#include <cerrno>
#include <charconv>
#include <chrono>
#include <csignal>
#include <cstdint>
#include <cstdio>
#include <fmt/format.h>
#include <functional>
#include <iostream>
#include <poll.h>
#include <sstream>
#include <stdexcept>
#include <string>
#include <termios.h>
#include <unistd.h>
#include <vector>

#include "client/client.hh"
#include "client/top.hh"
#include "vcplane_version.hh"
#include "vocab/control_limits.hh"

using namespace vcplane;
using nlohmann::json;

namespace {

bool as_json = false;

// A shell line that cannot become a request: refused with its reason, the session stays.
struct bad_line : std::runtime_error {
    using std::runtime_error::runtime_error;
};

int report(const json& r) {
    if (as_json) {
        std::printf("%s\n", r.dump().c_str());
    }
    if (control_client::ok(r)) {
        return 0;
    }
    std::fprintf(stderr, "vcplanectl: %s (%s %lld): %s\n", r.value("status", "?").c_str(),
                 r.value("family", "?").c_str(), (long long)r.value("code", -1LL),
                 r.value("message", "").c_str());
    return 1;
}

void print_table(const std::vector<std::string>& head,
                 const std::vector<std::vector<std::string>>& rows) {
    std::vector<size_t> w(head.size());
    for (size_t i = 0; i < head.size(); ++i) {
        w[i] = head[i].size();
        for (const auto& r : rows) {
            w[i] = std::max(w[i], r[i].size());
        }
    }
    const auto line = [&](const std::vector<std::string>& r) {
        for (size_t i = 0; i < r.size(); ++i) {
            std::printf("%-*s%s", int(w[i]), r[i].c_str(), i + 1 < r.size() ? "  " : "\n");
        }
    };
    line(head);
    for (const auto& r : rows) {
        line(r);
    }
}

std::string s(const json& j, const char* k) {
    if (!j.contains(k)) {
        return "";
    }
    return j[k].is_string() ? j[k].get<std::string>() : j[k].dump();
}

int show(const std::string& what, const json& r) {
    if (as_json || !control_client::ok(r)) {
        return report(r);
    }
    if (what == "status") {
        print_table({"version", "connections", "unmanaged", "calls", "parties", "sessions",
                     "lookups", "services"},
                    {{s(r, "version"), s(r, "connections"), s(r, "unmanaged_ports"), s(r, "calls"),
                      s(r, "parties"), s(r, "sessions"), s(r, "lookups"), s(r, "services")}});
    } else if (what == "connections") {
        std::vector<std::vector<std::string>> rows;
        for (const auto& c : r["connections"]) {
            rows.push_back({s(c, "name"), s(c, "device"), s(c, "mac"), s(c, "state"),
                            c.value("claimed", false) ? "claimed" : "connected by vcplane"});
        }
        for (const auto& u : r["unmanaged"]) {
            rows.push_back({"-", s(u, "device"), s(u, "mac"), "unmanaged", s(u, "reason")});
        }
        print_table({"connection", "device", "mac", "state", "how"}, rows);
    } else if (what == "calls") {
        std::vector<std::vector<std::string>> rows;
        for (const auto& c : r["calls"]) {
            for (const auto& p : c["parties"]) {
                rows.push_back({s(c, "name"), s(c, "vc"), s(c, "connection"), s(c, "key"),
                                s(c, "owner"), s(p, "name"), s(p, "party"), s(p, "connection"),
                                s(p, "key"), s(p, "action"), s(p, "next_hop"),
                                p.value("leaving", false) ? "leaving" : "active"});
            }
        }
        print_table({"call", "vc", "in", "key", "owner", "party", "handle", "out", "out-key",
                     "action", "next-hop", "state"},
                    rows);
    } else {
        std::printf("%s\n", r.dump(2).c_str());
    }
    return 0;
}

// A whole word of decimal digits (a handle, label or rate): "12abc" and "-1" are refused.
uint64_t number(const std::string& word) {
    uint64_t n = 0;
    const auto [end, ec] = std::from_chars(word.data(), word.data() + word.size(), n);
    if (word.empty() || ec != std::errc{} || end != word.data() + word.size()) {
        throw bad_line(fmt::format("'{}' is not a number", word));
    }
    return n;
}

json party_arg(const std::string& spec) {
    // NAME@CONNECTION:LABEL:MAC (the MAC has colons of its own). LABEL is empty for a port
    // connection, MAC for a pseudowire's decapsulated copies (they keep the inner addresses).
    const auto at = spec.find('@');
    const auto c1 = spec.find(':', at == std::string::npos ? 0 : at);
    const auto c2 = c1 == std::string::npos ? c1 : spec.find(':', c1 + 1);
    if (at == std::string::npos || c1 == std::string::npos || c2 == std::string::npos) {
        throw bad_line(fmt::format("'{}' is not NAME@CONNECTION:LABEL:MAC", spec));
    }
    json p{{"name", spec.substr(0, at)}, {"connection", spec.substr(at + 1, c1 - at - 1)}};
    const std::string label = spec.substr(c1 + 1, c2 - c1 - 1);
    if (!label.empty()) {
        p["key"] = number(label);
    }
    if (c2 + 1 < spec.size()) {
        p["next_hop"] = spec.substr(c2 + 1);
    }
    return p;
}

// Shell commands: words after the command name -> the request they make. Each checks its own
// word count (a malformed line is refused before anything is sent).
using words = std::vector<std::string>;
struct shell_command {
    const char* name;
    size_t min_words, max_words; // counting the command's name
    json (*request)(control_client& c, const words& w);
};

json make_request(control_client& c, const words& w) {
    // KEY "-": a port connection's call, which has none.
    json a{{"connection", w[1]}, {"name", w[2]}, {"party", party_arg(w[4])}};
    if (w[3] != "-") {
        a["key"] = number(w[3]);
    }
    for (size_t i = 5; i < w.size(); ++i) {
        if (w[i] == "--p2p") {
            a["multipoint"] = false;
        } else if (w[i] == "--rate" && i + 1 < w.size()) {
            a["sustained_rate"] = number(w[++i]);
        } else if (w[i] == "--fair") {
            a["fair"] = true;
        } else if (w[i] == "--payload" && i + 1 < w.size()) {
            a["payload"] = w[++i];
        } else if (w[i] == "--control-word") {
            a["control_word"] = true;
        } else if (w[i] == "--ttl" && i + 1 < w.size()) {
            a["ttl"] = w[++i];
        } else {
            throw bad_line(fmt::format("make: unknown option '{}'", w[i]));
        }
    }
    return c.call("make_call", a);
}

json add_request(control_client& c, const words& w) {
    return c.call("add_party", {{"vc", number(w[1])}, {"party", party_arg(w[2])}});
}

json drop_request(control_client& c, const words& w) {
    json a{{"party", number(w[1])}};
    if (w.size() > 2) {
        a["close_data"] = w[2];
    }
    return c.call("drop_party", a);
}

json close_request(control_client& c, const words& w) {
    json a{{"vc", number(w[1])}};
    if (w.size() > 2) {
        a["party"] = number(w[2]);
    }
    if (w.size() > 3) {
        a["close_data"] = w[3];
    }
    return c.call("close_call", a);
}

json register_request(control_client& c, const words& w) {
    return c.call(
        "set_service",
        {{"name", w[1]}, {"operation", "register"}, {"addresses", words(w.begin() + 2, w.end())}});
}

json lookup_request(control_client& c, const words& w) {
    json r = c.call("lookup_begin", {{"query", w[1]}});
    if (control_client::ok(r)) {
        std::printf("lookup %s\n", s(r, "lookup").c_str());
    }
    return r;
}

constexpr size_t any_words = SIZE_MAX;
const shell_command shell_commands[] = {
    {"make", 5, any_words, make_request},
    {"add", 3, 3, add_request},
    {"drop", 2, 3, drop_request},
    {"close", 2, 4, close_request},
    {"register", 2, any_words, register_request},
    {"lookup", 2, 2, lookup_request},
};

// One shell line; returns the exit status it would have.
int shell_line(control_client& c, const std::string& line) {
    std::istringstream in(line);
    words w;
    for (std::string t; in >> t;) {
        w.push_back(t);
    }
    if (w.empty()) {
        return 0;
    }
    if (w[0] == "status" || w[0] == "calls" || w[0] == "connections") {
        return show(w[0], c.call(w[0]));
    }
    const shell_command* cmd = nullptr;
    for (const auto& sc : shell_commands) {
        if (w[0] == sc.name && w.size() >= sc.min_words && w.size() <= sc.max_words) {
            cmd = &sc;
        }
    }
    if (cmd == nullptr) {
        std::fprintf(stderr, "vcplanectl: unknown shell command '%s'\n", line.c_str());
        return 2;
    }
    json r;
    try {
        r = cmd->request(c, w);
    } catch (const bad_line& e) {
        std::fprintf(stderr, "vcplanectl: %s: %s\n", cmd->name, e.what());
        return 2;
    }
    if (!as_json && control_client::ok(r)) {
        r.erase("id");
        std::printf("%s\n", r.dump().c_str());
        std::fflush(stdout);
        return 0;
    }
    const int rc = report(r);
    std::fflush(stdout);
    return rc;
}

// vcplanectl names: one lookup, every result, then its end. bare: the names alone, one a line.
int names_command(control_client& c, const std::string& query, const std::string& kind, bool bare) {
    json b = c.call("lookup_begin", {{"query", query}, {"kind", kind}});
    if (!control_client::ok(b)) {
        return report(b);
    }
    int rc = 0;
    std::vector<std::vector<std::string>> rows;
    json all = json::array();
    for (;;) {
        json n = c.call("lookup_next", {{"lookup", b["lookup"]}});
        if (!control_client::ok(n)) {
            if (n.value("status", "") != "WSA_E_NO_MORE" &&
                n.value("status", "") != "WSASERVICE_NOT_FOUND") {
                rc = report(n);
            }
            break;
        }
        all.push_back(n["result"]);
        rows.push_back({s(n["result"], "name"), s(n["result"], "kind")});
    }
    c.call("lookup_end", {{"lookup", b["lookup"]}});
    if (as_json) {
        std::printf("%s\n", all.dump().c_str());
    } else if (rc == 0 && bare) {
        for (const auto& r : rows) {
            std::printf("%s\n", r[0].c_str());
        }
    } else if (rc == 0) {
        print_table({"name", "kind"}, rows);
    }
    return rc;
}

// vcplanectl top. Ctrl-C and q end it with the terminal as it was and the session closed.
volatile std::sig_atomic_t top_interrupted = 0;

// The terminal in single-key mode without echo while top runs (when stdin is one).
class key_reader {
public:
    key_reader() {
        if (isatty(STDIN_FILENO) && tcgetattr(STDIN_FILENO, &saved_) == 0) {
            termios raw = saved_;
            raw.c_lflag &= ~tcflag_t(ICANON | ECHO);
            raw.c_cc[VMIN] = 0;
            raw.c_cc[VTIME] = 0;
            restore_ = tcsetattr(STDIN_FILENO, TCSANOW, &raw) == 0;
        }
    }
    ~key_reader() {
        if (restore_) {
            tcsetattr(STDIN_FILENO, TCSANOW, &saved_);
        }
    }
    key_reader(const key_reader&) = delete;
    key_reader& operator=(const key_reader&) = delete;

    // Waits up to `wait`; true when q was pressed, Ctrl-C came, or stdin ended.
    bool quit_within(std::chrono::milliseconds wait) {
        const auto until = std::chrono::steady_clock::now() + wait;
        while (!top_interrupted) {
            const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
                until - std::chrono::steady_clock::now());
            if (left.count() <= 0) {
                return false;
            }
            pollfd p{stdin_open_ ? STDIN_FILENO : -1, POLLIN, 0};
            const int n = poll(&p, 1, int(left.count()));
            if (n > 0 && (p.revents & (POLLIN | POLLHUP)) != 0) {
                char key = 0;
                const ssize_t got = read(STDIN_FILENO, &key, 1);
                if (got == 1 && (key == 'q' || key == 'Q')) {
                    return true;
                }
                if (got == 0 && !restore_) {
                    stdin_open_ = false; // no keyboard (a script): only Ctrl-C or a signal ends it
                }
            }
        }
        return true;
    }

private:
    termios saved_{};
    bool restore_ = false;
    bool stdin_open_ = true;
};

int top_command(control_client& c, bool once, double interval_seconds) {
    struct sigaction sa {};
    sa.sa_handler = [](int) { top_interrupted = 1; };
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, nullptr); // no SA_RESTART: poll returns at once
    sigaction(SIGTERM, &sa, nullptr);
    const auto interval = std::chrono::milliseconds(int64_t(interval_seconds * 1000));
    const bool screen = !once && !as_json && isatty(STDOUT_FILENO);
    json before = c.call("stats");
    if (!control_client::ok(before)) {
        return report(before);
    }
    key_reader keys;
    while (!keys.quit_within(interval)) {
        json after = c.call("stats");
        if (!control_client::ok(after)) {
            return report(after);
        }
        const top_view v = make_top_view(before, after);
        if (as_json) {
            std::printf("%s\n", top_json(v).dump().c_str());
        } else {
            // Home and clear, then the view: one write, so the terminal never shows half of it.
            std::string text = screen ? "\x1b[H\x1b[2J" : "";
            text += render_top(v, VCPLANE_VERSION);
            std::fwrite(text.data(), 1, text.size(), stdout);
        }
        std::fflush(stdout);
        if (once) {
            break;
        }
        before = std::move(after);
    }
    return 0;
}

int reload_command(control_client& c, bool dry_run) {
    const json r = c.call("reload", {{"dry_run", dry_run}});
    if (!as_json) {
        std::fputs(describe_reload(r).c_str(), control_client::ok(r) ? stdout : stderr);
    }
    return report(r);
}

// vcplanectl shell: the session stays open until stdin ends or says quit.
int shell_session(control_client& c, const json& hello) {
    std::printf("ready session %s\n", s(hello, "session").c_str());
    std::fflush(stdout);
    int rc = 0;
    for (std::string line; std::getline(std::cin, line);) {
        if (line == "quit") {
            break;
        }
        rc = shell_line(c, line) != 0 ? 1 : rc;
    }
    return rc;
}

// A subcommand and what it does in an open session.
struct subcommand {
    CLI::App* app;
    std::function<int(control_client&, const json& hello)> run;
};

// Opens a session, runs the one subcommand parsed, says goodbye.
int run_session(const std::string& socket_path, const std::vector<subcommand>& commands) {
    try {
        control_client c(socket_path);
        const json hello = c.call("hello");
        if (!control_client::ok(hello)) {
            return report(hello);
        }
        int rc = 0;
        for (const auto& sc : commands) {
            if (sc.app->parsed()) {
                rc = sc.run(c, hello);
            }
        }
        c.call("goodbye");
        return rc;
    } catch (const client_error& e) {
        std::fprintf(stderr, "vcplanectl: %s\n", e.what());
        return 3;
    } catch (const std::exception& e) {
        std::fprintf(stderr, "vcplanectl: %s\n", e.what());
        return 2;
    }
}

} // namespace

int main(int argc, char** argv) {
    CLI::App app{"vcplanectl: control vcplaned over its control socket"};
    std::string socket_path = default_control_socket;
    app.add_option("-s,--socket", socket_path, "the control socket");
    app.add_flag("--json", as_json, "print replies as JSON");
    app.require_subcommand(1);
    std::vector<subcommand> commands;
    const auto shown = [&](const char* name, const char* help) {
        commands.push_back({app.add_subcommand(name, help), [name](control_client& c, const json&) {
                                return show(name, c.call(name));
                            }});
    };
    shown("status", "counts of everything");
    shown("connections", "ports, connections and unmanaged ports");
    shown("calls", "calls and their parties");
    shown("stats", "every counter since the start, as JSON (what top shows as rates)");
    std::string query, kind;
    bool bare = false;
    auto* names = app.add_subcommand("names", "look names up in the namespace");
    names->add_option("query", query, "name with * wildcards")->required();
    names->add_option("--kind", kind, "connection, call, party or service");
    names->add_flag("--bare", bare, "print only the names, one per line");
    commands.push_back({names, [&](control_client& c, const json&) {
                            return names_command(c, query, kind, bare);
                        }});
    auto* port = app.add_subcommand("port", "hot-plug a port");
    port->require_subcommand(1);
    std::string devargs, device;
    auto* attach = port->add_subcommand("attach", "probe a device");
    attach->add_option("devargs", devargs)->required();
    auto* detach = port->add_subcommand("detach", "remove a device");
    detach->add_option("device", device)->required();
    commands.push_back({attach, [&](control_client& c, const json&) {
                            return show("port", c.call("port_attach", {{"devargs", devargs}}));
                        }});
    commands.push_back({detach, [&](control_client& c, const json&) {
                            return show("port", c.call("port_detach", {{"device", device}}));
                        }});
    std::string connection;
    auto* disc = app.add_subcommand("disconnect", "disconnect a connection vcplane connected");
    disc->add_option("connection", connection)->required();
    commands.push_back(
        {disc, [&](control_client& c, const json&) {
             return show("disconnect", c.call("disconnect", {{"connection", connection}}));
         }});
    bool dry_run = false;
    auto* reload = app.add_subcommand("reload", "reload the config file: apply its changes live");
    reload->add_flag("-n,--dry-run", dry_run, "show what a reload would do without doing it");
    commands.push_back(
        {reload, [&](control_client& c, const json&) { return reload_command(c, dry_run); }});
    bool once = false;
    double interval = 1;
    auto* top = app.add_subcommand("top", "a live view of workers, connections, drops and calls");
    top->add_flag("--once", once, "print one view (rates over one interval) and exit");
    top->add_option("-i,--interval", interval, "seconds between views (default 1)")
        ->check(CLI::Range(0.1, 3600.0));
    commands.push_back(
        {top, [&](control_client& c, const json&) { return top_command(c, once, interval); }});
    commands.push_back(
        {app.add_subcommand("shell", "hold a session; commands from stdin"), shell_session});
    CLI11_PARSE(app, argc, argv);
    return run_session(socket_path, commands);
}

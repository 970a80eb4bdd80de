// vcplaned: the vcplane switch daemon.

#include <CLI/CLI.hpp>
#include <csignal>
#include <cstdio>
#include <fstream>
#include <iterator>
#include <pthread.h>
#include <sys/resource.h>

#include "base/log.hh"
#include "client/client.hh"
#include "config/config.hh"
#include "daemon/daemon.hh"
#include "daemon/reload.hh"
#include "vcplane_version.hh"

using namespace vcplane;

namespace {

// --plan: asks the running switch for a dry-run reload of the file's text; with no switch
// answering, shows what a start with this file would provision.
int plan_reload(const vcplane_config& cfg, const std::string& socket) {
    std::ifstream in(cfg.source, std::ios::binary);
    const std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    nlohmann::json reply;
    try {
        control_client c(socket);
        c.call("hello");
        reply = c.call("reload", {{"dry_run", true}, {"config", text}});
        c.call("goodbye");
    } catch (const client_error& e) {
        std::printf("no vcplaned answers on %s (%s): planning against a switch without calls\n",
                    socket.c_str(), e.what());
        reply = reload_path::plan_without_switch(cfg);
    }
    std::fputs(describe_reload(reply).c_str(), stdout);
    return control_client::ok(reply) ? exit_ok : exit_config_error;
}

} // namespace

int main(int argc, char** argv) {
    // Before any thread exists (EAL, metrics), so every thread inherits the mask and these
    // signals are only ever read from the control loop's signalfd.
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGHUP);
    pthread_sigmask(SIG_BLOCK, &set, nullptr);

    // Every control session is a file descriptor: allow as many as the hard limit does.
    rlimit files{};
    if (getrlimit(RLIMIT_NOFILE, &files) == 0 && files.rlim_cur < files.rlim_max) {
        files.rlim_cur = files.rlim_max;
        setrlimit(RLIMIT_NOFILE, &files);
    }

    CLI::App app{"vcplaned " VCPLANE_VERSION
                 ": connection-oriented packet switch (MPLS/VLAN virtual circuits on DPDK)"};
    std::string config_path;
    std::string check_path;
    std::string plan_path;
    std::string preflight_path;
    std::string socket_path;
    bool print_default = false;
    bool verbose = false;
    app.add_option("-c,--config", config_path,
                   "configuration file (TOML); without it, the embedded default (the demo)");
    app.add_option("--check", check_path, "validate FILE and exit (0: valid, 2: invalid)");
    app.add_option("--plan", plan_path,
                   "show what reloading FILE would change in the running switch, and exit");
    app.add_option("--preflight", preflight_path,
                   "check this host against FILE as the switch does at start, and exit (0: "
                   "ready, 1: something is missing, 2: invalid file)");
    app.add_option("--socket", socket_path,
                   "with --plan: the running switch's control socket (default: FILE's)");
    app.add_flag("--print-default-config", print_default,
                 "print the embedded default configuration and exit");
    app.add_flag("-v,--verbose", verbose, "log more (port and pool set-up)");
    app.set_version_flag("--version", VCPLANE_VERSION);
    try {
        app.parse(argc, argv);
    } catch (const CLI::ParseError& e) {
        const int rc = app.exit(e);
        return rc == 0 ? exit_ok : exit_config_error;
    }
    if (verbose) {
        log::set_threshold(log::level::info);
    }
    if (print_default) {
        std::fwrite(embedded_default_config().data(), 1, embedded_default_config().size(), stdout);
        return exit_ok;
    }
    const std::string& path = !check_path.empty()       ? check_path
                              : !plan_path.empty()      ? plan_path
                              : !preflight_path.empty() ? preflight_path
                                                        : config_path;
    vcplane_config cfg;
    try {
        cfg = path.empty() ? parse_config_string(embedded_default_config(), embedded_default_name)
                           : parse_config_file(path);
    } catch (const config_error& e) {
        for (const auto& p : e.problems()) {
            std::fprintf(stderr, "%s\n", p.c_str());
        }
        std::fprintf(stderr, "vcplaned: %zu problem(s) in %s; nothing started\n",
                     e.problems().size(), path.empty() ? embedded_default_name : path.c_str());
        return exit_config_error;
    }
    if (!check_path.empty()) {
        std::printf("%s: ok (%zu connections, %zu calls, %zu parties, %zu workers)\n",
                    check_path.c_str(), cfg.connections.size(), cfg.calls.size(), cfg.party_count(),
                    cfg.eal.lcores.size() - 1);
        return exit_ok;
    }
    if (!preflight_path.empty()) {
        return run_preflight(cfg);
    }
    if (!plan_path.empty()) {
        return plan_reload(cfg, socket_path.empty() ? cfg.control.socket : socket_path);
    }
    return run_daemon(cfg, argv[0]);
}

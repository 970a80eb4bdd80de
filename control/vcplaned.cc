// vcplaned: the vcplane switch daemon.

#include <CLI/CLI.hpp>
#include <csignal>
#include <cstdio>
#include <pthread.h>
#include <sys/resource.h>

#include "config/config.hh"
#include "control/daemon.hh"
#include "control/log.hh"
#include "vcplane_version.hh"

using namespace vcplane;

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
    bool print_default = false;
    bool verbose = false;
    app.add_option("-c,--config", config_path,
                   "configuration file (TOML); without it, the embedded default (the demo)");
    app.add_option("--check", check_path, "validate FILE and exit (0: valid, 2: invalid)");
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
    const std::string& path = !check_path.empty() ? check_path : config_path;
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
    return run_daemon(cfg, argv[0]);
}

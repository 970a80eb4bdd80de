#pragma once
// vcplaned's life: preflight, EAL, ports, tables, workers, metrics, the control loop, and a
// clean stop on SIGTERM/SIGINT.

#include <string>

#include "config/config.hh"

namespace vcplane {

// Exit statuses of vcplaned.
inline constexpr int exit_ok = 0;
inline constexpr int exit_failure = 1;      // the host or a device is not as the config needs
inline constexpr int exit_config_error = 2; // the config (or the command line) is wrong

// The start-up preflight (port/preflight.hh) on its own: every finding logged; exit_ok when
// the host has what the config needs, exit_failure when something is missing.
int run_preflight(const vcplane_config& cfg);

// Runs the switch until SIGTERM or SIGINT. The caller has blocked SIGTERM, SIGINT and SIGHUP
// in every thread (before EAL creates any), so they arrive through the loop's signalfd.
int run_daemon(const vcplane_config& cfg, const std::string& program);

} // namespace vcplane

#pragma once
// EAL start-up from the [eal] table of the config.

#include <string>
#include <vector>

#include "config/config.hh"

namespace vcplane {

// The EAL command line for a config (argv[0] included). An empty pci_allow means no PCI
// device is probed (--no-pci): on a server every NIC vcplane may use is listed.
std::vector<std::string> eal_arguments(const eal_config& eal, const std::string& program);

// rte_eal_init; throws std::runtime_error with EAL's reason on failure.
void eal_start(const std::vector<std::string>& args);
void eal_stop() noexcept;

} // namespace vcplane

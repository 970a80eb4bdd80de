#include "port/eal.hh"

#include <fmt/format.h>
#include <rte_eal.h>
#include <rte_errno.h>
#include <stdexcept>

namespace vcplane {

std::vector<std::string> eal_arguments(const eal_config& eal, const std::string& program) {
    std::vector<std::string> a{program};
    std::string lcores;
    for (unsigned id : eal.lcores) {
        lcores += lcores.empty() ? "" : ",";
        lcores += std::to_string(id);
    }
    a.insert(a.end(), {"-l", lcores, "--main-lcore", std::to_string(eal.lcores.at(0))});
    if (eal.no_huge) {
        a.push_back("--no-huge");
    }
    if (eal.memory_mb != 0) {
        a.insert(a.end(), {"-m", std::to_string(eal.memory_mb)});
    }
    if (eal.pci_allow.empty()) {
        a.push_back("--no-pci");
    }
    for (const auto& bdf : eal.pci_allow) {
        a.insert(a.end(), {"-a", bdf});
    }
    for (const auto& vdev : eal.vdevs) {
        a.insert(a.end(), {"--vdev", vdev});
    }
    a.insert(a.end(), {"--file-prefix", eal.file_prefix});
    a.push_back("--log-level=" + eal.log_level);
    return a;
}

void eal_start(const std::vector<std::string>& args) {
    std::vector<char*> argv;
    // rte_eal_init may permute argv; it gets its own copies.
    // EAL may keep pointers into argv, so the copies live as long as the process.
    static std::vector<std::string> copies;
    copies = args;
    for (auto& s : copies) {
        argv.push_back(s.data());
    }
    argv.push_back(nullptr);
    if (rte_eal_init(static_cast<int>(copies.size()), argv.data()) < 0) {
        // EAL does not always set rte_errno; its own messages above say what went wrong.
        const std::string why =
            rte_errno != 0 ? rte_strerror(rte_errno) : "see the EAL lines above";
        throw std::runtime_error(fmt::format(
            "EAL initialisation failed: {}; a common cause: another DPDK process with the same "
            "eal.file_prefix is running",
            why));
    }
}

void eal_stop() noexcept {
    rte_eal_cleanup();
}

} // namespace vcplane

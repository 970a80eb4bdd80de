#include "port/preflight.hh"

#include <fmt/format.h>
#include <fstream>
#include <sched.h>
#include <sstream>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>

namespace vcplane {

namespace fs = std::filesystem;
using sev = preflight_finding::severity;

std::string preflight_finding::line() const {
    const char* tag = level == sev::fatal ? "error" : level == sev::warning ? "warning" : "note";
    if (fix.empty()) {
        return fmt::format("preflight {}: {}", tag, what);
    }
    return fmt::format("preflight {}: {}; fix: {}", tag, what, fix);
}

bool has_fatal(const std::vector<preflight_finding>& findings) {
    for (const auto& f : findings) {
        if (f.level == sev::fatal) {
            return true;
        }
    }
    return false;
}

namespace {

long meminfo_value(const std::string& root, const std::string& key) {
    std::ifstream in(root + "/proc/meminfo");
    std::string line;
    while (std::getline(in, line)) {
        if (line.rfind(key + ":", 0) == 0) {
            return std::stol(line.substr(key.size() + 1));
        }
    }
    return -1;
}

bool hugetlbfs_mounted(const std::string& root) {
    std::ifstream in(root + "/proc/mounts");
    std::string dev, dir, type;
    std::string rest;
    while (in >> dev >> dir >> type && std::getline(in, rest)) {
        if (type == "hugetlbfs") {
            return true;
        }
    }
    return false;
}

std::string vdev_option(const std::string& vdev, const std::string& key) {
    std::stringstream ss(vdev);
    std::string part;
    std::getline(ss, part, ','); // the driver name
    while (std::getline(ss, part, ',')) {
        if (part.rfind(key + "=", 0) == 0) {
            return part.substr(key.size() + 1);
        }
    }
    return "";
}

bool dir_has_entries(const fs::path& p) {
    std::error_code ec;
    return fs::is_directory(p, ec) && fs::directory_iterator(p, ec) != fs::directory_iterator();
}

void check_hugepages(const vcplane_config& cfg, const std::string& root,
                     std::vector<preflight_finding>& out) {
    if (cfg.eal.no_huge) {
        out.push_back({sev::note,
                       "running without hugepages (eal.no_huge = true): right for virtual ports, "
                       "too slow for real NICs (README: Bare metal)",
                       ""});
        return;
    }
    if (!hugetlbfs_mounted(root)) {
        out.push_back({sev::fatal, "no hugetlbfs is mounted",
                       "mount -t hugetlbfs nodev /dev/hugepages (or dpdk-hugepages.py --mount)"});
    }
    const long free_pages = meminfo_value(root, "HugePages_Free");
    if (free_pages <= 0) {
        out.push_back({sev::fatal, "no free hugepages are reserved",
                       "dpdk-hugepages.py --setup 2G (or echo 1024 > "
                       "/sys/kernel/mm/hugepages/hugepages-2048kB/nr_hugepages; hugepages=... on "
                       "the kernel command line survives reboots)"});
    }
}

void check_pci(const vcplane_config& cfg, const std::string& root,
               std::vector<preflight_finding>& out) {
    if (cfg.eal.pci_allow.empty()) {
        return;
    }
    if (!fs::exists(root + "/sys/bus/pci/drivers/vfio-pci")) {
        out.push_back({sev::fatal, "the vfio-pci driver is not loaded", "modprobe vfio-pci"});
    }
    if (!dir_has_entries(root + "/sys/kernel/iommu_groups") &&
        !fs::exists(root + "/sys/module/vfio/parameters/enable_unsafe_noiommu_mode")) {
        out.push_back({sev::fatal, "no IOMMU is enabled (vfio-pci needs one)",
                       "add intel_iommu=on iommu=pt (AMD: amd_iommu=on) to the kernel command "
                       "line and reboot"});
    }
    for (size_t i = 0; i < cfg.eal.pci_allow.size(); ++i) {
        const std::string& bdf = cfg.eal.pci_allow[i];
        const fs::path dev = fs::path(root + "/sys/bus/pci/devices") / bdf;
        std::error_code ec;
        if (!fs::exists(dev, ec)) {
            out.push_back({sev::fatal, fmt::format("eal.pci_allow[{}]: no PCI device {}", i, bdf),
                           "lspci -D -d ::0200 lists the network devices and their addresses"});
            continue;
        }
        const fs::path drv = fs::read_symlink(dev / "driver", ec);
        const std::string driver = ec ? "" : drv.filename().string();
        // mlx4/mlx5 stay on their kernel driver (bifurcated); everything else wants vfio-pci.
        if (driver == "vfio-pci" || driver == "uio_pci_generic" || driver == "igb_uio" ||
            driver == "mlx5_core" || driver == "mlx4_core") {
            continue;
        }
        out.push_back({sev::fatal,
                       fmt::format("eal.pci_allow[{}]: {} is bound to {}, not to vfio-pci", i, bdf,
                                   driver.empty() ? "no driver" : driver),
                       fmt::format("dpdk-devbind.py --bind=vfio-pci {}", bdf)});
    }
}

void check_vdevs(const vcplane_config& cfg, const std::string& root,
                 std::vector<preflight_finding>& out) {
    for (size_t i = 0; i < cfg.eal.vdevs.size(); ++i) {
        const std::string& v = cfg.eal.vdevs[i];
        if (v.rfind("net_af_packet", 0) != 0) {
            continue;
        }
        const std::string iface = vdev_option(v, "iface");
        if (iface.empty()) {
            out.push_back({sev::fatal, fmt::format("eal.vdevs[{}]: '{}' names no interface", i, v),
                           "add iface=NAME to the vdev"});
        } else if (!fs::exists(root + "/sys/class/net/" + iface)) {
            out.push_back({sev::fatal,
                           fmt::format("eal.vdevs[{}]: interface '{}' does not exist", i, iface),
                           cfg.source == embedded_default_name
                               ? "run scripts/demo, which creates the demo's veth pairs"
                               : "create it (e.g. ip link add ... type veth) or correct iface="});
        }
    }
}

void check_lcores(const vcplane_config& cfg, std::vector<preflight_finding>& out) {
    cpu_set_t allowed;
    CPU_ZERO(&allowed);
    if (sched_getaffinity(0, sizeof(allowed), &allowed) != 0) {
        return;
    }
    std::string list;
    for (unsigned c = 0; c < CPU_SETSIZE; ++c) {
        if (CPU_ISSET(c, &allowed)) {
            list += list.empty() ? "" : ",";
            list += std::to_string(c);
        }
    }
    for (size_t i = 0; i < cfg.eal.lcores.size(); ++i) {
        const unsigned id = cfg.eal.lcores[i];
        if (id >= CPU_SETSIZE || !CPU_ISSET(id, &allowed)) {
            out.push_back({sev::fatal,
                           fmt::format("eal.lcores[{}]: CPU {} is not available to this process "
                                       "(allowed: {})",
                                       i, id, list),
                           "pick lcores from the allowed CPUs"});
        }
    }
}

constexpr unsigned cap_ipc_lock = 14; // linux/capability.h

// Whether this process holds a capability in its effective set (/proc/self/status CapEff).
bool has_capability(const std::string& root, unsigned cap) {
    std::ifstream in(root + "/proc/self/status");
    std::string line;
    while (std::getline(in, line)) {
        if (line.rfind("CapEff:", 0) == 0) {
            const uint64_t eff = std::stoull(line.substr(7), nullptr, 16);
            return (eff >> cap) & 1;
        }
    }
    return false;
}

} // namespace

std::vector<preflight_finding> preflight_host(const vcplane_config& cfg, const std::string& root) {
    std::vector<preflight_finding> out;
    if (geteuid() != 0 && !has_capability(root, cap_ipc_lock)) {
        out.push_back({sev::warning,
                       "not running as root and without CAP_IPC_LOCK: DPDK cannot pin its "
                       "memory (and needs CAP_NET_RAW for af_packet, access to the VFIO groups "
                       "for vfio-pci)",
                       "run as root or through the systemd unit, which grants them"});
    }
    check_hugepages(cfg, root, out);
    check_pci(cfg, root, out);
    check_vdevs(cfg, root, out);
    if (root.empty()) {
        check_lcores(cfg, out);
    }
    return out;
}

} // namespace vcplane

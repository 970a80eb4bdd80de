// Preflight against fake /proc and /sys trees: each missing piece of a real server is found
// and comes with its fix.

#include <filesystem>
#include <fstream>
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "port/preflight.hh"

namespace vcplane {
namespace {

namespace fs = std::filesystem;
using ::testing::HasSubstr;

class preflight : public ::testing::Test {
protected:
    void SetUp() override {
        root_ = fs::path(testing::TempDir()) / ("preflight-" + std::to_string(::getpid()));
        fs::remove_all(root_);
        fs::create_directories(root_ / "proc");
        fs::create_directories(root_ / "sys/class/net");
        fs::create_directories(root_ / "sys/bus/pci/devices");
        fs::create_directories(root_ / "sys/kernel/iommu_groups");
        write("proc/meminfo", "MemTotal: 1000 kB\nHugePages_Total: 0\nHugePages_Free: 0\n");
        write("proc/mounts", "proc /proc proc rw 0 0\n");
        cfg_.source = "test.toml";
        cfg_.eal.lcores = {0, 1};
    }
    void TearDown() override { fs::remove_all(root_); }

    void write(const std::string& rel, const std::string& text) {
        fs::create_directories((root_ / rel).parent_path());
        std::ofstream(root_ / rel) << text;
    }
    std::vector<preflight_finding> run() { return preflight_host(cfg_, root_.string()); }
    static std::string all(const std::vector<preflight_finding>& f) {
        std::string s;
        for (const auto& x : f) {
            s += x.line() + "\n";
        }
        return s;
    }

    fs::path root_;
    vcplane_config cfg_;
};

TEST_F(preflight, missing_hugepages_are_fatal_with_the_fix) {
    const auto f = run();
    EXPECT_TRUE(has_fatal(f));
    EXPECT_THAT(all(f),
                HasSubstr("no free hugepages are reserved; fix: dpdk-hugepages.py --setup"));
    EXPECT_THAT(all(f), HasSubstr("no hugetlbfs is mounted; fix: mount -t hugetlbfs"));
}

TEST_F(preflight, reserved_and_mounted_hugepages_pass) {
    write("proc/meminfo", "HugePages_Total: 1024\nHugePages_Free: 1000\n");
    write("proc/mounts", "hugetlbfs /dev/hugepages hugetlbfs rw 0 0\n");
    EXPECT_FALSE(has_fatal(run())) << all(run());
}

TEST_F(preflight, no_huge_is_a_note_not_an_error) {
    cfg_.eal.no_huge = true;
    const auto f = run();
    EXPECT_FALSE(has_fatal(f)) << all(f);
    EXPECT_THAT(all(f), HasSubstr("running without hugepages"));
}

TEST_F(preflight, pci_devices_need_vfio_an_iommu_and_the_right_driver) {
    cfg_.eal.no_huge = true;
    cfg_.eal.pci_allow = {"0000:3b:00.0", "0000:3b:00.1", "0000:99:00.0"};
    fs::create_directories(root_ / "sys/bus/pci/drivers/ixgbe");
    fs::create_directories(root_ / "sys/bus/pci/devices/0000:3b:00.0");
    fs::create_directories(root_ / "sys/bus/pci/devices/0000:3b:00.1");
    fs::create_symlink(root_ / "sys/bus/pci/drivers/ixgbe",
                       root_ / "sys/bus/pci/devices/0000:3b:00.0/driver");
    const std::string out = all(run());
    EXPECT_THAT(out, HasSubstr("the vfio-pci driver is not loaded; fix: modprobe vfio-pci"));
    EXPECT_THAT(out, HasSubstr("no IOMMU is enabled"));
    EXPECT_THAT(out, HasSubstr("intel_iommu=on iommu=pt"));
    EXPECT_THAT(out, HasSubstr("eal.pci_allow[0]: 0000:3b:00.0 is bound to ixgbe, not to vfio-pci; "
                               "fix: dpdk-devbind.py --bind=vfio-pci 0000:3b:00.0"));
    EXPECT_THAT(out, HasSubstr("eal.pci_allow[1]: 0000:3b:00.1 is bound to no driver"));
    EXPECT_THAT(out, HasSubstr("eal.pci_allow[2]: no PCI device 0000:99:00.0"));
}

TEST_F(preflight, a_vfio_bound_device_with_iommu_passes) {
    cfg_.eal.no_huge = true;
    cfg_.eal.pci_allow = {"0000:3b:00.0"};
    fs::create_directories(root_ / "sys/bus/pci/drivers/vfio-pci");
    fs::create_directories(root_ / "sys/kernel/iommu_groups/17");
    fs::create_directories(root_ / "sys/bus/pci/devices/0000:3b:00.0");
    fs::create_symlink(root_ / "sys/bus/pci/drivers/vfio-pci",
                       root_ / "sys/bus/pci/devices/0000:3b:00.0/driver");
    EXPECT_FALSE(has_fatal(run())) << all(run());
}

TEST_F(preflight, af_packet_interfaces_must_exist) {
    cfg_.eal.no_huge = true;
    cfg_.eal.vdevs = {"net_af_packet0,iface=veth-up", "net_af_packet1,iface=veth-gone",
                      "net_af_packet2", "net_null0"};
    fs::create_directories(root_ / "sys/class/net/veth-up");
    const auto f = run();
    const std::string out = all(f);
    EXPECT_THAT(out, HasSubstr("eal.vdevs[1]: interface 'veth-gone' does not exist"));
    EXPECT_THAT(out, HasSubstr("eal.vdevs[2]: 'net_af_packet2' names no interface"));
    EXPECT_THAT(out, ::testing::Not(HasSubstr("veth-up")));
    EXPECT_EQ(
        std::count_if(f.begin(), f.end(),
                      [](const auto& x) { return x.level == preflight_finding::severity::fatal; }),
        2);
}

} // namespace
} // namespace vcplane

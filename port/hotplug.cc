// rte_dev_event_callback_register is still experimental in DPDK 22.11: asked for on purpose
// (the kernel's request to release a vfio-pci device arrives only through it).
#define ALLOW_EXPERIMENTAL_API 1

#include "port/hotplug.hh"

#include <cerrno>
#include <cstring>
#include <fmt/format.h>
#include <rte_dev.h>
#include <rte_errno.h>
#include <rte_ethdev.h>
#include <stdexcept>
#include <sys/eventfd.h>
#include <unistd.h>

namespace vcplane {

namespace {
constexpr rte_eth_event_type watched[] = {RTE_ETH_EVENT_NEW, RTE_ETH_EVENT_INTR_RMV,
                                          RTE_ETH_EVENT_INTR_LSC};
}

device_events::device_events()
    : fd_(eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK)) {
    if (fd_ < 0) {
        throw std::runtime_error(std::string("eventfd: ") + std::strerror(errno));
    }
    for (auto t : watched) {
        rte_eth_dev_callback_register(
            RTE_ETH_ALL, t, reinterpret_cast<rte_eth_dev_cb_fn>(&device_events::on_event), this);
    }
    rte_dev_event_callback_register(
        nullptr, reinterpret_cast<rte_dev_event_cb_fn>(&device_events::on_device_event), this);
}

device_events::~device_events() {
    rte_dev_event_callback_unregister(
        nullptr, reinterpret_cast<rte_dev_event_cb_fn>(&device_events::on_device_event), this);
    for (auto t : watched) {
        rte_eth_dev_callback_unregister(
            RTE_ETH_ALL, t, reinterpret_cast<rte_eth_dev_cb_fn>(&device_events::on_event), this);
    }
    close(fd_);
}

int device_events::on_event(uint16_t port, int type, void* self, void*) {
    auto* d = static_cast<device_events*>(self);
    switch (type) {
    case RTE_ETH_EVENT_NEW: d->post({device_event::kind::added, port}); break;
    case RTE_ETH_EVENT_INTR_RMV: d->post({device_event::kind::removed, port}); break;
    case RTE_ETH_EVENT_INTR_LSC: d->post({device_event::kind::link, port}); break;
    default: break;
    }
    return 0;
}

void device_events::on_device_event(const char* device, int type, void* self) {
    uint16_t port;
    if (type == RTE_DEV_EVENT_REMOVE && device != nullptr &&
        rte_eth_dev_get_port_by_name(device, &port) == 0) {
        static_cast<device_events*>(self)->post({device_event::kind::removed, port});
    }
}

void device_events::post(device_event e) {
    {
        std::lock_guard<std::mutex> g(lock_);
        queue_.push_back(e);
    }
    const uint64_t one = 1;
    [[maybe_unused]] ssize_t rc = write(fd_, &one, sizeof(one));
}

std::vector<device_event> device_events::take() {
    uint64_t n;
    [[maybe_unused]] ssize_t rc = read(fd_, &n, sizeof(n));
    std::vector<device_event> out;
    std::lock_guard<std::mutex> g(lock_);
    out.swap(queue_);
    return out;
}

probe_result probe_device(const std::string& devargs) {
    const std::string name = devargs.substr(0, devargs.find(','));
    if (name.empty()) {
        return {std::nullopt, "empty device arguments"};
    }
    uint16_t port;
    if (rte_eth_dev_get_port_by_name(name.c_str(), &port) == 0) {
        return {std::nullopt, fmt::format("device '{}' exists already", name)};
    }
    if (int rc = rte_dev_probe(devargs.c_str()); rc != 0) {
        return {std::nullopt, fmt::format("cannot probe '{}': {}", devargs, rte_strerror(-rc))};
    }
    if (rte_eth_dev_get_port_by_name(name.c_str(), &port) != 0) {
        return {std::nullopt, fmt::format("'{}' was probed but is not an ethdev port", name)};
    }
    return {port, ""};
}

bool remove_device(uint16_t port, std::string* error) {
    rte_eth_dev_info info{};
    if (rte_eth_dev_info_get(port, &info) != 0 || info.device == nullptr) {
        if (error != nullptr) {
            *error = fmt::format("port {} is not valid", port);
        }
        return false;
    }
    rte_device* dev = info.device;
    rte_eth_dev_stop(port);
    rte_eth_dev_close(port);
    if (int rc = rte_dev_remove(dev); rc != 0) {
        if (error != nullptr) {
            *error = fmt::format("rte_dev_remove: {}", rte_strerror(-rc));
        }
        return false;
    }
    return true;
}

} // namespace vcplane

#pragma once
// Ports that come and go while the switch runs.
//
// DPDK reports port events (a port probed, removed, its link changing) on its interrupt
// thread. A PCI device unplugged while vfio-pci holds it for us arrives as the kernel's
// request to release it (a device event, RTE_DEV_EVENT_REMOVE): the device is removed like a
// port whose driver reported its removal, so that the kernel can finish the unplug. Nothing may be
// done there: device_events only queues the event and wakes the control loop through an eventfd;
// the control thread takes the events and acts.

#include <cstdint>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

namespace vcplane {

struct device_event {
    enum class kind { added, removed, link } what;
    uint16_t port;
};

class device_events {
public:
    device_events();  // registers the ethdev callbacks for every port
    ~device_events(); // unregisters them
    device_events(const device_events&) = delete;
    device_events& operator=(const device_events&) = delete;

    int event_fd() const noexcept { return fd_; }
    std::vector<device_event> take(); // control thread, when event_fd() is readable

private:
    static int on_event(uint16_t port, int type, void* self, void* param);
    static void on_device_event(const char* device, int type, void* self);
    void post(device_event e);

    int fd_;
    std::mutex lock_; // shared with the interrupt thread only
    std::vector<device_event> queue_;
};

// rte_dev_probe; returns the port of the device named by the devargs' first field, or the
// error.
struct probe_result {
    std::optional<uint16_t> port;
    std::string error;
};
probe_result probe_device(const std::string& devargs);

// Stops and closes the port, then removes its device (rte_dev_remove). The caller has made
// sure no worker polls or transmits on it any more.
bool remove_device(uint16_t port, std::string* error);

} // namespace vcplane

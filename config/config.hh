#pragma once
// The vcplane configuration: what the operator wrote, validated.
//
// parse_config_* turns TOML text into a vcplane_config or throws config_error carrying every
// problem found, each formatted as `FILE:LINE: KEY.PATH: what is wrong (what is expected)`.
// Nothing here touches DPDK: the parser runs before EAL exists (and for `vcplaned --check`
// without it). Whether a named device is really present is decided later, by port/.

#include <array>
#include <cstdint>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include "vocab/call_vocabulary.hh"
#include "vocab/control_limits.hh"
#include "vocab/mac.hh"
#include "vocab/media.hh"

namespace vcplane {

// Where in the file a setting came from, for messages given after parsing (e.g. by port/).
struct config_origin {
    std::string file;
    uint32_t line = 0;
    std::string key;
    std::string where() const; // "FILE:LINE: KEY"
};

struct eal_config {
    std::vector<unsigned> lcores; // first is the main (control) lcore, the rest are workers
    unsigned memory_mb = 0;       // 0: let EAL decide (hugepages); required with no_huge
    bool no_huge = false;
    std::vector<std::string> vdevs;
    std::vector<std::string> pci_allow;
    std::string file_prefix = "vcplane";
    std::string log_level = "notice";
    config_origin origin;
};

struct connection_config {
    std::string name;
    std::string device;             // DPDK device name (PCI address or vdev name) ...
    std::optional<mac_address> mac; // ... or the port's MAC address
    std::string devargs;            // set: vcplane probes the device itself (CM connect)
    media_kind media = media_kind::mpls;
    uint32_t mtu = 1500;
    uint64_t bandwidth_bps = 0; // 0: not stated
    uint16_t rx_descriptors = 1024;
    uint16_t tx_descriptors = 1024;
    config_origin origin;           // key: connections.NAME
    config_origin device_origin;    // key: connections.NAME.device (or .mac)
    config_origin bandwidth_origin; // key: connections.NAME.bandwidth_bps
};

// A party as the file states it: the NPI's party_spec, and where it was written.
struct party_config : party_spec {
    config_origin origin;
};

struct call_config {
    std::string name;
    std::string connection; // ingress connection
    uint32_t key = 0;       // label or VID that selects the VC on the ingress connection
                            // (port_key on a port connection)
    traffic_contract contract;
    call_encapsulation encap;
    std::vector<party_config> parties;
    config_origin origin;

    const party_config* find_party(std::string_view name) const;
};

// The control socket (Unix domain, SOCK_SEQPACKET): who may connect, and the bounds that keep
// one client from stalling the control thread.
struct control_config {
    bool enabled = true;
    std::string socket = default_control_socket;
    std::string owner; // empty: the daemon's user
    std::string group; // empty: the daemon's group
    uint32_t mode = 0660;
    std::vector<std::string> allowed_users{"root"};
    std::vector<std::string> allowed_groups;
    uint32_t max_sessions = 1024;
    uint32_t max_message_bytes = 65536;
    // A client that leaves more unread is disconnected; at least max_batch_requests.
    uint32_t max_queued_replies = 1024;
};

// A name the switch registers in its namespace (NSPv2) on behalf of the file: sessions look it
// up like any other service; the file owns it (a session cannot change or delete it).
struct service_config {
    std::string name;
    std::vector<std::string> addresses;
    std::string comment;
    config_origin origin;
};
inline constexpr size_t max_file_services = 256;
inline constexpr size_t max_service_addresses = 64;

// Per-VC and per-party series are opt-in: each costs the workers a counter update per frame
// (per copy for parties) and the scrape a series. Beyond max_series of a kind, further VCs
// (parties) are counted together in one remainder series without labels.
inline constexpr uint32_t max_series_limit = 1u << 20;
struct metrics_config {
    bool enabled = true;
    std::string listen = "127.0.0.1:9469";
    bool per_vc = false;
    bool per_party = false;
    uint32_t max_series = 10000; // per kind (VC, party)
    // vcplane_forwarding_latency_seconds: every worker samples one burst in 1024 frames
    // (dataplane/latency_samples.hh). Read at start-up.
    bool forwarding_latency = false;
};

struct vcplane_config {
    std::string source; // file name, or "<embedded default>"
    eal_config eal;
    std::vector<connection_config> connections;
    std::vector<call_config> calls;
    std::vector<service_config> services;
    metrics_config metrics;
    control_config control;

    const connection_config* find_connection(std::string_view name) const;
    size_t party_count() const;
};

class config_error : public std::runtime_error {
public:
    explicit config_error(std::vector<std::string> problems);
    const std::vector<std::string>& problems() const { return problems_; }

private:
    std::vector<std::string> problems_;
};

// Files larger than this are refused before parsing: no sane config comes near it.
inline constexpr size_t max_config_bytes = 16u << 20;

vcplane_config parse_config_string(std::string_view text, const std::string& source_name);
vcplane_config parse_config_file(const std::string& path);

// The configuration vcplaned runs when started without --config: the demo topology that
// scripts/demo builds out of network namespaces and veth pairs.
std::string_view embedded_default_config();
inline constexpr const char* embedded_default_name = "<embedded default>";

} // namespace vcplane

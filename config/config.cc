#include "config/config.hh"

#include <fmt/format.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <map>
#include <set>
#include <sstream>
#include <toml++/toml.h>

#include "vocab/names.hh"

namespace vcplane {

std::string config_origin::where() const {
    return fmt::format("{}:{}: {}", file, line, key);
}

const connection_config* vcplane_config::find_connection(std::string_view name) const {
    for (const auto& c : connections) {
        if (c.name == name) {
            return &c;
        }
    }
    return nullptr;
}

size_t vcplane_config::party_count() const {
    size_t n = 0;
    for (const auto& c : calls) {
        n += c.parties.size();
    }
    return n;
}

static std::string join_problems(const std::vector<std::string>& problems) {
    std::string out;
    for (const auto& p : problems) {
        if (!out.empty()) {
            out += '\n';
        }
        out += p;
    }
    return out;
}

config_error::config_error(std::vector<std::string> problems)
    : std::runtime_error(join_problems(problems))
    , problems_(std::move(problems)) {}

namespace {

// Collects every problem in the file instead of stopping at the first, so that an operator
// fixes a broken file in one round.
class reader {
public:
    explicit reader(std::string file)
        : file_(std::move(file)) {}

    config_origin origin(const toml::node& n, std::string key) const {
        return config_origin{file_, static_cast<uint32_t>(n.source().begin.line), std::move(key)};
    }

    void problem(const toml::node& at, const std::string& key, const std::string& what) {
        problems_.push_back(fmt::format("{}:{}: {}: {}", file_, at.source().begin.line, key, what));
    }
    void problem(const config_origin& o, const std::string& what) {
        problems_.push_back(fmt::format("{}: {}", o.where(), what));
    }

    const std::vector<std::string>& problems() const { return problems_; }
    size_t problem_count() const { return problems_.size(); }

    void only_keys(const toml::table& t, const std::string& path,
                   std::initializer_list<std::string_view> known) {
        for (const auto& [k, v] : t) {
            if (std::find(known.begin(), known.end(), k.str()) == known.end()) {
                std::string expected;
                for (auto name : known) {
                    expected += expected.empty() ? "" : ", ";
                    expected += name;
                }
                problem(v, join(path, k.str()),
                        fmt::format("unknown key (expected one of: {})", expected));
            }
        }
    }

    static std::string join(const std::string& path, std::string_view key) {
        return path.empty() ? std::string(key) : fmt::format("{}.{}", path, key);
    }

    const toml::table* table(const toml::table& parent, std::string_view key,
                             const std::string& path) {
        const toml::node* n = parent.get(key);
        if (n == nullptr) {
            return nullptr;
        }
        if (!n->is_table()) {
            problem(*n, join(path, key), fmt::format("expected a table, found {}", type_of(*n)));
            return nullptr;
        }
        return n->as_table();
    }

    std::optional<std::string> string(const toml::table& t, std::string_view key,
                                      const std::string& path, bool required) {
        const toml::node* n = t.get(key);
        if (n == nullptr) {
            if (required) {
                problem(t, join(path, key), "missing (a string is required)");
            }
            return std::nullopt;
        }
        if (!n->is_string()) {
            problem(*n, join(path, key), fmt::format("expected a string, found {}", type_of(*n)));
            return std::nullopt;
        }
        return n->as_string()->get();
    }

    std::optional<int64_t> integer(const toml::table& t, std::string_view key,
                                   const std::string& path, bool required, int64_t min, int64_t max,
                                   std::string_view what = "") {
        const toml::node* n = t.get(key);
        if (n == nullptr) {
            if (required) {
                problem(t, join(path, key),
                        fmt::format("missing (an integer {}..{} is required)", min, max));
            }
            return std::nullopt;
        }
        if (!n->is_integer()) {
            problem(*n, join(path, key), fmt::format("expected an integer, found {}", type_of(*n)));
            return std::nullopt;
        }
        const int64_t v = n->as_integer()->get();
        if (v < min || v > max) {
            if (what.empty()) {
                problem(*n, join(path, key),
                        fmt::format("{} is out of range ({}..{})", v, min, max));
            } else {
                problem(*n, join(path, key),
                        fmt::format("{} is not {} ({}..{})", v, what, min, max));
            }
            return std::nullopt;
        }
        return v;
    }

    std::optional<bool> boolean(const toml::table& t, std::string_view key,
                                const std::string& path) {
        const toml::node* n = t.get(key);
        if (n == nullptr) {
            return std::nullopt;
        }
        if (!n->is_boolean()) {
            problem(*n, join(path, key),
                    fmt::format("expected true or false, found {}", type_of(*n)));
            return std::nullopt;
        }
        return n->as_boolean()->get();
    }

    std::vector<std::string> strings(const toml::table& t, std::string_view key,
                                     const std::string& path) {
        std::vector<std::string> out;
        const toml::node* n = t.get(key);
        if (n == nullptr) {
            return out;
        }
        const toml::array* a = n->as_array();
        if (a == nullptr) {
            problem(*n, join(path, key),
                    fmt::format("expected an array of strings, found {}", type_of(*n)));
            return out;
        }
        for (size_t i = 0; i < a->size(); ++i) {
            const toml::node& e = *a->get(i);
            if (!e.is_string()) {
                problem(e, fmt::format("{}[{}]", join(path, key), i),
                        fmt::format("expected a string, found {}", type_of(e)));
                continue;
            }
            out.push_back(e.as_string()->get());
        }
        return out;
    }

    static std::string type_of(const toml::node& n) {
        switch (n.type()) {
        case toml::node_type::table: return "a table";
        case toml::node_type::array: return "an array";
        case toml::node_type::string: return "a string";
        case toml::node_type::integer: return "an integer";
        case toml::node_type::floating_point: return "a floating-point number";
        case toml::node_type::boolean: return "a boolean";
        case toml::node_type::date:
        case toml::node_type::time:
        case toml::node_type::date_time: return "a date/time";
        default: return "nothing";
        }
    }

private:
    std::string file_;
    std::vector<std::string> problems_;
};

void read_eal(reader& r, const toml::table& root, eal_config& eal) {
    const toml::table* t = r.table(root, "eal", "");
    if (t == nullptr) {
        if (root.get("eal") == nullptr) {
            r.problem(root, "eal",
                      "missing (the [eal] table says which lcores and devices to use)");
        }
        return;
    }
    eal.origin = r.origin(*t, "eal");
    r.only_keys(
        *t, "eal",
        {"lcores", "memory_mb", "no_huge", "vdevs", "pci_allow", "file_prefix", "log_level"});
    const toml::node* lc = t->get("lcores");
    if (lc == nullptr) {
        r.problem(*t, "eal.lcores",
                  "missing (e.g. lcores = [0, 1]: main lcore first, then workers)");
    } else if (!lc->is_array()) {
        r.problem(*lc, "eal.lcores", "expected an array of lcore ids, e.g. [0, 1]");
    } else {
        const toml::array& a = *lc->as_array();
        std::set<int64_t> seen;
        for (size_t i = 0; i < a.size(); ++i) {
            const toml::node& e = *a.get(i);
            const std::string key = fmt::format("eal.lcores[{}]", i);
            if (!e.is_integer() || e.as_integer()->get() < 0 || e.as_integer()->get() > 1023) {
                r.problem(e, key, "expected an lcore id (0..1023)");
                continue;
            }
            const int64_t id = e.as_integer()->get();
            if (!seen.insert(id).second) {
                r.problem(e, key, fmt::format("lcore {} is listed twice", id));
                continue;
            }
            eal.lcores.push_back(static_cast<unsigned>(id));
        }
        if (a.size() < 2) {
            r.problem(*lc, "eal.lcores",
                      "needs at least two lcores: the main (control) lcore and one worker");
        }
    }
    eal.no_huge = r.boolean(*t, "no_huge", "eal").value_or(false);
    if (auto m = r.integer(*t, "memory_mb", "eal", eal.no_huge, 64, 1 << 20)) {
        eal.memory_mb = static_cast<unsigned>(*m);
    }
    eal.vdevs = r.strings(*t, "vdevs", "eal");
    eal.pci_allow = r.strings(*t, "pci_allow", "eal");
    if (auto p = r.string(*t, "file_prefix", "eal", false)) {
        if (!valid_name(*p)) {
            r.problem(*t->get("file_prefix"), "eal.file_prefix",
                      fmt::format("'{}' is not a valid prefix ({})", *p, name_rule));
        } else {
            eal.file_prefix = *p;
        }
    }
    if (auto l = r.string(*t, "log_level", "eal", false)) {
        static const std::set<std::string> levels = {"emergency", "alert",  "critical", "error",
                                                     "warning",   "notice", "info",     "debug"};
        if (levels.count(*l) == 0) {
            r.problem(
                *t->get("log_level"), "eal.log_level",
                fmt::format("'{}' is not a log level (error, warning, notice, info, debug)", *l));
        } else {
            eal.log_level = *l;
        }
    }
}

// How a connection names its port: device, devargs (whose first field is the device) or mac.
void read_port_name(reader& r, const toml::table& ct, const std::string& path,
                    connection_config& c) {
    auto device = r.string(ct, "device", path, false);
    auto mac_text = r.string(ct, "mac", path, false);
    if (auto devargs = r.string(ct, "devargs", path, false)) {
        // The device is the first field of its arguments ("net_null9,size=64").
        const std::string named = devargs->substr(0, devargs->find(','));
        const toml::node& at = *ct.get("devargs");
        if (named.empty()) {
            r.problem(at, path + ".devargs", "names no device (e.g. \"net_null9\")");
        } else if (mac_text) {
            r.problem(at, path + ".devargs",
                      "a port vcplane probes itself is named by devargs, not by mac");
        } else if (device && *device != named) {
            r.problem(at, path + ".devargs",
                      fmt::format("names device '{}' but device is '{}'", named, *device));
        } else {
            c.devargs = *devargs;
            device = named;
        }
    }
    if (device && mac_text) {
        r.problem(*ct.get("mac"), path + ".mac", "give either device or mac, not both");
    } else if (device) {
        c.device = *device;
        const bool named_by_device = ct.contains("device");
        c.device_origin = r.origin(*ct.get(named_by_device ? "device" : "devargs"),
                                   path + (named_by_device ? ".device" : ".devargs"));
        if (device->empty()) {
            r.problem(c.device_origin, "the device name is empty");
        }
    } else if (mac_text) {
        c.device_origin = r.origin(*ct.get("mac"), path + ".mac");
        c.mac = parse_mac(*mac_text);
        if (!c.mac) {
            r.problem(c.device_origin,
                      fmt::format("'{}' is not a MAC address (expected six hex pairs like "
                                  "02:00:5e:10:00:01)",
                                  *mac_text));
        }
    } else if (!ct.contains("device") && !ct.contains("mac") && !ct.contains("devargs")) {
        r.problem(ct, path + ".device",
                  "missing (name the port by device = \"0000:3b:00.0\" or "
                  "\"net_af_packet0\", or by mac = \"...\")");
    }
}

// One [connections.NAME] table.
std::optional<connection_config> read_connection(reader& r, const std::string& name,
                                                 const toml::node& v) {
    const std::string path = fmt::format("connections.{}", name);
    if (!valid_name(name)) {
        r.problem(v, path, fmt::format("a connection name is {}", name_rule));
        return std::nullopt;
    }
    const toml::table* ct = v.as_table();
    if (ct == nullptr) {
        r.problem(v, path, fmt::format("expected a table, found {}", reader::type_of(v)));
        return std::nullopt;
    }
    r.only_keys(*ct, path,
                {"device", "mac", "devargs", "media", "mtu", "bandwidth_bps", "rx_descriptors",
                 "tx_descriptors"});
    connection_config c;
    c.name = name;
    c.origin = r.origin(*ct, path);
    read_port_name(r, *ct, path, c);
    if (auto m = r.string(*ct, "media", path, false)) {
        if (auto media = parse_name<media_kind>(*m)) {
            c.media = *media;
        } else {
            r.problem(
                *ct->get("media"), path + ".media",
                fmt::format("'{}' is not a media (expected {})", *m, expected_names<media_kind>()));
        }
    }
    if (auto m = r.integer(*ct, "mtu", path, false, 68, 9600)) {
        c.mtu = static_cast<uint32_t>(*m);
    }
    if (auto b = r.integer(*ct, "bandwidth_bps", path, false, 0, INT64_MAX)) {
        c.bandwidth_bps = static_cast<uint64_t>(*b);
        c.bandwidth_origin = r.origin(*ct->get("bandwidth_bps"), path + ".bandwidth_bps");
    }
    if (auto d = r.integer(*ct, "rx_descriptors", path, false, 64, 16384)) {
        c.rx_descriptors = static_cast<uint16_t>(*d);
    }
    if (auto d = r.integer(*ct, "tx_descriptors", path, false, 64, 16384)) {
        c.tx_descriptors = static_cast<uint16_t>(*d);
    }
    return c;
}

void read_connections(reader& r, const toml::table& root, vcplane_config& cfg) {
    const toml::table* t = r.table(root, "connections", "");
    if (t == nullptr) {
        return;
    }
    for (const auto& [k, v] : *t) {
        if (auto c = read_connection(r, std::string(k.str()), v)) {
            cfg.connections.push_back(std::move(*c));
        }
    }
    // toml++ iterates a table in key order; keep the file's order, so that messages about a
    // clash name the later entry, as a reader of the file would expect.
    std::stable_sort(cfg.connections.begin(), cfg.connections.end(),
                     [](const auto& a, const auto& b) { return a.origin.line < b.origin.line; });
    // Two connections on one port would make the ingress table ambiguous.
    std::map<std::string, const connection_config*> by_device;
    for (const auto& c : cfg.connections) {
        const std::string id = c.mac ? "mac " + format_mac(*c.mac) : c.device;
        if (id.empty()) {
            continue;
        }
        auto [it, fresh] = by_device.emplace(id, &c);
        if (!fresh) {
            r.problem(c.device_origin,
                      fmt::format("{} is already used by connections.{}", id, it->second->name));
        }
    }
}

// party: the key of a party's copies, for which an MPLS connection also takes label 3
// (implicit null: pop).
void read_key(reader& r, const toml::table& t, const std::string& path,
              const connection_config* conn, uint32_t& key, bool party = false) {
    // The key's name follows the connection's media: an MPLS connection takes a label, a
    // VLAN connection a VID. Naming the wrong one is a mistake worth pointing at.
    const char* const keys[] = {key_name(media_kind::mpls), key_name(media_kind::vlan)};
    if (conn == nullptr) {
        return; // the unknown connection is reported already
    }
    if (conn->media == media_kind::port) {
        // The whole port is the circuit: there is no key to name.
        for (const char* k : keys) {
            if (t.contains(k)) {
                r.problem(*t.get(k), reader::join(path, k),
                          fmt::format("connection '{}' is a port connection, which carries no "
                                      "{}: leave it out",
                                      conn->name, k));
            }
        }
        key = port_key;
        return;
    }
    const char* want = key_name(conn->media);
    const char* other = keys[conn->media == media_kind::mpls ? 1 : 0];
    if (t.contains(other)) {
        r.problem(*t.get(other), reader::join(path, other),
                  fmt::format("connection '{}' carries {}: use {} instead", conn->name,
                              media_name(conn->media), want));
        return;
    }
    const key_range range = key_range_for(conn->media);
    if (party && conn->media == media_kind::mpls) {
        auto v = r.integer(t, want, path, true, INT64_MIN, INT64_MAX);
        if (v && (*v < 0 || *v > range.max || !party_key_fits(conn->media, uint32_t(*v)))) {
            r.problem(*t.get(want), reader::join(path, want),
                      fmt::format("{} is not an MPLS label ({}..{}, or 3 to pop)", *v, range.min,
                                  range.max));
        } else if (v) {
            key = static_cast<uint32_t>(*v);
        }
        return;
    }
    const char* what = conn->media == media_kind::mpls ? "an MPLS label" : "a VLAN ID";
    if (auto v = r.integer(t, want, path, true, range.min, range.max, what)) {
        key = static_cast<uint32_t>(*v);
    }
}

// A call's encapsulation where a label is pushed or popped (vocab/party_action.hh).
void read_encapsulation(reader& r, const toml::table& ct, const std::string& path,
                        call_encapsulation& e) {
    if (auto v = r.string(ct, "payload", path, false)) {
        if (auto payload = parse_name<payload_kind>(*v)) {
            e.payload = *payload;
        } else {
            r.problem(*ct.get("payload"), path + ".payload",
                      fmt::format("'{}' is not a payload (expected {})", *v,
                                  expected_names<payload_kind>()));
        }
    }
    e.control_word = r.boolean(ct, "control_word", path).value_or(false);
    if (const action_problem p = check_encapsulation(e); p != action_problem::none) {
        r.problem(*ct.get("control_word"), path + ".control_word", action_problem_text(p));
    }
    if (auto v = r.string(ct, "ttl", path, false)) {
        if (auto ttl = parse_name<ttl_model>(*v)) {
            e.ttl = *ttl;
        } else {
            r.problem(*ct.get("ttl"), path + ".ttl",
                      fmt::format("'{}' is not a TTL model (expected {})", *v,
                                  expected_names<ttl_model>()));
        }
    }
}

const connection_config* read_connection_ref(reader& r, const vcplane_config& cfg,
                                             const toml::table& t, const std::string& path) {
    auto name = r.string(t, "connection", path, true);
    if (!name) {
        return nullptr;
    }
    const connection_config* c = cfg.find_connection(*name);
    if (c == nullptr) {
        std::string known;
        for (const auto& k : cfg.connections) {
            known += known.empty() ? "" : ", ";
            known += k.name;
        }
        r.problem(*t.get("connection"), path + ".connection",
                  fmt::format("no connection named '{}' (known: {})", *name,
                              known.empty() ? "none" : known));
    }
    return c;
}

// A call's traffic contract: its three keys and the rules of call_vocabulary.hh.
void read_contract(reader& r, const toml::table& ct, const std::string& path, traffic_contract& c) {
    constexpr int64_t max_rate = int64_t(1) << 40; // bytes/s: far beyond any port
    if (auto v = r.integer(ct, "sustained_rate", path, false, 1, max_rate)) {
        c.sustained_rate = uint64_t(*v);
    }
    if (auto v = r.integer(ct, "peak_rate", path, false, 1, max_rate)) {
        c.peak_rate = uint64_t(*v);
    }
    if (auto v = r.integer(ct, "burst", path, false, 64, max_rate)) {
        c.burst = uint64_t(*v);
    }
    c.fair = r.boolean(ct, "fair", path).value_or(false);
    switch (check_contract(c)) {
    case contract_problem::none: break;
    case contract_problem::needs_sustained_rate:
        for (const char* k : {"peak_rate", "burst"}) {
            if (ct.contains(k)) {
                r.problem(*ct.get(k), reader::join(path, k),
                          "needs sustained_rate (the contract's committed rate, bytes/s)");
            }
        }
        break;
    case contract_problem::peak_below_sustained:
        r.problem(*ct.get("peak_rate"), path + ".peak_rate",
                  fmt::format("{} is below sustained_rate {} (peak >= sustained)", c.peak_rate,
                              c.sustained_rate));
        break;
    }
}

// One [[calls.NAME.parties]] table of call `call` entering through `in`.
party_config read_party(reader& r, const vcplane_config& cfg, const toml::table& pt,
                        const std::string& ppath, size_t i, const connection_config* in,
                        const call_encapsulation& encap, const std::string& call,
                        std::set<std::string>& party_names) {
    r.only_keys(pt, ppath, {"name", "connection", "label", "vid", "next_hop"});
    party_config p;
    p.origin = r.origin(pt, ppath);
    p.name = r.string(pt, "name", ppath, false).value_or(fmt::format("party{}", i));
    if (!valid_name(p.name)) {
        r.problem(*pt.get("name"), ppath + ".name", fmt::format("a party name is {}", name_rule));
    } else if (!party_names.insert(p.name).second) {
        r.problem(pt.contains("name") ? *pt.get("name") : pt, ppath + ".name",
                  fmt::format("party name '{}' is used twice in calls.{}", p.name, call));
    }
    const connection_config* out = read_connection_ref(r, cfg, pt, ppath);
    if (out != nullptr) {
        p.connection = out->name;
    }
    const size_t problems_before = r.problem_count();
    read_key(r, pt, ppath, out, p.key, true);
    if (auto mac = r.string(pt, "next_hop", ppath, false)) {
        auto parsed = parse_mac(*mac);
        if (!parsed) {
            r.problem(*pt.get("next_hop"), ppath + ".next_hop",
                      fmt::format("'{}' is not a MAC address (expected six hex pairs like "
                                  "02:00:5e:10:00:01)",
                                  *mac));
        } else if (!usable_next_hop(*parsed)) {
            r.problem(*pt.get("next_hop"), ppath + ".next_hop",
                      "00:00:00:00:00:00 is not a usable next hop");
        } else {
            p.next_hop = *parsed;
        }
    }
    if (out == nullptr || in == nullptr || r.problem_count() != problems_before) {
        return p;
    }
    // The rules the call manager applies (vocab/call_vocabulary.hh), at --check time.
    const party_check c = check_party_spec(in->media, out->media, p.key, p.next_hop, encap);
    switch (c.problem) {
    case party_problem::none:
    case party_problem::key_on_port: // read_key refused the key already
    case party_problem::key_out_of_range: break;
    case party_problem::no_next_hop:
        r.problem(pt, ppath + ".next_hop",
                  fmt::format("missing (the MAC address of the next hop of the party's {} copies)",
                              party_action_name(c.derived.action)));
        break;
    case party_problem::next_hop_unused:
        r.problem(*pt.get("next_hop"), ppath + ".next_hop",
                  fmt::format("the party's copies are the pseudowire's inner frames ({}), which "
                              "keep their own addresses: leave it out",
                              party_action_name(c.derived.action)));
        break;
    case party_problem::action:
        r.problem(*pt.get(out->media == media_kind::mpls ? "label" : "connection"),
                  ppath + (out->media == media_kind::mpls ? ".label" : ".connection"),
                  fmt::format("{} to {}: {}", media_name(in->media), media_name(out->media),
                              action_problem_text(c.derived.problem)));
        break;
    }
    return p;
}

void read_calls(reader& r, const toml::table& root, vcplane_config& cfg) {
    const toml::table* t = r.table(root, "calls", "");
    if (t == nullptr) {
        return;
    }
    // In file order (see read_connections), so a key clash names the later call.
    std::vector<std::pair<std::string, const toml::node*>> ordered;
    for (const auto& [k, v] : *t) {
        ordered.emplace_back(std::string(k.str()), &v);
    }
    std::stable_sort(ordered.begin(), ordered.end(), [](const auto& a, const auto& b) {
        return a.second->source().begin.line < b.second->source().begin.line;
    });
    // (ingress connection, key) -> call that owns it
    std::map<std::pair<std::string, uint32_t>, std::string> keys_in_use;
    for (const auto& [name, node] : ordered) {
        const toml::node& v = *node;
        const std::string path = fmt::format("calls.{}", name);
        if (!valid_name(name)) {
            r.problem(v, path, fmt::format("a call name is {}", name_rule));
            continue;
        }
        const toml::table* ct = v.as_table();
        if (ct == nullptr) {
            r.problem(v, path, fmt::format("expected a table, found {}", reader::type_of(v)));
            continue;
        }
        r.only_keys(*ct, path,
                    {"connection", "label", "vid", "parties", "sustained_rate", "peak_rate",
                     "burst", "fair", "payload", "control_word", "ttl"});
        call_config call;
        call.name = name;
        call.origin = r.origin(*ct, path);
        const connection_config* in = read_connection_ref(r, cfg, *ct, path);
        if (in != nullptr) {
            call.connection = in->name;
        }
        read_key(r, *ct, path, in, call.key);
        if (in != nullptr && (call.key != 0 || in->media == media_kind::port)) {
            auto [it, fresh] = keys_in_use.emplace(std::pair{in->name, call.key}, name);
            if (!fresh && in->media == media_kind::port) {
                r.problem(*ct->get("connection"), path + ".connection",
                          fmt::format("port connection '{}' is the circuit of calls.{} already "
                                      "(a port connection carries one call)",
                                      in->name, it->second));
            } else if (!fresh) {
                const char* which = key_name(in->media);
                r.problem(*ct->get(which), reader::join(path, which),
                          fmt::format("{} {} on connection '{}' is already used by calls.{}", which,
                                      call.key, in->name, it->second));
            }
        }
        read_contract(r, *ct, path, call.contract);
        read_encapsulation(r, *ct, path, call.encap);
        const toml::node* pn = ct->get("parties");
        const toml::array* parties = pn ? pn->as_array() : nullptr;
        if (pn == nullptr) {
            r.problem(*ct, path + ".parties", "missing (a call needs at least one party)");
        } else if (parties == nullptr || !parties->is_array_of_tables()) {
            r.problem(*pn, path + ".parties",
                      "expected an array of tables ([[calls.NAME.parties]] sections)");
            parties = nullptr;
        } else if (parties->empty()) {
            r.problem(*pn, path + ".parties", "a call needs at least one party");
        } else if (parties->size() > max_parties_per_call) {
            r.problem(*pn, path + ".parties",
                      fmt::format("{} parties; a call has at most {}", parties->size(),
                                  max_parties_per_call));
            parties = nullptr;
        }
        std::set<std::string> party_names;
        for (size_t i = 0; parties != nullptr && i < parties->size(); ++i) {
            const toml::table& pt = *parties->get(i)->as_table();
            call.parties.push_back(read_party(r, cfg, pt, fmt::format("{}.parties[{}]", path, i), i,
                                              in, call.encap, name, party_names));
        }
        cfg.calls.push_back(std::move(call));
    }
}

// Admission control as the call managers will apply it (a call's sustained rate is booked on
// every party's egress connection): a file that provisions more than a connection's stated
// bandwidth would have calls refused at run time, so it is refused here, naming the calls.
void check_bookings(reader& r, const vcplane_config& cfg) {
    for (const auto& c : cfg.connections) {
        if (c.bandwidth_bps == 0) {
            continue;
        }
        uint64_t booked = 0;
        bool admitted = true;
        std::vector<std::string> users;
        for (const auto& call : cfg.calls) {
            for (const auto& p : call.parties) {
                const uint64_t more = booked_bps(call.contract);
                if (p.connection == c.name && more != 0) {
                    admitted = admitted && admits(c.bandwidth_bps, booked, more);
                    booked += more;
                    users.push_back(fmt::format("{}.{}", call.name, p.name));
                }
            }
        }
        if (!admitted) {
            r.problem(c.bandwidth_origin,
                      fmt::format("{} bit/s is overbooked: parties leaving through it book {} "
                                  "bit/s (sustained_rate x 8 of {})",
                                  c.bandwidth_bps, booked, fmt::join(users, ", ")));
        }
    }
}

void read_metrics(reader& r, const toml::table& root, metrics_config& m) {
    const toml::table* t = r.table(root, "metrics", "");
    if (t == nullptr) {
        return;
    }
    r.only_keys(*t, "metrics",
                {"enabled", "listen", "per_vc", "per_party", "max_series", "forwarding_latency"});
    m.enabled = r.boolean(*t, "enabled", "metrics").value_or(true);
    m.per_vc = r.boolean(*t, "per_vc", "metrics").value_or(false);
    m.per_party = r.boolean(*t, "per_party", "metrics").value_or(false);
    m.forwarding_latency = r.boolean(*t, "forwarding_latency", "metrics").value_or(false);
    if (auto n = r.integer(*t, "max_series", "metrics", false, 0, max_series_limit)) {
        m.max_series = uint32_t(*n);
    }
    if (auto l = r.string(*t, "listen", "metrics", false)) {
        const auto colon = l->rfind(':');
        bool ok = colon != std::string::npos && colon > 0 && colon + 1 < l->size();
        if (ok) {
            const std::string port = l->substr(colon + 1);
            ok = std::all_of(port.begin(), port.end(),
                             [](char c) { return std::isdigit(static_cast<unsigned char>(c)); }) &&
                 port.size() <= 5 && std::stoul(port) > 0 && std::stoul(port) <= 65535;
        }
        if (!ok) {
            r.problem(*t->get("listen"), "metrics.listen",
                      fmt::format("'{}' is not ADDRESS:PORT (e.g. \"127.0.0.1:9469\")", *l));
        } else {
            m.listen = *l;
        }
    }
}

void read_services(reader& r, const toml::table& root, vcplane_config& cfg) {
    const toml::table* t = r.table(root, "services", "");
    if (t == nullptr) {
        return;
    }
    if (t->size() > max_file_services) {
        r.problem(
            *t, "services",
            fmt::format("{} services; a file registers at most {}", t->size(), max_file_services));
        return;
    }
    for (const auto& [k, v] : *t) {
        const std::string name(k.str());
        const std::string path = "services." + name;
        const toml::table* st = v.as_table();
        if (!valid_name(name)) {
            r.problem(v, path, fmt::format("a service name is {}", name_rule));
            continue;
        }
        if (st == nullptr) {
            r.problem(v, path, fmt::format("expected a table, found {}", reader::type_of(v)));
            continue;
        }
        r.only_keys(*st, path, {"addresses", "comment"});
        service_config svc;
        svc.name = name;
        svc.origin = r.origin(*st, path);
        svc.addresses = r.strings(*st, "addresses", path);
        if (svc.addresses.size() > max_service_addresses) {
            r.problem(*st->get("addresses"), path + ".addresses",
                      fmt::format("{} addresses; a service has at most {}", svc.addresses.size(),
                                  max_service_addresses));
        }
        svc.comment = r.string(*st, "comment", path, false).value_or("");
        cfg.services.push_back(std::move(svc));
    }
}

void read_control(reader& r, const toml::table& root, control_config& c) {
    const toml::table* t = r.table(root, "control", "");
    if (t == nullptr) {
        return;
    }
    r.only_keys(*t, "control",
                {"enabled", "socket", "owner", "group", "mode", "allowed_users", "allowed_groups",
                 "max_sessions", "max_message_bytes", "max_queued_replies"});
    c.enabled = r.boolean(*t, "enabled", "control").value_or(true);
    if (auto s = r.string(*t, "socket", "control", false)) {
        if (s->empty() || (*s)[0] != '/' || s->size() > 107) {
            r.problem(*t->get("socket"), "control.socket",
                      fmt::format("'{}' is not an absolute path of at most 107 bytes", *s));
        } else {
            c.socket = *s;
        }
    }
    c.owner = r.string(*t, "owner", "control", false).value_or("");
    c.group = r.string(*t, "group", "control", false).value_or("");
    if (auto m = r.string(*t, "mode", "control", false)) {
        const bool octal =
            !m->empty() && m->size() <= 4 &&
            std::all_of(m->begin(), m->end(), [](char ch) { return ch >= '0' && ch <= '7'; });
        if (!octal) {
            r.problem(*t->get("mode"), "control.mode",
                      fmt::format("'{}' is not an octal mode like \"0660\"", *m));
        } else {
            c.mode = uint32_t(std::stoul(*m, nullptr, 8));
        }
    }
    if (t->contains("allowed_users")) {
        c.allowed_users = r.strings(*t, "allowed_users", "control");
    }
    c.allowed_groups = r.strings(*t, "allowed_groups", "control");
    if (auto v = r.integer(*t, "max_sessions", "control", false, 1, 65536)) {
        c.max_sessions = uint32_t(*v);
    }
    if (auto v = r.integer(*t, "max_message_bytes", "control", false, 1024, 1 << 20)) {
        c.max_message_bytes = uint32_t(*v);
    }
    // At least one batch's replies: a client that sends a legal batch and then reads is never
    // cut off.
    if (auto v =
            r.integer(*t, "max_queued_replies", "control", false, max_batch_requests, 1 << 20)) {
        c.max_queued_replies = uint32_t(*v);
    }
}

} // namespace

const party_config* call_config::find_party(std::string_view party) const {
    for (const auto& p : parties) {
        if (p.name == party) {
            return &p;
        }
    }
    return nullptr;
}

vcplane_config parse_config_string(std::string_view text, const std::string& source_name) {
    if (text.size() > max_config_bytes) {
        throw config_error({fmt::format("{}: {} bytes is too large for a config file (limit {})",
                                        source_name, text.size(), max_config_bytes)});
    }
    toml::table root;
    try {
        root = toml::parse(text, source_name);
    } catch (const toml::parse_error& e) {
        throw config_error(
            {fmt::format("{}:{}:{}: syntax error: {}", source_name, e.source().begin.line,
                         e.source().begin.column, e.description())});
    }
    reader r(source_name);
    r.only_keys(root, "", {"eal", "connections", "calls", "services", "metrics", "control"});
    vcplane_config cfg;
    cfg.source = source_name;
    read_eal(r, root, cfg.eal);
    read_connections(r, root, cfg);
    read_calls(r, root, cfg);
    check_bookings(r, cfg);
    read_services(r, root, cfg);
    read_metrics(r, root, cfg.metrics);
    read_control(r, root, cfg.control);
    if (!r.problems().empty()) {
        throw config_error(r.problems());
    }
    return cfg;
}

vcplane_config parse_config_file(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    if (!in) {
        throw config_error({fmt::format("{}: cannot open: {}", path, std::strerror(errno))});
    }
    in.seekg(0, std::ios::end);
    const std::streamoff size = in.tellg();
    if (size < 0) {
        throw config_error({fmt::format("{}: cannot read (not a regular file?)", path)});
    }
    if (static_cast<size_t>(size) > max_config_bytes) {
        throw config_error({fmt::format("{}: {} bytes is too large for a config file (limit {})",
                                        path, size, max_config_bytes)});
    }
    in.seekg(0);
    std::string text(static_cast<size_t>(size), '\0');
    in.read(text.data(), size);
    return parse_config_string(text, path);
}

} // namespace vcplane

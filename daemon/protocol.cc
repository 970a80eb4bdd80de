#include "daemon/protocol.hh"

#include <fmt/format.h>

#include "config/config.hh"

namespace vcplane::protocol {

json status_reply(const char* family, const char* name, int64_t code, const std::string& msg) {
    // Every request's reply starts here. Members assigned one by one: a braced list of pairs
    // builds each pair as a two-element array first, about three times the allocations.
    json r(json::value_t::object);
    r["family"] = family;
    r["status"] = name;
    r["code"] = code;
    r["message"] = msg;
    return r;
}
json wsa_reply(nsp::wsa e, const std::string& msg) {
    return status_reply("nsp", nsp::wsa_name(e), int64_t(e), msg);
}
json ndis_reply(callmgmt::status s, const std::string& msg) {
    return status_reply("ndis", callmgmt::status_name(s), int64_t(uint32_t(s)), msg);
}
json cm_reply(cm::result r, const std::string& msg) {
    return status_reply("cm", cm::result_name(r), int64_t(uint32_t(r)), msg);
}

json unaddressed(json r) {
    r.emplace("id", nullptr);
    return r;
}

std::string str(const json& req, const char* key, bool required) {
    auto it = req.find(key);
    if (it == req.end()) {
        if (required) {
            throw bad_request(fmt::format("missing '{}' (a string)", key));
        }
        return "";
    }
    if (!it->is_string()) {
        throw bad_request(fmt::format("'{}' must be a string", key));
    }
    return it->get<std::string>();
}

uint64_t num(const json& req, const char* key, bool required, uint64_t fallback) {
    auto it = req.find(key);
    if (it == req.end()) {
        if (required) {
            throw bad_request(fmt::format("missing '{}' (an unsigned integer)", key));
        }
        return fallback;
    }
    if (!it->is_number_unsigned()) {
        throw bad_request(fmt::format("'{}' must be an unsigned integer", key));
    }
    return it->get<uint64_t>();
}

bool flag(const json& req, const char* key, bool fallback) {
    auto it = req.find(key);
    if (it == req.end()) {
        return fallback;
    }
    if (!it->is_boolean()) {
        throw bad_request(fmt::format("'{}' must be true or false", key));
    }
    return it->get<bool>();
}

uint32_t key_of(const json& j) {
    for (const char* k : {"key", "label", "vid"}) {
        if (j.contains(k)) {
            const uint64_t v = num(j, k);
            if (v > UINT32_MAX) {
                throw bad_request(fmt::format("'{}' is out of range", k));
            }
            return uint32_t(v);
        }
    }
    return port_key; // a port connection's (a call manager refuses it for MPLS and VLAN)
}

call_encapsulation encap_of(const json& req) {
    call_encapsulation e;
    const std::string payload = str(req, "payload", false);
    if (payload == "ethernet") {
        e.payload = payload_kind::ethernet;
    } else if (!payload.empty() && payload != "ip") {
        throw bad_request(fmt::format("'{}' is not a payload (\"ip\" or \"ethernet\")", payload));
    }
    e.control_word = flag(req, "control_word", false);
    const std::string ttl = str(req, "ttl", false);
    if (ttl == "pipe") {
        e.ttl = ttl_model::pipe;
    } else if (!ttl.empty() && ttl != "uniform") {
        throw bad_request(fmt::format("'{}' is not a TTL model (\"uniform\" or \"pipe\")", ttl));
    }
    return e;
}

party_spec party_of(const json& req) {
    auto it = req.find("party");
    if (it == req.end() || !it->is_object()) {
        throw bad_request("missing 'party' (an object with name, connection, label, next_hop)");
    }
    party_spec p;
    p.name = str(*it, "name");
    p.connection = str(*it, "connection");
    p.key = key_of(*it);
    const std::string mac = str(*it, "next_hop", false);
    if (mac.empty()) {
        return p; // none: a pseudowire's decapsulated copies (a call manager refuses it else)
    }
    auto parsed = parse_mac(mac);
    if (!parsed) {
        throw bad_request(fmt::format("'{}' is not a MAC address (six hex pairs like "
                                      "02:00:5e:10:00:01)",
                                      mac));
    }
    p.next_hop = *parsed;
    return p;
}

traffic_contract flow_of(const json& req) {
    return {num(req, "sustained_rate", false), num(req, "peak_rate", false),
            num(req, "burst", false), flag(req, "fair", false)};
}

std::vector<uint8_t> close_data_of(const json& req) {
    const std::string d = str(req, "close_data", false);
    return std::vector<uint8_t>(d.begin(), d.end());
}

std::vector<std::string> strings_of(const json& req, const char* key) {
    std::vector<std::string> out;
    auto it = req.find(key);
    if (it == req.end()) {
        return out;
    }
    if (!it->is_array()) {
        throw bad_request(fmt::format("'{}' must be an array of strings", key));
    }
    for (const auto& a : *it) {
        if (!a.is_string()) {
            throw bad_request(fmt::format("'{}' must be an array of strings", key));
        }
        out.push_back(a.get<std::string>());
    }
    return out;
}

} // namespace vcplane::protocol

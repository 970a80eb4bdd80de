#include "daemon/protocol.hh"

#include <algorithm>
#include <fmt/format.h>
#include <iterator>

#include "config/config.hh"

namespace vcplane::protocol {

namespace {

// The members every reply has, in the order nlohmann::json writes an object's keys.
enum class fixed { code, family, id, message, status };
constexpr std::pair<std::string_view, fixed> fixed_keys[] = {{"code", fixed::code},
                                                             {"family", fixed::family},
                                                             {"id", fixed::id},
                                                             {"message", fixed::message},
                                                             {"status", fixed::status}};

bool is_fixed(std::string_view key) {
    for (const auto& [k, f] : fixed_keys) {
        if (k == key) {
            return true;
        }
    }
    return false;
}

void write_value(std::string& out, const json& v) {
    if (v.is_number_unsigned()) {
        fmt::format_to(std::back_inserter(out), "{}", v.get<uint64_t>());
    } else if (v.is_number_integer()) {
        fmt::format_to(std::back_inserter(out), "{}", v.get<int64_t>());
    } else {
        out += v.dump();
    }
}

} // namespace

reply::reply(const char* family, const char* status, int64_t code, std::string message)
    : family_(family)
    , status_(status)
    , code_(code)
    , message_(std::move(message)) {}

reply::reply(const json& object)
    : owned_(std::make_unique<names>()) {
    const auto text_of = [&object](const char* key) {
        const auto it = object.find(key);
        if (it == object.end() || !it->is_string()) {
            throw std::invalid_argument(fmt::format("a reply needs '{}' (a string)", key));
        }
        return it->get<std::string>();
    };
    owned_->family = text_of("family");
    owned_->status = text_of("status");
    family_ = owned_->family;
    status_ = owned_->status;
    message_ = text_of("message");
    const auto code = object.find("code");
    if (code == object.end() || !code->is_number_integer()) {
        throw std::invalid_argument("a reply needs 'code' (an integer)");
    }
    code_ = code->get<int64_t>();
    for (const auto& [k, v] : object.items()) {
        if (!is_fixed(k)) {
            (*this)[k] = v;
        }
    }
}

template <typename Members>
auto reply::place_of(Members& members, std::string_view key) {
    return std::lower_bound(members.begin(), members.end(), key,
                            [](const auto& m, std::string_view k) { return m.first < k; });
}

json& reply::operator[](std::string_view key) {
    if (is_fixed(key)) {
        throw std::logic_error(fmt::format("'{}' is a reply's own, not a member", key));
    }
    if (members_.capacity() == 0) {
        members_.reserve(4); // most replies add one or two; before any iterator is taken
    }
    auto it = place_of(members_, key);
    if (it != members_.end() && it->first == key) {
        return it->second;
    }
    return members_.emplace(it, std::string(key), json())->second;
}

const json* reply::find(std::string_view key) const {
    auto it = place_of(members_, key);
    return it != members_.end() && it->first == key ? &it->second : nullptr;
}

void reply::write_short(uint64_t id, std::string& out) const {
    auto to = std::back_inserter(out);
    fmt::format_to(to, R"({{"id":{},"family":"{}","status":"{}","code":{},)", id, family_, status_,
                   code_);
    out += R"("message":"out of memory for the whole reply: its outcome and handles only")";
    bool cut = false;
    for (const auto& [key, value] : members_) {
        if (value.is_number_unsigned()) {
            fmt::format_to(to, R"(,"{}":{})", key, value.get<uint64_t>());
        } else if (value.is_number_integer()) {
            fmt::format_to(to, R"(,"{}":{})", key, value.get<int64_t>());
        } else if (value.is_boolean()) {
            fmt::format_to(to, R"(,"{}":{})", key, value.get<bool>());
        } else {
            cut = true;
        }
    }
    out += cut ? R"(,"truncated":true})" : "}";
}

std::string reply::text(std::optional<uint64_t> id) const {
    std::string out;
    out.reserve(128);
    out += '{';
    const auto key = [&out](std::string_view k) {
        if (out.size() > 1) {
            out += ',';
        }
        out += '"';
        out += k; // keys are the handlers' identifiers
        out += "\":";
    };
    const auto write_fixed = [&](fixed f) {
        switch (f) {
        case fixed::code: fmt::format_to(std::back_inserter(out), "{}", code_); break;
        case fixed::family:
        case fixed::status: {
            const std::string_view name = f == fixed::family ? family_ : status_;
            if (owned_) {
                out += json(name).dump(); // read from an object: escaped as JSON
            } else {
                out += '"';
                out += name;
                out += '"';
            }
            break;
        }
        case fixed::id:
            if (id) {
                fmt::format_to(std::back_inserter(out), "{}", *id);
            } else {
                out += "null";
            }
            break;
        case fixed::message:
            if (message_.empty()) {
                out += "\"\"";
            } else {
                out += json(message_).dump(); // escaped as JSON
            }
            break;
        }
    };
    // Both lists are sorted: merge them.
    size_t f = 0;
    for (const auto& [k, v] : members_) {
        for (; f < std::size(fixed_keys) && fixed_keys[f].first < k; ++f) {
            key(fixed_keys[f].first);
            write_fixed(fixed_keys[f].second);
        }
        key(k);
        write_value(out, v);
    }
    for (; f < std::size(fixed_keys); ++f) {
        key(fixed_keys[f].first);
        write_fixed(fixed_keys[f].second);
    }
    out += '}';
    return out;
}

reply status_reply(const char* family, const char* name, int64_t code, std::string msg) {
    return reply(family, name, code, std::move(msg));
}
reply wsa_reply(nsp::wsa e, std::string msg) {
    return status_reply("nsp", nsp::wsa_name(e), int64_t(e), std::move(msg));
}
reply ndis_reply(callmgmt::status s, std::string msg) {
    return status_reply("ndis", callmgmt::status_name(s), int64_t(uint32_t(s)), std::move(msg));
}
reply cm_reply(cm::result r, std::string msg) {
    return status_reply("cm", cm::result_name(r), int64_t(uint32_t(r)), std::move(msg));
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

// An optional string argument naming a value of E (vocab/enum_names.hh); `absent` when it is
// not given.
template <typename E>
E enum_arg(const json& req, const char* key, const char* what, E absent) {
    const std::string text = str(req, key, false);
    if (text.empty()) {
        return absent;
    }
    if (auto v = parse_name<E>(text)) {
        return *v;
    }
    throw bad_request(fmt::format("'{}' is not {} ({})", text, what, expected_names<E>()));
}

call_encapsulation encap_of(const json& req) {
    call_encapsulation e;
    e.payload = enum_arg(req, "payload", "a payload", e.payload);
    e.control_word = flag(req, "control_word", false);
    e.ttl = enum_arg(req, "ttl", "a TTL model", e.ttl);
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

#include "client/client.hh"

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <fmt/format.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

namespace vcplane {

using nlohmann::json;

control_client::control_client(const std::string& path) {
    fd_ = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    std::snprintf(addr.sun_path, sizeof(addr.sun_path), "%s", path.c_str());
    if (fd_ < 0 || connect(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) {
        const std::string why = std::strerror(errno);
        if (fd_ >= 0) {
            close(fd_);
        }
        throw client_error(
            fmt::format("cannot connect to {}: {} (is vcplaned running?)", path, why));
    }
}

control_client::~control_client() {
    if (fd_ >= 0) {
        close(fd_);
    }
}

bool control_client::pending(const json& reply) {
    return reply.value("status", "") == "PENDING";
}

void control_client::send_raw(const std::string& m) {
    if (send(fd_, m.data(), m.size(), MSG_NOSIGNAL) != ssize_t(m.size())) {
        throw client_error(fmt::format("send: {}", std::strerror(errno)));
    }
}

ssize_t control_client::peek_size(int flags) {
    ssize_t size;
    do {
        size = recv(fd_, nullptr, 0, MSG_PEEK | MSG_TRUNC | flags);
    } while (size < 0 && errno == EINTR);
    return size;
}

// A message's size is read first (MSG_TRUNC on a peek reports it whole), so that a reply of any
// size is read intact into a buffer that is kept, not zeroed afresh for every message.
std::string control_client::take_message(ssize_t size) {
    if (size <= 0) {
        throw client_error("the daemon closed the connection");
    }
    if (receive_buffer_.size() < size_t(size)) {
        receive_buffer_.resize(size_t(size));
    }
    ssize_t n;
    do {
        n = recv(fd_, receive_buffer_.data(), receive_buffer_.size(), 0);
    } while (n < 0 && errno == EINTR);
    if (n <= 0) {
        throw client_error("the daemon closed the connection");
    }
    return std::string(receive_buffer_.data(), size_t(n));
}

std::optional<std::string> control_client::receive_waiting() {
    const ssize_t size = peek_size(MSG_DONTWAIT);
    if (size < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
        return std::nullopt;
    }
    return take_message(size);
}

std::string control_client::receive_raw(std::chrono::milliseconds timeout) {
    // A message already waiting (replies come in bursts) is read without polling for it.
    if (auto m = receive_waiting()) {
        return std::move(*m);
    }
    // A signal the application handles (vcplanectl top's Ctrl-C) interrupts the wait, not the
    // session: wait again for the time left.
    const auto end = std::chrono::steady_clock::now() + timeout;
    for (;;) {
        const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
            end - std::chrono::steady_clock::now());
        pollfd p{fd_, POLLIN, 0};
        const int r = poll(&p, 1, int(std::max(left.count(), int64_t(0))));
        if (r == 0) {
            throw client_error("the daemon did not answer in time");
        }
        if (r > 0 || errno != EINTR) {
            break;
        }
    }
    return take_message(peek_size(0));
}

json control_client::call(const std::string& op, json args, std::chrono::milliseconds timeout) {
    const uint64_t id = next_id_++;
    json req = std::move(args);
    req["id"] = id;
    req["op"] = op;
    const auto end = std::chrono::steady_clock::now() + timeout;
    json reply;
    if (std::optional<json> refused = send_request(req.dump())) {
        return std::move(*refused);
    }
    await_replies(id, 1, &reply, end);
    return reply;
}

std::vector<json> control_client::call_batch(const std::vector<request>& requests,
                                             std::chrono::milliseconds timeout) {
    for (size_t i = 0; i < requests.size(); ++i) {
        if (!requests[i].args.is_object()) {
            throw client_error(fmt::format("batch request {} ({}): arguments must be a JSON object",
                                           i, requests[i].op));
        }
    }
    std::vector<json> replies(requests.size());
    const auto end = std::chrono::steady_clock::now() + timeout;
    for (size_t first = 0; first < requests.size(); first += max_batch) {
        const size_t n = std::min(max_batch, requests.size() - first);
        const uint64_t first_id = next_id_;
        next_id_ += n;
        json batch = json::array();
        for (size_t i = 0; i < n; ++i) {
            json req = requests[first + i].args;
            req["id"] = first_id + i;
            req["op"] = requests[first + i].op;
            batch.push_back(std::move(req));
        }
        if (std::optional<json> refused = send_request(batch.dump())) {
            std::fill(replies.begin() + ptrdiff_t(first), replies.end(), *refused);
            break; // the daemon hung up: nothing after this message was sent either
        }
        // One message at a time, so that a reply without an id (the message refused whole) can
        // only be this message's.
        await_replies(first_id, n, &replies[first], end);
    }
    return replies;
}

std::optional<json> control_client::send_request(const std::string& message) {
    try {
        send_raw(message);
    } catch (const client_error&) {
        // Refused at the door (WSAEACCES, limits): the daemon said why before it hung up.
        json m = json::parse(receive_raw(std::chrono::milliseconds(100)), nullptr, false);
        if (!m.is_discarded() && m.contains("id") && m["id"].is_null()) {
            return m;
        }
        throw;
    }
    return std::nullopt;
}

void control_client::await_replies(uint64_t first_id, size_t n, json* out,
                                   std::chrono::steady_clock::time_point end) {
    size_t missing = n;
    while (missing > 0) {
        const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
            end - std::chrono::steady_clock::now());
        json m =
            json::parse(receive_raw(std::max(left, std::chrono::milliseconds(0))), nullptr, false);
        if (m.is_discarded()) {
            throw client_error("the daemon sent something that is not JSON");
        }
        if (!m.is_array()) {
            m = json::array({std::move(m)});
        }
        // A packed message (hello's pack_replies) holds several: events are kept, and the
        // message is read through before returning.
        for (json& e : m) {
            if (e.contains("event")) {
                events_.push_back(std::move(e));
            } else if (!e.contains("id")) {
                continue;
            } else if (e["id"].is_null()) {
                // Refused before the requests were read (the message, or the session, whole).
                for (size_t i = 0; i < n; ++i) {
                    if (out[i].is_null()) {
                        out[i] = e;
                    }
                }
                missing = 0;
            } else if (e["id"].is_number_unsigned()) {
                const uint64_t id = e["id"].get<uint64_t>();
                if (id >= first_id && id - first_id < n && out[id - first_id].is_null()) {
                    out[id - first_id] = std::move(e);
                    --missing;
                }
                // Otherwise a late reply to an earlier request: not ours.
            }
        }
    }
}

std::string describe_reload(const nlohmann::json& r) {
    std::string out;
    const auto strings = [&](const char* key) {
        std::vector<std::string> v;
        if (r.contains(key) && r[key].is_array()) {
            for (const auto& e : r[key]) {
                v.push_back(e.is_string() ? e.get<std::string>() : e.dump());
            }
        }
        return v;
    };
    for (const auto& p : strings("problems")) {
        out += p + "\n";
    }
    const auto restart = strings("restart_required");
    if (!restart.empty()) {
        out += "needs a restart (not applied):\n";
        for (const auto& l : restart) {
            out += "  " + l + "\n";
        }
    }
    if (r.contains("steps") && r["steps"].is_array()) {
        out += r["steps"].empty()          ? "no call changes\n"
               : r.value("dry_run", false) ? "would do:\n"
                                           : "done:\n";
        for (const auto& s : r["steps"]) {
            std::string what =
                s.contains("service") ? fmt::format("service '{}'", s.value("service", ""))
                : s.contains("party") ? fmt::format("party '{}' of call '{}'", s.value("party", ""),
                                                    s.value("call", ""))
                                      : fmt::format("call '{}'", s.value("call", ""));
            out += fmt::format("  {} {}: {}", s.value("op", ""), what, s.value("why", ""));
            if (s.contains("status")) {
                out += " -> " + s.value("status", "");
            }
            if (s.contains("detail")) {
                out += " (" + s.value("detail", "") + ")";
            }
            out += "\n";
        }
    }
    const auto same = strings("unchanged");
    if (!same.empty()) {
        out += fmt::format("unchanged: {}\n", fmt::join(same, ", "));
    }
    out += fmt::format("{}: {}\n", r.value("status", "?"), r.value("message", ""));
    return out;
}

} // namespace vcplane

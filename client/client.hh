#pragma once
// The client side of the control protocol (daemon/control_server.hh): connects to the
// control socket, sends requests with fresh ids and waits for the matching reply. Events
// (incoming close/drop) that arrive meanwhile are kept in events(). Used by vcplanectl and the
// tests; applications can use it to avoid speaking the raw protocol.

#include <chrono>
#include <cstdint>
#include <nlohmann/json.hpp>
#include <optional>
#include <stdexcept>
#include <string>
#include <sys/types.h>
#include <vector>

namespace vcplane {

class client_error : public std::runtime_error {
public:
    using std::runtime_error::runtime_error;
};

class control_client {
public:
    // Throws client_error when the socket cannot be reached.
    explicit control_client(const std::string& socket_path);
    ~control_client();
    control_client(const control_client&) = delete;
    control_client& operator=(const control_client&) = delete;

    // Sends {"id": fresh, "op": op, ...args} and returns the reply, packed messages read
    // through. Throws client_error if the daemon closes the connection or does not answer
    // within the timeout.
    nlohmann::json call(const std::string& op, nlohmann::json args = nlohmann::json::object(),
                        std::chrono::milliseconds timeout = std::chrono::seconds(30));
    // One request of a batch: its operation and arguments (a JSON object), as call() takes them.
    struct request {
        std::string op;
        nlohmann::json args = nlohmann::json::object();
    };
    // The most requests the protocol takes in one message; the daemon refuses a larger batch
    // whole (README: Batches). A test against the daemon holds the two to the same number.
    static constexpr size_t max_batch = 256;
    // Sends the requests in messages of up to max_batch, each message's replies awaited before
    // the next is sent, and returns one reply per request, in the requests' order. A message
    // the daemon refuses whole (e.g. longer than its max_message_bytes) gives each of its
    // requests that refusal, an unaddressed WSAEINVAL, and none of them is done; the messages
    // before it stand. Throws client_error, sending nothing, when a request's arguments are
    // not an object; and as call() does when the connection closes (a last goodbye ends the
    // session: requests after it get no reply) or the timeout passes.
    std::vector<nlohmann::json>
    call_batch(const std::vector<request>& requests,
               std::chrono::milliseconds timeout = std::chrono::seconds(30));
    // Raw access for tests and benchmarks: send bytes as one message, read one message.
    void send_raw(const std::string& message);
    std::string receive_raw(std::chrono::milliseconds timeout);

    std::vector<nlohmann::json>& events() { return events_; }
    int fd() const { return fd_; }

    static bool ok(const nlohmann::json& reply) { return reply.value("code", -1) == 0; }
    static bool pending(const nlohmann::json& reply);

private:
    // A message that has already arrived, without waiting; nullopt when none has.
    std::optional<std::string> receive_waiting();
    // The size of the next message (MSG_PEEK | MSG_TRUNC); < 0 with errno as recv sets it.
    ssize_t peek_size(int flags);
    std::string take_message(ssize_t size);
    // Sends one message of requests; if the daemon refused the session at the door and hung
    // up, the unaddressed refusal it sent first.
    std::optional<nlohmann::json> send_request(const std::string& message);
    // Reads messages until `end` at most, until out[i] holds the reply to request first_id + i
    // for every i < n (a reply without an id, the message refused whole, fills all that are
    // left). Events that arrive meanwhile are kept in events_.
    void await_replies(uint64_t first_id, size_t n, nlohmann::json* out,
                       std::chrono::steady_clock::time_point end);

    int fd_ = -1;
    uint64_t next_id_ = 1;
    std::vector<nlohmann::json> events_;
    std::vector<char> receive_buffer_; // grown to the largest message read so far
};

// A reload reply (daemon/reload_reply.hh) as lines for a terminal: the changes that need a
// restart, each step with its outcome, the unchanged calls, the problems of an invalid file.
std::string describe_reload(const nlohmann::json& reply);

} // namespace vcplane

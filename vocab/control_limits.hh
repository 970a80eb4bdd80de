#pragma once
// The control protocol's fixed numbers, shared by the daemon, its config and its clients.

#include <cstdint>

namespace vcplane {

// Where the daemon listens unless the file says otherwise.
inline constexpr const char* default_control_socket = "/run/vcplane/control.sock";

// The most requests one message may hold (a batch); a client may leave at least as many
// replies unread (control.max_queued_replies).
inline constexpr uint32_t max_batch_requests = 256;

} // namespace vcplane

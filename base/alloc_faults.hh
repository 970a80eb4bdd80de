#pragma once
// Allocation failure, injected: a test hook at every control-plane allocation that an
// operation depends on. Each such allocation is a site; a test arms a site so that its next
// allocations fail as they do when memory is exhausted, then checks that the operation answers
// its contract's resource status, that nothing is half-made, and that the next one succeeds.
//
// Who calls what: arm() and disarm_all() from tests; fails() and throw_if_failing() at the
// site, on the control thread. Never on the worker path: it allocates nothing. Header-only, so
// the control-thread table builders of dataplane/ can use it without linking base/.
//
// How a site asks: one that allocates with new (std::nothrow) asks fails() and takes true as
// the null pointer it would have got; one that allocates through the standard containers calls
// throw_if_failing(), which throws std::bad_alloc as the allocator would, so the handler that
// runs is the one a real exhaustion reaches. An unarmed site costs one relaxed load.

#include <array>
#include <atomic>
#include <cstdint>
#include <new>

namespace vcplane::alloc_faults {

enum class site : uint8_t {
    party_array, // a party_set or one of its chunks (dataplane/tables.cc)
    vc,          // a vc's block outside the key table (dataplane/tables.cc)
    table_leaf,  // a leaf of a connection's key table (dataplane/tables.cc)
    meter,       // a VC's traffic-contract meter (control/switch_state.cc)
    service,     // a namespace service or its address list (contracts/nsp)
    lookup,      // a namespace lookup's cursor (contracts/nsp)
    session,     // a control-socket session (daemon/control_server.cc)
    reply,       // a reply's text and its place in the send queue (daemon/session.cc)
    close_data,  // a close-data frame's buffer (control/control_plane.cc)
    count_
};
inline constexpr size_t site_count = size_t(site::count_);

namespace detail {
struct armed {
    std::atomic<unsigned> pass{0}; // allocations that still succeed first
    std::atomic<unsigned> fail{0}; // then this many fail
};
inline std::array<armed, site_count> sites;
} // namespace detail

// After `after` more allocations at s succeed, the next n fail.
inline void arm(site s, unsigned n, unsigned after = 0) noexcept {
    detail::sites[size_t(s)].pass.store(after, std::memory_order_relaxed);
    detail::sites[size_t(s)].fail.store(n, std::memory_order_relaxed);
}

inline void disarm_all() noexcept {
    for (auto& a : detail::sites) {
        a.fail.store(0, std::memory_order_relaxed);
        a.pass.store(0, std::memory_order_relaxed);
    }
}

// Whether this allocation at s is to fail (one armed failure used up if so).
inline bool fails(site s) noexcept {
    detail::armed& a = detail::sites[size_t(s)];
    if (a.fail.load(std::memory_order_relaxed) == 0) [[likely]] {
        return false;
    }
    if (a.pass.load(std::memory_order_relaxed) != 0) {
        a.pass.fetch_sub(1, std::memory_order_relaxed);
        return false;
    }
    a.fail.fetch_sub(1, std::memory_order_relaxed);
    return true;
}

inline void throw_if_failing(site s) {
    if (fails(s)) {
        throw std::bad_alloc();
    }
}

// Armed failures not used up yet (a test that armed one checks it was reached).
inline unsigned pending(site s) noexcept {
    return detail::sites[size_t(s)].fail.load(std::memory_order_relaxed);
}

} // namespace vcplane::alloc_faults

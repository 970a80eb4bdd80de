#pragma once
// A control thread for tests and benchmarks, wired as vcplaned wires its own: the project's
// event_loop runs posted work (NMR completions) and grace-period completions (eventfd), and
// flushes deferred work after every iteration.

#include <functional>

#include "base/event_loop.hh"
#include "contracts/nmr/nmr.hh"
#include "control/grace_period.hh"

namespace vcplane::test {

struct control_loop {
    event_loop loop;
    rcu_grace_periods gp;

    control_loop() {
        loop.watch(gp.event_fd(), [this](uint32_t) { gp.run_completed(); });
        loop.set_idle_hook([this] { gp.flush(); });
    }
    ~control_loop() {
        loop.set_idle_hook(nullptr);
        loop.unwatch(gp.event_fd());
    }
    nmr::registrar::post_fn post() {
        return [this](std::function<void()> fn) { loop.post(std::move(fn)); };
    }
    // One iteration: what was deferred starts its grace period, then events up to timeout_ms.
    void pump(int timeout_ms = 10) {
        gp.flush();
        loop.run_once(timeout_ms);
    }
};

} // namespace vcplane::test

#pragma once
// A worker run on an EAL lcore of its own, for the tests and the benchmarks: launch() starts
// w.run(stop) there; the caller sets stop and waits for the lcore (rte_eal_wait_lcore). The
// object holds what the lcore reads: it must outlive the run.

#include <atomic>

#include <rte_launch.h>

#include "dataplane/worker.hh"

namespace vcplane::test {

struct worker_launch {
    worker* w = nullptr;
    std::atomic<bool>* stop = nullptr;

    // 0, or rte_eal_remote_launch's error (the lcore is busy or not a worker lcore).
    int launch(unsigned lcore) noexcept {
        return rte_eal_remote_launch(
            [](void* self) {
                auto* l = static_cast<worker_launch*>(self);
                l->w->run(*l->stop);
                return 0;
            },
            this, lcore);
    }
};

} // namespace vcplane::test

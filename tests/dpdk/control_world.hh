#pragma once
// The switch's control thread as vcplaned wires it — a control plane on EAL ports, its event
// loop and the control socket's server — with grace periods ended by hand, for tests and fuzz
// targets that drive the real request handlers through a real socket. No GoogleTest: the fuzz
// tree includes it too.
//
// Who may call: one thread, the one that started EAL. settle() runs the loop until nothing is
// left to do; the destructor stops everything as vcplaned does (sessions run down, then the
// plane), so that a sanitizer sees no state left behind.

#include <functional>
#include <memory>
#include <rte_mbuf.h>
#include <string>

#include "base/event_loop.hh"
#include "config/config.hh"
#include "control/control_plane.hh"
#include "control/grace_period.hh"
#include "daemon/control_server.hh"

namespace vcplane::test {

struct control_world {
    manual_grace_periods gp;
    event_loop loop;
    vcplane_config cfg;
    rte_mempool* pool = nullptr;
    std::unique_ptr<control_plane> plane;
    std::unique_ptr<control_server> server;

    // `config_text` names EAL ports already probed; `name` names the file in messages and the
    // mbuf pool (unique per process).
    control_world(const std::string& config_text, const std::string& name)
        : cfg(parse_config_string(config_text, name + ".toml"))
        , pool(rte_pktmbuf_pool_create(name.c_str(), 1023, 0, 0, RTE_MBUF_DEFAULT_BUF_SIZE, 0)) {
        plane = std::make_unique<control_plane>(
            cfg, gp, pool, 1, [this](std::function<void()> fn) { loop.post(std::move(fn)); });
        loop.set_idle_hook([this] { plane->flush(); });
        plane->start();
        server = std::make_unique<control_server>(cfg.control, loop, *plane, nullptr);
        settle();
    }
    ~control_world() {
        const auto pump = [this] {
            loop.run_once(0);
            gp.flush();
            gp.complete_all();
        };
        server->close_all(pump);
        server.reset();
        plane->stop(pump);
    }
    control_world(const control_world&) = delete;
    control_world& operator=(const control_world&) = delete;

    // Runs the control thread until it has nothing left to do, ending each grace period it
    // starts. Bounded: a loop that never settles is a hang (a fuzzer reports it as a timeout).
    void settle() {
        for (int i = 0; i < 64; ++i) {
            loop.run_once(0);
            plane->flush();
            if (gp.pending() == 0) {
                loop.run_once(0);
                if (gp.pending() == 0) {
                    return;
                }
            }
            gp.complete_all();
        }
    }
};

} // namespace vcplane::test

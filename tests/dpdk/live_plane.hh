#pragma once
// A running control plane for DPDK tests: ring ports in, p1..p4, one worker on lcore 1 running
// the real worker loop, real RCU grace periods, and a call-management client. TearDown checks
// that every per-VC and per-party object and every buffer is back. Frames are sent
// sequence-numbered on `in` and collected per port.

#include <atomic>
#include <fmt/format.h>
#include <gtest/gtest.h>
#include <map>
#include <memory>
#include <rte_launch.h>

#include "control/control_plane.hh"
#include "dataplane/wire.hh"
#include "support/call_client.hh"
#include "support/control_loop.hh"
#include "tests/dpdk/harness.hh"

namespace vcplane::test {

// Ports of one test: ring ports named <prefix>_in, _p1 .. _p4 (closing a port releases it,
// so every test makes its own).
inline std::string config_text(const std::string& prefix) {
    return fmt::format(R"([eal]
lcores = [0, 1]
[connections.in]
device = "net_ring_{0}_in"
[connections.p1]
device = "net_ring_{0}_p1"
[connections.p2]
device = "net_ring_{0}_p2"
[connections.p3]
device = "net_ring_{0}_p3"
[connections.p4]
device = "net_ring_{0}_p4"
bandwidth_bps = 1_000_000
)",
                       prefix);
}

struct worker_launch {
    worker* w;
    std::atomic<bool>* stop;
};

class live_plane : public ::testing::Test {
protected:
    // The calls section the plane starts with (the provisioner makes them).
    virtual std::string calls_text() const = 0;
    std::string file_text(const std::string& calls) const { return config_text(prefix_) + calls; }

    void SetUp() override {
        start_eal();
        rcu_register_thread();
        rcu_thread_offline();
        static int serial = 0;
        prefix_ = fmt::format("ct{}", serial++);
        for (const char* n : {"in", "p1", "p2", "p3", "p4"}) {
            ports_[n] = make_ring_port(prefix_ + "_" + n, 16384, false);
        }
        pool_before_ = rte_mempool_avail_count(shared_pool());
        parties_before_ = party_set::live();
        vcs_before_ = switch_state::live_vcs();
        cfg_ = parse_config_string(file_text(calls_text()), "calls.toml");
        ctl_ = std::make_unique<control_loop>();
        plane_ = std::make_unique<control_plane>(cfg_, ctl_->gp, shared_pool(), 1, ctl_->post());
        plane_->start();
        args_ = worker_launch{plane_->workers()[0].get(), &stop_};
        ASSERT_EQ(rte_eal_remote_launch(
                      [](void* a) {
                          auto* l = static_cast<worker_launch*>(a);
                          l->w->run(*l->stop);
                          return 0;
                      },
                      &args_, 1),
                  0);
        client_ = std::make_unique<call_client>(plane_->registrar(), [this] { pump(); });
        ASSERT_EQ(client_->bindings().bindings().size(), 5u);
    }

    void TearDown() override {
        EXPECT_TRUE(client_->violations.empty()) << client_->violations.front();
        client_.reset(); // closes whatever the test left open
        plane_->stop([this] { pump(); });
        stop_ = true;
        EXPECT_EQ(rte_eal_wait_lcore(1), 0);
        for (auto& [n, p] : ports_) {
            drain(p);
            rte_ring_free(p.rx);
            rte_ring_free(p.tx);
        }
        plane_.reset();
        ctl_.reset();
        // Every per-VC and per-party object, and every buffer, is back.
        EXPECT_EQ(party_set::live(), parties_before_);
        EXPECT_EQ(switch_state::live_vcs(), vcs_before_);
        EXPECT_EQ(rte_mempool_avail_count(shared_pool()), pool_before_);
        rcu_unregister_thread();
    }

    void pump() { ctl_->pump(5); }

    ring_port& port(const std::string& n) { return ports_.at(n); }

    // Frames received by a port, kept across drains.
    std::map<std::string, std::vector<std::vector<uint8_t>>> got_;
    void collect() {
        for (const char* n : {"p1", "p2", "p3", "p4"}) {
            for (auto& f : drain(port(n))) {
                got_[n].push_back(std::move(f));
            }
        }
    }
    // Sends frames seq [from, to) with `label` and waits until the worker has moved them.
    void send(uint32_t label, uint32_t from, uint32_t to) {
        std::vector<std::vector<uint8_t>> batch;
        for (uint32_t s = from; s < to; ++s) {
            batch.push_back(mpls_frame({.label = label, .seq = s}));
        }
        inject(port("in"), batch);
        for (int i = 0; i < 200 && rte_ring_count(port("in").rx) != 0; ++i) {
            pump();
        }
        pump();
        collect();
    }
    static std::vector<uint32_t> seqs(const std::vector<std::vector<uint8_t>>& frames,
                                      uint32_t label) {
        std::vector<uint32_t> out;
        for (const auto& f : frames) {
            if (wire::mpls_entry{wire::load_be32(f.data() + 14)}.label() == label &&
                wire::mpls_entry{wire::load_be32(f.data() + 14)}.bottom()) {
                out.push_back(wire::load_be32(f.data() + 18));
            }
        }
        return out;
    }
    static std::vector<uint32_t> range(uint32_t from, uint32_t to) {
        std::vector<uint32_t> v;
        for (uint32_t s = from; s < to; ++s) {
            v.push_back(s);
        }
        return v;
    }

    vcplane_config cfg_;
    std::string prefix_;
    std::map<std::string, ring_port> ports_;
    std::unique_ptr<control_loop> ctl_;
    std::unique_ptr<control_plane> plane_;
    std::unique_ptr<call_client> client_;
    std::atomic<bool> stop_{false};
    worker_launch args_{};
    unsigned pool_before_ = 0;
    size_t parties_before_ = 0, vcs_before_ = 0;
};

} // namespace vcplane::test

#include "control/control_plane.hh"

#include <algorithm>
#include <fmt/format.h>
#include <rte_ethdev.h>
#include <rte_mempool.h>

#include "base/alloc_faults.hh"
#include "base/log.hh"
#include "dataplane/wire.hh"
#include "port/ports.hh"

namespace vcplane {

control_plane::control_plane(const vcplane_config& cfg, grace_period_source& gp, rte_mempool* pool,
                             unsigned workers, nmr::registrar::post_fn post)
    : cfg_(cfg)
    , running_(without_calls(cfg))
    , gp_(gp)
    , pool_(pool)
    , reg_(post)
    , state_(workers, cfg.metrics)
    , cm_(cm::listener{[this](const cm::connection& c) { return up(c); },
                       [this](const cm::connection& c, bool removed) { down(c, removed); },
                       [this](const cm::connection& c) { link(c); }})
    , csp_(
          cfg, [this](const std::string& name) { return cm_.find(name) != nullptr; },
          cm::port_ops{
              [this](const std::string& devargs, std::string* error) -> std::optional<cm::adapter> {
                  probe_result r = probe_device(devargs);
                  if (!r.port) {
                      *error = r.error;
                      return std::nullopt;
                  }
                  return adapter_of(*r.port);
              },
              [](const cm::adapter& a, std::string* error) {
                  return remove_device(a.port, error);
              }})
    , provisioner_(cfg, state_, reg_, post)
    , names_([this] { return switch_names(); }) {
    // Frames of the control thread (close data) travel to each worker through a ring.
    static unsigned serial = 0;
    for (unsigned i = 0; i < workers; ++i) {
        control_rings_.push_back(rte_ring_create(fmt::format("vcp_ctl{}_{}", serial, i).c_str(),
                                                 1024, SOCKET_ID_ANY,
                                                 RING_F_SP_ENQ | RING_F_SC_DEQ));
        if (control_rings_.back() == nullptr) {
            free_control_rings();
            throw std::runtime_error("cannot create the control rings");
        }
    }
    // As many replica headers and payload references as the main pool has buffers: every
    // buffered or queued replica holds at most one of each (a header, or the whole copy of a
    // frame of one cache line; a payload reference). Small: a line after the headroom.
    const unsigned replicas = pool_ != nullptr ? pool_->size : 0;
    const int socket = pool_ != nullptr ? pool_->socket_id : SOCKET_ID_ANY;
    if (replicas != 0) {
        header_pool_.reset(rte_pktmbuf_pool_create(fmt::format("vcp_hdr{}", serial).c_str(),
                                                   replicas, 256, 0, RTE_PKTMBUF_HEADROOM + 64,
                                                   socket));
        payload_ref_pool_.reset(rte_pktmbuf_pool_create(fmt::format("vcp_ref{}", serial).c_str(),
                                                        replicas, 256, 0, 0, socket));
        // Linear buffers: one per frame of several segments being shared, held until its
        // last copy is sent. A few hundred cover the TX queues; when none is free a frame's
        // segments are shared as they are.
        linear_pool_.reset(rte_pktmbuf_pool_create(
            fmt::format("vcp_lin{}", serial).c_str(), std::min(replicas, linear_buffers), 32, 0,
            RTE_PKTMBUF_HEADROOM + linear_buffer_len, socket));
        if (header_pool_ == nullptr || payload_ref_pool_ == nullptr || linear_pool_ == nullptr) {
            free_control_rings();
            throw std::runtime_error(fmt::format(
                "cannot create the replica pools ({} headers and payload references, {} linear "
                "buffers of {} bytes): {}; fix: raise eal.memory_mb (or reserve more hugepages)",
                replicas, std::min(replicas, linear_buffers), linear_buffer_len,
                rte_strerror(rte_errno)));
        }
    }
    ++serial;
    for (unsigned i = 0; i < workers; ++i) {
        workers_.push_back(std::make_unique<worker>(i, state_.table(), pool_, uint16_t(i)));
        workers_.back()->set_chain_pools(header_pool_.get(), payload_ref_pool_.get());
        workers_.back()->set_linear_pool(linear_pool_.get());
        workers_.back()->set_counter_slots(state_.vc_slots().worker_array(i),
                                           state_.party_slots().worker_array(i));
        if (cfg.metrics.forwarding_latency) {
            workers_.back()->enable_latency_samples();
        }
    }
    for (unsigned i = 0; i < workers; ++i) {
        workers_[i]->set_control_ring(control_rings_[i]);
    }
    cm_.register_csp(csp_);
}

control_plane::~control_plane() {
    free_control_rings();
}

// The workers have stopped (or never ran): frames still in the rings are ours to free.
void control_plane::free_control_rings() {
    for (rte_ring* r : control_rings_) {
        void* m;
        while (r != nullptr && rte_ring_sc_dequeue(r, &m) == 0) {
            rte_pktmbuf_free(static_cast<rte_mbuf*>(m));
        }
        rte_ring_free(r);
    }
    control_rings_.clear();
}

std::vector<control_plane::pool_fill> control_plane::pool_fills() const {
    std::vector<pool_fill> out;
    for (const rte_mempool* p :
         {pool_, header_pool_.get(), payload_ref_pool_.get(), linear_pool_.get()}) {
        if (p != nullptr) {
            out.push_back({p->name, p->size, rte_mempool_avail_count(p)});
        }
    }
    return out;
}

call_manager* control_plane::find_call_manager(const std::string& connection) const {
    auto it = call_managers_.find(connection);
    return it == call_managers_.end() ? nullptr : it->second.get();
}

cm::adapter control_plane::adapter_of(uint16_t port) const {
    return cm::adapter{port_device_name(port), port, port_mac(port)};
}

void control_plane::start() {
    register_file_services();
    provisioner_.register_client();
    for (const auto& c : cfg_.connections) {
        if (!c.devargs.empty()) {
            const cm::result r = cm_.connect(c.name);
            if (r != cm::result::success) {
                log::error("{}: connection '{}' could not be connected: {}",
                           c.device_origin.where(), c.name, cm::result_name(r));
            }
        }
    }
    for (uint16_t p : present_ports()) {
        if (cm_.find_by_device(port_device_name(p)) == nullptr) {
            cm_.adapter_arrived(adapter_of(p));
        }
    }
}

std::string control_plane::up(const cm::connection& c) {
    const connection_config* cc = csp_.find(c.name);
    if (cc == nullptr) {
        log::error("connection '{}' has no configuration", c.name);
        return "no configuration";
    }
    const uint16_t queues = uint16_t(workers_.size());
    const uint16_t rx_queues = cc->media == media_kind::port ? 1 : queues;
    bool takes_chains = false;
    try {
        takes_chains =
            start_port(port_plan{c.port.port, c.name, rx_queues, queues, cc->rx_descriptors,
                                 cc->tx_descriptors, cc->mtu, cc->media},
                       pool_);
    } catch (const std::exception& e) {
        log::error("{}", e.what());
        return e.what();
    }
    started_ports_.push_back(c.port.port);
    state_.add_connection(c.name, c.port.device, c.port.port, cc->media, c.port.mac, cc->mtu,
                          cc->bandwidth_bps, takes_chains);
    auto mgr = std::make_unique<call_manager>(
        c.name, state_, gp_, reg_,
        [this, ingress = c.name](const connection_state& out, const party_spec& p,
                                 uint32_t party_slot, std::span<const uint8_t> data) {
            return send_close_data(ingress, out, p, party_slot, data);
        });
    call_manager& m = *mgr;
    call_managers_[c.name] = std::move(mgr);
    m.register_provider(); // the provisioner attaches and makes its calls on it
    provisioner_.connection_up();
    // Workers poll the port only now: the first frames find the calls the file provisions
    // on it in place, instead of being dropped as unknown_key.
    publish_rx_queues();
    return "";
}

std::vector<nlohmann::json> control_plane::switch_names() const {
    std::vector<nlohmann::json> out;
    for (const auto& c : cm_.connections()) {
        out.push_back({{"name", c.name}, {"kind", "connection"}, {"device", c.port.device}});
    }
    for (const auto& [conn, m] : call_managers_) {
        for (const auto& c : m->calls()) {
            out.push_back({{"name", c.name},
                           {"kind", "call"},
                           {"connection", conn},
                           {"key", c.key},
                           {"vc", c.vc}});
            for (size_t i = 0; i < c.parties.size(); ++i) {
                const auto& [h, p] = c.parties[i];
                out.push_back({{"name", c.name + "/" + p.name},
                               {"kind", "party"},
                               {"connection", p.connection},
                               {"key", p.key},
                               {"action", party_action_name(c.actions[i])},
                               {"party", h}});
            }
        }
    }
    return out;
}

nsp::wsa control_plane::register_file_service(const service_config& svc) {
    return names_.set_service(file_session, nsp::set_op::register_service, 0, svc.name,
                              svc.addresses, svc.comment);
}

void control_plane::register_file_services() {
    for (const auto& svc : cfg_.services) {
        if (const nsp::wsa e = register_file_service(svc); e != nsp::wsa::no_error) {
            log::error("{}: service '{}' could not be registered: {}", svc.origin.where(), svc.name,
                       nsp::wsa_name(e));
        }
    }
}

provisioner::step_outcome control_plane::apply_service_step(const reload_step& step,
                                                            const vcplane_config& next) {
    nsp::wsa e = nsp::wsa::no_error;
    if (step.op == reload_op::delete_service) {
        e = names_.set_service(file_session, nsp::set_op::remove, 0, step.call, {}, "");
    } else {
        for (const auto& svc : next.services) {
            if (svc.name == step.call) {
                e = register_file_service(svc);
            }
        }
    }
    if (e == nsp::wsa::no_error) {
        return provisioner::step_outcome::of(step, callmgmt::status::success);
    }
    return provisioner::step_outcome::refused(
        step, nsp::wsa_name(e),
        e == nsp::wsa::access_denied ? "a session registered this name" : "");
}

vcplane_config control_plane::without_calls(vcplane_config cfg) {
    cfg.calls.clear();
    return cfg;
}

control_plane::reload_report control_plane::reload(const vcplane_config& next, bool dry_run) {
    vcplane_config now = running_;
    now.calls = provisioner_.calls();
    reload_report r{diff_configs(now, next), {}, dry_run};
    if (dry_run) {
        return r;
    }
    for (const auto& line : r.plan.restart_required) {
        log::warning("reload: {} needs a restart; not applied", line);
    }
    r.outcomes = provisioner_.apply(r.plan, next.calls);
    // Service steps come last in a plan, so their outcomes line up after the calls'.
    for (const auto& step : r.plan.steps) {
        if (!is_call_op(step.op)) {
            r.outcomes.push_back(apply_service_step(step, next));
        }
    }
    running_.services = next.services;
    for (const auto& o : r.outcomes) {
        const std::string line = fmt::format("reload: {} -> {}{}", o.step.text(), o.status,
                                             o.detail.empty() ? "" : " (" + o.detail + ")");
        if (o.succeeded()) {
            log::notice("{}", line);
        } else {
            log::warning("{}", line);
        }
    }
    return r;
}

unsigned control_plane::serving_worker(const connection_state& ingress, uint32_t party_slot) const {
    const counter_slots& slots = state_.party_slots();
    if (party_slot != counter_slots::remainder && slots.counting()) {
        unsigned found = 0, with_copies = 0;
        for (unsigned w = 0; w < workers_.size(); ++w) {
            if (slots.worker_array(w)[party_slot].packets.read() != 0) {
                found = w;
                ++with_copies;
            }
        }
        if (with_copies == 1) {
            return found;
        }
    }
    return queue0_worker(ingress);
}

// A port connection's one RX queue is polled by the worker its port id picks, so that several
// port connections spread over the workers; every other connection's queue 0 by worker 0.
unsigned control_plane::queue0_worker(const connection_state& c) const {
    return c.media == media_kind::port ? unsigned(c.port % workers_.size()) : 0;
}

bool control_plane::send_close_data(const std::string& ingress, const connection_state& out,
                                    const party_spec& p, uint32_t party_slot,
                                    std::span<const uint8_t> data) {
    const connection_state* in = state_.find_connection(ingress);
    if (workers_.empty() || in == nullptr) {
        return false;
    }
    rte_ring* ring = control_rings_[serving_worker(*in, party_slot)];
    rte_mbuf* m =
        alloc_faults::fails(alloc_faults::site::close_data) ? nullptr : rte_pktmbuf_alloc(pool_);
    const size_t len = wire::ether_header_len + wire::gach_overhead + data.size();
    char* frame = m != nullptr ? rte_pktmbuf_append(m, uint16_t(len)) : nullptr;
    if (frame != nullptr) {
        wire::write_gach_frame(reinterpret_cast<uint8_t*>(frame), p.next_hop.data(), out.mac.data(),
                               p.key, data.data(), data.size());
        m->port = out.port;
    }
    // The serving worker transmits it behind the party's copies (control_plane.hh).
    if (frame == nullptr || rte_ring_sp_enqueue(ring, m) != 0) {
        rte_pktmbuf_free(m);
        log::warning("close data for party '{}' on '{}' could not be sent (no buffer, or the "
                     "control ring is full)",
                     p.name, out.name);
        return false;
    }
    return true;
}

void control_plane::link(const cm::connection& c) {
    state_.set_link_up(c.name, c.st == cm::state::connected);
    if (c.st == cm::state::connected) {
        provisioner_.connection_up(); // parties and calls waiting for it come back
        return;
    }
    // Link down: parties leaving through it are dropped, calls entering through it closed.
    for (auto& [name, m] : call_managers_) {
        if (name == c.name) {
            m->ingress_down();
        } else {
            m->egress_gone(c.name);
        }
    }
}

// Deregisters a call manager (closing its clients' calls); it is freed once that completed.
void control_plane::retire(std::unique_ptr<call_manager> m) {
    call_manager* raw = m.get();
    leaving_.push_back(std::move(m));
    raw->deregister(
        [this, raw] { std::erase_if(leaving_, [raw](const auto& p) { return p.get() == raw; }); });
}

// Worker i polls RX queue i of every labelled connection (RSS on the key keeps each VC on one
// queue). A port connection is one VC with one RX queue: the worker its port number picks
// polls it alone, so its frames stay in order (docs/design.md §4).
void control_plane::publish_rx_queues() {
    for (size_t i = 0; i < workers_.size(); ++i) {
        auto* next = new rx_queue_list{};
        for (const auto& c : state_.connections()) {
            const bool whole_port = c.media == media_kind::port;
            if (whole_port && queue0_worker(c) != i) {
                continue;
            }
            if (next->count < next->queues.size()) {
                next->queues[next->count++] =
                    rx_queue_ref{c.port, whole_port ? uint16_t(0) : uint16_t(i)};
            }
        }
        rx_queue_list* old = workers_[i]->publish_rx_queues(next);
        gp_.defer([old] { delete old; });
    }
}

void control_plane::down(const cm::connection& c, bool) {
    // 1. Parties of other calls that leave through this connection.
    for (auto& [name, m] : call_managers_) {
        if (name != c.name) {
            m->egress_gone(c.name);
        }
    }
    // 2. Its own call manager: every bound client is detached, closing its calls on it.
    auto it = call_managers_.find(c.name);
    if (it != call_managers_.end()) {
        retire(std::move(it->second));
        call_managers_.erase(it);
    }
    // 3. The workers stop polling it, and nothing points at it any more.
    std::unique_ptr<connection_entry> entry = state_.remove_connection(c.name);
    publish_rx_queues();
    // 4. One grace period (blocking: port teardown is synchronous by contract, and rare):
    //    afterwards no worker polls the port, holds its VCs, or has its frames in a TX
    //    buffer (workers flush every buffer before each quiescent state).
    gp_.flush();
    gp_.synchronize();
    entry.reset();
    auto p = std::find(started_ports_.begin(), started_ports_.end(), c.port.port);
    if (p != started_ports_.end()) {
        started_ports_.erase(p);
        rte_eth_dev_stop(c.port.port);
    }
    log::notice("connection '{}' ({}): down; the port is unused", c.name, c.port.device);
}

probe_result control_plane::attach_port(const std::string& devargs) {
    probe_result r = probe_device(devargs);
    if (r.port) {
        cm_.adapter_arrived(adapter_of(*r.port));
    }
    return r;
}

bool control_plane::detach_port(const std::string& device, std::string* error) {
    uint16_t port;
    if (rte_eth_dev_get_port_by_name(device.c_str(), &port) != 0) {
        if (error != nullptr) {
            *error = fmt::format("no port named '{}'", device);
        }
        return false;
    }
    const cm::connection* c = cm_.find_by_device(device);
    if (c != nullptr && !c->out_of_band) {
        // Connected by the CM: the CM disconnects it, which removes the device.
        return cm_.disconnect(c->name) == cm::result::success;
    }
    cm_.adapter_removed(device); // tears the connection down, if there is one
    return remove_device(port, error);
}

cm::result control_plane::disconnect(const std::string& connection) {
    return cm_.disconnect(connection);
}

void control_plane::handle(const device_event& e) {
    switch (e.what) {
    case device_event::kind::added:
        if (rte_eth_dev_is_valid_port(e.port) &&
            cm_.find_by_device(port_device_name(e.port)) == nullptr) {
            cm_.adapter_arrived(adapter_of(e.port));
        }
        break;
    case device_event::kind::removed: {
        const std::string device = port_device_name(e.port);
        std::string error;
        if (!detach_port(device, &error)) {
            log::error("port {}: removal failed: {}", device, error);
        }
        break;
    }
    case device_event::kind::link: {
        rte_eth_link link{};
        if (rte_eth_link_get_nowait(e.port, &link) == 0) {
            cm_.adapter_link(port_device_name(e.port), link.link_status == RTE_ETH_LINK_UP);
        }
        break;
    }
    }
}

void control_plane::poll_links() {
    std::vector<std::pair<std::string, bool>> changed;
    for (const auto& c : cm_.connections()) {
        if (c.st != cm::state::connected && c.st != cm::state::disconnected_unavailable) {
            continue; // not carrying traffic for other reasons: a link says nothing of it
        }
        rte_eth_link link{};
        if (!rte_eth_dev_is_valid_port(c.port.port) ||
            rte_eth_link_get_nowait(c.port.port, &link) != 0) {
            continue;
        }
        const bool up = link.link_status == RTE_ETH_LINK_UP;
        if (up != (c.st == cm::state::connected)) {
            changed.emplace_back(c.port.device, up);
        }
    }
    // Applied after the walk: a link change adds and removes connections' call managers.
    for (const auto& [device, up] : changed) {
        log::notice("port {}: link {} (read by the once-a-second link poll)", device,
                    up ? "up" : "down");
        cm_.adapter_link(device, up);
    }
}

std::shared_ptr<status_snapshot> control_plane::snapshot(bool with_ethdev) const {
    auto s = std::make_shared<status_snapshot>();
    for (const auto& c : cm_.connections()) {
        s->ports.push_back(port_snapshot{c.name, c.port.device, c.port.port, cm::state_name(c.st),
                                         "", false, 0, 0, 0, 0});
    }
    for (const auto& u : cm_.unmanaged()) {
        s->ports.push_back(port_snapshot{"", u.port.device, u.port.port, "unmanaged", u.reason,
                                         false, 0, 0, 0, 0});
    }
    for (auto& p : s->ports) {
        port_snapshot& cached = ethdev_cache_[p.port];
        if (with_ethdev && rte_eth_dev_is_valid_port(p.port)) {
            rte_eth_stats st{};
            if (rte_eth_stats_get(p.port, &st) == 0) {
                cached.rx_missed = st.imissed;
                cached.rx_errors = st.ierrors;
                cached.tx_errors = st.oerrors;
                cached.rx_nombuf = st.rx_nombuf;
            }
            read_xstats(p.port, cached.xstats);
            rte_eth_link link{};
            cached.link_up =
                rte_eth_link_get_nowait(p.port, &link) == 0 && link.link_status == RTE_ETH_LINK_UP;
        }
        p.rx_missed = cached.rx_missed;
        p.rx_errors = cached.rx_errors;
        p.tx_errors = cached.tx_errors;
        p.rx_nombuf = cached.rx_nombuf;
        p.link_up = cached.link_up;
        p.xstats = cached.xstats;
    }
    for (const auto& [name, m] : call_managers_) {
        s->calls += m->active_calls();
        s->parties += m->active_parties();
    }
    s->calls_waiting = provisioner_.calls_waiting();
    s->file_leaving = provisioner_.leaving().size();
    s->nmr = reg_.counts();
    s->grace_pending = gp_.pending();
    if (with_ethdev || !series_) {
        auto list = std::make_shared<traffic_series_list>();
        if (state_.vc_slots().counting() || state_.party_slots().counting()) {
            for (const auto& [name, m] : call_managers_) {
                m->list_series(*list);
            }
        }
        list->vcs_in_remainder = state_.vc_slots().in_remainder();
        list->parties_in_remainder = state_.party_slots().in_remainder();
        list->vcs_suppressed_total = state_.vc_slots().suppressed_total();
        list->parties_suppressed_total = state_.party_slots().suppressed_total();
        series_ = std::move(list);
    }
    s->series = series_;
    return s;
}

void control_plane::read_xstats(uint16_t port, std::vector<port_xstat>& out) {
    // Names first (the count may differ per driver and after a reconfiguration), then values
    // in the same order.
    const int n = rte_eth_xstats_get_names(port, nullptr, 0);
    if (n <= 0) {
        out.clear();
        return;
    }
    std::vector<rte_eth_xstat_name> names(static_cast<size_t>(n));
    std::vector<rte_eth_xstat> values(static_cast<size_t>(n));
    if (rte_eth_xstats_get_names(port, names.data(), unsigned(n)) != n ||
        rte_eth_xstats_get(port, values.data(), unsigned(n)) != n) {
        return; // keep the last reading
    }
    out.clear();
    for (const auto& v : values) {
        if (v.id < names.size()) {
            out.push_back({names[v.id].name, v.value});
        }
    }
}

void control_plane::stop(const std::function<void()>& pump) {
    provisioner_.deregister_and_wait(pump);
    // Every call manager deregisters; their clients are gone, so this completes at once.
    for (auto& [name, m] : call_managers_) {
        retire(std::move(m));
    }
    call_managers_.clear();
    while (!leaving_.empty()) {
        pump();
    }
    // No worker may poll or transmit on a port once it is stopped.
    std::vector<std::unique_ptr<connection_entry>> entries;
    while (!state_.connections().empty()) {
        entries.push_back(state_.remove_connection(state_.connections().front().name));
    }
    publish_rx_queues();
    gp_.flush();
    gp_.synchronize();
    entries.clear();
    for (uint16_t p : started_ports_) {
        stop_port(p);
    }
    started_ports_.clear();
}

} // namespace vcplane

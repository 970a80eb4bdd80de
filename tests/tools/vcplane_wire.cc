// vcplane-wire: puts MPLS / 802.1Q frames on a real interface and reads them back, for the
// demo and the end-to-end tests. Runs inside a network namespace (ip netns exec ...).
//
//   vcplane-wire send --iface eth0 --dst MAC --src MAC --label 1000 [--ttl 64] [--tc 0]
//                     [--count N] [--interval-ms M] [--seq S] [--size BYTES]
//                     [--vid V] [--ethertype 0x0800]
//   vcplane-wire recv --iface eth0 [--count N] [--timeout-ms T] [--hex] [--quiet]
//                     [--ready-file PATH] [--summary]
//
// Frames carry "vcplane seq=N" in their payload so receivers can check order and loss.
// recv prints one line per frame (or its hex with --hex) and a last line "received N";
// it exits 0 when it got --count frames, 3 when it timed out first. With --summary it prints
// nothing per frame and runs until SIGTERM or SIGINT (or the timeout, if given), then prints
// one line per label or VID received, for long runs whose frames are too many to print:
//   key K frames N distinct D repeats R reordered O min A max B
// (repeats: a sequence number seen before; reordered: one below the highest seen so far).

#include <CLI/CLI.hpp>
#include <algorithm>
#include <arpa/inet.h>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <linux/if_packet.h>
#include <map>
#include <net/ethernet.h>
#include <net/if.h>
#include <poll.h>
#include <string>
#include <string_view>
#include <sys/socket.h>
#include <thread>
#include <unistd.h>
#include <vector>

#include "config/config.hh"
#include "dataplane/wire.hh"

#ifndef PACKET_IGNORE_OUTGOING
#define PACKET_IGNORE_OUTGOING 23
#endif

using namespace vcplane;

namespace {

int open_socket(const std::string& iface, bool ignore_outgoing) {
    int fd = socket(AF_PACKET, SOCK_RAW, htons(ETH_P_ALL));
    if (fd < 0) {
        std::perror("vcplane-wire: socket(AF_PACKET)");
        std::exit(2);
    }
    const unsigned idx = if_nametoindex(iface.c_str());
    if (idx == 0) {
        std::fprintf(stderr, "vcplane-wire: no interface '%s'\n", iface.c_str());
        std::exit(2);
    }
    sockaddr_ll sll{};
    sll.sll_family = AF_PACKET;
    sll.sll_protocol = htons(ETH_P_ALL);
    sll.sll_ifindex = int(idx);
    if (bind(fd, reinterpret_cast<sockaddr*>(&sll), sizeof(sll)) != 0) {
        std::perror("vcplane-wire: bind");
        std::exit(2);
    }
    int on = 1;
    setsockopt(fd, SOL_PACKET, PACKET_AUXDATA, &on, sizeof(on));
    if (ignore_outgoing) {
        int one = 1;
        setsockopt(fd, SOL_PACKET, PACKET_IGNORE_OUTGOING, &one, sizeof(one));
    }
    return fd;
}

mac_address mac_or_die(const std::string& s, const char* what) {
    auto m = parse_mac(s);
    if (!m) {
        std::fprintf(stderr, "vcplane-wire: %s: '%s' is not a MAC address\n", what, s.c_str());
        std::exit(2);
    }
    return *m;
}

std::string hex(const uint8_t* p, size_t n) {
    std::string out;
    char b[3];
    for (size_t i = 0; i < n; ++i) {
        std::snprintf(b, sizeof(b), "%02x", p[i]);
        out += b;
    }
    return out;
}

std::string printable_payload(const uint8_t* p, size_t n) {
    std::string out;
    for (size_t i = 0; i < n && p[i] != 0; ++i) {
        out += (p[i] >= 32 && p[i] < 127) ? char(p[i]) : '.';
    }
    return out;
}

std::string describe(const uint8_t* f, size_t n) {
    std::string out = "dst=" + format_mac(*reinterpret_cast<const mac_address*>(f)) +
                      " src=" + format_mac(*reinterpret_cast<const mac_address*>(f + 6));
    const uint16_t type = wire::load_be16(f + 12);
    char buf[160];
    if (type == wire::ethertype_mpls && n >= 18) {
        const wire::mpls_entry e{wire::load_be32(f + 14)};
        std::snprintf(buf, sizeof(buf), " mpls label=%u tc=%u s=%u ttl=%u len=%zu", e.label(),
                      e.tc(), unsigned(e.bottom()), e.ttl(), n);
        out += buf;
        out += " payload=\"" + printable_payload(f + 18, n - 18) + "\"";
    } else if (type == wire::ethertype_vlan && n >= 18) {
        const uint16_t tci = wire::load_be16(f + 14);
        std::snprintf(buf, sizeof(buf), " vlan vid=%u pcp=%u len=%zu", tci & 0xfff, tci >> 13, n);
        out += buf;
        out += " payload=\"" + printable_payload(f + 18, n - 18) + "\"";
    } else {
        std::snprintf(buf, sizeof(buf), " type=0x%04x len=%zu", type, n);
        out += buf;
    }
    return out;
}

// One frame as it was on the wire. The kernel takes an 802.1Q tag out of a received frame
// and hands it over beside it (PACKET_AUXDATA): it is put back where it was.
ssize_t receive_frame(int fd, std::vector<uint8_t>& buf) {
    iovec iov{buf.data() + 4, buf.size() - 4};
    alignas(cmsghdr) char control[CMSG_SPACE(sizeof(tpacket_auxdata))];
    msghdr msg{};
    msg.msg_iov = &iov;
    msg.msg_iovlen = 1;
    msg.msg_control = control;
    msg.msg_controllen = sizeof(control);
    const ssize_t n = recvmsg(fd, &msg, 0);
    if (n < 12) {
        return n;
    }
    for (cmsghdr* c = CMSG_FIRSTHDR(&msg); c != nullptr; c = CMSG_NXTHDR(&msg, c)) {
        if (c->cmsg_level != SOL_PACKET || c->cmsg_type != PACKET_AUXDATA) {
            continue;
        }
        tpacket_auxdata aux;
        std::memcpy(&aux, CMSG_DATA(c), sizeof(aux));
        if ((aux.tp_status & TP_STATUS_VLAN_VALID) != 0) {
            std::memmove(buf.data(), buf.data() + 4, 12); // the MACs, then the tag
            const uint16_t tpid = (aux.tp_status & TP_STATUS_VLAN_TPID_VALID) != 0
                                      ? aux.tp_vlan_tpid
                                      : wire::ethertype_vlan;
            wire::store_be16(buf.data() + 12, tpid);
            wire::store_be16(buf.data() + 14, uint16_t(aux.tp_vlan_tci));
            return n + 4;
        }
    }
    std::memmove(buf.data(), buf.data() + 4, size_t(n));
    return n;
}

// Per label or VID: which sequence numbers arrived, how often, in what order.
struct sequence_tally {
    std::vector<bool> seen;
    uint64_t frames = 0, distinct = 0, repeats = 0, reordered = 0;
    uint32_t min = UINT32_MAX, max = 0;
    void add(uint32_t seq) {
        ++frames;
        if (seq >= seen.size()) {
            seen.resize(std::max<size_t>(seq + 1, seen.size() * 2));
        }
        if (seen[seq]) {
            ++repeats;
        } else {
            seen[seq] = true;
            ++distinct;
        }
        if (frames > 1 && seq < max) {
            ++reordered;
        }
        min = std::min(min, seq);
        max = std::max(max, seq);
    }
};

// The key and sequence number of one of our frames; false for anything else.
bool read_sequence(const uint8_t* f, size_t n, uint32_t* key, uint32_t* seq) {
    if (n < 18 + 12) {
        return false;
    }
    const uint16_t type = wire::load_be16(f + 12);
    *key = type == wire::ethertype_mpls ? wire::mpls_entry{wire::load_be32(f + 14)}.label()
                                        : uint32_t(wire::load_be16(f + 14) & 0xfff);
    const std::string_view payload(reinterpret_cast<const char*>(f + 18), n - 18);
    constexpr std::string_view tag = "vcplane seq=";
    if (payload.substr(0, tag.size()) != tag) {
        return false;
    }
    uint32_t v = 0;
    size_t i = tag.size();
    for (; i < payload.size() && payload[i] >= '0' && payload[i] <= '9'; ++i) {
        v = v * 10 + uint32_t(payload[i] - '0');
    }
    *seq = v;
    return i > tag.size() && v < (1u << 28);
}

volatile std::sig_atomic_t stop_requested = 0;

} // namespace

int main(int argc, char** argv) {
    CLI::App app{"vcplane-wire: send and receive MPLS/802.1Q test frames"};
    app.require_subcommand(1);
    std::string iface;
    auto* send = app.add_subcommand("send", "send frames");
    std::string dst = "02:76:63:00:00:ff", src = "02:76:63:00:00:01";
    uint32_t label = 1000, vid = 0, count = 1, interval_ms = 0, seq = 0, size = 64;
    unsigned ttl = 64, tc = 0;
    std::string ethertype;
    send->add_option("--iface", iface)->required();
    send->add_option("--dst", dst);
    send->add_option("--src", src);
    send->add_option("--label", label);
    send->add_option("--vid", vid, "send an 802.1Q frame with this VID instead of MPLS");
    send->add_option("--ttl", ttl)->check(CLI::Range(0, 255));
    send->add_option("--tc", tc)->check(CLI::Range(0, 7));
    send->add_option("--count", count);
    send->add_option("--interval-ms", interval_ms);
    send->add_option("--seq", seq, "first sequence number");
    send->add_option("--size", size, "frame size without FCS")->check(CLI::Range(60, 9000));
    send->add_option("--ethertype", ethertype, "send an untagged frame of this ethertype");

    auto* recv = app.add_subcommand("recv", "receive frames");
    uint32_t want = 1, timeout_ms = 3000;
    bool as_hex = false, quiet = false;
    std::string ready_file;
    recv->add_option("--iface", iface)->required();
    recv->add_option("--count", want);
    recv->add_option("--timeout-ms", timeout_ms);
    recv->add_flag("--hex", as_hex, "print each frame as hex");
    recv->add_flag("--quiet", quiet, "print only the final count");
    recv->add_option("--ready-file", ready_file, "create this file once listening");
    bool summary = false;
    recv->add_flag("--summary", summary,
                   "count sequence numbers per label or VID until SIGTERM; print a line per key");
    CLI11_PARSE(app, argc, argv);

    if (send->parsed()) {
        const int fd = open_socket(iface, false);
        std::vector<uint8_t> f(size, 0);
        const mac_address d = mac_or_die(dst, "--dst"), s = mac_or_die(src, "--src");
        wire::write_macs(f.data(), d.data(), s.data());
        size_t payload_at = 18;
        if (!ethertype.empty()) {
            wire::store_be16(f.data() + 12, uint16_t(std::stoul(ethertype, nullptr, 0)));
            payload_at = 14;
        } else if (vid != 0) {
            wire::store_be16(f.data() + 12, wire::ethertype_vlan);
            wire::store_be16(f.data() + 14, uint16_t(tc << 13 | (vid & 0xfff)));
        } else {
            wire::store_be16(f.data() + 12, wire::ethertype_mpls);
            wire::store_be32(f.data() + 14,
                             wire::make_mpls_entry(label, uint8_t(tc), true, uint8_t(ttl)));
        }
        for (uint32_t i = 0; i < count; ++i) {
            std::snprintf(reinterpret_cast<char*>(f.data() + payload_at), size - payload_at,
                          "vcplane seq=%u", seq + i);
            if (::send(fd, f.data(), f.size(), 0) != ssize_t(f.size())) {
                std::perror("vcplane-wire: send");
                return 2;
            }
            if (interval_ms != 0 && i + 1 < count) {
                std::this_thread::sleep_for(std::chrono::milliseconds(interval_ms));
            }
        }
        close(fd);
        return 0;
    }

    const int fd = open_socket(iface, true);
    if (!ready_file.empty()) {
        std::ofstream(ready_file) << "ready\n";
    }
    if (summary) {
        std::signal(SIGTERM, [](int) { stop_requested = 1; });
        std::signal(SIGINT, [](int) { stop_requested = 1; });
        // Room for a long run's burst while this process is not scheduled.
        int rcvbuf = 32 << 20;
        setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &rcvbuf, sizeof(rcvbuf));
        if (!recv->get_option("--timeout-ms")->count()) {
            timeout_ms = UINT32_MAX;
        }
    }
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
    uint32_t got = 0;
    std::vector<uint8_t> buf(16384);
    std::map<uint32_t, sequence_tally> tallies;
    while (summary ? stop_requested == 0 : got < want) {
        const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
                              deadline - std::chrono::steady_clock::now())
                              .count();
        if (left <= 0) {
            break;
        }
        pollfd p{fd, POLLIN, 0};
        if (poll(&p, 1, int(std::min<long>(left, 100))) <= 0) {
            continue;
        }
        const ssize_t n = receive_frame(fd, buf);
        if (n < 14) {
            continue;
        }
        const uint16_t type = wire::load_be16(buf.data() + 12);
        if (type != wire::ethertype_mpls && type != wire::ethertype_vlan) {
            continue; // the kernel's own chatter (ARP, IPv6 ND) is not ours to count
        }
        ++got;
        if (summary) {
            uint32_t key = 0, seq = 0;
            if (read_sequence(buf.data(), size_t(n), &key, &seq)) {
                tallies[key].add(seq);
            }
            continue;
        }
        if (!quiet) {
            std::printf("%s\n", as_hex ? hex(buf.data(), size_t(n)).c_str()
                                       : describe(buf.data(), size_t(n)).c_str());
            std::fflush(stdout);
        }
    }
    if (summary) {
        for (const auto& [key, t] : tallies) {
            std::printf("key %u frames %lu distinct %lu repeats %lu reordered %lu min %u max %u\n",
                        key, t.frames, t.distinct, t.repeats, t.reordered, t.min, t.max);
        }
        std::printf("received %u\n", got);
        close(fd);
        return 0;
    }
    std::printf("received %u\n", got);
    close(fd);
    return got >= want ? 0 : 3;
}

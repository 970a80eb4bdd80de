#include "config/config.hh"

namespace vcplane {

// The demo: one source namespace sends MPLS label 1000 into a point-to-multipoint call whose
// three parties sit in three other namespaces. scripts/demo creates the veth pairs named here
// (vcp-src, vcp-a, vcp-b, vcp-c: the switch's ends) and gives each namespace end the MAC
// address the party's next_hop names.
std::string_view embedded_default_config() {
    return R"(# vcplane embedded default: the demo topology built by scripts/demo.
[eal]
lcores = [0, 1]            # main (control) lcore, then one worker
no_huge = true             # virtual ports only; real NICs want hugepages
memory_mb = 256
vdevs = [
  "net_af_packet0,iface=vcp-src",
  "net_af_packet1,iface=vcp-a",
  "net_af_packet2,iface=vcp-b",
  "net_af_packet3,iface=vcp-c",
]
file_prefix = "vcplane-demo"

[metrics]
listen = "127.0.0.1:9469"

[connections.src]
device = "net_af_packet0"
media = "mpls"

[connections.leaf-a]
device = "net_af_packet1"
media = "mpls"

[connections.leaf-b]
device = "net_af_packet2"
media = "mpls"

[connections.leaf-c]
device = "net_af_packet3"
media = "mpls"

[calls.feed]
connection = "src"
label = 1000

[[calls.feed.parties]]
name = "a"
connection = "leaf-a"
label = 2001
next_hop = "02:76:63:00:00:0a"

[[calls.feed.parties]]
name = "b"
connection = "leaf-b"
label = 2002
next_hop = "02:76:63:00:00:0b"

[[calls.feed.parties]]
name = "c"
connection = "leaf-c"
label = 2003
next_hop = "02:76:63:00:00:0c"
)";
}

} // namespace vcplane

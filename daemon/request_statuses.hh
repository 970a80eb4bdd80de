#pragma once
// Every outcome the daemon counts in vcplane_contract_operations_total, by family, operation
// and status: the contract families' own tables (contracts/*/ headers), the operations the
// control protocol adds to a family, and the answers the session gives a request itself,
// before or instead of its engine:
//
//   any operation        nsp WSAEINVAL (malformed), WSANOTINITIALISED (before hello),
//                        WSA_NOT_ENOUGH_MEMORY (its reply could not be built)
//   "request", "unknown" nsp WSAEINVAL (no operation named) and WSAEOPNOTSUPP (an unknown one)
//   ndis requests        NOINTERFACE (through a binding that is gone), INVALID_HANDLE (a
//                        handle the session does not hold)
//   lookup_next_complete the namespace's complete_next
//   hello, goodbye, the switch's views (status, connections, calls, stats)  nsp NO_ERROR
//   reload               config SUCCESS | PARTIAL | INVALID
//   port_attach          cm SUCCESS | UNEXPECTED; port_detach cm SUCCESS | INVALID_PARAMETER
//
// A daemon-level test (tests/cli/control_test) holds every counted series to this table.

#include <map>
#include <set>
#include <string>

namespace vcplane {

// family -> operation -> the status names it may be counted with
using request_status_table = std::map<std::string, std::map<std::string, std::set<std::string>>>;
const request_status_table& counted_status_table();

} // namespace vcplane

#include "contracts/callmgmt/call_management.hh"

namespace vcplane {

const char* callmgmt::status_name(status s) {
    return name_of(s);
}

} // namespace vcplane

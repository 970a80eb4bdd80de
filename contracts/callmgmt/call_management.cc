#include "contracts/callmgmt/call_management.hh"

namespace vcplane {

const char* callmgmt::status_name(status s) {
    switch (s) {
    case status::success: return "SUCCESS";
    case status::pending: return "PENDING";
    case status::not_accepted: return "NOT_ACCEPTED";
    case status::failure: return "FAILURE";
    case status::invalid_handle: return "INVALID_HANDLE";
    case status::invalid_parameter: return "INVALID_PARAMETER";
    case status::resources: return "RESOURCES";
    case status::not_supported: return "NOT_SUPPORTED";
    case status::nointerface: return "NOINTERFACE";
    case status::closing: return "CLOSING";
    case status::invalid_data: return "INVALID_DATA";
    }
    return "UNKNOWN";
}

} // namespace vcplane

#pragma once
// archie_store_request_duration_seconds, registered once for every store client.
#include <string>

namespace archie::store {

/// One request's duration by store, operation and HTTP status (0: no response arrived).
void observe_request(const std::string& store, const char* operation, int status, double seconds);

}  // namespace archie::store

// Error messages of the argument checks: "fastconv.<op>: " and the parts, streamed.
#pragma once

#include <sstream>
#include <string>

namespace fastconv {

// Called only on the failure path: the checks run on every op call, and constructing an ostringstream up
// front (as they once did) cost about a microsecond per call, several after a cache flush.
template <typename... Parts>
std::string op_error(const char* op, const Parts&... parts) {
  std::ostringstream e;
  e << "fastconv." << op << ": ";
  (e << ... << parts);
  return e.str();
}

}  // namespace fastconv

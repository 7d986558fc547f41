#pragma once
// Every problem found in a config file, collected so the operator fixes them in one pass.
#include <stdexcept>
#include <string>
#include <vector>

namespace archie::config {

struct problem {
  std::string path;    ///< dotted key path, e.g. "stores.backup.region"
  std::string reason;  ///< what is wrong, never containing a secret value
  int line = 0;        ///< 1-based line in the file, 0 when unknown
};

class config_error : public std::runtime_error {
 public:
  config_error(std::string source, std::vector<problem> problems);
  const std::vector<problem>& problems() const { return problems_; }
  const std::string& source() const { return source_; }

 private:
  std::string source_;
  std::vector<problem> problems_;
};

}  // namespace archie::config

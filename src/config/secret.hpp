#pragma once
// A credential read from the config, an env var or a mounted file. It has no stream
// operator and no implicit conversion, so it cannot end up in a log line by accident.
#include <string>

namespace archie::config {

class secret {
 public:
  secret() = default;
  secret(std::string value, std::string origin, std::string file_path = {})
      : value_(std::move(value)), origin_(std::move(origin)), file_path_(std::move(file_path)) {}

  /// The plaintext. Named loudly so every use is easy to audit.
  const std::string& reveal() const { return value_; }
  /// Where it came from ("inline", "env NAME", "file PATH"); safe to log.
  const std::string& origin() const { return origin_; }
  /// The file it was read from (`*_file`), so it can be watched; empty otherwise.
  const std::string& file_path() const { return file_path_; }
  bool empty() const { return value_.empty(); }
  /// What check-config and logs show instead of the value.
  std::string redacted() const { return empty() ? std::string{} : "<redacted, " + origin_ + ">"; }

 private:
  std::string value_;
  std::string origin_;
  std::string file_path_;
};

}  // namespace archie::config

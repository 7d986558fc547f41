// read_secret_file (declared in config/secret_file.hpp) on its own: the config parser needs
// it, and the fuzz build compiles the parser without the watcher's metrics.
#include "config/secret_file.hpp"

#include <cerrno>
#include <cstring>
#include <fstream>
#include <iterator>

namespace archie::config {

std::string read_secret_file(const std::string& path, std::string& error) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    error = "cannot read " + path + ": " + std::strerror(errno);
    return {};
  }
  std::string v((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  // Kubernetes secret mounts and `echo > file` leave a trailing newline.
  while (!v.empty() && (v.back() == '\n' || v.back() == '\r')) v.pop_back();
  if (v.empty()) error = path + " is empty";
  return v;
}

}  // namespace archie::config

#pragma once
// A file mapped into memory, so the probe tools send from and receive into it without
// copying or buffering whole objects. Test tooling only.
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstddef>
#include <stdexcept>
#include <string>

namespace archie::tools {

struct mapped_file {
  std::byte* data = nullptr;
  std::size_t size = 0;
  int fd = -1;
  static mapped_file open_read(const std::string& path) {
    mapped_file m;
    m.fd = ::open(path.c_str(), O_RDONLY);
    if (m.fd < 0) throw std::runtime_error("cannot open " + path);
    struct stat st{};
    fstat(m.fd, &st);
    m.size = static_cast<std::size_t>(st.st_size);
    if (m.size) m.data = static_cast<std::byte*>(mmap(nullptr, m.size, PROT_READ, MAP_PRIVATE, m.fd, 0));
    return m;
  }
  static mapped_file create(const std::string& path, std::size_t size) {
    mapped_file m;
    m.fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_TRUNC, 0644);
    if (m.fd < 0 || ftruncate(m.fd, static_cast<off_t>(size)) != 0) throw std::runtime_error("cannot create " + path);
    m.size = size;
    if (size) m.data = static_cast<std::byte*>(mmap(nullptr, size, PROT_READ | PROT_WRITE, MAP_SHARED, m.fd, 0));
    return m;
  }
  mapped_file() = default;
  mapped_file(const mapped_file&) = delete;
  mapped_file& operator=(const mapped_file&) = delete;
  mapped_file(mapped_file&& o) noexcept : data(o.data), size(o.size), fd(o.fd) {
    o.data = nullptr;
    o.fd = -1;
  }
  ~mapped_file() {
    if (data) munmap(data, size);
    if (fd >= 0) ::close(fd);
  }
};

}  // namespace archie::tools

#include "core/mapped_file.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

namespace kp {

namespace {

// Opens `path` for reading without blocking (a FIFO or a device would block in
// open() or read() forever) and checks that it is a regular file; `st` gets
// its size. Directories and special files are named as such.
Result<int> open_regular(const std::string& path, struct stat* st) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NONBLOCK);
  if (fd < 0) {
    if (errno == EISDIR) return make_error("{}: is a directory, not a file", path);
    return make_error("{}: cannot open: {}", path, std::strerror(errno));
  }
  if (::fstat(fd, st) != 0) {
    const int e = errno;
    ::close(fd);
    return make_error("{}: cannot stat: {}", path, std::strerror(e));
  }
  if (!S_ISREG(st->st_mode)) {
    ::close(fd);
    if (S_ISDIR(st->st_mode)) return make_error("{}: is a directory, not a file", path);
    return make_error("{}: not a regular file (a device, FIFO or socket)", path);
  }
  return fd;
}

}  // namespace

Result<std::shared_ptr<const MappedFile>> MappedFile::open(const std::string& path) {
  struct stat st {};
  KP_TRY(const int fd, open_regular(path, &st));
  std::shared_ptr<MappedFile> f(new MappedFile());
  f->name_ = path;
  f->size_ = static_cast<size_t>(st.st_size);
  if (f->size_ > 0) {
    void* p = ::mmap(nullptr, f->size_, PROT_READ, MAP_PRIVATE, fd, 0);
    if (p == MAP_FAILED) {
      const int e = errno;
      ::close(fd);
      return make_error("{}: cannot map {} bytes: {}", path, f->size_, std::strerror(e));
    }
    f->map_ = p;
    f->data_ = static_cast<const uint8_t*>(p);
  }
  ::close(fd);
  return std::shared_ptr<const MappedFile>(std::move(f));
}

std::shared_ptr<const MappedFile> MappedFile::from_static(std::span<const uint8_t> bytes,
                                                          std::string name) {
  std::shared_ptr<MappedFile> f(new MappedFile());
  f->data_ = bytes.data();
  f->size_ = bytes.size();
  f->name_ = std::move(name);
  return f;
}

std::shared_ptr<const MappedFile> MappedFile::from_bytes(std::span<const uint8_t> bytes,
                                                         std::string name) {
  std::shared_ptr<MappedFile> f(new MappedFile());
  f->owned_ = std::make_unique<uint8_t[]>(bytes.size() + 1);
  if (!bytes.empty()) std::memcpy(f->owned_.get(), bytes.data(), bytes.size());
  f->data_ = f->owned_.get();
  f->size_ = bytes.size();
  f->name_ = std::move(name);
  return f;
}

MappedFile::~MappedFile() {
  if (map_ != nullptr) ::munmap(map_, size_);
}

Result<std::string> read_text_file(const std::string& path, size_t max_bytes) {
  struct stat st {};
  KP_TRY(const int fd, open_regular(path, &st));
  const auto size = static_cast<uint64_t>(st.st_size);
  if (size > max_bytes) {
    ::close(fd);
    return make_error("{}: {} bytes, more than the {} read from a text file", path, size, max_bytes);
  }
  std::string text(static_cast<size_t>(size), '\0');
  size_t got = 0;
  while (got < text.size()) {
    const ssize_t n = ::read(fd, text.data() + got, text.size() - got);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      const int e = errno;
      ::close(fd);
      return make_error("{}: read error: {}", path, std::strerror(e));
    }
    if (n == 0) break;  // the file shrank while being read
    got += static_cast<size_t>(n);
  }
  ::close(fd);
  text.resize(got);
  return text;
}

}  // namespace kp

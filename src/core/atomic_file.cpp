#include "core/atomic_file.h"

#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <utility>

namespace kp {
namespace {

std::string reason(int err) { return std::strerror(err != 0 ? err : EIO); }

}  // namespace

Result<AtomicFile> AtomicFile::create(const std::string& path) {
  const std::string temp = path + ".kpath-tmp-" + std::to_string(::getpid());
  std::FILE* f = std::fopen(temp.c_str(), "wb");
  if (f == nullptr) return make_error("{}: cannot create: {}", path, reason(errno));
  return AtomicFile(path, temp, f);
}

AtomicFile::AtomicFile(std::string path, std::string temp, std::FILE* file)
    : path_(std::move(path)), temp_(std::move(temp)), file_(file) {}

AtomicFile::AtomicFile(AtomicFile&& o) noexcept
    : path_(std::move(o.path_)), temp_(std::move(o.temp_)), file_(std::exchange(o.file_, nullptr)) {}

AtomicFile::~AtomicFile() { discard(); }

void AtomicFile::discard() {
  if (file_ == nullptr) return;
  std::fclose(std::exchange(file_, nullptr));
  std::remove(temp_.c_str());
}

Status AtomicFile::write(std::span<const uint8_t> bytes) {
  if (file_ == nullptr) return make_error("{}: write after the file was closed", path_);
  if (bytes.empty()) return {};
  errno = 0;
  if (std::fwrite(bytes.data(), 1, bytes.size(), file_) != bytes.size()) {
    const int err = errno;
    discard();
    return make_error("{}: write failed: {}", path_, reason(err));
  }
  return {};
}

Status AtomicFile::write(std::string_view text) {
  return write(std::span<const uint8_t>(reinterpret_cast<const uint8_t*>(text.data()), text.size()));
}

Status AtomicFile::commit() {
  if (file_ == nullptr) return make_error("{}: commit after the file was closed", path_);
  errno = 0;
  if (std::fflush(file_) != 0) {
    const int err = errno;
    discard();
    return make_error("{}: write failed: {}", path_, reason(err));
  }
  errno = 0;
  const int closed = std::fclose(std::exchange(file_, nullptr));
  if (closed != 0) {
    const int err = errno;
    std::remove(temp_.c_str());
    return make_error("{}: write failed: {}", path_, reason(err));
  }
  if (std::rename(temp_.c_str(), path_.c_str()) != 0) {
    const int err = errno;
    std::remove(temp_.c_str());
    return make_error("{}: cannot replace: {}", path_, reason(err));
  }
  return {};
}

Status write_file_atomic(const std::string& path, std::string_view text) {
  KP_TRY(AtomicFile f, AtomicFile::create(path));
  KP_TRY_STATUS(f.write(text));
  return f.commit();
}

}  // namespace kp

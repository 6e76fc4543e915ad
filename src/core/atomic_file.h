// Output files that appear whole or not at all: bytes go to a temporary file
// beside the target (same directory, so the rename cannot cross file systems),
// which replaces the target only when every write, the flush and the close
// succeeded. On any failure, or when the writer is dropped before commit(),
// the temporary file is removed and the target is left as it was.
#pragma once

#include <cstdint>
#include <cstdio>
#include <span>
#include <string>
#include <string_view>

#include "core/result.h"

namespace kp {

class AtomicFile {
 public:
  static Result<AtomicFile> create(const std::string& path);

  AtomicFile(AtomicFile&& o) noexcept;
  AtomicFile& operator=(AtomicFile&&) = delete;
  AtomicFile(const AtomicFile&) = delete;
  ~AtomicFile();

  // Errors name the target and the system's reason ("No space left on device").
  Status write(std::span<const uint8_t> bytes);
  Status write(std::string_view text);
  Status commit();

  const std::string& path() const { return path_; }

 private:
  AtomicFile(std::string path, std::string temp, std::FILE* file);
  void discard();

  std::string path_;
  std::string temp_;
  std::FILE* file_ = nullptr;
};

// The whole of `text` to `path`, as AtomicFile does.
Status write_file_atomic(const std::string& path, std::string_view text);

}  // namespace kp

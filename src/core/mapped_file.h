// Read-only bytes of a file (memory-mapped) or of an embedded blob.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <string>

#include "core/result.h"

namespace kp {

class MappedFile {
 public:
  // Maps `path` read-only. An empty file maps to an empty span.
  static Result<std::shared_ptr<const MappedFile>> open(const std::string& path);
  // Wraps bytes that outlive the program (an embedded model); nothing is copied.
  static std::shared_ptr<const MappedFile> from_static(std::span<const uint8_t> bytes,
                                                       std::string name);
  // Owns a copy of `bytes` (tests, in-memory files).
  static std::shared_ptr<const MappedFile> from_bytes(std::span<const uint8_t> bytes,
                                                      std::string name);

  ~MappedFile();
  MappedFile(const MappedFile&) = delete;
  MappedFile& operator=(const MappedFile&) = delete;

  std::span<const uint8_t> bytes() const { return {data_, size_}; }
  const uint8_t* data() const { return data_; }
  size_t size() const { return size_; }
  const std::string& name() const { return name_; }

 private:
  MappedFile() = default;
  const uint8_t* data_ = nullptr;
  size_t size_ = 0;
  void* map_ = nullptr;  // non-null when mmapped
  std::unique_ptr<uint8_t[]> owned_;
  std::string name_;
};

// Reads a whole (small) text file: JSON configs and paths, kernel sources,
// prompts. Only a regular file of at most max_bytes is read (a FIFO, device or
// directory is an error naming it; nothing blocks).
inline constexpr size_t kMaxTextFileBytes = size_t{64} << 20;
Result<std::string> read_text_file(const std::string& path, size_t max_bytes = kMaxTextFileBytes);

}  // namespace kp

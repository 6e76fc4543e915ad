// GGUF v3 writer that streams tensor data to the file, for models too large to
// hold in memory (GgufWriter keeps every tensor's bytes until write()).
//
// The header, metadata and tensor infos are written by create(); the tensors'
// bytes are then appended in the order the infos were given, in pieces of any
// size, and each tensor is padded to the alignment as soon as it is complete.
// The bytes are exactly those GgufWriter::write produces for the same metadata
// and tensors (tests/format/quant_stream_writer_test.cpp).
#pragma once

#include <cstdint>
#include <cstdio>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <utility>
#include <vector>

#include "core/atomic_file.h"
#include "core/result.h"
#include "format/gguf.h"

namespace kp::format {

struct GgufTensorSpec {
  std::string name;
  GgmlType type = GgmlType::F32;
  std::vector<uint64_t> dims;  // ne[0] first, as in GGUF
};

class GgufStreamWriter {
 public:
  // Starts `path` (a temporary file beside it until finish(): an unfinished or
  // failed file never appears at `path`, and what was there stays) and writes
  // everything before the tensor data. The alignment
  // is the metadata's general.alignment (a uint32 power of two) or 32.
  static Result<GgufStreamWriter> create(const std::string& path,
                                         const std::vector<std::pair<std::string, GgufValue>>& metadata,
                                         std::vector<GgufTensorSpec> tensors);

  GgufStreamWriter(GgufStreamWriter&& other) noexcept;
  GgufStreamWriter& operator=(GgufStreamWriter&&) = delete;
  GgufStreamWriter(const GgufStreamWriter&) = delete;
  GgufStreamWriter& operator=(const GgufStreamWriter&) = delete;
  // An unfinished file is closed and removed.
  ~GgufStreamWriter() = default;

  // Appends the next bytes of tensor data; an error if they run past the last
  // tensor or the write fails.
  Status append(std::span<const uint8_t> bytes);
  // Index of the tensor the next append() writes to (== tensor count when done).
  size_t current_tensor() const { return current_; }
  // Checks that every tensor is complete, closes the file, puts it at `path`.
  Status finish();

  const std::vector<GgufTensorSpec>& tensors() const { return tensors_; }
  // Byte size of tensor i's data (without padding).
  uint64_t tensor_bytes(size_t i) const { return sizes_[i]; }

 private:
  GgufStreamWriter() = default;
  Status write_raw(std::span<const uint8_t> bytes);
  Status write_padding(uint64_t n);

  std::string path_;
  std::optional<AtomicFile> file_;
  std::vector<GgufTensorSpec> tensors_;
  std::vector<uint64_t> sizes_;
  uint64_t alignment_ = 32;
  size_t current_ = 0;        // tensor being written
  uint64_t written_ = 0;      // bytes of it written so far
  bool finished_ = false;
};

}  // namespace kp::format

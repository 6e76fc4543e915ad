// Writes a GGUF file whose tensors are produced row by row and quantized on
// several threads, streaming the result to disk: memory stays bounded by one
// chunk of output per tensor (kChunkBytes) plus one float row per thread, so a
// model larger than memory can be quantized or generated.
#pragma once

#include <cstdint>
#include <functional>
#include <span>
#include <string>
#include <utility>
#include <vector>

#include "core/result.h"
#include "format/gguf.h"
#include "format/gguf_stream_writer.h"

namespace kp::format {

// Fills `out` (dims[0] floats) with row `row` of a tensor. Called concurrently
// from several threads, each with its own `out`.
using RowSource = std::function<Status(uint64_t row, std::span<float> out)>;

struct StreamedTensor {
  GgufTensorSpec spec;           // name, type to write, dims
  RowSource rows;                // rows to quantize to spec.type; or, when empty,
  std::span<const uint8_t> raw;  // bytes already in spec.type, copied as they are
};

struct StreamOptions {
  int n_threads = 0;  // 0: std::thread::hardware_concurrency()
  // Called after each tensor is written (progress reports); may be empty.
  std::function<void(size_t index, const StreamedTensor& tensor)> on_tensor;
};

inline constexpr uint64_t kChunkBytes = 64ull << 20;  // output buffered per tensor

// Writes `path`: the metadata, then each tensor in order. Quantization is
// deterministic and independent of the thread count. On error the partial
// file is removed.
Status write_gguf_streamed(const std::string& path,
                           const std::vector<std::pair<std::string, GgufValue>>& metadata,
                           const std::vector<StreamedTensor>& tensors, const StreamOptions& options);

}  // namespace kp::format

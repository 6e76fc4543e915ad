// write_gguf_streamed: see quant_stream.h. Each tensor is cut into chunks of
// at most kChunkBytes of output; the rows of a chunk are shared out among the
// threads a few at a time, each row is produced into a thread's float buffer
// and quantized straight into its place in the chunk, and the chunk is
// appended to the file before the next one starts.
#include "format/quant_stream.h"

#include <algorithm>
#include <atomic>
#include <mutex>
#include <optional>
#include <thread>

#include "format/quant.h"

namespace kp::format {
namespace {

constexpr uint64_t kRowsPerGrab = 4;  // rows a thread takes at a time

// Produces rows [first, first + n) of `t` into `out` (n * row bytes).
Status fill_chunk(const StreamedTensor& t, uint64_t first, uint64_t n, size_t out_row_bytes, uint8_t* out,
                  int n_threads) {
  const uint64_t cols = t.spec.dims[0];
  std::atomic<uint64_t> next{0};
  std::atomic<bool> failed{false};
  std::mutex error_mutex;
  std::optional<Error> error;

  auto worker = [&] {
    std::vector<float> row(static_cast<size_t>(cols));
    while (!failed.load(std::memory_order_relaxed)) {
      const uint64_t begin = next.fetch_add(kRowsPerGrab);
      if (begin >= n) return;
      const uint64_t end = std::min(n, begin + kRowsPerGrab);
      for (uint64_t r = begin; r < end; ++r) {
        Status s = t.rows(first + r, row);
        if (s) s = quantize(t.spec.type, row.data(), out + r * out_row_bytes, static_cast<int64_t>(cols));
        if (!s) {
          std::lock_guard<std::mutex> lock(error_mutex);
          if (!error) error = make_error("tensor '{}' row {}: {}", t.spec.name, first + r, s.error().message);
          failed = true;
          return;
        }
      }
    }
  };

  const uint64_t grabs = (n + kRowsPerGrab - 1) / kRowsPerGrab;
  const int helpers = static_cast<int>(std::min<uint64_t>(static_cast<uint64_t>(n_threads), grabs)) - 1;
  std::vector<std::thread> threads;
  threads.reserve(static_cast<size_t>(std::max(helpers, 0)));
  for (int i = 0; i < helpers; ++i) threads.emplace_back(worker);
  worker();
  for (std::thread& th : threads) th.join();
  if (error) return std::move(*error);
  return {};
}

}  // namespace

Status write_gguf_streamed(const std::string& path,
                           const std::vector<std::pair<std::string, GgufValue>>& metadata,
                           const std::vector<StreamedTensor>& tensors, const StreamOptions& options) {
  int n_threads = options.n_threads;
  if (n_threads <= 0) n_threads = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));

  std::vector<GgufTensorSpec> specs;
  specs.reserve(tensors.size());
  for (const StreamedTensor& t : tensors) {
    if (t.rows && !can_quantize(t.spec.type)) {
      return make_error("{}: tensor '{}': cannot quantize to {}", path, t.spec.name, type_name(t.spec.type));
    }
    specs.push_back(t.spec);
  }
  KP_TRY(GgufStreamWriter writer, GgufStreamWriter::create(path, metadata, std::move(specs)));

  std::vector<uint8_t> chunk;
  for (size_t i = 0; i < tensors.size(); ++i) {
    const StreamedTensor& t = tensors[i];
    const uint64_t total = writer.tensor_bytes(i);
    if (!t.rows) {
      if (t.raw.size() != total) {
        return make_error("{}: tensor '{}': {} bytes given, {} expected for {}", path, t.spec.name, t.raw.size(),
                          total, type_name(t.spec.type));
      }
      KP_TRY_STATUS(writer.append(t.raw));
    } else {
      const uint64_t cols = t.spec.dims[0];
      const size_t out_row = row_bytes(t.spec.type, cols);
      const uint64_t n_rows = total / out_row;
      const uint64_t chunk_rows = std::max<uint64_t>(1, kChunkBytes / out_row);
      for (uint64_t first = 0; first < n_rows; first += chunk_rows) {
        const uint64_t n = std::min(chunk_rows, n_rows - first);
        chunk.resize(static_cast<size_t>(n * out_row));
        Status s = fill_chunk(t, first, n, out_row, chunk.data(), n_threads);
        if (!s) return make_error("{}: {}", path, s.error().message);
        KP_TRY_STATUS(writer.append(chunk));
      }
    }
    if (options.on_tensor) options.on_tensor(i, t);
  }
  return writer.finish();
}

}  // namespace kp::format

#include "backend/cpu/cpu_kernel.h"

#include "core/check.h"
#include "format/quant.h"

namespace kp::backend::cpu {

void WeightView::dequantize_row(int64_t r, float* dst) const {
  KP_CHECK(r >= 0 && r < rows, "weight row out of range");
  const Status s = format::dequantize(type, data + static_cast<size_t>(r) * row_bytes, dst, cols);
  KP_CHECK(s.ok(), "dequantize failed after the weight view was checked");
}

Result<int64_t> KernelCall::dim(std::string_view name) const {
  for (const auto& [n, v] : *s_.constants) {
    if (n != name) continue;
    if (const auto* u = std::get_if<uint32_t>(&v)) return static_cast<int64_t>(*u);
    if (const auto* i = std::get_if<int32_t>(&v)) return static_cast<int64_t>(*i);
    return error(fmt::format("constant {} is not an integer", name));
  }
  if (auto it = s_.symbols->find(name); it != s_.symbols->end()) return it->second;
  return error(fmt::format("no constant or shape symbol '{}'", name));
}

Result<float> KernelCall::f32_constant(std::string_view name) const {
  for (const auto& [n, v] : *s_.constants) {
    if (n != name) continue;
    if (const auto* f = std::get_if<float>(&v)) return *f;
    return error(fmt::format("constant {} is not an f32", name));
  }
  return error(fmt::format("no constant '{}'", name));
}

Error KernelCall::error(std::string_view what) const {
  return make_error("cpu kernel {}.{}: {}", s_.kernel->id, s_.entry, what);
}

Result<std::byte*> KernelCall::view(size_t b, int64_t n, size_t elem_bytes) const {
  KP_CHECK(b < s_.views.size() && b < s_.kernel->bindings.size(), "binding index beyond the kernel's bindings");
  if (n < 0) return error(fmt::format("binding '{}': negative size {}", s_.kernel->bindings[b].name, n));
  const uint64_t need = static_cast<uint64_t>(n) * elem_bytes;
  if (s_.views[b].bytes < need) {
    return error(fmt::format("binding '{}' holds {} bytes, the dims need {} ({} elements)",
                             s_.kernel->bindings[b].name, s_.views[b].bytes, need, n));
  }
  return s_.views[b].data;
}

Result<const float*> KernelCall::in_f32(size_t b, int64_t n) const {
  KP_TRY(std::byte* p, view(b, n, sizeof(float)));
  return static_cast<const float*>(static_cast<void*>(p));
}

Result<float*> KernelCall::out_f32(size_t b, int64_t n) const {
  KP_TRY(std::byte* p, view(b, n, sizeof(float)));
  return static_cast<float*>(static_cast<void*>(p));
}

Result<const int32_t*> KernelCall::in_i32(size_t b, int64_t n) const {
  KP_TRY(std::byte* p, view(b, n, sizeof(int32_t)));
  return static_cast<const int32_t*>(static_cast<void*>(p));
}

Result<int32_t*> KernelCall::out_i32(size_t b, int64_t n) const {
  KP_TRY(std::byte* p, view(b, n, sizeof(int32_t)));
  return static_cast<int32_t*>(static_cast<void*>(p));
}

Result<WeightView> KernelCall::weight(size_t b, int64_t rows, int64_t cols) const {
  KP_CHECK(b < s_.weight_types->size(), "binding index beyond the pipeline's weight types");
  const std::string& name = s_.kernel->bindings[b].name;
  WeightView w;
  w.type = (*s_.weight_types)[b];
  const auto& traits = format::traits(w.type);
  if (cols <= 0 || cols % traits.block_elems != 0) {
    return error(fmt::format("weight '{}': rows of {} elements are not whole {} blocks of {}", name, cols,
                             traits.name, traits.block_elems));
  }
  w.cols = cols;
  w.row_bytes = format::row_bytes(w.type, static_cast<uint64_t>(cols));
  const uint64_t have = s_.views[b].bytes;
  w.rows = rows < 0 ? static_cast<int64_t>(have / w.row_bytes) : rows;
  if (static_cast<uint64_t>(w.rows) * w.row_bytes > have) {
    return error(fmt::format("weight '{}' holds {} bytes, [{}, {}] of {} needs {}", name, have, w.rows, cols,
                             traits.name, static_cast<uint64_t>(w.rows) * w.row_bytes));
  }
  if (!format::can_dequantize(w.type)) {
    return error(fmt::format("weight '{}': {} cannot be dequantized", name, traits.name));
  }
  w.data = s_.views[b].data;
  return w;
}

const std::vector<CpuKernel>& cpu_kernels() {
  static const std::vector<CpuKernel> kernels = [] {
    std::vector<CpuKernel> out;
    add_matmul_kernels(out);
    add_norm_kernels(out);
    add_attention_kernels(out);
    add_sampling_kernels(out);
    add_fast_matmul_kernels(out);
    return out;
  }();
  return kernels;
}

const CpuKernel* find_cpu_kernel(std::string_view id) {
  for (const auto& k : cpu_kernels()) {
    if (k.id == id) return &k;
  }
  return nullptr;
}

}  // namespace kp::backend::cpu

// What a CPU kernel sees: its pipeline's resolved constants, the dispatch's
// bindings as host memory views, shape symbols, KpParams / KpStepParams and
// the thread pool. Every accessor checks sizes, so a binding too small for the
// dims is an error naming the kernel and binding, never an overrun.
#pragma once

#include <cmath>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <map>
#include <numbers>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "backend/cpu/cpu_thread_pool.h"
#include "core/result.h"
#include "format/ggml_type.h"
#include "kernel_path/registry.h"
#include "kp_params.h"

namespace kp::backend::cpu {

struct BufferView {
  std::byte* data = nullptr;
  uint64_t bytes = 0;
};

// A weight binding: rows of `cols` elements of `type`, `row_bytes` apart.
struct WeightView {
  const std::byte* data = nullptr;
  format::GgmlType type = format::GgmlType::F32;
  int64_t rows = 0;
  int64_t cols = 0;
  size_t row_bytes = 0;
  // dst[0..cols) = row r dequantized. The type and row length were checked
  // when the view was made, so this cannot fail.
  void dequantize_row(int64_t r, float* dst) const;
};

class KernelCall {
 public:
  struct Setup {
    const kpath::KernelDesc* kernel = nullptr;
    std::string_view entry;
    const kpath::ConstantValues* constants = nullptr;
    const std::vector<format::GgmlType>* weight_types = nullptr;  // per binding (F32 for slots)
    std::span<const BufferView> views;
    const std::map<std::string, int64_t, std::less<>>* symbols = nullptr;
    const KpParams* params = nullptr;
    const KpStepParams* step = nullptr;
    ThreadPool* pool = nullptr;
  };
  explicit KernelCall(const Setup& s) : s_(s) {}

  const KpParams& params() const { return *s_.params; }
  const KpStepParams& step() const { return *s_.step; }
  ThreadPool& pool() const { return *s_.pool; }
  // T: rows of this batch.
  // Rows the dispatch runs on: its T symbol (1 for the steps on the last
  // row's logits), else the batch's n_tokens.
  int64_t rows() const {
    if (auto it = s_.symbols->find("T"); it != s_.symbols->end()) return it->second;
    return static_cast<int64_t>(s_.params->n_tokens);
  }

  // An integer constant of the pipeline, else a shape symbol of the dispatch.
  Result<int64_t> dim(std::string_view name) const;
  Result<float> f32_constant(std::string_view name) const;

  // Views of binding `b` holding at least n elements (errors name the binding).
  Result<const float*> in_f32(size_t b, int64_t n) const;
  Result<float*> out_f32(size_t b, int64_t n) const;
  Result<const int32_t*> in_i32(size_t b, int64_t n) const;
  Result<int32_t*> out_i32(size_t b, int64_t n) const;
  // rows x cols of the binding's weight type; rows < 0 means as many as the
  // buffer holds.
  Result<WeightView> weight(size_t b, int64_t rows, int64_t cols) const;

  // "cpu kernel matmul_q4k.main: <what>"
  Error error(std::string_view what) const;

 private:
  Result<std::byte*> view(size_t b, int64_t n, size_t elem_bytes) const;
  const Setup s_;
};

using KernelFn = Status (*)(const KernelCall&);

// gelu_tanh(x) = 0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3))) (docs/kernels.md), in double.
inline double gelu_tanh(double x) {
  const double k = std::sqrt(2.0 / std::numbers::pi);
  return 0.5 * x * (1.0 + std::tanh(k * (x + 0.044715 * x * x * x)));
}

// One logical kernel as the CPU implements it: its registry binding names (in
// order, checked against the registry when a pipeline is made) and entries.
// `entries` is the reference code (plain loops, double accumulation), which
// every backend is compared against; `fast` holds the entries that have SIMD
// code (cpu_kernels_matmul_fast.cpp), which a CPU backend made with
// CpuKernelSet::kFast runs instead.
struct CpuKernel {
  std::string id;
  std::vector<std::string> bindings;
  std::map<std::string, KernelFn> entries;
  std::map<std::string, KernelFn> fast;
};

// The kernels of each concern file.
void add_matmul_kernels(std::vector<CpuKernel>& out);     // cpu_kernels_matmul.cpp
void add_norm_kernels(std::vector<CpuKernel>& out);       // cpu_kernels_norm.cpp
void add_attention_kernels(std::vector<CpuKernel>& out);  // cpu_kernels_attention.cpp
void add_sampling_kernels(std::vector<CpuKernel>& out);   // cpu_kernels_sampling.cpp
// Adds the fast entries to the kernels above.
void add_fast_matmul_kernels(std::vector<CpuKernel>& kernels);  // cpu_kernels_matmul_fast.cpp

// All of them, built once.
const std::vector<CpuKernel>& cpu_kernels();
const CpuKernel* find_cpu_kernel(std::string_view id);

}  // namespace kp::backend::cpu

// The op test harness: runs one registry kernel dispatch on a target backend
// and on the CPU backend with the same random inputs, and reports each output
// binding's error against the CPU (tests/runtime/op_harness_test.cpp runs it
// CPU-vs-CPU; the Vulkan and CUDA op tests run every kernel of their backend
// through it at the fixture's and at Gemma 2 2B shapes).
//
// Inputs are of realistic scale and never zero: f32 activations Gaussian;
// weights Gaussian with std 1/sqrt(cols) (norm weights [1, N]: 1 + N(0, 0.25^2))
// quantized by format::quantize to the binding's type (Q5_K, which kpath does
// not quantize, from random blocks of the same scale); i32 inputs named `ids`
// and `history` are token ids below V, `positions` are pos0 + t; KV caches
// (inout) hold random rows everywhere, so rows below pos0 are the earlier
// tokens and rows at or after pos0 + T are garbage a kernel must not read.
// Outputs are poisoned with NaN before each run.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "backend/backend.h"
#include "core/result.h"
#include "format/ggml_type.h"
#include "kernel_path/expr.h"
#include "kernel_path/registry.h"

namespace kp::backend {

// Sampling values that exercise every filter of `sample` and the penalty.
KpParams default_op_params();

struct OpCase {
  std::string kernel;
  std::string entry = "main";
  // Shape symbols of the dispatch: every symbol the bindings use (T, K, N,
  // E, F, V, C, QC, KC, H, CTX). T may be left out for kernels without T rows.
  std::map<std::string, int64_t> symbols;
  // Weight binding name -> tensor type; default: the binding's first accepted type.
  std::map<std::string, format::GgmlType> weight_types;
  uint64_t seed = 1;
  // n_tokens, kv_len and n_history are set by the harness from T, pos0 and H;
  // pos0 and the sampling fields are taken as given.
  KpParams params = default_op_params();
  KpStepParams step{};  // window for attention
  std::map<std::string, std::string> constant_overrides;
  // Out bindings share the buffer of the input they may alias (`inplace`), as
  // the executor binds them; otherwise every binding has its own buffer.
  bool in_place = false;
};

// "matmul_q4k.main T=1 K=256 N=768 w=Q4_K"
std::string describe(const OpCase& c);

struct BindingError {
  std::string binding;
  int64_t elements = 0;
  // f32/f16 bindings: ||target - ref||_2 / ||ref||_2 over the elements where
  // the reference is finite. i32 bindings: the fraction of elements that differ.
  double rel_l2 = 0;
  double max_abs = 0;
  int64_t nan_count = 0;     // target NaN/inf where the reference is finite
  int64_t extra_finite = 0;  // target finite where the reference is NaN/inf
  // Reference elements that are NaN/inf: for an out binding the CPU kernel left
  // poison behind or produced a NaN, so the comparison there proves nothing.
  int64_t ref_nonfinite = 0;
};

struct OpResult {
  std::vector<BindingError> outputs;  // every out and inout binding, in order
  double max_rel_l2() const;
  int64_t total_nan() const;          // nan_count + extra_finite over all outputs
  std::string summary() const;        // "y: rel_l2 1.2e-07 max_abs 3.1e-06 nan 0"
};

// Runs `c` on `target` and on `cpu` (constants resolved and grids evaluated
// with each backend's implementation from `registry`) and compares them.
Result<OpResult> run_op_case(Backend& target, Backend& cpu, const kpath::Registry& registry, const OpCase& c,
                             const kpath::ModelValues& model);

// One dispatch with given binding contents, for the harness and for kernel
// tests with hand-made inputs. `data[i]` is the initial content of binding i
// (for an in-place out binding it is ignored: the input's buffer is used).
// Returns every binding's content after the run.
struct OpDispatch {
  const kpath::KernelDesc* kernel = nullptr;
  std::string entry = "main";
  std::map<std::string, int64_t> symbols;
  std::map<std::string, std::string> constant_overrides;
  KpParams params{};
  KpStepParams step{};
  std::vector<std::vector<uint8_t>> data;
  bool in_place = false;
};
Result<std::vector<std::vector<uint8_t>>> run_dispatch(Backend& backend, const OpDispatch& d,
                                                       const kpath::ModelValues& model);

// The [rows, cols] of binding `b` of `kernel` at `entry` for these symbols.
Result<std::pair<int64_t, int64_t>> binding_shape(const kpath::KernelDesc& kernel, const std::string& entry,
                                                  size_t b, const std::map<std::string, int64_t>& symbols,
                                                  const kpath::ModelValues& model);

}  // namespace kp::backend

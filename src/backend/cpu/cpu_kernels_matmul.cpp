// CPU reference kernels over weight matrices: embed_*, matmul_*, ffn_gate_up_*
// and the fused matmul_norm_*, ffn_gate_up_resnorm_* for every weight type
// (F32, F16, Q8_0, Q4_K, Q5_K, Q6_K), the *_x8 forms of the Q4_K and Q6_K ones (the
// activations quantized to 8 bits first, quantize_x8) and the *_h16 forms of
// matmul_* and ffn_gate_up_* (activations and dequantized weights rounded to
// binary16 first, as tensor cores take them). Each weight row is
// dequantized with format::dequantize into f32, dot products accumulate in
// double and are rounded to f32 once. Output rows are split over the pool.
// Bindings and constants: kernels/registry.json. Tests:
// tests/runtime/cpu_kernels_test.cpp, tests/runtime/op_harness_test.cpp.
#include <algorithm>
#include <cmath>
#include <limits>
#include <vector>

#include "backend/cpu/cpu_kernel.h"
#include "core/fp16.h"

namespace kp::backend::cpu {
namespace {

double dot(const float* a, const float* b, int64_t n) {
  double acc = 0;
  for (int64_t i = 0; i < n; ++i) acc += static_cast<double>(a[i]) * static_cast<double>(b[i]);
  return acc;
}

// Output rows per task: enough work to amortize the hand-off.
int64_t row_grain(int64_t cols, int64_t t) { return std::max<int64_t>(1, 65536 / std::max<int64_t>(1, cols * t)); }

// How a product takes its operands: as they are, activations quantized to 8
// bits (quantize_x8), or activations and weights rounded to binary16 (round_h16).
enum class Operands { kF32, kX8, kH16 };

void round_h16(float* v, int64_t n) {
  for (int64_t i = 0; i < n; ++i) v[i] = round_to_f16(v[i]);
}

// Row r of w, dequantized (and rounded to binary16 with h16).
void weight_row(const WeightView& w, int64_t r, bool h16, std::vector<float>& row) {
  w.dequantize_row(r, row.data());
  if (h16) round_h16(row.data(), static_cast<int64_t>(row.size()));
}

// y[t, r] = x[t] · w[r] for every output row, rows split over the pool.
void matmul_rows(const float* x, int64_t t_rows, int64_t k, int64_t n, const WeightView& w, bool h16, float* y,
                 ThreadPool& pool) {
  pool.parallel_for(n, row_grain(k, t_rows), [&](int64_t n0, int64_t n1) {
    std::vector<float> row(static_cast<size_t>(k));
    for (int64_t r = n0; r < n1; ++r) {
      weight_row(w, r, h16, row);
      for (int64_t t = 0; t < t_rows; ++t) y[t * n + r] = static_cast<float>(dot(x + t * k, row.data(), k));
    }
  });
}

// y[t, r] = gelu_tanh(x[t] · gate[r]) * (x[t] · up[r]), rows split over the pool.
void ffn_rows(const float* x, int64_t t_rows, int64_t e, int64_t f, const WeightView& gate, const WeightView& up,
              bool h16, float* y, ThreadPool& pool) {
  pool.parallel_for(f, row_grain(2 * e, t_rows), [&](int64_t f0, int64_t f1) {
    std::vector<float> g_row(static_cast<size_t>(e)), u_row(static_cast<size_t>(e));
    for (int64_t r = f0; r < f1; ++r) {
      weight_row(gate, r, h16, g_row);
      weight_row(up, r, h16, u_row);
      for (int64_t t = 0; t < t_rows; ++t) {
        const double g = dot(x + t * e, g_row.data(), e);
        const double u = dot(x + t * e, u_row.data(), e);
        y[t * f + r] = static_cast<float>(gelu_tanh(g) * u);
      }
    }
  });
}

// ids [T, 1] i32, table [V, E], y [T, E] f32:  y[t, :] = table[ids[t], :] * SCALE.
Status embed(const KernelCall& c) {
  const int64_t t_rows = c.rows();
  KP_TRY(const int64_t e, c.dim("E"));
  KP_TRY(const float scale, c.f32_constant("SCALE"));
  KP_TRY(const int32_t* ids, c.in_i32(0, t_rows));
  // V is a shape symbol when the dispatch names it, else the table's row count.
  auto v = c.dim("V");
  KP_TRY(const WeightView table, c.weight(1, v.ok() ? *v : -1, e));
  KP_TRY(float* y, c.out_f32(2, t_rows * e));
  for (int64_t t = 0; t < t_rows; ++t) {
    if (ids[t] < 0 || ids[t] >= table.rows) {
      return c.error(fmt::format("ids[{}] = {} is outside the table's {} rows", t, ids[t], table.rows));
    }
  }
  c.pool().parallel_for(t_rows, 1, [&](int64_t t0, int64_t t1) {
    for (int64_t t = t0; t < t1; ++t) {
      float* row = y + t * e;
      table.dequantize_row(ids[t], row);
      for (int64_t i = 0; i < e; ++i) row[i] *= scale;  // one f32 product, exactly rounded
    }
  });
  return {};
}

// Each row of x [t_rows, k] quantized to 8 bits in blocks of 32 and back, as the
// *_x8 kernels take their activations: d = amax / 127, q = round-half-even(x *
// (1 / d)) in [-127, 127] (0 where d is below FLT_MIN), x8 = d * q, each an f32
// operation.
std::vector<float> quantize_x8(const float* x, int64_t n_values) {
  std::vector<float> out(static_cast<size_t>(n_values));
  for (int64_t b = 0; b < n_values; b += 32) {
    float amax = 0.0f;
    for (int64_t i = b; i < b + 32; ++i) amax = std::max(amax, std::fabs(x[i]));
    const float d = amax / 127.0f;
    // Below FLT_MIN (zero or subnormal), 1 / d overflows: such a block is zeros.
    const float id = d >= std::numeric_limits<float>::min() ? 1.0f / d : 0.0f;
    for (int64_t i = b; i < b + 32; ++i) {
      const float q = std::clamp(std::nearbyint(x[i] * id), -127.0f, 127.0f);
      out[static_cast<size_t>(i)] = d * q;
    }
  }
  return out;
}

// The *_x8 forms need whole activation blocks: `dim` (K or E) a multiple of 32.
Status check_x8_width(const KernelCall& c, const char* name, int64_t dim) {
  if (dim % 32 == 0) return {};
  return c.error(fmt::format("{} = {} is not a multiple of 32 (the 8-bit activation blocks)", name, dim));
}

// x as the operands take it: quantized to 8 bits or rounded to binary16 (a copy), or x itself.
const float* prepare_x(const float* x, int64_t n_values, Operands ops, std::vector<float>& copy) {
  if (ops == Operands::kF32) return x;
  if (ops == Operands::kX8) {
    copy = quantize_x8(x, n_values);
  } else {
    copy.assign(x, x + n_values);
    round_h16(copy.data(), n_values);
  }
  return copy.data();
}

// x [T, K] f32, w [N, K], y [T, N] f32:  y[t, n] = sum_k x[t, k] * w[n, k];
// with kX8 (matmul_*_x8), x quantized to 8 bits first (quantize_x8); with kH16
// (matmul_*_h16), x and w rounded to binary16.
Status matmul_impl(const KernelCall& c, Operands ops) {
  const bool x8 = ops == Operands::kX8;
  const int64_t t_rows = c.rows();
  KP_TRY(const int64_t k, c.dim("K"));
  KP_TRY(const int64_t n, c.dim("N"));
  if (x8) KP_TRY_STATUS(check_x8_width(c, "K", k));
  KP_TRY(const float* x, c.in_f32(0, t_rows * k));
  KP_TRY(const WeightView w, c.weight(1, n, k));
  KP_TRY(float* y, c.out_f32(2, t_rows * n));
  std::vector<float> copy;
  matmul_rows(prepare_x(x, t_rows * k, ops, copy), t_rows, k, n, w, ops == Operands::kH16, y, c.pool());
  return {};
}

// x [T, E] f32, gate [F, E], up [F, E], y [T, F] f32:
//   y[t, f] = gelu_tanh(x[t]·gate[f]) * (x[t]·up[f]);
// with kX8 (ffn_gate_up_*_x8), x quantized to 8 bits first; with kH16, x, gate and up rounded to binary16.
Status ffn_gate_up_impl(const KernelCall& c, Operands ops) {
  const bool x8 = ops == Operands::kX8;
  const int64_t t_rows = c.rows();
  KP_TRY(const int64_t e, c.dim("E"));
  KP_TRY(const int64_t f, c.dim("F"));
  if (x8) KP_TRY_STATUS(check_x8_width(c, "E", e));
  KP_TRY(const float* x, c.in_f32(0, t_rows * e));
  KP_TRY(const WeightView gate, c.weight(1, f, e));
  KP_TRY(const WeightView up, c.weight(2, f, e));
  KP_TRY(float* y, c.out_f32(3, t_rows * f));
  std::vector<float> copy;
  ffn_rows(prepare_x(x, t_rows * e, ops, copy), t_rows, e, f, gate, up, ops == Operands::kH16, y, c.pool());
  return {};
}

// 1 / sqrt(mean(x^2) + eps) of one row of n, in double (as cpu_kernels_norm.cpp).
double inv_rms(const float* x, int64_t n, float eps) {
  double ss = 0;
  for (int64_t i = 0; i < n; ++i) ss += static_cast<double>(x[i]) * static_cast<double>(x[i]);
  return 1.0 / std::sqrt(ss / static_cast<double>(n) + static_cast<double>(eps));
}

// y[i] = f32((residual ? residual[i] : 0) + x[i] * inv_rms(x) * w[i]): one row
// as rmsnorm (or rmsnorm_residual) computes it.
void norm_row(const float* x, const float* residual, const std::vector<float>& w, float eps, float* y) {
  const int64_t n = static_cast<int64_t>(w.size());
  const double s = inv_rms(x, n, eps);
  for (int64_t i = 0; i < n; ++i) {
    const double r = static_cast<double>(x[i]) * s * w[i];
    y[i] = static_cast<float>(residual != nullptr ? static_cast<double>(residual[i]) + r : r);
  }
}

std::vector<float> norm_weight(const WeightView& v) {
  std::vector<float> w(static_cast<size_t>(v.cols));
  v.dequantize_row(0, w.data());
  return w;
}

// x [T, K] f32, w [N, K], norm [1, K], y [T, N]:  y[t] = w · rmsnorm(x[t]) * norm,
// the normalized row rounded to f32 as rmsnorm writes it, then as matmul; with
// x8 (matmul_norm_*_x8), quantized to 8 bits first as matmul_*_x8.
Status matmul_norm_impl(const KernelCall& c, bool x8) {
  const int64_t t_rows = c.rows();
  KP_TRY(const int64_t k, c.dim("K"));
  KP_TRY(const int64_t n, c.dim("N"));
  KP_TRY(const float eps, c.f32_constant("EPS"));
  KP_TRY(const float* x, c.in_f32(0, t_rows * k));
  KP_TRY(const WeightView w, c.weight(1, n, k));
  KP_TRY(const WeightView nv, c.weight(2, 1, k));
  KP_TRY(float* y, c.out_f32(3, t_rows * n));
  const std::vector<float> g = norm_weight(nv);
  std::vector<float> xn(static_cast<size_t>(t_rows * k));
  for (int64_t t = 0; t < t_rows; ++t) norm_row(x + t * k, nullptr, g, eps, xn.data() + t * k);
  if (x8) {
    KP_TRY_STATUS(check_x8_width(c, "K", k));
    xn = quantize_x8(xn.data(), t_rows * k);
  }
  matmul_rows(xn.data(), t_rows, k, n, w, false, y, c.pool());
  return {};
}

// x [T, E] (attention output), h [T, E] (residual), gate, up [F, E],
// norm_post, norm_pre [1, E], h_out [T, E], y [T, F]:
//   h_out[t] = h[t] + rmsnorm(x[t]) * norm_post                 (rmsnorm_residual)
//   y[t, f]  = gelu_tanh(n[t]·gate[f]) * (n[t]·up[f]),  n[t] = rmsnorm(h_out[t]) * norm_pre;
// with x8 (ffn_gate_up_resnorm_*_x8), n[t] quantized to 8 bits first as matmul_*_x8.
Status ffn_gate_up_resnorm_impl(const KernelCall& c, bool x8) {
  const int64_t t_rows = c.rows();
  KP_TRY(const int64_t e, c.dim("E"));
  KP_TRY(const int64_t f, c.dim("F"));
  KP_TRY(const float eps, c.f32_constant("EPS"));
  KP_TRY(const float* x, c.in_f32(0, t_rows * e));
  KP_TRY(const float* h, c.in_f32(1, t_rows * e));
  KP_TRY(const WeightView gate, c.weight(2, f, e));
  KP_TRY(const WeightView up, c.weight(3, f, e));
  KP_TRY(const WeightView post, c.weight(4, 1, e));
  KP_TRY(const WeightView pre, c.weight(5, 1, e));
  KP_TRY(float* h_out, c.out_f32(6, t_rows * e));
  KP_TRY(float* y, c.out_f32(7, t_rows * f));
  const std::vector<float> g_post = norm_weight(post), g_pre = norm_weight(pre);
  std::vector<float> xn(static_cast<size_t>(t_rows * e));
  for (int64_t t = 0; t < t_rows; ++t) {
    norm_row(x + t * e, h + t * e, g_post, eps, h_out + t * e);
    norm_row(h_out + t * e, nullptr, g_pre, eps, xn.data() + t * e);
  }
  if (x8) {
    KP_TRY_STATUS(check_x8_width(c, "E", e));
    xn = quantize_x8(xn.data(), t_rows * e);
  }
  ffn_rows(xn.data(), t_rows, e, f, gate, up, false, y, c.pool());
  return {};
}

Status matmul(const KernelCall& c) { return matmul_impl(c, Operands::kF32); }
Status matmul_x8(const KernelCall& c) { return matmul_impl(c, Operands::kX8); }
Status matmul_h16(const KernelCall& c) { return matmul_impl(c, Operands::kH16); }
Status ffn_gate_up(const KernelCall& c) { return ffn_gate_up_impl(c, Operands::kF32); }
Status ffn_gate_up_x8(const KernelCall& c) { return ffn_gate_up_impl(c, Operands::kX8); }
Status ffn_gate_up_h16(const KernelCall& c) { return ffn_gate_up_impl(c, Operands::kH16); }
Status matmul_norm(const KernelCall& c) { return matmul_norm_impl(c, false); }
Status matmul_norm_x8(const KernelCall& c) { return matmul_norm_impl(c, true); }
Status ffn_gate_up_resnorm(const KernelCall& c) { return ffn_gate_up_resnorm_impl(c, false); }
Status ffn_gate_up_resnorm_x8(const KernelCall& c) { return ffn_gate_up_resnorm_impl(c, true); }

}  // namespace

void add_matmul_kernels(std::vector<CpuKernel>& out) {
  for (const char* type : {"f32", "f16", "q8_0", "q4k", "q5k", "q6k"}) {
    const std::string t(type);
    out.push_back(CpuKernel{"embed_" + t, {"ids", "table", "y"}, {{"main", &embed}}});
    out.push_back(CpuKernel{"matmul_" + t, {"x", "w", "y"}, {{"main", &matmul}, {"gemm", &matmul}}});
    if (t == "q4k" || t == "q6k") {
      out.push_back(CpuKernel{"matmul_" + t + "_x8", {"x", "w", "y"}, {{"main", &matmul_x8}}});
    }
    if (t != "f32") out.push_back(CpuKernel{"matmul_" + t + "_h16", {"x", "w", "y"}, {{"gemm", &matmul_h16}}});
    out.push_back(CpuKernel{"matmul_norm_" + t, {"x", "w", "norm", "y"}, {{"main", &matmul_norm}}});
    if (t == "q4k" || t == "q6k") {
      out.push_back(CpuKernel{"matmul_norm_" + t + "_x8", {"x", "w", "norm", "y"}, {{"main", &matmul_norm_x8}}});
    }
    if (t != "q5k") {  // the registry has no ffn_gate_up_q5k
      out.push_back(CpuKernel{"ffn_gate_up_" + t, {"x", "gate", "up", "y"},
                              {{"main", &ffn_gate_up}, {"gemm", &ffn_gate_up}}});
      if (t == "q4k" || t == "q6k") {
        out.push_back(CpuKernel{"ffn_gate_up_" + t + "_x8", {"x", "gate", "up", "y"}, {{"main", &ffn_gate_up_x8}}});
      }
      if (t != "f32") {
        out.push_back(CpuKernel{"ffn_gate_up_" + t + "_h16", {"x", "gate", "up", "y"}, {{"gemm", &ffn_gate_up_h16}}});
      }
      out.push_back(CpuKernel{"ffn_gate_up_resnorm_" + t,
                              {"x", "h", "gate", "up", "norm_post", "norm_pre", "h_out", "y"},
                              {{"main", &ffn_gate_up_resnorm}}});
      if (t == "q4k" || t == "q6k") {
        out.push_back(CpuKernel{"ffn_gate_up_resnorm_" + t + "_x8",
                                {"x", "h", "gate", "up", "norm_post", "norm_pre", "h_out", "y"},
                                {{"main", &ffn_gate_up_resnorm_x8}}});
      }
    }
  }
}

}  // namespace kp::backend::cpu

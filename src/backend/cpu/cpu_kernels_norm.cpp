// CPU reference kernels that work row by row or element by element: rmsnorm
// (entries main and last_row), rmsnorm_residual, add, gelu_mul, softcap.
// Sums of squares and every nonlinearity are computed in double from the f32
// inputs and rounded to f32 once. Every kernel here tolerates y aliasing the
// input the registry marks `inplace` (each element is read before it is
// written). Tests: tests/runtime/cpu_kernels_test.cpp,
// tests/runtime/op_harness_test.cpp.
#include <cmath>
#include <vector>

#include "backend/cpu/cpu_kernel.h"

namespace kp::backend::cpu {
namespace {

// 1 / sqrt(mean(x^2) + eps) of one row of n.
double inv_rms(const float* x, int64_t n, float eps) {
  double ss = 0;
  for (int64_t i = 0; i < n; ++i) ss += static_cast<double>(x[i]) * static_cast<double>(x[i]);
  return 1.0 / std::sqrt(ss / static_cast<double>(n) + static_cast<double>(eps));
}

// x [T, N], w [1, N] F32, y [T, N] (main) or [1, N] (last_row: row T-1 only).
Status rmsnorm(const KernelCall& c, bool last_row) {
  const int64_t t_rows = c.rows();
  KP_TRY(const int64_t n, c.dim("N"));
  KP_TRY(const float eps, c.f32_constant("EPS"));
  if (last_row && t_rows < 1) return c.error("last_row needs at least one row");
  KP_TRY(const float* x, c.in_f32(0, t_rows * n));
  KP_TRY(const WeightView wv, c.weight(1, 1, n));
  KP_TRY(float* y, c.out_f32(2, (last_row ? 1 : t_rows) * n));
  std::vector<float> w(static_cast<size_t>(n));
  wv.dequantize_row(0, w.data());
  const int64_t first = last_row ? t_rows - 1 : 0;
  c.pool().parallel_for(t_rows - first, 16, [&](int64_t r0, int64_t r1) {
    for (int64_t r = r0; r < r1; ++r) {
      const float* xr = x + (first + r) * n;
      float* yr = y + r * n;
      const double s = inv_rms(xr, n, eps);
      for (int64_t i = 0; i < n; ++i) yr[i] = static_cast<float>(static_cast<double>(xr[i]) * s * w[i]);
    }
  });
  return {};
}

Status rmsnorm_main(const KernelCall& c) { return rmsnorm(c, false); }
Status rmsnorm_last_row(const KernelCall& c) { return rmsnorm(c, true); }

// x [T, N] (branch output), h [T, N] (residual), w [1, N], y [T, N]:
//   y = h + rmsnorm(x) * w.
Status rmsnorm_residual(const KernelCall& c) {
  const int64_t t_rows = c.rows();
  KP_TRY(const int64_t n, c.dim("N"));
  KP_TRY(const float eps, c.f32_constant("EPS"));
  KP_TRY(const float* x, c.in_f32(0, t_rows * n));
  KP_TRY(const float* h, c.in_f32(1, t_rows * n));
  KP_TRY(const WeightView wv, c.weight(2, 1, n));
  KP_TRY(float* y, c.out_f32(3, t_rows * n));
  std::vector<float> w(static_cast<size_t>(n));
  wv.dequantize_row(0, w.data());
  c.pool().parallel_for(t_rows, 16, [&](int64_t t0, int64_t t1) {
    for (int64_t t = t0; t < t1; ++t) {
      const float* xr = x + t * n;
      const float* hr = h + t * n;
      float* yr = y + t * n;
      const double s = inv_rms(xr, n, eps);
      for (int64_t i = 0; i < n; ++i) {
        yr[i] = static_cast<float>(static_cast<double>(hr[i]) + static_cast<double>(xr[i]) * s * w[i]);
      }
    }
  });
  return {};
}

// Elementwise over [T, cols]: y[i] = op(a[i], b[i]); `cols` is the kernel's
// column constant. y may alias a or b.
template <class Op>
Status elementwise2(const KernelCall& c, const char* cols_name, Op op) {
  const int64_t t_rows = c.rows();
  KP_TRY(const int64_t cols, c.dim(cols_name));
  const int64_t count = t_rows * cols;
  KP_TRY(const float* a, c.in_f32(0, count));
  KP_TRY(const float* b, c.in_f32(1, count));
  KP_TRY(float* y, c.out_f32(2, count));
  c.pool().parallel_for(count, 1 << 14, [&](int64_t i0, int64_t i1) {
    for (int64_t i = i0; i < i1; ++i) y[i] = static_cast<float>(op(static_cast<double>(a[i]), static_cast<double>(b[i])));
  });
  return {};
}

// a [T, N], b [T, N], y [T, N]: y = a + b.
Status add(const KernelCall& c) {
  return elementwise2(c, "N", [](double a, double b) { return a + b; });
}

// g [T, F], u [T, F], y [T, F]: y = gelu_tanh(g) * u.
Status gelu_mul(const KernelCall& c) {
  return elementwise2(c, "F", [](double g, double u) { return gelu_tanh(g) * u; });
}

// x [T, N], y [T, N]: y = CAP * tanh(x / CAP).
Status softcap(const KernelCall& c) {
  const int64_t t_rows = c.rows();
  KP_TRY(const int64_t n, c.dim("N"));
  KP_TRY(const float cap, c.f32_constant("CAP"));
  if (!(cap > 0)) return c.error(fmt::format("CAP = {} (expected > 0)", cap));
  const int64_t count = t_rows * n;
  KP_TRY(const float* x, c.in_f32(0, count));
  KP_TRY(float* y, c.out_f32(1, count));
  const double d_cap = cap;
  c.pool().parallel_for(count, 1 << 14, [&](int64_t i0, int64_t i1) {
    for (int64_t i = i0; i < i1; ++i) y[i] = static_cast<float>(d_cap * std::tanh(static_cast<double>(x[i]) / d_cap));
  });
  return {};
}

}  // namespace

void add_norm_kernels(std::vector<CpuKernel>& out) {
  out.push_back(CpuKernel{"rmsnorm", {"x", "w", "y"}, {{"main", &rmsnorm_main}, {"last_row", &rmsnorm_last_row}}});
  out.push_back(CpuKernel{"rmsnorm_residual", {"x", "h", "w", "y"}, {{"main", &rmsnorm_residual}}});
  out.push_back(CpuKernel{"add", {"a", "b", "y"}, {{"main", &add}}});
  out.push_back(CpuKernel{"gelu_mul", {"g", "u", "y"}, {{"main", &gelu_mul}}});
  out.push_back(CpuKernel{"softcap", {"x", "y"}, {{"main", &softcap}}});
}

}  // namespace kp::backend::cpu

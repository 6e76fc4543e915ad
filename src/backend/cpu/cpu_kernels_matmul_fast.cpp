// The CPU backend's fast implementation of matmul_* and ffn_gate_up_* for
// F32, F16, Q4_K and Q6_K weights (both entries, `main` and `gemm`), and of
// their *_x8 forms for Q4_K and Q6_K (cpu_quant_dot_x8.h): the same
// logical kernels as cpu_kernels_matmul.cpp, which stays the reference they
// are compared against. SIMD arithmetic: cpu_quant_dot.h (Highway, chosen
// per machine).
//
// One dispatch: the activations x [T, K] are prepared once (K-quants:
// quantized to 16-bit blocks, on the pool, one row per task); then the output
// columns N (F for ffn_gate_up) are split over the pool in contiguous chunks,
// and weight rows are decoded 4 at a time (K-quants: unpacked to 16-bit
// scale * quant) and multiplied with all T activation rows while they are in
// cache, each activation vector loaded once for the 4 rows.
// Single-token dispatches on K-quant rows skip the unpacking: each row is
// read once, so it is multiplied as stored (dot_q4k_packed, dot_q6k_packed). Each output is
// computed by one thread in a fixed order, so results do not depend on the
// thread count.
//
// Bindings and constants: kernels/registry.json. Tests:
// tests/runtime/cpu_fast_kernels_test.cpp.
#include <algorithm>
#include <vector>

#include "backend/cpu/cpu_kernel.h"
#include "backend/cpu/cpu_quant_dot.h"
#include "backend/cpu/cpu_quant_dot_x8.h"
#include "core/check.h"

namespace kp::backend::cpu {
namespace {

// Output rows per task: enough work to amortize the hand-off.
int64_t row_grain(int64_t cols, int64_t t) { return std::max<int64_t>(1, 65536 / std::max<int64_t>(1, cols * t)); }

// Quantizes the t_rows activation rows of x into acts, one row per task.
template <typename Acts>
void quantize_rows(Acts& acts, void (*quantize)(const float*, int64_t, Acts&), const float* x, int64_t t_rows,
                   int64_t k, ThreadPool& pool) {
  acts.resize(t_rows, k);
  pool.parallel_for(t_rows, 1, [&](int64_t t0, int64_t t1) {
    for (int64_t t = t0; t < t1; ++t) quantize(x + t * k, t, acts);
  });
}

// Q4_K / Q6_K rows against activations quantized once to 16-bit blocks.
template <void (*Unpack)(const std::byte*, int64_t, UnpackedRow&),
          float (*Dot)(const UnpackedRow&, const ActBlocks&, int64_t),
          void (*Dot4)(const UnpackedRow* const[4], const ActBlocks&, int64_t, float[4]),
          float (*Packed)(const std::byte*, const ActBlocks&, int64_t)>
class KQuantRows {
 public:
  // Single-token dispatches read each row once: a dot on the row as stored
  // saves writing and reading back its unpacked form.
  // (Every K-quant has one; a comparison of Packed with nullptr is not a
  // constant expression under GCC's sanitizers.)
  static constexpr bool kPacked = true;
  float packed_dot(const std::byte* w) const { return Packed(w, acts_, 0); }

  void prepare(const float* x, int64_t t_rows, int64_t k, ThreadPool& pool) {
    quantize_rows(acts_, &quantize_act_row, x, t_rows, k, pool);
  }
  // One thread's 4 current weight rows.
  class Cursor {
   public:
    explicit Cursor(const KQuantRows& rows) : rows_(rows) {}
    void load(int i, const std::byte* w, int64_t k) { Unpack(w, k, row_[i]); }
    float dot(int i, int64_t t) const { return Dot(row_[i], rows_.acts_, t); }
    void dot4(int64_t t, float out[4]) const {
      const UnpackedRow* const r[4] = {&row_[0], &row_[1], &row_[2], &row_[3]};
      Dot4(r, rows_.acts_, t, out);
    }

   private:
    const KQuantRows& rows_;
    UnpackedRow row_[4];
  };

 private:
  ActBlocks acts_;
};

// F32 / F16 rows against the f32 activations as they are.
template <typename W, float (*Dot)(const W*, const float*, int64_t)>
class FloatRows {
 public:
  static constexpr bool kPacked = false;
  float packed_dot(const std::byte*) const { return 0; }
  void prepare(const float* x, int64_t /*t_rows*/, int64_t k, ThreadPool& /*pool*/) {
    x_ = x;
    k_ = k;
  }
  class Cursor {
   public:
    explicit Cursor(const FloatRows& rows) : rows_(rows) {}
    void load(int i, const std::byte* w, int64_t /*k*/) { w_[i] = reinterpret_cast<const W*>(w); }
    float dot(int i, int64_t t) const { return Dot(w_[i], rows_.x_ + t * rows_.k_, rows_.k_); }
    void dot4(int64_t t, float out[4]) const {
      for (int i = 0; i < 4; ++i) out[i] = dot(i, t);
    }

   private:
    const FloatRows& rows_;
    const W* w_[4] = {};
  };

 private:
  const float* x_ = nullptr;
  int64_t k_ = 0;
};

// Q4_K / Q6_K rows as stored against activations quantized to 8 bits in
// blocks of 32 (the *_x8 kernels): every row is multiplied as stored, also
// for several activation rows (it stays in cache between them).
template <float (*Dot)(const std::byte*, const ActX8&, int64_t)>
class X8Rows {
 public:
  static constexpr bool kPacked = true;
  float packed_dot(const std::byte* w) const { return Dot(w, acts_, 0); }
  void prepare(const float* x, int64_t t_rows, int64_t k, ThreadPool& pool) {
    quantize_rows(acts_, &quantize_x8_row, x, t_rows, k, pool);
  }
  class Cursor {
   public:
    explicit Cursor(const X8Rows& rows) : rows_(rows) {}
    void load(int i, const std::byte* w, int64_t /*k*/) { w_[i] = w; }
    float dot(int i, int64_t t) const { return Dot(w_[i], rows_.acts_, t); }
    void dot4(int64_t t, float out[4]) const {
      for (int i = 0; i < 4; ++i) out[i] = dot(i, t);
    }

   private:
    const X8Rows& rows_;
    const std::byte* w_[4] = {};
  };

 private:
  ActX8 acts_;
};

using Q4KRows = KQuantRows<&unpack_q4k_row, &dot_q4k, &dot4_q4k, &dot_q4k_packed>;
using Q6KRows = KQuantRows<&unpack_q6k_row, &dot_q6k, &dot4_q6k, &dot_q6k_packed>;
using F32Rows = FloatRows<float, &dot_f32>;
using F16Rows = FloatRows<uint16_t, &dot_f16>;
using Q4KX8Rows = X8Rows<&dot_q4k_x8>;
using Q6KX8Rows = X8Rows<&dot_q6k_x8>;

const std::byte* row_of(const WeightView& w, int64_t r) { return w.data + static_cast<size_t>(r) * w.row_bytes; }

// Asks for rows [r0, r1) of w to be brought into cache. Decode streams every
// weight once from memory; without this the loads of the next rows wait on
// memory latency (the hardware prefetcher does not run far enough ahead).
void prefetch_rows(const WeightView& w, int64_t r0, int64_t r1) {
  if (r0 >= r1) return;
  const std::byte* p = row_of(w, r0);
  const size_t bytes = static_cast<size_t>(r1 - r0) * w.row_bytes;
  for (size_t off = 0; off < bytes; off += 64) __builtin_prefetch(p + off, 0, 0);
}

// x [T, K] f32, w [N, K], y [T, N] f32:  y[t, n] = sum_k x[t, k] * w[n, k].
template <typename Rows>
Status matmul_fast(const KernelCall& c) {
  const int64_t t_rows = c.rows();
  KP_TRY(const int64_t k, c.dim("K"));
  KP_TRY(const int64_t n, c.dim("N"));
  KP_TRY(const float* x, c.in_f32(0, t_rows * k));
  KP_TRY(const WeightView w, c.weight(1, n, k));
  KP_TRY(float* y, c.out_f32(2, t_rows * n));
  // Kept from one dispatch to the next for its buffers. The workers must see
  // the submitting thread's instance: a thread_local named inside the lambda
  // would be each worker's own.
  thread_local Rows kept;
  Rows& rows = kept;
  rows.prepare(x, t_rows, k, c.pool());
  if (Rows::kPacked && t_rows == 1) {
    c.pool().parallel_for(n, row_grain(k, 1), [&](int64_t n0, int64_t n1) {
      for (int64_t r = n0; r < n1; ++r) {
        if ((r - n0) % 4 == 0) prefetch_rows(w, r + 4, std::min(r + 8, n1));
        y[r] = rows.packed_dot(row_of(w, r));
      }
    });
    return {};
  }
  c.pool().parallel_for(n, row_grain(k, t_rows), [&](int64_t n0, int64_t n1) {
    typename Rows::Cursor cur(rows);
    int64_t r = n0;
    for (; r + 4 <= n1; r += 4) {  // 4 rows at a time, each activation vector loaded once for them
      prefetch_rows(w, r + 4, std::min(r + 8, n1));
      for (int i = 0; i < 4; ++i) cur.load(i, row_of(w, r + i), k);
      for (int64_t t = 0; t < t_rows; ++t) {
        float out[4];
        cur.dot4(t, out);
        for (int i = 0; i < 4; ++i) y[t * n + r + i] = out[i];
      }
    }
    for (; r < n1; ++r) {
      cur.load(0, row_of(w, r), k);
      for (int64_t t = 0; t < t_rows; ++t) y[t * n + r] = cur.dot(0, t);
    }
  });
  return {};
}

// x [T, E] f32, gate [F, E], up [F, E], y [T, F] f32:
//   y[t, f] = gelu_tanh(x[t]·gate[f]) * (x[t]·up[f]).
template <typename Rows>
Status ffn_gate_up_fast(const KernelCall& c) {
  const int64_t t_rows = c.rows();
  KP_TRY(const int64_t e, c.dim("E"));
  KP_TRY(const int64_t f, c.dim("F"));
  KP_TRY(const float* x, c.in_f32(0, t_rows * e));
  KP_TRY(const WeightView gate, c.weight(1, f, e));
  KP_TRY(const WeightView up, c.weight(2, f, e));
  KP_TRY(float* y, c.out_f32(3, t_rows * f));
  thread_local Rows kept;  // as in matmul_fast
  Rows& rows = kept;
  rows.prepare(x, t_rows, e, c.pool());
  if (Rows::kPacked && t_rows == 1) {
    c.pool().parallel_for(f, row_grain(2 * e, 1), [&](int64_t f0, int64_t f1) {
      for (int64_t r = f0; r < f1; ++r) {
        if ((r - f0) % 2 == 0) {
          prefetch_rows(gate, r + 2, std::min(r + 4, f1));
          prefetch_rows(up, r + 2, std::min(r + 4, f1));
        }
        const double g = rows.packed_dot(row_of(gate, r));
        const double u = rows.packed_dot(row_of(up, r));
        y[r] = static_cast<float>(gelu_tanh(g) * u);
      }
    });
    return {};
  }
  c.pool().parallel_for(f, row_grain(2 * e, t_rows), [&](int64_t f0, int64_t f1) {
    typename Rows::Cursor cur(rows);
    int64_t r = f0;
    for (; r + 2 <= f1; r += 2) {  // rows: gate r, up r, gate r + 1, up r + 1
      prefetch_rows(gate, r + 2, std::min(r + 4, f1));
      prefetch_rows(up, r + 2, std::min(r + 4, f1));
      for (int i = 0; i < 2; ++i) {
        cur.load(2 * i, row_of(gate, r + i), e);
        cur.load(2 * i + 1, row_of(up, r + i), e);
      }
      for (int64_t t = 0; t < t_rows; ++t) {
        float out[4];
        cur.dot4(t, out);
        for (int i = 0; i < 2; ++i) {
          y[t * f + r + i] = static_cast<float>(gelu_tanh(out[2 * i]) * static_cast<double>(out[2 * i + 1]));
        }
      }
    }
    for (; r < f1; ++r) {
      cur.load(0, row_of(gate, r), e);
      cur.load(1, row_of(up, r), e);
      for (int64_t t = 0; t < t_rows; ++t) {
        y[t * f + r] = static_cast<float>(gelu_tanh(cur.dot(0, t)) * static_cast<double>(cur.dot(1, t)));
      }
    }
  });
  return {};
}

template <typename Rows>
void add(std::vector<CpuKernel>& kernels, const std::string& type) {
  for (CpuKernel& k : kernels) {
    if (k.id == "matmul_" + type) k.fast = {{"main", &matmul_fast<Rows>}, {"gemm", &matmul_fast<Rows>}};
    if (k.id == "ffn_gate_up_" + type) k.fast = {{"main", &ffn_gate_up_fast<Rows>}, {"gemm", &ffn_gate_up_fast<Rows>}};
  }
}

// The *_x8 forms have one entry, main (any T).
template <typename Rows>
void add_x8(std::vector<CpuKernel>& kernels, const std::string& type) {
  for (CpuKernel& k : kernels) {
    if (k.id == "matmul_" + type + "_x8") k.fast = {{"main", &matmul_fast<Rows>}};
    if (k.id == "ffn_gate_up_" + type + "_x8") k.fast = {{"main", &ffn_gate_up_fast<Rows>}};
  }
}

}  // namespace

void add_fast_matmul_kernels(std::vector<CpuKernel>& kernels) {
  add<F32Rows>(kernels, "f32");
  add<F16Rows>(kernels, "f16");
  add<Q4KRows>(kernels, "q4k");
  add<Q6KRows>(kernels, "q6k");
  add_x8<Q4KX8Rows>(kernels, "q4k");
  add_x8<Q6KX8Rows>(kernels, "q6k");
}

}  // namespace kp::backend::cpu

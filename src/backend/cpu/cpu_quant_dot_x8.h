// The arithmetic of the CPU backend's fast *_x8 kernels (matmul_{q4k,q6k}_x8,
// ffn_gate_up_{q4k,q6k}_x8): activations quantized to 8 bits in blocks of 32
// exactly as the reference does (cpu_kernels_matmul.cpp's quantize_x8: d =
// amax / 127, q = round-half-even(x * (1 / d)), 0 where d is below FLT_MIN),
// then integer dot products with the weights as stored, one f32 scale per 32
// weights (the weight's sub-block scale times the activation block's d).
// On x86 with AVX2 (and AVX-512 machines) 32 unsigned weight quants times 32
// signed activation quants are one vpmaddubsw and one vpmaddwd; other
// targets run the same integer sums in portable code. Chosen per machine
// through Highway's dynamic dispatch, as cpu_quant_dot.h.
// Tests: tests/runtime/cpu_fast_kernels_test.cpp (against the reference).
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

namespace kp::backend::cpu {

inline constexpr int64_t kX8Block = 32;

// Activation rows quantized to 8 bits in blocks of 32; cols a multiple of 32.
struct ActX8 {
  int64_t rows = 0, cols = 0;
  std::vector<int8_t> q;        // [rows, cols]
  std::vector<float> d;         // [rows, cols / 32]
  std::vector<float> dsum16;    // [rows, cols / 16]: d of the block times the sum of q over each 16 (Q6_K's -32)
  std::vector<float> dsum32;    // [rows, cols / 32]: d times the sum of q over the block (Q4_K's mins)

  // Row t's parts.
  struct Row {
    const int8_t* q;
    const float* d;
    const float* dsum16;
    const float* dsum32;
  };
  Row row(int64_t t) const {
    return {q.data() + t * cols, d.data() + t * (cols / 32), dsum16.data() + t * (cols / 16),
            dsum32.data() + t * (cols / 32)};
  }

  void resize(int64_t n_rows, int64_t n_cols);
};

// Quantizes row t of x (cols = a.cols floats) into a; a was resized before.
void quantize_x8_row(const float* x, int64_t t, ActX8& a);

// The dot of one Q4_K / Q6_K row as stored (cols / 256 blocks, any alignment)
// with the 8-bit activation row t.
float dot_q4k_x8(const std::byte* row, const ActX8& x, int64_t t);
float dot_q6k_x8(const std::byte* row, const ActX8& x, int64_t t);

}  // namespace kp::backend::cpu

// The SIMD arithmetic of the CPU backend's fast matrix kernels
// (cpu_kernels_matmul_fast.cpp), written once with Google Highway and compiled
// for every SIMD target of the architecture (SSE4, AVX2, AVX-512 on x86; NEON
// on Arm); the best target of the running machine is chosen at the first call.
//
// K-quant products (Q4_K, Q6_K) are integer dot products:
// - an activation row is quantized once per dispatch to 16-bit blocks of 256
//   (ggml's q8_K with 16-bit quants and a scale per 32):
//   x[i] ~= d[s] * q[i], d[s] = max|x| / 32767 over the 32 elements of s.
//   8-bit quants, as ggml uses, put about 6e-3 relative error on every
//   matrix product, past the CPU paths' 1e-3 bound on the logits; 16-bit
//   quants about 3e-5 (a scale per 32 rather than per 256 keeps the
//   heavy-tailed FFN activations within verify's 1e-4 per step);
// - a weight row is unpacked once to 16-bit products of sub-block scale and
//   quant (Q4_K: sc * q in 0..945; Q6_K: sc * (q - 32) in -4096..4096), so one
//   row serves every activation row of the batch;
// - 16 x 16-bit multiply-adds into 32-bit lanes (x86 vpmaddwd), moved to f32
//   before a lane could overflow, one f32 scale per super-block.
// F32 and F16 rows are f32 fused multiply-adds on the f32 activations.
//
// Tests: tests/runtime/cpu_fast_kernels_test.cpp (against the reference
// kernels through the op harness).
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

namespace kp::backend::cpu {

inline constexpr int64_t kActBlock = 256;  // the K-quant super-block: activation rows are whole ones
inline constexpr int64_t kActScale = 32;   // elements per activation scale (Q4_K's sub-block)
inline constexpr int64_t kActSum = 16;     // elements per activation sum (Q6_K's sub-block)

// x [rows, cols] f32 as 16-bit blocks; cols is a multiple of kActBlock.
struct ActBlocks {
  int64_t rows = 0, cols = 0;
  std::vector<int16_t> q;     // [rows, cols]
  std::vector<float> d;       // [rows, cols / 32]
  std::vector<int32_t> sums;  // [rows, cols / 16]: sum of q over each 16 elements
  std::vector<float> sums32;  // [rows, cols / 32]: d * sum of q over each 32 (Q4_K's sub-blocks)

  void resize(int64_t n_rows, int64_t n_cols);
};

// Quantizes row t of x (cols = a.cols floats) into a; a was resized before.
void quantize_act_row(const float* x, int64_t t, ActBlocks& a);

// One weight row unpacked for the dot products.
struct UnpackedRow {
  std::vector<int16_t> q;    // [cols]: sub-block scale * quant
  std::vector<float> d;      // [cols / 256]: super-block scale
  std::vector<float> mins;   // Q4_K: [cols / 32]: dmin * m, subtracted per 32 elements
};

// row: cols / 256 blocks of format::BlockQ4_K / BlockQ6_K (any alignment).
void unpack_q4k_row(const std::byte* row, int64_t cols, UnpackedRow& out);
void unpack_q6k_row(const std::byte* row, int64_t cols, UnpackedRow& out);

// sum_i w[i] * x[t, i] for the unpacked row and activation row t.
float dot_q4k(const UnpackedRow& w, const ActBlocks& x, int64_t t);
float dot_q6k(const UnpackedRow& w, const ActBlocks& x, int64_t t);
// out[i] = the dot of rows[i] with activation row t: each activation vector
// is loaded once for the 4 rows.
void dot4_q4k(const UnpackedRow* const rows[4], const ActBlocks& x, int64_t t, float out[4]);
void dot4_q6k(const UnpackedRow* const rows[4], const ActBlocks& x, int64_t t, float out[4]);

// The dot of one Q4_K / Q6_K row as stored (cols / 256 blocks) with activation row
// t, without unpacking: for single-token dispatches, where each row is used
// once.
float dot_q4k_packed(const std::byte* row, const ActBlocks& x, int64_t t);
float dot_q6k_packed(const std::byte* row, const ActBlocks& x, int64_t t);

// sum_i w[i] * x[i] over n elements, f32 accumulation.
float dot_f32(const float* w, const float* x, int64_t n);
float dot_f16(const uint16_t* w, const float* x, int64_t n);  // w: IEEE half bits

// The Highway target the calls above run on ("AVX2", "AVX3", "NEON", ...).
std::string simd_target();

}  // namespace kp::backend::cpu

// The one definition of each quantized block layout kpath reads or writes.
// Byte-for-byte the layouts of ggml (ggml-common.h) and therefore of GGUF files.
// GLSL and CUDA kernels read the same bytes; tests/format/quant_layout_test.cpp
// and the GPU op tests check that they agree.
#pragma once

#include <cstdint>

namespace kp::format {

inline constexpr int kQK8_0 = 32;    // weights per Q8_0 block
inline constexpr int kQK_K = 256;    // weights per K-quant super-block
inline constexpr int kKScaleSize = 12;  // packed 6-bit scales+mins of Q4_K/Q5_K

// Q8_0: y = d * q, 32 weights.
struct BlockQ8_0 {
  uint16_t d;           // f16 scale
  int8_t qs[kQK8_0];    // quants
};
static_assert(sizeof(BlockQ8_0) == 34, "Q8_0 block is 34 bytes per 32 weights");

// Q4_K: 8 sub-blocks of 32; y = d * sc[j] * q - dmin * m[j], 6-bit sc/m packed in `scales`.
struct BlockQ4_K {
  uint16_t d;                    // f16 super-block scale for the sub-block scales
  uint16_t dmin;                 // f16 super-block scale for the sub-block mins
  uint8_t scales[kKScaleSize];   // 8 scales + 8 mins, 6 bits each
  uint8_t qs[kQK_K / 2];         // 4-bit quants, two per byte
};
static_assert(sizeof(BlockQ4_K) == 144, "Q4_K block is 144 bytes per 256 weights");

// The 6-bit scale and min of sub-block j (0..7) from Q4_K/Q5_K's 12 bytes:
// bytes 0..3 hold scales 0..3 (low 6 bits), bytes 4..7 mins 0..3; bytes 8..11
// hold the low 4 bits of scale j (low nibble) and min j (high nibble) for
// j = 4..7, whose top 2 bits sit in the top 2 bits of bytes j-4 and j.
inline void k_scale_min(int j, const uint8_t* s, uint8_t* sc, uint8_t* m) {
  if (j < 4) {
    *sc = s[j] & 63;
    *m = s[j + 4] & 63;
  } else {
    *sc = static_cast<uint8_t>((s[j + 4] & 0x0f) | ((s[j - 4] >> 6) << 4));
    *m = static_cast<uint8_t>((s[j + 4] >> 4) | ((s[j] >> 6) << 4));
  }
}

// Q5_K: as Q4_K plus one high bit per weight.
struct BlockQ5_K {
  uint16_t d;
  uint16_t dmin;
  uint8_t scales[kKScaleSize];
  uint8_t qh[kQK_K / 8];         // high bits
  uint8_t qs[kQK_K / 2];         // low 4 bits
};
static_assert(sizeof(BlockQ5_K) == 176, "Q5_K block is 176 bytes per 256 weights");

// Q6_K: 16 sub-blocks of 16; y = d * scales[j] * (q - 32), q 6-bit.
struct BlockQ6_K {
  uint8_t ql[kQK_K / 2];         // low 4 bits
  uint8_t qh[kQK_K / 4];         // high 2 bits
  int8_t scales[kQK_K / 16];     // 8-bit sub-block scales
  uint16_t d;                    // f16 super-block scale
};
static_assert(sizeof(BlockQ6_K) == 210, "Q6_K block is 210 bytes per 256 weights");

}  // namespace kp::format

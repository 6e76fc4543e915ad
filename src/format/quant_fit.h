// Scale searches shared by the K-quant quantizers (quant_k_quantize.cpp).
//
// A sub-block of n weights x[i] with importance w[i] is represented by integer
// levels q[i] and one or two floats. The searches pick the floats that give the
// least weighted squared error sum_i w[i] * (y[i] - x[i])^2: they try a grid of
// candidate step sizes around the one that spans the data, assign the nearest
// level for each, solve the least-squares problem for that assignment in closed
// form, and finally re-assign levels to the best fit and re-solve while that
// lowers the error (the fit and the assignment each minimize the error given the
// other, so the error never goes up).
#pragma once

#include <algorithm>

namespace kp::format {

// Round to nearest, ties to even, for |v| < 2^22: adding 1.5 * 2^23 pushes the
// fraction out of the mantissa. Written so that loops using it vectorize.
inline float round_level(float v) {
  constexpr float kMagic = 12582912.0f;  // 1.5 * 2^23
  return (v + kMagic) - kMagic;
}

// Nearest level of v in [lo, hi] (clamped before rounding so that huge or
// tiny steps cannot leave the range where round_level is exact).
inline float nearest_level(float v, float lo, float hi) {
  return round_level(std::min(std::max(v, lo), hi));
}

// y = scale * q + offset, q in [0, nmax], offset <= 0 (Q4_K stores -offset as
// an unsigned "min"). n <= 32.
struct AffineFit {
  float scale = 0.0f;
  float offset = 0.0f;
};
AffineFit fit_affine(const float* x, const float* w, int n, int nmax);

// y = scale * q, q in [-nmax, nmax - 1] (Q6_K: nmax = 32). The weight of
// largest magnitude is mapped near the -nmax end, whose extra level the sign of
// `scale` makes available to either sign of the data. Returns 0 for an all-zero
// sub-block. n <= 32.
float fit_symmetric(const float* x, const float* w, int n, int nmax);

}  // namespace kp::format

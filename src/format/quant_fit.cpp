// Least-squares scale searches for the K-quants; see quant_fit.h.
#include "format/quant_fit.h"

#include <cmath>
#include <cstring>
#include <limits>

#include "core/check.h"

namespace kp::format {
namespace {

constexpr int kMaxSub = 32;  // largest sub-block the searches handle (Q4_K)

// Weighted moments of one level assignment q against x.
struct Moments {
  double sq = 0;   // sum w q
  double sqq = 0;  // sum w q^2
  double sqx = 0;  // sum w q x
};

// Four float lanes (GCC/Clang vector extension): the level assignment and the
// moments are computed four weights at a time, with one partial sum per lane.
typedef float F4 __attribute__((vector_size(16)));

inline F4 load4(const float* p) {
  F4 v;
  std::memcpy(&v, p, sizeof v);
  return v;
}

inline F4 splat4(float s) { return F4{s, s, s, s}; }

// Levels q = nearest_level((x - shift) * iscale, lo, hi) and their moments,
// in one pass; n is a multiple of 4.
Moments assign_levels(const float* x, const float* w, int n, float shift, float iscale, float lo,
                      float hi) {
  const F4 vshift = splat4(shift), viscale = splat4(iscale), vlo = splat4(lo), vhi = splat4(hi);
  const F4 magic = splat4(12582912.0f);  // round_level's 1.5 * 2^23
  F4 sq = splat4(0), sqq = splat4(0), sqx = splat4(0);
  for (int i = 0; i < n; i += 4) {
    const F4 xv = load4(x + i);
    F4 v = (xv - vshift) * viscale;
    v = v < vlo ? vlo : v;
    v = v > vhi ? vhi : v;
    const F4 q = (v + magic) - magic;
    const F4 wq = load4(w + i) * q;
    sq += wq;
    sqq += wq * q;
    sqx += wq * xv;
  }
  auto sum = [](F4 v) { return static_cast<double>((v[0] + v[1]) + (v[2] + v[3])); };
  return Moments{sum(sq), sum(sqq), sum(sqx)};
}

// Data moments that do not depend on the levels.
struct DataMoments {
  double sw = 0;   // sum w
  double sx = 0;   // sum w x
  double sxx = 0;  // sum w x^2
};

DataMoments data_moments(const float* x, const float* w, int n) {
  DataMoments d;
  for (int i = 0; i < n; ++i) {
    d.sw += w[i];
    d.sx += static_cast<double>(w[i]) * x[i];
    d.sxx += static_cast<double>(w[i]) * x[i] * x[i];
  }
  return d;
}

// For fixed levels, the weighted squared error of the best (scale, offset)
// is sxx - gain; the search maximizes the gain, which costs one division, and
// solves for the scale and offset of the winner only.
double affine_gain(const DataMoments& d, const Moments& m) {
  const double det = d.sw * m.sqq - m.sq * m.sq;
  const double offset_num = m.sqq * d.sx - m.sq * m.sqx;  // offset * det
  if (det > 0 && offset_num <= 0) {
    return (d.sw * m.sqx * m.sqx - 2 * d.sx * m.sq * m.sqx + m.sqq * d.sx * d.sx) / det;
  }
  // The free offset would be positive: pin it at 0 (the constrained optimum of
  // a convex quadratic lies on the boundary) and fit the scale alone.
  if (m.sqq > 0) return m.sqx * m.sqx / m.sqq;
  return -std::numeric_limits<double>::infinity();
}

AffineFit solve_affine(const DataMoments& d, const Moments& m) {
  const double det = d.sw * m.sqq - m.sq * m.sq;
  const double offset_num = m.sqq * d.sx - m.sq * m.sqx;
  if (det > 0 && offset_num <= 0) {
    return AffineFit{static_cast<float>((d.sw * m.sqx - d.sx * m.sq) / det),
                     static_cast<float>(offset_num / det)};
  }
  return AffineFit{m.sqq > 0 ? static_cast<float>(m.sqx / m.sqq) : 0.0f, 0.0f};
}

}  // namespace

AffineFit fit_affine(const float* x, const float* w, int n, int nmax) {
  KP_CHECK(n > 0 && n <= kMaxSub && n % 4 == 0, "affine fit takes 4..32 weights, a multiple of 4");
  float lo = x[0], hi = x[0];
  for (int i = 1; i < n; ++i) {
    lo = std::min(lo, x[i]);
    hi = std::max(hi, x[i]);
  }
  lo = std::min(lo, 0.0f);  // the offset cannot be positive
  if (!(hi > lo)) return AffineFit{0.0f, lo};

  const DataMoments d = data_moments(x, w, n);
  const float top = static_cast<float>(nmax);
  Moments best;
  double best_gain = -std::numeric_limits<double>::infinity();

  // Candidate steps: levels 0..nmax spread over [lo, hi] with the top level
  // moved by -1..+1 in 20 steps (a step a little larger than range/nmax clips
  // nothing; a smaller one clips the extremes but resolves the bulk better).
  constexpr int kSteps = 20;
  for (int k = 0; k <= kSteps; ++k) {
    const float iscale = (top - 1.0f + 2.0f * static_cast<float>(k) / kSteps) / (hi - lo);
    const Moments m = assign_levels(x, w, n, lo, iscale, 0.0f, top);
    const double gain = affine_gain(d, m);
    if (gain > best_gain) {
      best_gain = gain;
      best = m;
    }
  }
  // Re-assign each weight to its nearest level under the best fit and re-solve.
  AffineFit fit = solve_affine(d, best);
  for (int round = 0; round < 3 && fit.scale > 0; ++round) {
    const Moments m = assign_levels(x, w, n, fit.offset, 1.0f / fit.scale, 0.0f, top);
    const double gain = affine_gain(d, m);
    if (!(gain > best_gain)) break;
    best_gain = gain;
    fit = solve_affine(d, m);
  }
  if (!(fit.scale > 0)) return AffineFit{(hi - lo) / top, lo};
  return fit;
}

float fit_symmetric(const float* x, const float* w, int n, int nmax) {
  KP_CHECK(n > 0 && n <= kMaxSub && n % 4 == 0, "symmetric fit takes 4..32 weights, a multiple of 4");
  float amax = 0.0f, vmax = 0.0f;
  for (int i = 0; i < n; ++i) {
    if (std::fabs(x[i]) > amax) {
      amax = std::fabs(x[i]);
      vmax = x[i];
    }
  }
  if (amax < 1e-30f) return 0.0f;

  const float lo = -static_cast<float>(nmax), hi = static_cast<float>(nmax - 1);
  // For fixed levels the best scale is sqx / sqq and the error falls by
  // sqx^2 / sqq, so the search maximizes that.
  double best_gain = -1.0, best_scale = 0.0;
  auto consider = [&](const Moments& m) {
    if (m.sqq <= 0) return false;
    const double gain = m.sqx * m.sqx / m.sqq;
    if (!(gain > best_gain)) return false;
    best_gain = gain;
    best_scale = m.sqx / m.sqq;
    return true;
  };
  // Candidates: the extreme weight on level -nmax +- 0.9 in steps of 0.1.
  for (int k = -9; k <= 9; ++k) {
    const float iscale = -(static_cast<float>(nmax) + 0.1f * static_cast<float>(k)) / vmax;
    consider(assign_levels(x, w, n, 0.0f, iscale, lo, hi));
  }
  for (int round = 0; round < 3 && best_scale != 0.0; ++round) {
    const float inv = static_cast<float>(1.0 / best_scale);
    if (!consider(assign_levels(x, w, n, 0.0f, inv, lo, hi))) break;
  }
  return static_cast<float>(best_scale);
}

}  // namespace kp::format

// kp_math.glsl: transcendental functions with a known accuracy on every
// driver. GLSL's built-in tanh/sin/cos/pow carry loose precision guarantees
// (sin and cos only 2^-11 absolute inside [-pi, pi], nothing outside; pow a few
// ulp), and RoPE angles reach thousands of radians, where an ulp of the
// frequency moves the angle by 1e-3, so these are written out.
#ifndef KP_MATH_GLSL
#define KP_MATH_GLSL

// tanh(x), relative error a few ulp: a Taylor series below 1/4 (where
// 1 - 2/(e^2x + 1) cancels), the exponential form above.
float kp_tanh(float x) {
  const float a = abs(x);
  if (a < 0.25) {
    const float z = x * x;
    return x * (1.0 + z * (-1.0 / 3.0 + z * (2.0 / 15.0 + z * (-17.0 / 315.0 + z * (62.0 / 2835.0)))));
  }
  const float t = 1.0 - 2.0 / (exp(2.0 * a) + 1.0);
  return x < 0.0 ? -t : t;
}

// gelu_tanh(x) = 0.5 x (1 + tanh(u)), u = sqrt(2/pi) (x + 0.044715 x^3),
// written as x / (1 + e^(-2u)): the same value without the cancellation of
// 1 + tanh(u) for negative x.
float kp_gelu(float x) {
  const float u = 0.7978845608028654 * (x + 0.044715 * x * x * x);
  return x / (1.0 + exp(-2.0 * u));
}

// sin and cos of x: reduction by pi/2 in three parts with fused multiply-adds
// (exact for |x| < 2^16 pi/2), then minimax polynomials on [-pi/4, pi/4]
// (Cephes sinf/cosf). Absolute error about 1e-7 for |x| up to 1e5.
void kp_sincos(float x, out float s, out float c) {
  precise float q = floor(x * 0.6366197723675814 + 0.5);
  precise float r = fma(-q, 1.5703125, x);
  r = fma(-q, 4.837512969970703125e-4, r);
  r = fma(-q, 7.54978995489188216e-8, r);
  const float z = r * r;
  const float sr = r + r * z * (-1.6666654611e-1 + z * (8.3321608736e-3 + z * -1.9515295891e-4));
  const float cr = 1.0 - 0.5 * z + z * z * (4.166664568298827e-2 + z * (-1.388731625493765e-3 + z * 2.443315711809948e-5));
  const int quadrant = int(q) & 3;  // two's complement: also right for negative q
  if (quadrant == 0) {
    s = sr;
    c = cr;
  } else if (quadrant == 1) {
    s = cr;
    c = -sr;
  } else if (quadrant == 2) {
    s = -sr;
    c = -cr;
  } else {
    s = -cr;
    c = sr;
  }
}

// Float-float arithmetic: a value is the unevaluated sum hi + lo of two floats
// (about 48 significant bits), built from error-free transformations that
// `precise` keeps from being contracted or reassociated. Used where a result
// must be right to the last bit of f32 (RoPE frequencies).
vec2 ff_two_sum(float a, float b) {
  precise float s = a + b;
  precise float bb = s - a;
  precise float e = (a - (s - bb)) + (b - bb);
  return vec2(s, e);
}

vec2 ff_fast_two_sum(float a, float b) {  // |a| >= |b|
  precise float s = a + b;
  precise float e = b - (s - a);
  return vec2(s, e);
}

// a * b exactly, by Dekker's splitting (no reliance on fused multiply-add).
vec2 ff_two_prod(float a, float b) {
  precise float ta = 4097.0 * a;
  precise float ah = ta - (ta - a);
  precise float al = a - ah;
  precise float tb = 4097.0 * b;
  precise float bh = tb - (tb - b);
  precise float bl = b - bh;
  precise float p = a * b;
  precise float e = ((ah * bh - p) + ah * bl + al * bh) + al * bl;
  return vec2(p, e);
}

vec2 ff_add(vec2 a, vec2 b) {
  const vec2 s = ff_two_sum(a.x, b.x);
  precise float lo = s.y + (a.y + b.y);
  return ff_fast_two_sum(s.x, lo);
}

vec2 ff_mul(vec2 a, vec2 b) {
  const vec2 p = ff_two_prod(a.x, b.x);
  precise float lo = p.y + (a.x * b.y + a.y * b.x);
  return ff_fast_two_sum(p.x, lo);
}

vec2 ff_div(vec2 a, vec2 b) {
  precise float q1 = a.x / b.x;
  const vec2 r = ff_add(a, -ff_mul(b, vec2(q1, 0.0)));
  precise float q2 = r.x / b.x;
  const vec2 r2 = ff_add(r, -ff_mul(b, vec2(q2, 0.0)));
  precise float q3 = r2.x / b.x;
  return ff_add(ff_fast_two_sum(q1, q2), vec2(q3, 0.0));
}

const vec2 FF_LN2 = vec2(0.693147182464599609375, -1.904654212125933636e-9);

// ln(x) for a normal x > 0: x = m 2^k with m in [sqrt(1/2), sqrt(2)),
// ln(m) = 2 atanh(s), s = (m - 1) / (m + 1), |s| < 0.172, 11 terms.
vec2 ff_log(float x) {
  int k;
  float m = frexp(x, k);
  if (m < 0.70710678) {
    m *= 2.0;
    k -= 1;
  }
  const vec2 s = ff_div(vec2(m - 1.0, 0.0), ff_two_sum(m, 1.0));  // m - 1 is exact
  const vec2 s2 = ff_mul(s, s);
  vec2 t = ff_div(vec2(1.0, 0.0), vec2(21.0, 0.0));
  for (int n = 9; n >= 0; --n) t = ff_add(ff_mul(t, s2), ff_div(vec2(1.0, 0.0), vec2(float(2 * n + 1), 0.0)));
  const vec2 ln_m = ff_mul(ff_mul(s, t), vec2(2.0, 0.0));
  return ff_add(ff_mul(FF_LN2, vec2(float(k), 0.0)), ln_m);
}

// exp(y): y = k ln2 + r with |r| <= ln2 / 2, exp(r) by a 14-term Taylor series
// in Horner form, then scaled by 2^k (y must keep 2^k a normal float).
vec2 ff_exp(vec2 y) {
  const float k = floor(y.x / 0.6931471805599453 + 0.5);
  const vec2 r = ff_add(y, -ff_mul(FF_LN2, vec2(k, 0.0)));
  vec2 p = vec2(1.0, 0.0);
  for (int n = 14; n >= 1; --n) p = ff_add(vec2(1.0, 0.0), ff_div(ff_mul(p, r), vec2(float(n), 0.0)));
  return vec2(ldexp(p.x, int(k)), ldexp(p.y, int(k)));
}

// x^y for x > 0, as f32 correctly rounded (up to ties closer than 2^-45): what
// a correctly rounded powf gives, where GLSL's pow may be off by several ulp.
float kp_pow_exact(float x, float y) {
  const vec2 v = ff_exp(ff_mul(ff_log(x), vec2(y, 0.0)));
  return v.x + v.y;
}

#endif  // KP_MATH_GLSL

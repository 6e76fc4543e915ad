// Each CPU kernel against a straightforward computation written here, at the
// fixture model's shapes (E 256, F 768, 4 / 2 heads of 64, V 4096): matmuls
// against dequantize-then-naive-matmul in double, norms and activations
// against their formulas, rope against the rotation formula of docs/kernels.md,
// attention against a naive double softmax with the window rule and against
// cases with a known answer, and the samplers against hand-computed draws.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <numbers>
#include <random>

#include "backend/cpu/cpu_backend.h"
#include "backend/op_harness.h"
#include "core/check.h"
#include "core/fp16.h"
#include "core/mapped_file.h"
#include "format/quant.h"
#include "format/quant_blocks.h"

namespace kp::backend {
namespace {

using format::GgmlType;
using Symbols = std::map<std::string, int64_t>;
using Bytes = std::vector<uint8_t>;

constexpr int64_t kE = 256, kF = 768, kHeads = 4, kKvHeads = 2, kHeadDim = 64, kV = 4096;

kpath::ModelValues fixture_model() {
  kpath::ModelValues m;
  m.n_embd = kE;
  m.n_ff = kF;
  m.n_head = kHeads;
  m.n_head_kv = kKvHeads;
  m.head_dim = kHeadDim;
  m.n_vocab = kV;
  m.n_layer = 6;
  m.rms_eps = 1e-6f;
  m.rope_theta = 10000.0f;
  m.attn_softcap = 50.0f;
  m.final_softcap = 30.0f;
  m.attn_scale = 0.125f;
  m.embd_scale = 16.0f;
  return m;
}

// The logical registry (kernels/registry.json) with the CPU implementations.
const kpath::Registry& cpu_registry() {
  static const kpath::Registry r = [] {
    kpath::Registry reg;
    auto text = read_text_file(std::string(KP_SOURCE_DIR) + "/kernels/registry.json");
    KP_CHECK(text.ok(), "kernels/registry.json is readable");
    const Status s = reg.add_logical_json(*text, "kernels/registry.json");
    KP_CHECK(s.ok(), "kernels/registry.json parses");
    register_cpu_kernels(reg);
    return reg;
  }();
  return r;
}

Backend& cpu() {
  static std::unique_ptr<Backend> b = make_cpu_backend();
  return *b;
}

template <class T>
Bytes to_bytes(const std::vector<T>& v) {
  Bytes out(v.size() * sizeof(T));
  std::memcpy(out.data(), v.data(), out.size());
  return out;
}

std::vector<float> floats(const Bytes& b) {
  std::vector<float> v(b.size() / sizeof(float));
  std::memcpy(v.data(), b.data(), v.size() * sizeof(float));
  return v;
}

int32_t int_at(const Bytes& b, size_t i) {
  int32_t x;
  std::memcpy(&x, b.data() + i * 4, 4);
  return x;
}

std::vector<float> randn(int64_t n, uint64_t seed, double mean = 0, double stddev = 1) {
  std::mt19937_64 rng(seed);
  std::normal_distribution<double> dist(mean, stddev);
  std::vector<float> v(static_cast<size_t>(n));
  for (auto& x : v) x = static_cast<float>(dist(rng));
  return v;
}

Bytes nan_bytes(int64_t n) { return to_bytes(std::vector<float>(static_cast<size_t>(n), NAN)); }

// Q5_K is read but not written by kpath: random blocks with moderate scales.
Bytes random_q5_k(int64_t n, uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::vector<format::BlockQ5_K> blocks(static_cast<size_t>(n / format::kQK_K));
  for (auto& b : blocks) {
    b.d = f32_to_f16(1e-4f * static_cast<float>(1 + rng() % 16));
    b.dmin = f32_to_f16(1e-3f * static_cast<float>(1 + rng() % 16));
    for (auto& x : b.scales) x = static_cast<uint8_t>(rng());
    for (auto& x : b.qh) x = static_cast<uint8_t>(rng());
    for (auto& x : b.qs) x = static_cast<uint8_t>(rng());
  }
  return to_bytes(blocks);
}

// A [rows, cols] weight of `type` made from Gaussian values.
Bytes make_weight(GgmlType type, int64_t rows, int64_t cols, uint64_t seed) {
  if (type == GgmlType::Q5_K) return random_q5_k(rows * cols, seed);
  const std::vector<float> v = randn(rows * cols, seed, 0, 1 / std::sqrt(static_cast<double>(cols)));
  Bytes out(static_cast<size_t>(rows) * format::row_bytes(type, static_cast<uint64_t>(cols)));
  const Status s = format::quantize(type, v.data(), out.data(), rows * cols);
  KP_CHECK(s.ok(), "quantize a test weight");
  return out;
}

std::vector<float> dequantized(GgmlType type, const Bytes& w, int64_t n) {
  std::vector<float> out(static_cast<size_t>(n));
  const Status s = format::dequantize(type, w.data(), out.data(), n);
  KP_CHECK(s.ok(), "dequantize a test weight");
  return out;
}

OpDispatch dispatch(const std::string& kernel, const std::string& entry, Symbols symbols, std::vector<Bytes> data) {
  OpDispatch d;
  d.kernel = cpu_registry().find(kernel);
  KP_CHECK(d.kernel != nullptr, "kernel in the registry");
  d.entry = entry;
  d.params.n_tokens = static_cast<uint32_t>(symbols.count("T") ? symbols.at("T") : 1);
  d.params.kv_len = d.params.n_tokens;
  d.params.top_p = 1;
  d.params.repeat_penalty = 1;
  d.symbols = std::move(symbols);
  d.data = std::move(data);
  return d;
}

Result<std::vector<Bytes>> run(const OpDispatch& d) { return run_dispatch(cpu(), d, fixture_model()); }

// |got - want| within a few f32 roundings of the double result.
void expect_close(const std::vector<float>& got, const std::vector<double>& want, double rel, const std::string& what) {
  ASSERT_EQ(got.size(), want.size()) << what;
  double scale = 0;
  for (double w : want) scale = std::max(scale, std::abs(w));
  int reported = 0;
  for (size_t i = 0; i < got.size(); ++i) {
    const double tol = rel * std::abs(want[i]) + 1e-7 * scale;
    if (!(std::abs(got[i] - want[i]) <= tol) && reported++ < 5) {
      ADD_FAILURE() << what << " [" << i << "]: got " << got[i] << ", want " << want[i];
    }
  }
}

double gelu_tanh(double x) { return 0.5 * x * (1 + std::tanh(std::sqrt(2 / std::numbers::pi) * (x + 0.044715 * x * x * x))); }

TEST(CpuKernels, EveryRegistryKernelAndEntryHasACpuImplementation) {
  EXPECT_EQ(cpu_registry().kernels().size(), 56u);
  for (const auto& [id, k] : cpu_registry().kernels()) {
    auto impl = k.impls.find("cpu");
    ASSERT_NE(impl, k.impls.end()) << id;
    for (const auto& [entry, unused] : k.entries) EXPECT_TRUE(impl->second.entries.count(entry)) << id << "." << entry;
  }
  const DeviceInfo& info = cpu().info();
  EXPECT_EQ(info.backend, "cpu");
  EXPECT_EQ(info.features, (std::set<std::string>{"f16", "subgroups", "int_dot"}));
}

struct TypedKernel {
  GgmlType type;
  const char* suffix;
};
constexpr TypedKernel kTypes[] = {{GgmlType::F32, "f32"},   {GgmlType::F16, "f16"}, {GgmlType::Q8_0, "q8_0"},
                                  {GgmlType::Q4_K, "q4k"},  {GgmlType::Q5_K, "q5k"}, {GgmlType::Q6_K, "q6k"}};

TEST(CpuKernels, MatmulMatchesDequantizeThenNaiveMatmul) {
  for (const auto& tk : kTypes) {
    for (const char* entry : {"main", "gemm"}) {
      for (int64_t t : {1, 5}) {
        for (auto [k, n] : {std::pair<int64_t, int64_t>{kE, kF}, {kF, kE}}) {
          const std::string what = fmt::format("matmul_{}.{} T={} K={} N={}", tk.suffix, entry, t, k, n);
          const std::vector<float> x = randn(t * k, 1);
          const Bytes w = make_weight(tk.type, n, k, 2);
          auto out = run(dispatch(std::string("matmul_") + tk.suffix, entry, {{"T", t}, {"K", k}, {"N", n}},
                                  {to_bytes(x), w, nan_bytes(t * n)}));
          ASSERT_TRUE(out.ok()) << what << ": " << out.error().message;
          const std::vector<float> wf = dequantized(tk.type, w, n * k);
          std::vector<double> want(static_cast<size_t>(t * n));
          for (int64_t r = 0; r < t; ++r) {
            for (int64_t c = 0; c < n; ++c) {
              double acc = 0;
              for (int64_t i = 0; i < k; ++i) acc += static_cast<double>(x[r * k + i]) * wf[c * k + i];
              want[r * n + c] = acc;
            }
          }
          expect_close(floats((*out)[2]), want, 1e-6, what);
        }
      }
    }
  }
}

// The *_h16 forms (the prefill products on tensor cores) take x and the
// dequantized weights rounded to binary16, nearest even, and sum exactly.
TEST(CpuKernels, H16FormsRoundBothOperandsToBinary16) {
  const auto h = round_to_f16;
  for (const auto& tk : kTypes) {
    if (tk.type == GgmlType::F32) continue;  // no f32 tensor-core form
    const int64_t t = 3;
    std::vector<float> x = randn(t * kE, 7);
    x[1] = 1.0f + 0x1p-11f;       // a tie: rounds to 1 (even)
    x[2] = 1.0f + 3 * 0x1p-11f;   // a tie: rounds up to 1 + 2^-9
    std::vector<float> xh(x.size());
    for (size_t i = 0; i < x.size(); ++i) xh[i] = h(x[i]);
    ASSERT_EQ(xh[1], 1.0f);
    ASSERT_EQ(xh[2], 1.0f + 0x1p-9f);
    const Bytes w = make_weight(tk.type, kF, kE, 8), u = make_weight(tk.type, kF, kE, 9);
    std::vector<float> wf = dequantized(tk.type, w, kF * kE), uf = dequantized(tk.type, u, kF * kE);
    for (float& v : wf) v = h(v);
    for (float& v : uf) v = h(v);
    auto dot_h = [&](int64_t r, const std::vector<float>& m, int64_t row) {
      double acc = 0;
      for (int64_t i = 0; i < kE; ++i) acc += static_cast<double>(xh[r * kE + i]) * m[row * kE + i];
      return acc;
    };
    const std::string what = fmt::format("matmul_{}_h16 T={}", tk.suffix, t);
    auto out = run(dispatch(std::string("matmul_") + tk.suffix + "_h16", "gemm", {{"T", t}, {"K", kE}, {"N", kF}},
                            {to_bytes(x), w, nan_bytes(t * kF)}));
    ASSERT_TRUE(out.ok()) << what << ": " << out.error().message;
    std::vector<double> want(static_cast<size_t>(t * kF));
    for (int64_t r = 0; r < t; ++r) {
      for (int64_t n = 0; n < kF; ++n) want[r * kF + n] = dot_h(r, wf, n);
    }
    expect_close(floats((*out)[2]), want, 1e-6, what);
    if (tk.type == GgmlType::Q5_K) continue;  // the registry has no ffn_gate_up_q5k
    const std::string fwhat = fmt::format("ffn_gate_up_{}_h16 T={}", tk.suffix, t);
    auto fout = run(dispatch(std::string("ffn_gate_up_") + tk.suffix + "_h16", "gemm",
                             {{"T", t}, {"E", kE}, {"F", kF}}, {to_bytes(x), w, u, nan_bytes(t * kF)}));
    ASSERT_TRUE(fout.ok()) << fwhat << ": " << fout.error().message;
    for (int64_t r = 0; r < t; ++r) {
      for (int64_t f = 0; f < kF; ++f) want[r * kF + f] = gelu_tanh(dot_h(r, wf, f)) * dot_h(r, uf, f);
    }
    expect_close(floats((*fout)[3]), want, 1e-6, fwhat);
  }
}

TEST(CpuKernels, FfnGateUpIsGeluOfGateTimesUp) {
  for (const auto& tk : kTypes) {
    if (tk.type == GgmlType::Q5_K) continue;  // the registry has no ffn_gate_up_q5k
    for (const char* entry : {"main", "gemm"}) {
      const int64_t t = entry == std::string("main") ? 1 : 3;
      const std::string what = fmt::format("ffn_gate_up_{}.{} T={}", tk.suffix, entry, t);
      const std::vector<float> x = randn(t * kE, 3);
      const Bytes g = make_weight(tk.type, kF, kE, 4), u = make_weight(tk.type, kF, kE, 5);
      auto out = run(dispatch(std::string("ffn_gate_up_") + tk.suffix, entry, {{"T", t}, {"E", kE}, {"F", kF}},
                              {to_bytes(x), g, u, nan_bytes(t * kF)}));
      ASSERT_TRUE(out.ok()) << what << ": " << out.error().message;
      const std::vector<float> gf = dequantized(tk.type, g, kF * kE), uf = dequantized(tk.type, u, kF * kE);
      std::vector<double> want(static_cast<size_t>(t * kF));
      for (int64_t r = 0; r < t; ++r) {
        for (int64_t f = 0; f < kF; ++f) {
          double a = 0, b = 0;
          for (int64_t i = 0; i < kE; ++i) {
            a += static_cast<double>(x[r * kE + i]) * gf[f * kE + i];
            b += static_cast<double>(x[r * kE + i]) * uf[f * kE + i];
          }
          want[r * kF + f] = gelu_tanh(a) * b;
        }
      }
      expect_close(floats((*out)[3]), want, 1e-6, what);
    }
  }
}

// The 8-bit activations of the *_x8 kernels, computed here in integers: per
// block of 32, d = amax / 127 and q = round-half-even(x * (1 / d)); the product is
// sum over blocks of d * sum(q * w) (w dequantized).
struct X8 {
  std::vector<int> q;
  std::vector<float> d;
};

X8 quantize_x8(const std::vector<float>& x) {
  X8 out;
  for (size_t b = 0; b < x.size(); b += 32) {
    float amax = 0;
    for (size_t i = b; i < b + 32; ++i) amax = std::max(amax, std::fabs(x[i]));
    const float d = amax / 127.0f;
    out.d.push_back(d);
    for (size_t i = b; i < b + 32; ++i) {
      // Half-even by hand: the fraction 0.5 goes to the even neighbour.
      const float v = d < std::numeric_limits<float>::min() ? 0.0f : x[i] * (1.0f / d);
      const float fl = std::floor(v);
      int q = static_cast<int>(fl);
      if (v - fl > 0.5f || (v - fl == 0.5f && q % 2 != 0)) ++q;
      out.q.push_back(std::clamp(q, -127, 127));
    }
  }
  return out;
}

double dot_x8(const X8& x, int64_t offset, const float* w, int64_t k) {
  double acc = 0;
  for (int64_t b = 0; b < k / 32; ++b) {
    double s = 0;
    for (int64_t i = 32 * b; i < 32 * b + 32; ++i) s += static_cast<double>(x.q[offset + i]) * w[i];
    acc += static_cast<double>(x.d[(offset + 32 * b) / 32]) * s;
  }
  return acc;
}

TEST(CpuKernels, X8KernelsMultiplyActivationsQuantizedToEightBits) {
  for (const auto& tk : kTypes) {
    if (tk.type != GgmlType::Q4_K && tk.type != GgmlType::Q6_K) continue;
    for (int64_t t : {1, 3}) {
      std::vector<float> x = randn(t * kF, 7);
      // Ties of x / d (d = 1 in block 0): 2.5 -> 2, 3.5 -> 4, -2.5 -> -2; a zero block.
      x[0] = 127.0f, x[1] = 2.5f, x[2] = 3.5f, x[3] = -2.5f;
      for (int i = 32; i < 64; ++i) x[i] = 0.0f;
      // A block of subnormal values (1 / d would overflow): quantized to zeros, no NaN.
      for (int i = 64; i < 96; ++i) x[i] = (i % 2 ? 1.0f : -1.0f) * 1e-40f;
      const X8 x8 = quantize_x8(x);
      ASSERT_EQ(x8.q[1], 2);
      ASSERT_EQ(x8.q[2], 4);
      ASSERT_EQ(x8.q[3], -2);
      for (int i = 64; i < 96; ++i) ASSERT_EQ(x8.q[i], 0) << i;
      // matmul: K = kF (three Q4_K blocks per row), N = kE.
      const std::string what = fmt::format("matmul_{}_x8 T={}", tk.suffix, t);
      const Bytes w = make_weight(tk.type, kE, kF, 8);
      auto out = run(dispatch(std::string("matmul_") + tk.suffix + "_x8", "main", {{"T", t}, {"K", kF}, {"N", kE}},
                              {to_bytes(x), w, nan_bytes(t * kE)}));
      ASSERT_TRUE(out.ok()) << what << ": " << out.error().message;
      const std::vector<float> wf = dequantized(tk.type, w, kE * kF);
      std::vector<double> want(static_cast<size_t>(t * kE));
      for (int64_t r = 0; r < t; ++r) {
        for (int64_t n = 0; n < kE; ++n) want[r * kE + n] = dot_x8(x8, r * kF, wf.data() + n * kF, kF);
      }
      expect_close(floats((*out)[2]), want, 1e-6, what);
      // Against the f32 product, on Gaussian activations (no planted block), the
      // 8-bit activations cost well under 1 % (relative L2).
      const std::vector<float> xg = randn(t * kF, 11);
      auto gout = run(dispatch(std::string("matmul_") + tk.suffix + "_x8", "main", {{"T", t}, {"K", kF}, {"N", kE}},
                               {to_bytes(xg), w, nan_bytes(t * kE)}));
      ASSERT_TRUE(gout.ok()) << what << ": " << gout.error().message;
      const std::vector<float> got = floats((*gout)[2]);
      double err = 0, norm = 0;
      for (int64_t r = 0; r < t; ++r) {
        for (int64_t n = 0; n < kE; ++n) {
          double exact = 0;
          for (int64_t i = 0; i < kF; ++i) exact += static_cast<double>(xg[r * kF + i]) * wf[n * kF + i];
          err += (got[r * kE + n] - exact) * (got[r * kE + n] - exact);
          norm += exact * exact;
        }
      }
      EXPECT_LT(std::sqrt(err / norm), 1e-2) << what << " against f32 activations";

      // ffn_gate_up: E = kF, F = kE.
      const std::string fwhat = fmt::format("ffn_gate_up_{}_x8 T={}", tk.suffix, t);
      const Bytes g = make_weight(tk.type, kE, kF, 9), u = make_weight(tk.type, kE, kF, 10);
      auto fout = run(dispatch(std::string("ffn_gate_up_") + tk.suffix + "_x8", "main",
                               {{"T", t}, {"E", kF}, {"F", kE}}, {to_bytes(x), g, u, nan_bytes(t * kE)}));
      ASSERT_TRUE(fout.ok()) << fwhat << ": " << fout.error().message;
      const std::vector<float> gf = dequantized(tk.type, g, kE * kF), uf = dequantized(tk.type, u, kE * kF);
      std::vector<double> fwant(static_cast<size_t>(t * kE));
      for (int64_t r = 0; r < t; ++r) {
        for (int64_t f = 0; f < kE; ++f) {
          fwant[r * kE + f] = gelu_tanh(dot_x8(x8, r * kF, gf.data() + f * kF, kF)) *
                              dot_x8(x8, r * kF, uf.data() + f * kF, kF);
        }
      }
      expect_close(floats((*fout)[3]), fwant, 1e-6, fwhat);
    }
  }
}

TEST(CpuKernels, EmbedLooksUpScaledRowsAndRejectsIdsOutsideTheTable) {
  for (const auto& tk : kTypes) {
    const std::string kernel = std::string("embed_") + tk.suffix;
    const std::vector<int32_t> ids{0, 4095, 17, 17, 2048};
    const int64_t t = static_cast<int64_t>(ids.size());
    const Bytes table = make_weight(tk.type, kV, kE, 6);
    auto out = run(dispatch(kernel, "main", {{"T", t}, {"E", kE}, {"V", kV}}, {to_bytes(ids), table, nan_bytes(t * kE)}));
    ASSERT_TRUE(out.ok()) << kernel << ": " << out.error().message;
    const std::vector<float> all = dequantized(tk.type, table, kV * kE);
    std::vector<double> want;
    for (int32_t id : ids) {
      for (int64_t i = 0; i < kE; ++i) want.push_back(16.0 * all[id * kE + i]);
    }
    expect_close(floats((*out)[2]), want, 1e-7, kernel);

    const std::vector<int32_t> bad{3, kV};
    auto err = run(dispatch(kernel, "main", {{"T", 2}, {"E", kE}, {"V", kV}}, {to_bytes(bad), table, nan_bytes(2 * kE)}));
    ASSERT_FALSE(err.ok()) << kernel;
    EXPECT_NE(err.error().message.find("ids[1] = 4096"), std::string::npos) << err.error().message;
  }
}

TEST(CpuKernels, RmsnormMainLastRowAndResidual) {
  const int64_t t = 4;
  const std::vector<float> x = randn(t * kE, 7, 0, 3);
  const std::vector<float> h = randn(t * kE, 8);
  const std::vector<float> w = randn(kE, 9, 1, 0.3);
  auto norm_row = [&](int64_t r, int64_t i) {
    double ss = 0;
    for (int64_t j = 0; j < kE; ++j) ss += static_cast<double>(x[r * kE + j]) * x[r * kE + j];
    return x[r * kE + i] / std::sqrt(ss / kE + 1e-6) * w[i];
  };
  std::vector<double> want_all, want_last, want_res;
  for (int64_t r = 0; r < t; ++r) {
    for (int64_t i = 0; i < kE; ++i) {
      want_all.push_back(norm_row(r, i));
      want_res.push_back(h[r * kE + i] + norm_row(r, i));
      if (r == t - 1) want_last.push_back(norm_row(r, i));
    }
  }
  const Symbols s{{"T", t}, {"N", kE}};
  auto all = run(dispatch("rmsnorm", "main", s, {to_bytes(x), to_bytes(w), nan_bytes(t * kE)}));
  ASSERT_TRUE(all.ok()) << all.error().message;
  expect_close(floats((*all)[2]), want_all, 1e-6, "rmsnorm.main");
  auto last = run(dispatch("rmsnorm", "last_row", s, {to_bytes(x), to_bytes(w), nan_bytes(kE)}));
  ASSERT_TRUE(last.ok()) << last.error().message;
  expect_close(floats((*last)[2]), want_last, 1e-6, "rmsnorm.last_row");
  // In place, as the executor binds it: y aliases x.
  OpDispatch in_place = dispatch("rmsnorm", "main", s, {to_bytes(x), to_bytes(w), {}});
  in_place.in_place = true;
  auto ip = run(in_place);
  ASSERT_TRUE(ip.ok()) << ip.error().message;
  expect_close(floats((*ip)[2]), want_all, 1e-6, "rmsnorm.main in place");
  OpDispatch res = dispatch("rmsnorm_residual", "main", s, {to_bytes(x), to_bytes(h), to_bytes(w), {}});
  res.in_place = true;  // y aliases h
  auto r = run(res);
  ASSERT_TRUE(r.ok()) << r.error().message;
  expect_close(floats((*r)[3]), want_res, 1e-6, "rmsnorm_residual in place");
}

TEST(CpuKernels, AddGeluMulAndSoftcapFollowTheirFormulas) {
  const int64_t t = 3;
  const std::vector<float> a = randn(t * kF, 10, 0, 2), b = randn(t * kF, 11, 0, 2);
  std::vector<double> want_add, want_gelu;
  for (int64_t i = 0; i < t * kF; ++i) {
    want_add.push_back(static_cast<double>(a[i]) + b[i]);
    want_gelu.push_back(gelu_tanh(a[i]) * b[i]);
  }
  auto add = run(dispatch("add", "main", {{"T", t}, {"N", kF}}, {to_bytes(a), to_bytes(b), nan_bytes(t * kF)}));
  ASSERT_TRUE(add.ok()) << add.error().message;
  expect_close(floats((*add)[2]), want_add, 1e-7, "add");
  auto gm = run(dispatch("gelu_mul", "main", {{"T", t}, {"F", kF}}, {to_bytes(a), to_bytes(b), nan_bytes(t * kF)}));
  ASSERT_TRUE(gm.ok()) << gm.error().message;
  expect_close(floats((*gm)[2]), want_gelu, 1e-6, "gelu_mul");
  // gelu_tanh at known points: gelu(0) = 0, gelu(x) -> x for large x, gelu(-x) -> 0.
  const std::vector<float> g{0.0f, 10.0f, -10.0f, 1.0f}, one(4, 1.0f);
  auto known = run(dispatch("gelu_mul", "main", {{"T", 1}, {"F", 4}}, {to_bytes(g), to_bytes(one), nan_bytes(4)}));
  ASSERT_TRUE(known.ok()) << known.error().message;
  const std::vector<float> k = floats((*known)[2]);
  EXPECT_EQ(k[0], 0.0f);
  EXPECT_NEAR(k[1], 10.0f, 1e-6);
  EXPECT_NEAR(k[2], 0.0f, 1e-6);
  EXPECT_NEAR(k[3], 0.841192f, 1e-6);  // 0.5 (1 + tanh(sqrt(2/pi) 1.044715))

  const std::vector<float> logits = randn(kV, 12, 0, 40);
  std::vector<double> want_cap;
  for (float l : logits) want_cap.push_back(30.0 * std::tanh(l / 30.0));
  auto cap = run(dispatch("softcap", "main", {{"T", 1}, {"N", kV}}, {to_bytes(logits), nan_bytes(kV)}));
  ASSERT_TRUE(cap.ok()) << cap.error().message;
  expect_close(floats((*cap)[1]), want_cap, 1e-6, "softcap");
  for (float y : floats((*cap)[1])) EXPECT_LE(std::abs(y), 30.0f);
}

// theta = pos * pow(THETA, -2i/D) in f32, as docs/kernels.md defines it.
double rope_theta(int32_t pos, int64_t i, int64_t d, float base) {
  const float inv = std::pow(base, -2.0f * static_cast<float>(i) / static_cast<float>(d));
  return static_cast<double>(static_cast<float>(pos) * inv);
}

TEST(CpuKernels, RopeNeoxRotatesHalfSplitPairs) {
  const int64_t t = 3, c = kHeads * kHeadDim;
  const std::vector<int32_t> pos{0, 7, 1000};
  const std::vector<float> x = randn(t * c, 13);
  auto out = run(dispatch("rope_neox", "main", {{"T", t}, {"C", c}}, {to_bytes(x), to_bytes(pos), nan_bytes(t * c)}));
  ASSERT_TRUE(out.ok()) << out.error().message;
  const std::vector<float> y = floats((*out)[2]);
  std::vector<double> want(static_cast<size_t>(t * c));
  const int64_t half = kHeadDim / 2;
  for (int64_t r = 0; r < t; ++r) {
    for (int64_t h = 0; h < kHeads; ++h) {
      for (int64_t i = 0; i < half; ++i) {
        const double th = rope_theta(pos[r], i, kHeadDim, 10000.0f);
        const size_t a = static_cast<size_t>(r * c + h * kHeadDim + i), b = a + half;
        want[a] = x[a] * std::cos(th) - x[b] * std::sin(th);
        want[b] = x[a] * std::sin(th) + x[b] * std::cos(th);
      }
    }
  }
  expect_close(y, want, 1e-6, "rope_neox");
  // Position 0 is the identity.
  for (int64_t i = 0; i < c; ++i) EXPECT_EQ(y[i], x[i]) << i;
  // The unit vector e_0 of a head at position 1 turns into (cos 1, sin 1) on (0, D/2).
  std::vector<float> e0(static_cast<size_t>(kHeadDim), 0.0f);
  e0[0] = 1.0f;
  const std::vector<int32_t> one{1};
  auto unit = run(dispatch("rope_neox", "main", {{"T", 1}, {"C", kHeadDim}},
                           {to_bytes(e0), to_bytes(one), nan_bytes(kHeadDim)}));
  ASSERT_TRUE(unit.ok()) << unit.error().message;
  const std::vector<float> u = floats((*unit)[2]);
  EXPECT_NEAR(u[0], std::cos(1.0), 1e-7);
  EXPECT_NEAR(u[half], std::sin(1.0), 1e-7);
  EXPECT_EQ(u[1], 0.0f);
}

// The attention of docs/kernels.md written out naively in double.
std::vector<double> naive_attention(const std::vector<float>& q, const std::vector<float>& k,
                                    const std::vector<float>& v, const std::vector<float>& k_cache,
                                    const std::vector<float>& v_cache, int64_t t, int64_t pos0, int64_t window,
                                    double scale, double softcap) {
  const int64_t qc = kHeads * kHeadDim, kc = kKvHeads * kHeadDim;
  std::vector<double> o(static_cast<size_t>(t * qc));
  for (int64_t r = 0; r < t; ++r) {
    const int64_t p = pos0 + r;
    for (int64_t h = 0; h < kHeads; ++h) {
      const int64_t kvh = h / (kHeads / kKvHeads);
      std::vector<int64_t> keys;
      for (int64_t j = 0; j <= p; ++j) {
        if (window > 0 && p - j >= window) continue;
        keys.push_back(j);
      }
      auto krow = [&](int64_t j) { return j < pos0 ? &k_cache[j * kc + kvh * kHeadDim] : &k[(j - pos0) * kc + kvh * kHeadDim]; };
      auto vrow = [&](int64_t j) { return j < pos0 ? &v_cache[j * kc + kvh * kHeadDim] : &v[(j - pos0) * kc + kvh * kHeadDim]; };
      std::vector<double> s;
      for (int64_t j : keys) {
        double dot = 0;
        for (int64_t e = 0; e < kHeadDim; ++e) dot += static_cast<double>(q[r * qc + h * kHeadDim + e]) * krow(j)[e];
        double sc = scale * dot;
        if (softcap > 0) sc = softcap * std::tanh(sc / softcap);
        s.push_back(sc);
      }
      const double mx = *std::max_element(s.begin(), s.end());
      double sum = 0;
      for (double& x : s) sum += (x = std::exp(x - mx));
      for (int64_t e = 0; e < kHeadDim; ++e) {
        double acc = 0;
        for (size_t i = 0; i < keys.size(); ++i) acc += s[i] / sum * vrow(keys[i])[e];
        o[r * qc + h * kHeadDim + e] = acc;
      }
    }
  }
  return o;
}

TEST(CpuKernels, AttentionMatchesNaiveSoftmaxWithWindowAndFillsTheCaches) {
  const int64_t qc = kHeads * kHeadDim, kc = kKvHeads * kHeadDim, ctx = 96;
  struct Case {
    int64_t t, pos0, window;
  };
  for (const Case cs : {Case{1, 0, 0}, Case{1, 40, 0}, Case{6, 0, 0}, Case{5, 30, 0}, Case{5, 30, 8}, Case{1, 90, 64},
                        Case{16, 70, 64}}) {
    const std::string what = fmt::format("attention T={} pos0={} window={}", cs.t, cs.pos0, cs.window);
    const std::vector<float> q = randn(cs.t * qc, 20, 0, 2), k = randn(cs.t * kc, 21, 0, 2), v = randn(cs.t * kc, 22);
    const std::vector<float> k_cache = randn(ctx * kc, 23, 0, 2), v_cache = randn(ctx * kc, 24);
    OpDispatch d = dispatch("attention", "main", {{"T", cs.t}, {"QC", qc}, {"KC", kc}, {"CTX", ctx}},
                            {to_bytes(q), to_bytes(k), to_bytes(v), nan_bytes(cs.t * qc), to_bytes(k_cache),
                             to_bytes(v_cache)});
    d.params.pos0 = static_cast<uint32_t>(cs.pos0);
    d.params.kv_len = static_cast<uint32_t>(cs.pos0 + cs.t);
    d.step.window = static_cast<uint32_t>(cs.window);
    auto out = run(d);
    ASSERT_TRUE(out.ok()) << what << ": " << out.error().message;
    // The cache rows at and after pos0 hold garbage: the batch's own keys must come from k, v.
    expect_close(floats((*out)[3]), naive_attention(q, k, v, k_cache, v_cache, cs.t, cs.pos0, cs.window, 0.125, 50),
                 1e-6, what);
    const std::vector<float> kc_out = floats((*out)[4]), vc_out = floats((*out)[5]);
    for (int64_t j = 0; j < ctx; ++j) {
      const bool written = j >= cs.pos0 && j < cs.pos0 + cs.t;
      for (int64_t e = 0; e < kc; e += 37) {
        const size_t at = static_cast<size_t>(j * kc + e);
        EXPECT_EQ(kc_out[at], written ? k[(j - cs.pos0) * kc + e] : k_cache[at]) << what << " k_cache row " << j;
        EXPECT_EQ(vc_out[at], written ? v[(j - cs.pos0) * kc + e] : v_cache[at]) << what << " v_cache row " << j;
      }
    }
  }
}

// attention_h16: attention on binary16-rounded q, k, v and cache rows; the caches receive the f32 rows.
TEST(CpuKernels, AttentionH16IsAttentionOnBinary16Operands) {
  const int64_t qc = kHeads * kHeadDim, kc = kKvHeads * kHeadDim, ctx = 96, t = 9, pos0 = 30, window = 16;
  const std::vector<float> q = randn(t * qc, 40, 0, 2), k = randn(t * kc, 41, 0, 2), v = randn(t * kc, 42);
  const std::vector<float> k_cache = randn(ctx * kc, 43, 0, 2), v_cache = randn(ctx * kc, 44);
  auto h = [](std::vector<float> x) {
    for (float& e : x) e = round_to_f16(e);
    return x;
  };
  OpDispatch d = dispatch("attention_h16", "main", {{"T", t}, {"QC", qc}, {"KC", kc}, {"CTX", ctx}},
                          {to_bytes(q), to_bytes(k), to_bytes(v), nan_bytes(t * qc), to_bytes(k_cache),
                           to_bytes(v_cache)});
  d.params.pos0 = static_cast<uint32_t>(pos0);
  d.step.window = static_cast<uint32_t>(window);
  auto out = run(d);
  ASSERT_TRUE(out.ok()) << out.error().message;
  expect_close(floats((*out)[3]), naive_attention(h(q), h(k), h(v), h(k_cache), h(v_cache), t, pos0, window, 0.125, 50),
               1e-6, "attention_h16");
  const std::vector<float> kc_out = floats((*out)[4]);
  for (int64_t e = 0; e < t * kc; e += 29) EXPECT_EQ(kc_out[static_cast<size_t>(pos0 * kc + e)], k[e]) << e;
}

TEST(CpuKernels, AttentionKnownAnswers) {
  const int64_t qc = kHeads * kHeadDim, kc = kKvHeads * kHeadDim, ctx = 16;
  const std::vector<float> q = randn(4 * qc, 30), k = randn(4 * kc, 31), v = randn(4 * kc, 32);
  const std::vector<float> k_cache = randn(ctx * kc, 33), v_cache = randn(ctx * kc, 34);
  auto run_attn = [&](int64_t t, int64_t pos0, int64_t window) {
    OpDispatch d = dispatch("attention", "main", {{"T", t}, {"QC", qc}, {"KC", kc}, {"CTX", ctx}},
                            {to_bytes(q), to_bytes(k), to_bytes(v), nan_bytes(t * qc), to_bytes(k_cache),
                             to_bytes(v_cache)});
    d.params.pos0 = static_cast<uint32_t>(pos0);
    d.step.window = static_cast<uint32_t>(window);
    return run(d);
  };
  // A window of 1 (or the first position) sees only its own key: o = v of the
  // row's KV head, heads 0,1 -> KV head 0 and heads 2,3 -> KV head 1.
  for (auto [t, pos0, window] : {std::tuple<int64_t, int64_t, int64_t>{1, 0, 0}, {4, 5, 1}}) {
    auto out = run_attn(t, pos0, window);
    ASSERT_TRUE(out.ok()) << out.error().message;
    const std::vector<float> o = floats((*out)[3]);
    for (int64_t r = 0; r < t; ++r) {
      for (int64_t h = 0; h < kHeads; ++h) {
        for (int64_t e = 0; e < kHeadDim; ++e) {
          EXPECT_NEAR(o[r * qc + h * kHeadDim + e], v[r * kc + (h / 2) * kHeadDim + e], 1e-6)
              << "T=" << t << " row " << r << " head " << h;
        }
      }
    }
  }
  // Zero queries give uniform weights: o is the mean of v over the window.
  const std::vector<float> zq(static_cast<size_t>(qc), 0.0f);
  OpDispatch d = dispatch("attention", "main", {{"T", 1}, {"QC", qc}, {"KC", kc}, {"CTX", ctx}},
                          {to_bytes(zq), to_bytes(k), to_bytes(v), nan_bytes(qc), to_bytes(k_cache), to_bytes(v_cache)});
  d.params.pos0 = 9;
  d.step.window = 3;  // positions 7, 8 from the cache and 9 from v
  auto out = run(d);
  ASSERT_TRUE(out.ok()) << out.error().message;
  const std::vector<float> o = floats((*out)[3]);
  for (int64_t h = 0; h < kHeads; ++h) {
    for (int64_t e = 0; e < kHeadDim; ++e) {
      const int64_t off = (h / 2) * kHeadDim + e;
      const double mean = (static_cast<double>(v_cache[7 * kc + off]) + v_cache[8 * kc + off] + v[off]) / 3;
      EXPECT_NEAR(o[h * kHeadDim + e], mean, 1e-6) << "head " << h << " dim " << e;
    }
  }
  // A batch that runs past the cache is an error, not an overrun.
  auto err = run_attn(4, ctx - 2, 0);
  ASSERT_FALSE(err.ok());
  EXPECT_NE(err.error().message.find("cache rows"), std::string::npos) << err.error().message;
}

// The fused kernels are exactly their parts in sequence: each part's output
// is rounded to f32 where the unfused path stores it, so the results are
// bit-identical.
// The *_x8 forms (Q4_K and Q6_K) are the same compositions over matmul_*_x8
// and ffn_gate_up_*_x8.
std::vector<std::string> fused_forms(const TypedKernel& tk) {
  if (tk.type == GgmlType::Q4_K || tk.type == GgmlType::Q6_K) return {"", "_x8"};
  return {""};
}

TEST(CpuKernels, MatmulNormIsRmsnormThenMatmul) {
  for (const auto& tk : kTypes) {
    for (const std::string& form : fused_forms(tk)) {
      for (int64_t t : {1, 3}) {
        const int64_t k = kE, n = kKvHeads * kHeadDim + 3;
        const std::string what = fmt::format("matmul_norm_{}{} T={}", tk.suffix, form, t);
        const std::vector<float> x = randn(t * k, 40, 0, 3), g = randn(k, 41, 1, 0.2);
        const Bytes w = make_weight(tk.type, n, k, 42);
        auto fused = run(dispatch(std::string("matmul_norm_") + tk.suffix + form, "main",
                                  {{"T", t}, {"K", k}, {"N", n}}, {to_bytes(x), w, to_bytes(g), nan_bytes(t * n)}));
        ASSERT_TRUE(fused.ok()) << what << ": " << fused.error().message;
        auto normed =
            run(dispatch("rmsnorm", "main", {{"T", t}, {"N", k}}, {to_bytes(x), to_bytes(g), nan_bytes(t * k)}));
        ASSERT_TRUE(normed.ok()) << normed.error().message;
        auto parts = run(dispatch(std::string("matmul_") + tk.suffix + form, "main", {{"T", t}, {"K", k}, {"N", n}},
                                  {(*normed)[2], w, nan_bytes(t * n)}));
        ASSERT_TRUE(parts.ok()) << parts.error().message;
        EXPECT_EQ(floats((*fused)[3]), floats((*parts)[2])) << what;
      }
    }
  }
}

TEST(CpuKernels, FfnGateUpResnormIsResidualNormThenNormThenFfn) {
  for (const auto& tk : kTypes) {
    if (tk.type == GgmlType::Q5_K) continue;  // no ffn_gate_up_q5k
    for (const std::string& form : fused_forms(tk)) {
      for (int64_t t : {1, 2}) {
        const std::string what = fmt::format("ffn_gate_up_resnorm_{}{} T={}", tk.suffix, form, t);
        const std::vector<float> x = randn(t * kE, 50, 0, 4), h = randn(t * kE, 51);
        const std::vector<float> g_post = randn(kE, 52, 1, 0.2), g_pre = randn(kE, 53, 1, 0.2);
        const Bytes gate = make_weight(tk.type, kF, kE, 54), up = make_weight(tk.type, kF, kE, 55);
        auto fused = run(dispatch(std::string("ffn_gate_up_resnorm_") + tk.suffix + form, "main",
                                  {{"T", t}, {"E", kE}, {"F", kF}},
                                  {to_bytes(x), to_bytes(h), gate, up, to_bytes(g_post), to_bytes(g_pre),
                                   nan_bytes(t * kE), nan_bytes(t * kF)}));
        ASSERT_TRUE(fused.ok()) << what << ": " << fused.error().message;
        auto res = run(dispatch("rmsnorm_residual", "main", {{"T", t}, {"N", kE}},
                                {to_bytes(x), to_bytes(h), to_bytes(g_post), nan_bytes(t * kE)}));
        ASSERT_TRUE(res.ok()) << res.error().message;
        auto normed =
            run(dispatch("rmsnorm", "main", {{"T", t}, {"N", kE}}, {(*res)[3], to_bytes(g_pre), nan_bytes(t * kE)}));
        ASSERT_TRUE(normed.ok()) << normed.error().message;
        auto ffn = run(dispatch(std::string("ffn_gate_up_") + tk.suffix + form, "main",
                                {{"T", t}, {"E", kE}, {"F", kF}}, {(*normed)[2], gate, up, nan_bytes(t * kF)}));
        ASSERT_TRUE(ffn.ok()) << ffn.error().message;
        EXPECT_EQ(floats((*fused)[6]), floats((*res)[3])) << what << " h_out";
        EXPECT_EQ(floats((*fused)[7]), floats((*ffn)[3])) << what << " y";
      }
    }
  }
}

TEST(CpuKernels, AttentionRopeIsRopeThenAttention) {
  const int64_t qc = kHeads * kHeadDim, kc = kKvHeads * kHeadDim, ctx = 96;
  struct Case {
    int64_t t, pos0, window;
  };
  for (const Case cs : {Case{1, 0, 0}, Case{1, 40, 0}, Case{5, 30, 8}, Case{16, 70, 64}}) {
    const std::string what = fmt::format("attention_rope T={} pos0={} window={}", cs.t, cs.pos0, cs.window);
    const std::vector<float> q = randn(cs.t * qc, 60, 0, 2), k = randn(cs.t * kc, 61, 0, 2), v = randn(cs.t * kc, 62);
    const std::vector<float> k_cache = randn(ctx * kc, 63, 0, 2), v_cache = randn(ctx * kc, 64);
    std::vector<int32_t> pos(static_cast<size_t>(cs.t));
    for (int64_t i = 0; i < cs.t; ++i) pos[static_cast<size_t>(i)] = static_cast<int32_t>(cs.pos0 + i);
    const Symbols sym = {{"T", cs.t}, {"QC", qc}, {"KC", kc}, {"CTX", ctx}};
    auto with_pos = [&](OpDispatch d) {
      d.params.pos0 = static_cast<uint32_t>(cs.pos0);
      d.params.kv_len = static_cast<uint32_t>(cs.pos0 + cs.t);
      d.step.window = static_cast<uint32_t>(cs.window);
      return d;
    };
    auto fused = run(with_pos(dispatch("attention_rope", "main", sym,
                                       {to_bytes(q), to_bytes(k), to_bytes(v), to_bytes(pos), nan_bytes(cs.t * qc),
                                        to_bytes(k_cache), to_bytes(v_cache)})));
    ASSERT_TRUE(fused.ok()) << what << ": " << fused.error().message;
    auto rq = run(dispatch("rope_neox", "main", {{"T", cs.t}, {"C", qc}}, {to_bytes(q), to_bytes(pos), nan_bytes(cs.t * qc)}));
    auto rk = run(dispatch("rope_neox", "main", {{"T", cs.t}, {"C", kc}}, {to_bytes(k), to_bytes(pos), nan_bytes(cs.t * kc)}));
    ASSERT_TRUE(rq.ok() && rk.ok());
    auto parts = run(with_pos(dispatch("attention", "main", sym,
                                       {(*rq)[2], (*rk)[2], to_bytes(v), nan_bytes(cs.t * qc), to_bytes(k_cache),
                                        to_bytes(v_cache)})));
    ASSERT_TRUE(parts.ok()) << parts.error().message;
    EXPECT_EQ(floats((*fused)[4]), floats((*parts)[3])) << what << " o";
    EXPECT_EQ(floats((*fused)[5]), floats((*parts)[4])) << what << " k_cache";
    EXPECT_EQ(floats((*fused)[6]), floats((*parts)[5])) << what << " v_cache";
  }
}

TEST(CpuKernels, RepeatPenaltyAppliesOncePerDistinctId) {
  const int64_t v = 8, h = 6;
  const std::vector<float> x{2.0f, -2.0f, 1.5f, -0.5f, 3.0f, 0.25f, -1.0f, 4.0f};
  const std::vector<int32_t> history{1, 0, 1, 1, 5, 7};
  OpDispatch d = dispatch("repeat_penalty", "main", {{"V", v}, {"H", h}}, {to_bytes(x), to_bytes(history), nan_bytes(v)});
  d.params.repeat_penalty = 2.0f;
  d.params.n_history = 5;  // 7 is beyond n_history
  auto out = run(d);
  ASSERT_TRUE(out.ok()) << out.error().message;
  EXPECT_EQ(floats((*out)[2]), (std::vector<float>{1.0f, -4.0f, 1.5f, -0.5f, 3.0f, 0.125f, -1.0f, 4.0f}));
  d.params.n_history = 7;
  EXPECT_FALSE(run(d).ok());
}

// Runs sample.<entry> on logits with the given sampling parameters.
int32_t sample(const std::vector<float>& logits, const std::string& entry, float temperature, uint32_t top_k,
               float top_p, float min_p, float rand_u) {
  OpDispatch d = dispatch("sample", entry, {{"V", static_cast<int64_t>(logits.size())}},
                          {to_bytes(logits), to_bytes(std::vector<int32_t>{-1})});
  d.params.temperature = temperature;
  d.params.top_k = top_k;
  d.params.top_p = top_p;
  d.params.min_p = min_p;
  d.params.rand_u = rand_u;
  auto out = run(d);
  if (!out.ok()) {
    ADD_FAILURE() << "sample." << entry << ": " << out.error().message;
    return -1;
  }
  return int_at((*out)[1], 0);
}

TEST(CpuKernels, ArgmaxTakesTheLowestIndexOnTies) {
  EXPECT_EQ(sample({1.0f, 5.0f, 2.0f, 5.0f}, "argmax", 0, 0, 1, 0, 0), 1);
  EXPECT_EQ(sample({-3.0f, -1.0f, -1.0f}, "argmax", 0, 0, 1, 0, 0), 1);
  EXPECT_EQ(sample({7.0f}, "argmax", 0, 0, 1, 0, 0), 0);
  std::vector<float> big = randn(kV, 40);
  big[3000] = 100.0f;
  EXPECT_EQ(sample(big, "argmax", 0, 0, 1, 0, 0), 3000);
  // The sample entry is greedy when temperature <= 0, whatever the draw.
  EXPECT_EQ(sample({1.0f, 5.0f, 2.0f, 5.0f}, "sample", 0, 0, 1, 0, 0.99f), 1);
  EXPECT_EQ(sample({1.0f, 5.0f, 2.0f, 5.0f}, "sample", -1, 3, 0.5f, 0.1f, 0.5f), 1);
}

TEST(CpuKernels, SampleTopKOneIsGreedy) {
  const std::vector<float> logits = randn(kV, 41, 0, 3);
  const int32_t greedy = sample(logits, "argmax", 0, 0, 1, 0, 0);
  for (float u : {0.0f, 0.3f, 0.77f, 0.999f}) EXPECT_EQ(sample(logits, "sample", 1.0f, 1, 1, 0, u), greedy) << u;
}

TEST(CpuKernels, SampleDrawsByCumulativeMassInDescendingOrder) {
  // logits [0, ln 3]: p = [1/4, 3/4]; the order is token 1 then token 0.
  const std::vector<float> two{0.0f, static_cast<float>(std::log(3.0))};
  EXPECT_EQ(sample(two, "sample", 1, 0, 1, 0, 0.0f), 1);
  EXPECT_EQ(sample(two, "sample", 1, 0, 1, 0, 0.74f), 1);
  EXPECT_EQ(sample(two, "sample", 1, 0, 1, 0, 0.76f), 0);
  // Temperature 2: p ∝ [1, sqrt 3], token 1 up to 0.634.
  EXPECT_EQ(sample(two, "sample", 2, 0, 1, 0, 0.62f), 1);
  EXPECT_EQ(sample(two, "sample", 2, 0, 1, 0, 0.65f), 0);
  // The frequency of each token over an even grid of draws is its probability.
  const std::vector<float> logits{0.5f, -1.0f, 2.0f, 0.0f, 1.0f, -3.0f};
  std::vector<double> p;
  double sum = 0;
  for (float l : logits) sum += p.emplace_back(std::exp(l / 0.7));
  std::vector<int> count(logits.size(), 0);
  const int n = 20000;
  for (int i = 0; i < n; ++i) ++count[sample(logits, "sample", 0.7f, 0, 1, 0, (i + 0.5f) / n)];
  for (size_t i = 0; i < logits.size(); ++i) EXPECT_NEAR(count[i] / double(n), p[i] / sum, 1e-3) << "token " << i;
}

TEST(CpuKernels, SampleTopKKeepsTiesAtTheKthLogit) {
  // top_k 1 keeps both logits equal to the largest: order by index, 1 then 2.
  const std::vector<float> tied{1.0f, 3.0f, 3.0f, 0.0f};
  EXPECT_EQ(sample(tied, "sample", 1, 1, 1, 0, 0.3f), 1);
  EXPECT_EQ(sample(tied, "sample", 1, 1, 1, 0, 0.6f), 2);
  // top_k 2 of [2, 1, 0, -5]: tokens 0 and 1, masses 1 and e^-1.
  const std::vector<float> l{2.0f, 1.0f, 0.0f, -5.0f};
  EXPECT_EQ(sample(l, "sample", 1, 2, 1, 0, 0.999f), 1);
  EXPECT_EQ(sample(l, "sample", 1, 3, 1, 0, 0.999f), 2);
}

TEST(CpuKernels, SampleMinPAndTopPFilter) {
  // p ∝ [1, e^-1 = .368, e^-2 = .135, e^-7 = .0009] (sum 1.504).
  const std::vector<float> l{2.0f, 1.0f, 0.0f, -5.0f};
  // No filter: r = 0.99 * 1.504 = 1.489 lies in token 2's mass (1.368, 1.503].
  EXPECT_EQ(sample(l, "sample", 1, 0, 1, 0, 0.99f), 2);
  EXPECT_EQ(sample(l, "sample", 1, 0, 1, 0, 0.9999f), 3);
  // min_p 0.2 drops tokens 2 and 3 (0.135 < 0.2): r = 0.99 * 1.368 falls in token 1.
  EXPECT_EQ(sample(l, "sample", 1, 0, 1, 0.2f, 0.99f), 1);
  EXPECT_EQ(sample(l, "sample", 1, 0, 1, 0.2f, 0.5f), 0);
  // min_p 0.1 keeps token 2 (0.135 >= 0.1).
  EXPECT_EQ(sample(l, "sample", 1, 0, 1, 0.1f, 0.99f), 2);
  // top_p 0.6: target 0.902, token 0 alone reaches it.
  EXPECT_EQ(sample(l, "sample", 1, 0, 0.6f, 0, 0.99f), 0);
  // top_p 0.7: target 1.053 needs tokens 0 and 1; r = 0.99 * 1.368 -> token 1.
  EXPECT_EQ(sample(l, "sample", 1, 0, 0.7f, 0, 0.99f), 1);
  EXPECT_EQ(sample(l, "sample", 1, 0, 0.7f, 0, 0.7f), 0);
  // Equal logits, p = [1, 1]: top_p 0.5 is reached exactly by token 0 alone.
  const std::vector<float> even{0.0f, 0.0f};
  EXPECT_EQ(sample(even, "sample", 1, 0, 0.5f, 0, 0.9f), 0);
  EXPECT_EQ(sample(even, "sample", 1, 0, 1, 0, 0.9f), 1);
  // The draw takes the first candidate whose running mass exceeds r: r = 1 is
  // token 0's mass exactly, so token 1.
  EXPECT_EQ(sample(even, "sample", 1, 0, 1, 0, 0.5f), 1);
  EXPECT_EQ(sample(even, "sample", 1, 0, 1, 0, 0.0f), 0);
  // top_p applies to the candidates left by min_p: min_p 0.2 leaves mass 1.368,
  // top_p 0.7 of it (0.958) is reached by token 0 alone.
  EXPECT_EQ(sample(l, "sample", 1, 0, 0.7f, 0.2f, 0.99f), 0);
}

TEST(CpuKernels, SampleIsDeterministicForAGivenDraw) {
  const std::vector<float> logits = randn(kV, 42, 0, 4);
  for (float u : {0.1f, 0.5f, 0.9f}) {
    const int32_t first = sample(logits, "sample", 0.8f, 40, 0.95f, 0.05f, u);
    for (int rep = 0; rep < 3; ++rep) EXPECT_EQ(sample(logits, "sample", 0.8f, 40, 0.95f, 0.05f, u), first) << u;
  }
  // Different draws reach different tokens of the top 40.
  std::set<int32_t> seen;
  for (int i = 0; i < 50; ++i) seen.insert(sample(logits, "sample", 1.5f, 40, 1, 0, (i + 0.5f) / 50));
  EXPECT_GT(seen.size(), 5u);
  EXPECT_LE(seen.size(), 40u);
}

TEST(CpuKernels, BindingsTooSmallForTheDimsAreErrors) {
  const std::vector<float> x = randn(kE, 50);
  const Bytes w = make_weight(GgmlType::Q4_K, kF - 1, kE, 51);  // one row short
  auto out = run(dispatch("matmul_q4k", "main", {{"T", 1}, {"K", kE}, {"N", kF}}, {to_bytes(x), w, nan_bytes(kF)}));
  ASSERT_FALSE(out.ok());
  EXPECT_NE(out.error().message.find("weight 'w'"), std::string::npos) << out.error().message;
}

}  // namespace
}  // namespace kp::backend

// kpath verify's machinery (runtime/verify.h, runtime/perplexity.h) on the
// CPU backend: a custom kernel whose CPU code is wrong is reported at its
// exact step, the slot comparison, plan alignment, and perplexity / KL
// divergence on hand-computed distributions and on the fixture model.
#include <gtest/gtest.h>

#include <algorithm>

#include <cmath>
#include <cstring>
#include <limits>

#include "../support/shared_model.h"
#include "broken_path_fixture.h"
#include "core/fp16.h"
#include "runtime/perplexity.h"
#include "runtime/reference_engine.h"
#include "runtime/session.h"
#include "runtime/verify.h"

namespace kp::runtime {
namespace {

using verify_testing::kQ4kModel;

const format::GgufFile& verify_q4k_model() { return test::shared_model(kQ4kModel); }

std::unique_ptr<Session> open_cpu(const std::string& path, const std::string& kernel_dir, uint32_t ctx,
                                  int64_t batch, bool reference_kernels = false) {
  SessionOptions o;
  o.backend.name = "cpu";
  o.backend.cpu_reference_kernels = reference_kernels;
  o.kernel_path = path;
  o.kernel_dir = kernel_dir;
  o.ctx = ctx;
  o.max_batch = batch;
  auto s = Session::open(verify_q4k_model(), o);
  EXPECT_TRUE(s.ok()) << s.error().message;
  return s.ok() ? std::move(*s) : nullptr;
}

std::vector<uint8_t> bytes_of(const std::vector<float>& v) {
  std::vector<uint8_t> b(v.size() * 4);
  std::memcpy(b.data(), v.data(), b.size());
  return b;
}

const std::vector<int32_t> kPrompt = {2, 300, 263, 620, 47, 91};  // BOS "And the earth ..." (any ids do)

class BrokenCpuKernel : public ::testing::Test {
 protected:
  void SetUp() override {
    root_ = verify_testing::fresh_dir("runtime");
    // CPU code of `add` for a kernel declared as gelu_mul: y = g + u, wrong.
    kernel_dir_ = verify_testing::make_kernel_dir(root_, "add", "N", "");
    path_ = verify_testing::make_broken_path(root_, kLayer);
    tested_ = open_cpu(path_, kernel_dir_, 8, 8);
    reference_ = open_cpu("gemma2-q4k-dequant-f32", kernel_dir_, 8, 8);
    ASSERT_TRUE(tested_ && reference_);
  }
  void TearDown() override { std::filesystem::remove_all(root_); }

  static constexpr uint32_t kLayer = 2;
  std::string root_, kernel_dir_, path_;
  std::unique_ptr<Session> tested_, reference_;
};

TEST_F(BrokenCpuKernel, IsReportedAtItsExactStep) {
  VerifyOptions o;
  o.prompt = kPrompt;
  o.n_decode = 1;
  auto r = verify_steps(tested_->executor(), reference_->executor(), o);
  ASSERT_TRUE(r.ok()) << r.error().message;
  ASSERT_TRUE(r->first_over.has_value());
  const size_t first = verify_testing::prefill_activation_index(kLayer);
  EXPECT_EQ(*r->first_over, first);
  const StepCheck& s = r->steps.at(first);
  EXPECT_EQ(s.phase, "prefill");
  EXPECT_EQ(s.section, "layer");
  EXPECT_EQ(s.layer, static_cast<int32_t>(kLayer));
  EXPECT_EQ(s.op, "activation");
  EXPECT_EQ(s.kernel, "gelu_mul_mine");
  EXPECT_EQ(s.slot, "ffn_h");
  EXPECT_GT(s.rel_error, 0.1);  // g + u against gelu(g) * u: not a rounding error
  // Inputs come from the reference, so the broken kernel's output does not
  // spread: the only other step over is the same kernel in the decode phase.
  std::vector<size_t> over;
  for (const auto& c : r->steps) {
    if (c.over) over.push_back(c.index);
  }
  ASSERT_EQ(over.size(), 2u);
  const StepCheck& d = r->steps.at(over[1]);
  EXPECT_EQ(d.phase, "decode");
  EXPECT_EQ(d.layer, static_cast<int32_t>(kLayer));
  EXPECT_EQ(d.op, "activation");
  // Both phases ran every step: 2 x (1 + 6 layers x 15 + 3 postLayer + 2 sampling).
  EXPECT_EQ(r->steps.size(), 2u * (1 + 6 * 15 + 3 + 2));
  EXPECT_EQ(r->decoded.size(), 1u);
}

TEST_F(BrokenCpuKernel, FreeRunningLetsTheErrorSpread) {
  VerifyOptions o;
  o.prompt = kPrompt;
  o.n_decode = 0;
  o.inject_inputs = false;
  auto r = verify_steps(tested_->executor(), reference_->executor(), o);
  ASSERT_TRUE(r.ok()) << r.error().message;
  const size_t first = verify_testing::prefill_activation_index(kLayer);
  ASSERT_TRUE(r->first_over.has_value());
  EXPECT_EQ(*r->first_over, first);
  for (size_t i = 0; i < first; ++i) EXPECT_EQ(r->steps[i].rel_error, 0.0) << r->steps[i].location;
  EXPECT_TRUE(r->steps.at(first + 1).over) << "down_proj reads the broken ffn_h";
  EXPECT_TRUE(r->steps.at(first + 15).over) << "the next layer starts from a broken hidden state";
}

TEST_F(BrokenCpuKernel, AToleranceAboveTheErrorPassesEveryStep) {
  VerifyOptions o;
  o.prompt = kPrompt;
  o.n_decode = 0;
  o.tolerance = 1e9;
  auto r = verify_steps(tested_->executor(), reference_->executor(), o);
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_FALSE(r->first_over.has_value());
}

// kpath verify --backend cpu: the fast SIMD kernels against the reference
// kernels on the same path, every step within the default tolerances, and
// not identical (the fast code ran).
TEST(VerifyCpuFast, FusedPathIsWithinTheDefaultTolerancesOfTheReferenceKernels) {
  auto fast = open_cpu("gemma2-q4k-fused", "", 8, 8);
  auto reference = open_cpu("gemma2-q4k-fused", "", 8, 8, true);
  ASSERT_TRUE(fast && reference);
  VerifyOptions o;
  o.prompt = kPrompt;
  o.n_decode = 2;
  auto r = verify_steps(fast->executor(), reference->executor(), o);
  ASSERT_TRUE(r.ok()) << r.error().message;
  ASSERT_FALSE(r->first_over.has_value()) << r->steps[*r->first_over].location << ": "
                                          << r->steps[*r->first_over].rel_error;
  double worst = 0;
  for (const auto& c : r->steps) worst = std::max(worst, c.rel_error);
  EXPECT_GT(worst, 0.0);
}

TEST(VerifyAlignment, PathsWithDifferentStepsAreRefused) {
  auto fused = open_cpu("gemma2-q4k-fused", "", 8, 8);
  auto dequant = open_cpu("gemma2-q4k-dequant-f32", "", 8, 8);
  ASSERT_TRUE(fused && dequant);
  VerifyOptions o;
  o.prompt = kPrompt;
  auto r = verify_steps(fused->executor(), dequant->executor(), o);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().message.find("same steps"), std::string::npos) << r.error().message;
}

TEST(VerifyAlignment, APromptLongerThanTheContextIsAnError) {
  auto a = open_cpu("gemma2-q4k-fused", "", 4, 4);
  auto b = open_cpu("gemma2-q4k-fused", "", 4, 4);
  ASSERT_TRUE(a && b);
  VerifyOptions o;
  o.prompt = kPrompt;
  auto r = verify_steps(a->executor(), b->executor(), o);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().message.find("context"), std::string::npos) << r.error().message;
}

TEST(CompareSlot, RelativeL2AndMaxAbs) {
  const SlotError e = compare_slot(kpath::SlotDType::F32, bytes_of({1, 2, 3}), bytes_of({1, 2, 5}));
  EXPECT_NEAR(e.rel, 2.0 / std::sqrt(30.0), 1e-12);
  EXPECT_DOUBLE_EQ(e.max_abs, 2.0);
  const SlotError zero = compare_slot(kpath::SlotDType::F32, bytes_of({0, 0}), bytes_of({0, 0}));
  EXPECT_EQ(zero.rel, 0.0);
}

TEST(CompareSlot, NonFiniteOutputIsInfinitelyFar) {
  const float nan = std::numeric_limits<float>::quiet_NaN();
  const SlotError e = compare_slot(kpath::SlotDType::F32, bytes_of({1, nan}), bytes_of({1, 2}));
  EXPECT_TRUE(std::isinf(e.rel));
}

TEST(CompareSlot, F16AndTokenIds) {
  std::vector<uint8_t> t(4), r(4);
  const uint16_t a[2] = {f32_to_f16(1.0f), f32_to_f16(2.0f)};
  const uint16_t b[2] = {f32_to_f16(1.0f), f32_to_f16(1.0f)};
  std::memcpy(t.data(), a, 4);
  std::memcpy(r.data(), b, 4);
  EXPECT_NEAR(compare_slot(kpath::SlotDType::F16, t, r).rel, 1.0 / std::sqrt(2.0), 1e-12);
  const int32_t ids_t[4] = {5, 6, 7, 8}, ids_r[4] = {5, 6, 0, 8};
  std::vector<uint8_t> it(16), ir(16);
  std::memcpy(it.data(), ids_t, 16);
  std::memcpy(ir.data(), ids_r, 16);
  EXPECT_DOUBLE_EQ(compare_slot(kpath::SlotDType::I32, it, ir).rel, 0.25);
  EXPECT_DOUBLE_EQ(compare_slot(kpath::SlotDType::I32, it, it).rel, 0.0);
}

// Logits that are the same at every position: two tokens, p = (0.75, 0.25)
// for the tested side and (0.5, 0.5) for the reference.
ChunkLogits constant_logits(float l0, float l1) {
  return [l0, l1](std::span<const int32_t> chunk, size_t first) -> Result<std::vector<float>> {
    std::vector<float> out;
    for (size_t p = first; p + 1 < chunk.size(); ++p) {
      out.push_back(l0);
      out.push_back(l1);
    }
    return out;
  };
}

TEST(Perplexity, HandComputedDistributions) {
  const std::vector<int32_t> tokens(16, 0);  // every target is token 0
  PerplexityOptions o;
  o.ctx = 8;
  o.n_vocab = 2;
  auto s = perplexity(tokens, constant_logits(std::log(3.0f), 0.0f), constant_logits(0.0f, 0.0f), o);
  ASSERT_TRUE(s.ok()) << s.error().message;
  EXPECT_EQ(s->chunks, 2u);
  EXPECT_EQ(s->tokens, 2u * (8 - 1 - 4));        // positions 4..6 of each chunk predict tokens 5..7
  EXPECT_NEAR(s->ppl, 4.0 / 3.0, 1e-6);         // exp(-ln 0.75)
  EXPECT_NEAR(s->ref_ppl, 2.0, 1e-9);
  EXPECT_NEAR(s->kld_mean, 0.5 * std::log(4.0 / 3.0), 1e-6);  // 0.5 ln(0.5/0.75) + 0.5 ln(0.5/0.25)
  EXPECT_DOUBLE_EQ(s->top1, 1.0);               // argmax 0 on both sides (ties go to the first)
  auto flipped = perplexity(tokens, constant_logits(0.0f, 1.0f), constant_logits(1.0f, 0.0f), o);
  ASSERT_TRUE(flipped.ok());
  EXPECT_DOUBLE_EQ(flipped->top1, 0.0);
}

TEST(Perplexity, TooShortATextIsAnError) {
  PerplexityOptions o;
  o.ctx = 64;
  o.n_vocab = 2;
  const std::vector<int32_t> tokens(10, 0);
  auto s = perplexity(tokens, constant_logits(0, 0), constant_logits(0, 0), o);
  ASSERT_FALSE(s.ok());
  EXPECT_NE(s.error().message.find("less than one chunk"), std::string::npos) << s.error().message;
}

// The executor's chunk logits (prefill, then one token at a time) line up
// with the reference forward's: an off-by-one position would give a large KLD.
TEST(Perplexity, ExecutorAgreesWithTheReferenceForward) {
  constexpr uint32_t kCtx = 24;
  auto session = open_cpu("gemma2-q4k-dequant-f32", "", kCtx, kCtx);
  ASSERT_TRUE(session);
  auto ref = load_reference_model(verify_q4k_model(), kCtx);
  ASSERT_TRUE(ref.ok()) << ref.error().message;
  std::vector<int32_t> tokens;
  for (int i = 0; i < 2 * static_cast<int>(kCtx); ++i) tokens.push_back(4 + (i * 37) % 900);
  PerplexityOptions o;
  o.ctx = kCtx;
  o.n_vocab = session->config().n_vocab;
  o.bos = 2;
  auto s = perplexity(tokens, executor_chunk_logits(session->executor()), reference_chunk_logits(*ref), o);
  ASSERT_TRUE(s.ok()) << s.error().message;
  EXPECT_EQ(s->tokens, 2u * (kCtx - 1 - kCtx / 2));
  EXPECT_LT(s->kld_mean, 1e-6);
  EXPECT_DOUBLE_EQ(s->top1, 1.0);
  EXPECT_NEAR(s->ppl / s->ref_ppl, 1.0, 1e-4);
}

}  // namespace
}  // namespace kp::runtime

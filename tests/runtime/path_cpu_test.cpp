// The four built-in kernel paths on the CPU backend against the f32 reference
// forward on the same dequantized weights (the kjv fixtures' golden prompts,
// the 274-token one crossing the sliding window included), and the executor's
// trace: one dispatch per step, in the path's order.
#include <gtest/gtest.h>

#include "../support/path_runs.h"

namespace kp::test {
namespace {

class CpuPath : public testing::TestWithParam<PathCase> {};

TEST_P(CpuPath, MatchesTheReferenceForward) {
  const PathCase& c = GetParam();
  auto model = format::GgufFile::open(model_file(c.model));
  ASSERT_TRUE(model.ok()) << model.error().message;
  const auto prompts = golden_prompts({0, 1, 4});
  auto want = run_reference(*model, prompts, 16);
  ASSERT_TRUE(want.ok()) << want.error().message;
  auto session = open_path(*model, "cpu", c.path);
  ASSERT_TRUE(session.ok()) << session.error().message;
  EXPECT_EQ((*session)->path().id, c.path);
  auto got = run_session(**session, prompts, 16);
  ASSERT_TRUE(got.ok()) << got.error().message;
  for (size_t i = 0; i < prompts.size(); ++i) {
    EXPECT_LE(rel_l2(got->last_logits[i], want->last_logits[i]), c.vs_reference) << "prompt " << i;
    if (c.f32) {
      EXPECT_EQ(got->greedy_tokens[i], want->greedy_tokens[i]) << "prompt " << i;
    }
  }
}

INSTANTIATE_TEST_SUITE_P(BuiltinPaths, CpuPath, testing::ValuesIn(builtin_path_cases()), case_name);

// One decode step dispatches exactly the plan's decode steps and sampling
// steps, once each, in order, under the step's op name and layer.
TEST(CpuPathTrace, OneDispatchPerStepInPathOrder) {
  for (const std::string path : {"gemma2-q4k-fused", "gemma2-q4k-dequant-f32", "gemma2-q4k-fused-max"}) {
    auto model = format::GgufFile::open(model_file("kjv-tiny-q4_k_m.gguf"));
    ASSERT_TRUE(model.ok());
    auto session = open_path(*model, "cpu", path);
    ASSERT_TRUE(session.ok()) << session.error().message;
    runtime::Executor& ex = (*session)->executor();
    ASSERT_TRUE(ex.forward(std::vector<int32_t>{2, 651, 2080}).ok());
    ex.set_tracing(true);
    auto token = ex.decode_and_sample(391, runtime::SamplingInput{});
    ASSERT_TRUE(token.ok()) << token.error().message;

    std::vector<const kpath::PlannedStep*> want = ex.forward_steps(1);
    for (const auto* s : ex.sampling_steps()) want.push_back(s);
    const auto& trace = ex.trace();
    ASSERT_EQ(trace.size(), want.size());
    EXPECT_EQ(trace.size(), ex.decode_dispatches());
    const size_t per_layer = path == "gemma2-q4k-fused" ? 13 : path == "gemma2-q4k-fused-max" ? 8 : 15;
    EXPECT_EQ(trace.size(), 1 + 6 * per_layer + 3 + 2) << path;
    for (size_t i = 0; i < trace.size(); ++i) {
      EXPECT_EQ(trace[i].op, want[i]->op) << i;
      EXPECT_EQ(trace[i].layer, want[i]->layer) << i;
      EXPECT_EQ(trace[i].kernel, want[i]->kernel->id) << i;
      EXPECT_EQ(trace[i].entry, want[i]->entry) << i;
    }
    // The layer steps run in the path file's order, layer by layer.
    EXPECT_EQ(trace[1].op, path == "gemma2-q4k-fused-max" ? "q_proj" : "input_norm");
    EXPECT_EQ(trace[1].layer, 0);
    EXPECT_EQ(trace[per_layer].op, "ffn_residual");
    EXPECT_EQ(trace[per_layer + 1].layer, 1);
    EXPECT_EQ(trace.back().op, "sample");
  }
}

}  // namespace
}  // namespace kp::test

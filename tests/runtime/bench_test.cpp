// kpath bench's measurements (runtime/bench.h) on the CPU backend: what a
// decoded token reads and dispatches, the repetition bookkeeping and the
// summary statistics. No timing is asserted.
#include <gtest/gtest.h>

#include <algorithm>

#include "runtime/bench.h"
#include "runtime/session.h"

namespace kp::runtime {
namespace {

const std::string kQ4k = std::string(KP_TEST_DATA) + "/kjv-tiny-q4_k.gguf";

const format::GgufFile& q4k_model() {
  static const format::GgufFile file = [] {
    auto f = format::GgufFile::open(kQ4k);
    EXPECT_TRUE(f.ok()) << f.error().message;
    return std::move(*f);
  }();
  return file;
}

std::unique_ptr<Session> open_cpu(const std::string& path, uint32_t ctx) {
  SessionOptions o;
  o.backend.name = "cpu";
  o.kernel_path = path;
  o.ctx = ctx;
  o.max_batch = 16;
  auto s = Session::open(q4k_model(), o);
  EXPECT_TRUE(s.ok()) << s.error().message;
  return s.ok() ? std::move(*s) : nullptr;
}

TEST(BenchSpread, MedianMeanAndSampleStddev) {
  const Spread s = spread_of({3, 1, 2});
  EXPECT_EQ(s.samples, (std::vector<double>{3, 1, 2}));  // in the order they ran
  EXPECT_DOUBLE_EQ(s.median, 2);
  EXPECT_DOUBLE_EQ(s.mean, 2);
  EXPECT_DOUBLE_EQ(s.stddev, 1);
  EXPECT_DOUBLE_EQ(s.min, 1);
  EXPECT_DOUBLE_EQ(s.max, 3);
  EXPECT_DOUBLE_EQ(spread_of({4, 1, 2, 3}).median, 2.5);
  EXPECT_DOUBLE_EQ(spread_of({}).median, 0);
}

// Every tensor of kjv-tiny-q4_k is read once per decoded token: the matrices
// by their matmuls, the tied embedding whole by lm_head, the norms by theirs.
TEST(BenchWeightBytes, FusedPathReadsEveryTensorOnce) {
  auto s = open_cpu("gemma2-q4k-fused", 16);
  ASSERT_TRUE(s);
  uint64_t file_bytes = 0;
  for (const auto& t : q4k_model().tensors()) file_bytes += t.n_bytes;
  EXPECT_EQ(decode_weight_bytes(s->executor(), q4k_model()), file_bytes);
}

// --ops: one row per (op, kernel) of the decode steps, in step order, each
// call counted, and the weights of all rows together are what each step reads
// (on the fused path every tensor once, the tied embedding twice) times the
// tokens profiled.
TEST(BenchOpProfile, CoversEveryDecodeStepAndItsWeights) {
  auto s = open_cpu("gemma2-q4k-fused", 16);
  ASSERT_TRUE(s);
  Executor& ex = s->executor();
  auto rows = decode_op_profile(ex, q4k_model(), 5, 3);
  ASSERT_TRUE(rows.ok()) << rows.error().message;
  size_t steps = ex.forward_steps(1).size() + ex.sampling_steps().size();
  size_t calls = 0;
  uint64_t bytes = 0;
  for (const auto& r : *rows) {
    EXPECT_EQ(r.calls % 3, 0u) << r.op;
    EXPECT_GE(r.ms, 0.0) << r.op;
    calls += r.calls;
    bytes += r.weight_bytes;
  }
  EXPECT_EQ(calls, 3 * steps);
  // The tied embedding is read by two steps: one row by embed, whole by lm_head.
  const format::GgufTensorInfo* embd = q4k_model().tensor("token_embd.weight");
  ASSERT_NE(embd, nullptr);
  EXPECT_EQ(bytes, 3 * (decode_weight_bytes(ex, q4k_model()) + embd->n_bytes / embd->rows()));
  ASSERT_FALSE(rows->empty());
  EXPECT_EQ(rows->front().op, "embed");
  EXPECT_EQ(rows->back().op, "sample");
  // Every layer's q_proj is one row (one kernel: the file is all Q4_K).
  auto q = std::find_if(rows->begin(), rows->end(), [](const OpProfileRow& r) { return r.op == "q_proj"; });
  ASSERT_NE(q, rows->end());
  EXPECT_EQ(q->calls, 3u * 6);
  EXPECT_FALSE(decode_op_profile(ex, q4k_model(), 14, 3).ok());  // 14 + 3 > the context of 16
  EXPECT_FALSE(decode_op_profile(ex, q4k_model(), 0, 0).ok());
}

// Dequantized to f32 at load: 4 bytes per weight.
TEST(BenchWeightBytes, DequantF32PathReadsFourBytesPerWeight) {
  auto s = open_cpu("gemma2-q4k-dequant-f32", 16);
  ASSERT_TRUE(s);
  uint64_t f32_bytes = 0;
  for (const auto& t : q4k_model().tensors()) f32_bytes += 4 * t.n_elements;
  EXPECT_EQ(decode_weight_bytes(s->executor(), q4k_model()), f32_bytes);
  EXPECT_EQ(s->executor().weight_bytes(), f32_bytes);
}

TEST(BenchExecutor, RunsTheRepetitionsAndCountsDispatches) {
  auto s = open_cpu("gemma2-q4k-fused", 16);
  ASSERT_TRUE(s);
  BenchOptions o{8, 4, 2};
  auto b = bench_executor(s->executor(), q4k_model(), o);
  ASSERT_TRUE(b.ok()) << b.error().message;
  EXPECT_EQ(b->prefill.samples.size(), 2u);
  EXPECT_EQ(b->decode.samples.size(), 2u);
  EXPECT_GT(b->decode.median, 0);
  EXPECT_GT(b->prefill.median, 0);
  // gemma2-q4k-fused: embed, 13 steps per layer (6 layers), final norm, lm_head, softcap; repeat penalty, sample.
  EXPECT_EQ(b->decode_dispatches, 1u + 6 * 13 + 3 + 2);
  EXPECT_EQ(b->prefill_dispatches, 1u + 6 * 13 + 3);
  EXPECT_EQ(s->executor().pos(), 8u + 4u);  // the last repetition's prompt and decoded tokens
}

TEST(BenchExecutor, DecodeOnlyHasNoPrefillSamples) {
  auto s = open_cpu("gemma2-q4k-fused", 16);
  ASSERT_TRUE(s);
  auto b = bench_executor(s->executor(), q4k_model(), BenchOptions{0, 3, 1});
  ASSERT_TRUE(b.ok()) << b.error().message;
  EXPECT_TRUE(b->prefill.samples.empty());
  EXPECT_EQ(b->decode.samples.size(), 1u);
}

TEST(BenchExecutor, RefusesWhatDoesNotFit) {
  auto s = open_cpu("gemma2-q4k-fused", 16);
  ASSERT_TRUE(s);
  EXPECT_FALSE(bench_executor(s->executor(), q4k_model(), BenchOptions{12, 8, 1}).ok());
  EXPECT_FALSE(bench_executor(s->executor(), q4k_model(), BenchOptions{4, 4, 0}).ok());
  EXPECT_FALSE(bench_executor(s->executor(), q4k_model(), BenchOptions{0, 0, 1}).ok());
}

TEST(BenchBandwidth, CpuCopyIsMeasured) {
  auto s = open_cpu("gemma2-q4k-fused", 16);
  ASSERT_TRUE(s);
  const uint64_t peak = s->backend().peak_memory();
  auto bw = s->backend().measure_copy_bandwidth(4 << 20, 2);
  ASSERT_TRUE(bw.ok()) << bw.error().message;
  EXPECT_GT(*bw, 0);
  EXPECT_GE(s->backend().peak_memory(), peak + (8u << 20));  // both copy buffers count, as documented
  EXPECT_FALSE(s->backend().measure_copy_bandwidth(0, 1).ok());
}

TEST(BenchPrompt, OrdinaryIdsInRange) {
  const auto p = bench_prompt(100, 4096);
  ASSERT_EQ(p.size(), 100u);
  for (int32_t id : p) {
    EXPECT_GE(id, 4);
    EXPECT_LT(id, 4096);
  }
}

}  // namespace
}  // namespace kp::runtime

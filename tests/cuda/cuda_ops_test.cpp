// Every CUDA kernel and entry against the CPU backend through the op harness
// (src/backend/op_harness.h), at the kjv-tiny fixture's shapes and at Gemma 2
// 2B's, for decode (T = 1), small batches and tiled prefill; in place where
// the registry allows it; attention with cache history and sliding windows;
// sampling with every filter. Needs a CUDA device: skips with the reason
// otherwise.
#include <gtest/gtest.h>

#include <algorithm>
#include <memory>

#include "backend/cpu/cpu_backend.h"
#include "backend/cuda/cuda_backend.h"
#include "backend/op_harness.h"
#include "cuda_shapes.h"
#include "kernel_path/registry.h"

namespace kp::backend {
namespace {

using cuda_test::ModelShapes;
using cuda_test::Symbols;

// Relative L2 error allowed against the CPU (which accumulates in double): f32
// arithmetic over K <= 9216 terms stays well below this; i32 outputs (tokens)
// must match exactly.
constexpr double kMaxRelL2 = 1e-5;
// The tensor-core products (*_h16): the operands are rounded alike on both
// sides, but mma.sync's f32 accumulation does not round each addition to
// nearest as IEEE f32 does (1.09e-5 measured at K = 9216 on the H200; the
// K = 2304 cases stayed under 1e-5).
constexpr double kMaxRelL2TensorCores = 3e-5;
constexpr double kMaxRelL2AttentionH16 = 1e-3;

struct Shared {
  std::unique_ptr<Backend> cuda;
  std::unique_ptr<Backend> cpu;
  std::unique_ptr<kpath::Registry> registry;
  std::string no_device;       // why there is no CUDA backend
  std::string registry_error;  // a broken registry fails every test
};

Shared& shared() {
  static Shared s = [] {
    Shared out;
    auto cuda = make_cuda_backend(0, default_cuda_cache_dir());
    if (!cuda.ok()) {
      out.no_device = cuda.error().message;
      return out;
    }
    out.cuda = std::move(*cuda);
    auto registry = kpath::Registry::load_builtin(std::string(KP_SOURCE_DIR) + "/kernels");
    if (!registry.ok()) {
      out.registry_error = registry.error().message;
      return out;
    }
    out.registry = std::make_unique<kpath::Registry>(std::move(*registry));
    register_cpu_kernels(*out.registry);
    out.cpu = make_cpu_backend();
    return out;
  }();
  return s;
}

struct Case {
  OpCase op;
  const ModelShapes* model = nullptr;
};

// The cases of one kernel: every entry, at both models' path shapes.
std::vector<Case> cases_for(const kpath::KernelDesc& kernel, const ModelShapes& m) {
  std::vector<Case> out;
  const std::string& id = kernel.id;
  bool has_inplace = false;
  for (const auto& b : kernel.bindings) has_inplace = has_inplace || !b.inplace_of.empty();
  const bool gemma = m.name == "gemma2-2b";
  for (Symbols symbols : cuda_test::path_shapes(id, m)) {
    // Embedding tables are indexed, never scanned: a 4096-row table at Gemma's
    // width keeps the host-side inputs small without changing the kernel's work.
    if (id.rfind("embed_", 0) == 0 && gemma) symbols["V"] = 4096;
    // The 256000-row output head: decode only (the paths run it on the last
    // row), for the types it is stored in.
    const bool lm_head = id.rfind("matmul_", 0) == 0 && symbols["N"] == int64_t{m.values.n_vocab} && gemma;
    if (lm_head && id != "matmul_q6k" && id != "matmul_q4k" && id != "matmul_q8_0" && id != "matmul_q6k_x8" &&
        id != "matmul_q4k_x8") {
      continue;
    }
    for (const auto& entry_desc : kernel.entries) {
      const std::string& entry = entry_desc.first;  // a plain reference: the lambdas below capture it
      if (lm_head && entry != "main") continue;
      auto add = [&](int64_t t, auto&& tweak) {
        Case c;
        c.model = &m;
        c.op.kernel = id;
        c.op.entry = entry;
        c.op.symbols = symbols;
        c.op.symbols["T"] = t;
        c.op.seed = out.size() + 1;
        tweak(c.op);
        out.push_back(std::move(c));
      };
      auto none = [](OpCase&) {};
      if (id == "attention_h16") {  // prefill: tiles of 64 rows and 32 keys
        add(70, none);                                                   // from 0, a ragged second row tile
        add(129, [&](OpCase& c) { c.params.pos0 = 37; });                 // history in the caches
        add(40, [&](OpCase& c) { c.params.pos0 = 100; c.step.window = 64; });  // window cuts the history
        add(100, [&](OpCase& c) { c.params.pos0 = 50; c.step.window = 30; });  // window inside the batch
        add(1, [&](OpCase& c) { c.params.pos0 = 300; });
      } else if (id == "attention" || id == "attention_rope") {
        add(1, [&](OpCase& c) { c.params.pos0 = 37; });                 // decode with history in the cache
        add(40, none);                                                   // prefill from 0
        add(3, [&](OpCase& c) { c.params.pos0 = 100; c.step.window = 64; });  // window cuts the history
        add(17, [&](OpCase& c) { c.params.pos0 = 50; c.step.window = 30; });  // window inside the batch
        // Keys split over blocks (decode at depth): all splits full, a ragged
        // last split, two rows sharing the splits, and a window cutting a long history.
        const uint32_t deep = uint32_t(m.ctx) - 3;
        add(1, [&](OpCase& c) { c.params.pos0 = deep; });
        add(1, [&](OpCase& c) { c.params.pos0 = 777; });
        add(2, [&](OpCase& c) { c.params.pos0 = deep - 500; });
        add(1, [&](OpCase& c) { c.params.pos0 = deep; c.step.window = uint32_t(m.window); });
        add(1, [&](OpCase& c) { c.params.pos0 = 300; c.step.window = 129; });
      } else if (id == "sample") {
        if (entry == "argmax") {
          add(1, none);
          continue;
        }
        add(1, none);  // temperature 0.8, top_k 40, top_p 0.95, min_p 0.05, rand_u 0.37
        add(1, [](OpCase& c) { c.params.rand_u = 0.0f; });
        add(1, [](OpCase& c) { c.params.rand_u = 0.999f; });
        add(1, [](OpCase& c) { c.params.top_k = 0; c.params.min_p = 0; c.params.top_p = 0.9f; c.params.rand_u = 0.61f; });
        add(1, [](OpCase& c) { c.params.top_k = 0; c.params.min_p = 0; c.params.top_p = 1; c.params.rand_u = 0.25f; });
        add(1, [](OpCase& c) { c.params.top_k = 1; });
        add(1, [](OpCase& c) { c.params.temperature = 0; });
        add(1, [](OpCase& c) { c.params.temperature = 2.5f; c.params.top_k = 0; c.params.min_p = 0.2f; c.params.rand_u = 0.8f; });
      } else if (id == "repeat_penalty" || id == "softcap") {
        add(1, none);
      } else if (entry == "gemm") {
        add(70, none);  // two row tiles, the second partial
        add(1, none);
        if (id.ends_with("_h16")) {
          add(129, none);                // 128-token tiles, one token over
          if (!gemma) add(4097, none);   // a long prompt in one batch (fixture shapes: the CPU reference is slow)
        }
      } else if (entry == "last_row") {
        add(5, none);
      } else {
        add(1, none);
        if (!lm_head) add(5, none);
      }
      if (has_inplace && entry != "last_row") {
        add(id == "repeat_penalty" || id == "softcap" ? 1 : 3, [](OpCase& c) { c.in_place = true; });
      }
    }
  }
  return out;
}

class CudaOps : public ::testing::TestWithParam<std::string> {
 protected:
  void SetUp() override {
    if (shared().cuda == nullptr) GTEST_SKIP() << "no CUDA device: " << shared().no_device;
    ASSERT_TRUE(shared().registry_error.empty()) << shared().registry_error;
  }
};

TEST_P(CudaOps, MatchesTheCpuBackend) {
  Shared& s = shared();
  const kpath::KernelDesc* kernel = s.registry->find(GetParam());
  ASSERT_NE(kernel, nullptr) << GetParam() << " is not in kernels/registry.json";
  ASSERT_TRUE(kernel->impls.count("cuda")) << GetParam() << " has no CUDA implementation";
  const ModelShapes models[] = {cuda_test::kjv_tiny(), cuda_test::gemma2_2b()};
  const std::string& id = GetParam();
  const bool is_h16 = id.ends_with("_h16");
  // attention_h16 takes its softmax weights in binary16 (relative to a running
  // maximum), which the reference keeps exact: about 2^-12 relative per weight.
  const double bound = id == "attention_h16" ? kMaxRelL2AttentionH16 : is_h16 ? kMaxRelL2TensorCores : kMaxRelL2;
  size_t n = 0;
  for (const ModelShapes& m : models) {
    for (const Case& c : cases_for(*kernel, m)) {
      SCOPED_TRACE(m.name + ": " + describe(c.op));
      auto r = run_op_case(*s.cuda, *s.cpu, *s.registry, c.op, m.values);
      ASSERT_TRUE(r.ok()) << r.error().message;
      for (const BindingError& e : r->outputs) {
        EXPECT_EQ(e.ref_nonfinite, 0) << "the CPU reference left non-finite values: " << r->summary();
        EXPECT_EQ(e.nan_count, 0) << r->summary();
        EXPECT_EQ(e.extra_finite, 0) << r->summary();
      }
      EXPECT_LE(r->max_rel_l2(), bound) << r->summary();
      ++n;
    }
  }
  EXPECT_GT(n, 0u) << "no cases for " << GetParam();
}

const std::vector<std::string> kKernels = {
    "embed_f32",      "embed_f16",       "embed_q8_0",       "embed_q4k",       "embed_q5k",      "embed_q6k",
    "matmul_f32",     "matmul_f16",      "matmul_q8_0",      "matmul_q4k",      "matmul_q5k",     "matmul_q6k",
    "ffn_gate_up_f32", "ffn_gate_up_f16", "ffn_gate_up_q8_0", "ffn_gate_up_q4k", "ffn_gate_up_q6k", "rmsnorm",
    "rmsnorm_residual", "add",           "gelu_mul",         "rope_neox",       "attention",      "softcap",
    "repeat_penalty", "sample",
    "matmul_norm_f32", "matmul_norm_f16", "matmul_norm_q8_0", "matmul_norm_q4k", "matmul_norm_q5k", "matmul_norm_q6k",
    "ffn_gate_up_resnorm_f32", "ffn_gate_up_resnorm_f16", "ffn_gate_up_resnorm_q8_0", "ffn_gate_up_resnorm_q4k",
    "ffn_gate_up_resnorm_q6k", "attention_rope",
    "matmul_q4k_x8", "matmul_q6k_x8", "ffn_gate_up_q4k_x8", "ffn_gate_up_q6k_x8",
    "matmul_norm_q4k_x8", "matmul_norm_q6k_x8", "ffn_gate_up_resnorm_q4k_x8", "ffn_gate_up_resnorm_q6k_x8",
    "matmul_f16_h16", "matmul_q8_0_h16", "matmul_q4k_h16", "matmul_q5k_h16", "matmul_q6k_h16",
    "ffn_gate_up_f16_h16", "ffn_gate_up_q8_0_h16", "ffn_gate_up_q4k_h16", "ffn_gate_up_q6k_h16", "attention_h16"};

INSTANTIATE_TEST_SUITE_P(AllKernels, CudaOps, ::testing::ValuesIn(kKernels),
                         [](const ::testing::TestParamInfo<std::string>& param_info) { return param_info.param; });

TEST(CudaOpsCoverage, EveryRegistryKernelHasACase) {
  auto registry = kpath::Registry::load_builtin(std::string(KP_SOURCE_DIR) + "/kernels");
  ASSERT_TRUE(registry.ok()) << registry.error().message;
  for (const auto& [id, kernel] : registry->kernels()) {
    EXPECT_NE(std::find(kKernels.begin(), kKernels.end(), id), kKernels.end())
        << id << " is not covered by CudaOps (tests/cuda/cuda_ops_test.cpp)";
  }
}

}  // namespace
}  // namespace kp::backend

// The op harness with the CPU backend as both target and reference: every
// kernel and entry of the registry at the fixture's shapes (E 256, F 768,
// 4 / 2 heads of 64, V 4096) and at Gemma 2 2B's (E 2304, F 9216, 8 / 4 heads
// of 256, V 256000; the V = 256000 cases only for the kernels that are cheap
// there: softcap, repeat_penalty, sample), expecting no error. And targets
// that are deliberately wrong, proving that the harness reports them.
#include <gtest/gtest.h>

#include <functional>
#include <ostream>
#include <set>

#include "backend/cpu/cpu_backend.h"
#include "backend/op_harness.h"
#include "core/check.h"
#include "core/mapped_file.h"

namespace kp::backend {
namespace {

using format::GgmlType;

const kpath::Registry& harness_registry() {
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

struct Shapes {
  const char* name;
  kpath::ModelValues model;
  int64_t v_table;  // rows of embedding tables and output heads built here
  int64_t ctx;
};

Shapes fixture_shapes() {
  kpath::ModelValues m;
  m.n_embd = 256;
  m.n_ff = 768;
  m.n_head = 4;
  m.n_head_kv = 2;
  m.head_dim = 64;
  m.n_vocab = 4096;
  m.n_layer = 6;
  m.rms_eps = 1e-6f;
  m.rope_theta = 10000;
  m.attn_softcap = 50;
  m.final_softcap = 30;
  m.attn_scale = 0.125f;
  m.embd_scale = 16;
  return {"fixture", m, 4096, 320};
}

Shapes gemma2_2b_shapes() {
  kpath::ModelValues m;
  m.n_embd = 2304;
  m.n_ff = 9216;
  m.n_head = 8;
  m.n_head_kv = 4;
  m.head_dim = 256;
  m.n_vocab = 256000;
  m.n_layer = 26;
  m.rms_eps = 1e-6f;
  m.rope_theta = 10000;
  m.attn_softcap = 50;
  m.final_softcap = 30;
  m.attn_scale = 0.0625f;
  m.embd_scale = 48;
  // A 256000-row table would be 590M weights to make: lookups use 4096 rows.
  return {"gemma2_2b", m, 4096, 4352};
}

struct NamedCase {
  std::string name;
  std::string shapes;
  OpCase c;
};

const std::pair<GgmlType, const char*> kHarnessTypes[] = {{GgmlType::F32, "f32"},   {GgmlType::F16, "f16"},
                                                    {GgmlType::Q8_0, "q8_0"}, {GgmlType::Q4_K, "q4k"},
                                                    {GgmlType::Q5_K, "q5k"},  {GgmlType::Q6_K, "q6k"}};

// Cases covering every kernel and entry at one model's shapes. `big` marks
// Gemma 2 2B, where only one matmul orientation per entry is run (the weights
// are 21M elements each) and the vocabulary-wide kernels use the full V.
std::vector<NamedCase> cases_for(const Shapes& s, bool big) {
  const kpath::ModelValues& m = s.model;
  const int64_t e = m.n_embd, f = m.n_ff, qc = m.n_head * m.head_dim, kc = m.n_head_kv * m.head_dim;
  std::vector<NamedCase> out;
  uint64_t seed = 100;
  std::map<std::string, int> name_count;  // cases differing only in params get _2, _3
  auto add = [&](std::string kernel, std::string entry, std::map<std::string, int64_t> symbols,
                 std::function<void(OpCase&)> tweak = nullptr) {
    OpCase c;
    c.kernel = std::move(kernel);
    c.entry = std::move(entry);
    c.symbols = std::move(symbols);
    c.seed = ++seed;
    if (tweak) tweak(c);
    std::string name = c.kernel + "_" + c.entry;
    for (const auto& [k, v] : c.symbols) name += fmt::format("_{}{}", k, v);
    if (c.params.pos0) name += fmt::format("_pos{}", c.params.pos0);
    if (c.step.window) name += fmt::format("_win{}", c.step.window);
    if (c.in_place) name += "_inplace";
    name += std::string("_") + s.name;
    const int n = ++name_count[name];
    if (n > 1) name += fmt::format("_{}", n);
    out.push_back({name, s.name, std::move(c)});
  };
  for (const auto& [type, suffix] : kHarnessTypes) {
    const std::string t(suffix);
    add("embed_" + t, "main", {{"T", 7}, {"E", e}, {"V", s.v_table}});
    add("matmul_" + t, "main", {{"T", 1}, {"K", e}, {"N", f}});
    add("matmul_" + t, "gemm", {{"T", 7}, {"K", f}, {"N", e}});
    if (!big) {
      add("matmul_" + t, "main", {{"T", 1}, {"K", e}, {"N", qc}});
      add("matmul_" + t, "gemm", {{"T", 9}, {"K", e}, {"N", s.v_table}});
    }
    add("matmul_norm_" + t, "main", {{"T", big ? 1 : 3}, {"K", e}, {"N", kc}});
    if (type != GgmlType::Q5_K) {
      add("ffn_gate_up_resnorm_" + t, "main", {{"T", big ? 1 : 3}, {"E", e}, {"F", f}});
      add("ffn_gate_up_" + t, "main", {{"T", 1}, {"E", e}, {"F", f}});
      add("ffn_gate_up_" + t, "gemm", {{"T", big ? 3 : 7}, {"E", e}, {"F", f}});
    }
    if (type != GgmlType::F32) {  // the tensor-core (binary16 operand) forms
      add("matmul_" + t + "_h16", "gemm", {{"T", big ? 3 : 7}, {"K", f}, {"N", e}});
      if (type != GgmlType::Q5_K) add("ffn_gate_up_" + t + "_h16", "gemm", {{"T", big ? 3 : 7}, {"E", e}, {"F", f}});
    }
    if (type == GgmlType::Q4_K || type == GgmlType::Q6_K) {  // the 8-bit activation forms
      add("matmul_" + t + "_x8", "main", {{"T", 1}, {"K", e}, {"N", f}});
      add("matmul_norm_" + t + "_x8", "main", {{"T", big ? 1 : 3}, {"K", e}, {"N", kc}});
      add("ffn_gate_up_" + t + "_x8", "main", {{"T", 1}, {"E", e}, {"F", f}});
      add("ffn_gate_up_resnorm_" + t + "_x8", "main", {{"T", big ? 1 : 3}, {"E", e}, {"F", f}});
    }
  }
  for (bool in_place : {false, true}) {
    auto ip = [in_place](OpCase& c) { c.in_place = in_place; };
    add("rmsnorm", "main", {{"T", 7}, {"N", e}}, ip);
    add("rmsnorm", "last_row", {{"T", 7}, {"N", e}}, ip);
    add("rmsnorm_residual", "main", {{"T", 7}, {"N", e}}, ip);
    add("add", "main", {{"T", 7}, {"N", e}}, ip);
    add("gelu_mul", "main", {{"T", 7}, {"F", f}}, ip);
    add("rope_neox", "main", {{"T", 7}, {"C", qc}}, [&](OpCase& c) { c.in_place = in_place; c.params.pos0 = 300; });
    add("rope_neox", "main", {{"T", 1}, {"C", kc}}, [&](OpCase& c) { c.in_place = in_place; c.params.pos0 = 4000; });
    add("softcap", "main", {{"T", 1}, {"N", m.n_vocab}}, ip);
    add("repeat_penalty", "main", {{"V", m.n_vocab}, {"H", 64}}, ip);
  }
  const int64_t window = big ? 4096 : 64;
  add("attention", "main", {{"T", 1}, {"QC", qc}, {"KC", kc}, {"CTX", s.ctx}}, [&](OpCase& c) { c.params.pos0 = 0; });
  add("attention", "main", {{"T", 1}, {"QC", qc}, {"KC", kc}, {"CTX", s.ctx}}, [&](OpCase& c) { c.params.pos0 = 200; });
  add("attention", "main", {{"T", 1}, {"QC", qc}, {"KC", kc}, {"CTX", s.ctx}}, [&](OpCase& c) {
    c.params.pos0 = static_cast<uint32_t>(s.ctx - 1);
    c.step.window = static_cast<uint32_t>(window);
  });
  add("attention", "main", {{"T", 9}, {"QC", qc}, {"KC", kc}, {"CTX", s.ctx}}, [&](OpCase& c) {
    c.params.pos0 = static_cast<uint32_t>(window - 3);
    c.step.window = static_cast<uint32_t>(window);
  });
  add("attention_h16", "main", {{"T", 9}, {"QC", qc}, {"KC", kc}, {"CTX", s.ctx}}, [&](OpCase& c) {
    c.params.pos0 = static_cast<uint32_t>(window - 3);
    c.step.window = static_cast<uint32_t>(window);
  });
  add("attention_rope", "main", {{"T", 1}, {"QC", qc}, {"KC", kc}, {"CTX", s.ctx}}, [&](OpCase& c) {
    c.params.pos0 = static_cast<uint32_t>(s.ctx - 1);
    c.step.window = static_cast<uint32_t>(window);
  });
  add("attention_rope", "main", {{"T", 9}, {"QC", qc}, {"KC", kc}, {"CTX", s.ctx}}, [&](OpCase& c) {
    c.params.pos0 = static_cast<uint32_t>(window - 3);
    c.step.window = static_cast<uint32_t>(window);
  });
  add("sample", "argmax", {{"V", m.n_vocab}});
  add("sample", "sample", {{"V", m.n_vocab}});
  add("sample", "sample", {{"V", m.n_vocab}}, [](OpCase& c) { c.params.temperature = 0; });
  add("sample", "sample", {{"V", m.n_vocab}}, [](OpCase& c) {
    c.params.top_k = 0;
    c.params.top_p = 1;
    c.params.min_p = 0;
    c.params.rand_u = 0.93f;
  });
  return out;
}

// gtest prints a failing case's parameter with this.
void PrintTo(const NamedCase& c, std::ostream* os) { *os << describe(c.c) << " at " << c.shapes << " shapes"; }

const kpath::ModelValues& model_of(const std::string& shapes) {
  static const Shapes fixture = fixture_shapes(), gemma = gemma2_2b_shapes();
  return shapes == fixture.name ? fixture.model : gemma.model;
}

std::vector<NamedCase> all_cases() {
  std::vector<NamedCase> out = cases_for(fixture_shapes(), false);
  for (auto& c : cases_for(gemma2_2b_shapes(), true)) out.push_back(std::move(c));
  return out;
}

struct Backends {
  std::unique_ptr<Backend> target = make_cpu_backend();
  std::unique_ptr<Backend> reference = make_cpu_backend();
};
Backends& backends() {
  static Backends b;
  return b;
}

class OpHarnessCpuVsCpu : public ::testing::TestWithParam<NamedCase> {};

TEST_P(OpHarnessCpuVsCpu, NoError) {
  const NamedCase& nc = GetParam();
  auto r = run_op_case(*backends().target, *backends().reference, harness_registry(), nc.c, model_of(nc.shapes));
  ASSERT_TRUE(r.ok()) << r.error().message;
  const kpath::KernelDesc* k = harness_registry().find(nc.c.kernel);
  size_t outputs = 0;
  for (const auto& b : k->bindings) {
    outputs += b.kind == kpath::BindingKind::Out || b.kind == kpath::BindingKind::InOut;
  }
  ASSERT_EQ(r->outputs.size(), outputs) << describe(nc.c);
  for (const BindingError& e : r->outputs) {
    EXPECT_GT(e.elements, 0) << e.binding;
    EXPECT_EQ(e.ref_nonfinite, 0) << describe(nc.c) << ": " << r->summary();
  }
  // The same code on the same inputs: the harness must see no difference at all.
  EXPECT_EQ(r->max_rel_l2(), 0.0) << describe(nc.c) << ": " << r->summary();
  EXPECT_EQ(r->total_nan(), 0) << describe(nc.c) << ": " << r->summary();
}

INSTANTIATE_TEST_SUITE_P(AllKernels, OpHarnessCpuVsCpu, ::testing::ValuesIn(all_cases()),
                         [](const ::testing::TestParamInfo<NamedCase>& p) { return p.param.name; });

TEST(OpHarness, CasesCoverEveryKernelAndEntryAtBothShapes) {
  std::map<std::string, std::set<std::string>> covered;  // shapes -> kernel.entry
  for (const auto& nc : all_cases()) covered[nc.shapes].insert(nc.c.kernel + "." + nc.c.entry);
  for (const char* shapes : {"fixture", "gemma2_2b"}) {
    for (const auto& [id, k] : harness_registry().kernels()) {
      for (const auto& [entry, unused] : k.entries) {
        EXPECT_TRUE(covered[shapes].count(id + "." + entry)) << id << "." << entry << " at " << shapes;
      }
    }
  }
}

// A target that delegates to a CPU backend but changes what it is asked to
// run: one constant of every pipeline, or the batch's row count.
class AlteredBackend final : public Backend {
 public:
  explicit AlteredBackend(std::unique_ptr<Backend> inner) : inner_(std::move(inner)) {}
  std::function<void(PipelineDesc&)> alter_pipeline;
  std::function<void(KpParams&)> alter_params;
  std::function<void(DispatchDesc&)> alter_dispatch;

  const DeviceInfo& info() const override { return inner_->info(); }
  Result<BufferId> create_buffer(uint64_t bytes, BufferUsage usage, const std::string& name) override {
    return inner_->create_buffer(bytes, usage, name);
  }
  void destroy_buffer(BufferId id) override { inner_->destroy_buffer(id); }
  Status write_buffer(BufferId id, uint64_t offset, const void* data, uint64_t bytes) override {
    return inner_->write_buffer(id, offset, data, bytes);
  }
  Status read_buffer(BufferId id, uint64_t offset, void* data, uint64_t bytes) override {
    return inner_->read_buffer(id, offset, data, bytes);
  }
  Result<PipelineId> create_pipeline(const PipelineDesc& desc) override {
    PipelineDesc d = desc;
    if (alter_pipeline) alter_pipeline(d);
    return inner_->create_pipeline(d);
  }
  Result<CommandListId> record(std::span<const DispatchDesc> dispatches) override {
    if (!alter_dispatch) return inner_->record(dispatches);
    std::vector<DispatchDesc> altered(dispatches.begin(), dispatches.end());
    for (DispatchDesc& d : altered) alter_dispatch(d);
    return inner_->record(altered);
  }
  void destroy_command_list(CommandListId id) override { inner_->destroy_command_list(id); }
  Status submit(CommandListId id, const KpParams& params, bool timestamps) override {
    KpParams p = params;
    if (alter_params) alter_params(p);
    return inner_->submit(id, p, timestamps);
  }
  std::vector<double> last_timings() const override { return inner_->last_timings(); }
  uint64_t peak_memory() const override { return inner_->peak_memory(); }

 private:
  std::unique_ptr<Backend> inner_;
};

void scale_constant(PipelineDesc& d, const std::string& name, float factor) {
  for (auto& [n, v] : d.constants) {
    if (n == name) v = std::get<float>(v) * factor;
  }
}

TEST(OpHarness, ReportsAWrongAttentionScaleInTheOutputOnly) {
  AlteredBackend wrong(make_cpu_backend());
  wrong.alter_pipeline = [](PipelineDesc& d) { scale_constant(d, "SCALE", 1.25f); };
  const Shapes s = fixture_shapes();
  OpCase c;
  c.kernel = "attention";
  c.symbols = {{"T", 4}, {"QC", 256}, {"KC", 128}, {"CTX", 64}};
  c.params.pos0 = 20;
  auto r = run_op_case(wrong, *backends().reference, harness_registry(), c, s.model);
  ASSERT_TRUE(r.ok()) << r.error().message;
  ASSERT_EQ(r->outputs.size(), 3u);  // o, k_cache, v_cache
  EXPECT_EQ(r->outputs[0].binding, "o");
  EXPECT_GT(r->outputs[0].rel_l2, 0.02) << r->summary();
  EXPECT_GT(r->outputs[0].max_abs, 0.01) << r->summary();
  EXPECT_EQ(r->outputs[1].rel_l2, 0.0) << r->summary();  // the caches are still written right
  EXPECT_EQ(r->outputs[2].rel_l2, 0.0) << r->summary();
  EXPECT_EQ(r->total_nan(), 0);
}

TEST(OpHarness, ReportsAWrongEmbeddingScale) {
  AlteredBackend wrong(make_cpu_backend());
  wrong.alter_pipeline = [](PipelineDesc& d) { scale_constant(d, "SCALE", 1.01f); };
  OpCase c;
  c.kernel = "embed_q4k";
  c.symbols = {{"T", 3}, {"E", 256}, {"V", 4096}};
  auto r = run_op_case(wrong, *backends().reference, harness_registry(), c, fixture_shapes().model);
  ASSERT_TRUE(r.ok()) << r.error().message;
  ASSERT_EQ(r->outputs.size(), 1u);
  EXPECT_NEAR(r->outputs[0].rel_l2, 0.01, 1e-4) << r->summary();  // every value 1% off
}

TEST(OpHarness, ReportsRowsATargetLeavesUnwritten) {
  AlteredBackend wrong(make_cpu_backend());
  wrong.alter_dispatch = [](DispatchDesc& d) {  // runs one row fewer than the batch: skips its last row
    for (auto& [name, value] : d.symbols) {
      if (name == "T") value -= 1;
    }
  };
  OpCase c;
  c.kernel = "matmul_q4k";
  c.entry = "gemm";
  c.symbols = {{"T", 4}, {"K", 256}, {"N", 768}};
  auto r = run_op_case(wrong, *backends().reference, harness_registry(), c, fixture_shapes().model);
  ASSERT_TRUE(r.ok()) << r.error().message;
  ASSERT_EQ(r->outputs.size(), 1u);
  EXPECT_EQ(r->outputs[0].nan_count, 768) << r->summary();  // the poison of the last row
  EXPECT_EQ(r->outputs[0].rel_l2, 0.0) << r->summary();     // the rows it wrote are right
  EXPECT_EQ(r->total_nan(), 768);
}

TEST(OpHarness, ReportsAWrongSampledToken) {
  AlteredBackend wrong(make_cpu_backend());
  wrong.alter_params = [](KpParams& p) { p.temperature = 0; };  // greedy instead of a draw
  OpCase c;
  c.kernel = "sample";
  c.entry = "sample";
  c.symbols = {{"V", 4096}};
  c.params.top_k = 0;
  c.params.top_p = 1;
  c.params.min_p = 0;
  c.params.temperature = 2;
  c.params.rand_u = 0.9f;  // far from the argmax's share of the mass
  auto r = run_op_case(wrong, *backends().reference, harness_registry(), c, fixture_shapes().model);
  ASSERT_TRUE(r.ok()) << r.error().message;
  ASSERT_EQ(r->outputs.size(), 1u);
  EXPECT_EQ(r->outputs[0].rel_l2, 1.0) << r->summary();  // the one token differs
}

TEST(OpHarness, RejectsCasesItCannotBuild) {
  Backend& cpu = *backends().reference;
  const kpath::ModelValues model = fixture_shapes().model;
  OpCase c;
  c.kernel = "matmul_q4k";
  c.symbols = {{"T", 1}, {"K", 256}, {"N", 768}};
  c.weight_types = {{"w", GgmlType::Q6_K}};
  auto r = run_op_case(cpu, cpu, harness_registry(), c, model);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().message.find("does not accept Q6_K"), std::string::npos) << r.error().message;
  c.weight_types.clear();
  c.symbols.erase("T");
  r = run_op_case(cpu, cpu, harness_registry(), c, model);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().message.find("symbol T"), std::string::npos) << r.error().message;
  c.kernel = "matmul_q9";
  r = run_op_case(cpu, cpu, harness_registry(), c, model);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().message.find("matmul_q9"), std::string::npos) << r.error().message;
}

}  // namespace
}  // namespace kp::backend

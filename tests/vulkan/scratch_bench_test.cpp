// Temporary: kernel timings on a real GPU (not part of the suite).
#include <gtest/gtest.h>
#include <algorithm>
#include <random>
#include "../cuda/cuda_shapes.h"
#include "backend/op_harness.h"
#include "format/ggml_type.h"
#include "kernel_path/constants.h"
#include "vulkan_env.h"
namespace kp::vulkan_test {
namespace {
double bench(const std::string& id, const std::string& entry, std::map<std::string, int64_t> sym,
             std::map<std::string, std::string> over, uint64_t* bytes_out, const kpath::ModelValues& mv, KpParams params = {}, KpStepParams step = {}) {
  auto& be = *env().backend;
  const auto* k = env().registry->find(id);
  const auto& impl = k->impls.at("vulkan");
  kpath::SymbolTable table; mv.add_to(table);
  for (auto& [n, v] : sym) table[n] = kpath::ExprValue{double(v), true};
  auto c = kpath::resolve_constants(*k, &impl, over, table, "bench");
  EXPECT_TRUE(c.ok()) << c.error().message;
  kpath::add_constants(*c, table);
  auto grid = kpath::eval_dims(impl.entries.at(entry).grid, table, "grid");
  auto p = be.create_pipeline(backend::PipelineDesc{k, &impl, entry, *c});
  EXPECT_TRUE(p.ok()) << p.error().message;
  std::vector<backend::Binding> binds; uint64_t total = 0; std::vector<backend::BufferId> bufs;
  std::mt19937 rng(1);
  for (size_t i = 0; i < k->bindings.size(); ++i) {
    auto sh = backend::binding_shape(*k, entry, i, sym, mv);
    uint64_t bytes = k->bindings[i].kind == kpath::BindingKind::Weight ? sh->first * format::row_bytes(k->bindings[i].weight_types[0], sh->second) : sh->first * sh->second * 4;
    if (k->bindings[i].kind != kpath::BindingKind::InOut) total += bytes;
    auto b = be.create_buffer(bytes, backend::BufferUsage::kDevice, k->bindings[i].name);
    std::vector<uint8_t> data(bytes);
    if (k->bindings[i].dtype == "i32") { for (size_t j = 0; j + 4 <= bytes; j += 4) { int32_t v = int32_t(j / 4 % 100); memcpy(&data[j], &v, 4);} }
    else if (k->bindings[i].kind == kpath::BindingKind::Weight) { for (size_t j = 0; j < bytes; j += 2) { uint16_t v = uint16_t(rng() & 0x3bff); memcpy(&data[j], &v, std::min<size_t>(2, bytes - j)); } }
    else { for (size_t j = 0; j + 4 <= bytes; j += 4) { float v = float(rng() % 1000) / 1000.f; memcpy(&data[j], &v, 4);} }
    EXPECT_TRUE(be.write_buffer(*b, 0, data.data(), bytes).ok());
    binds.push_back({*b, 0, bytes, k->bindings[i].kind == kpath::BindingKind::Out ? backend::Access::kWrite : backend::Access::kRead});
    bufs.push_back(*b);
  }
  std::vector<backend::DispatchDesc> ds(30);
  for (auto& d : ds) { d.pipeline = *p; d.bindings = binds; d.grid = *grid; d.step = step; }
  auto list = be.record(ds);
  EXPECT_TRUE(list.ok()) << list.error().message;
  EXPECT_TRUE(be.submit(*list, params, true).ok());
  EXPECT_TRUE(be.submit(*list, params, true).ok());
  auto t = be.last_timings();
  std::sort(t.begin(), t.end());
  be.destroy_command_list(*list);
  for (auto b : bufs) be.destroy_buffer(b);
  *bytes_out = total;
  return t[t.size() / 2];
}
TEST(ScratchBench, Decode2B) {
  KP_REQUIRE_VULKAN();
  auto m = cuda_test::gemma2_2b();
  std::fprintf(stderr, "device: %s | %s\n", env().backend->info().name.c_str(), env().backend->info().driver.c_str());
  struct Case { std::string id, entry; std::map<std::string, int64_t> sym; };
  std::vector<Case> cases = {
    {"matmul_q4k", "main", {{"T",1},{"K",2304},{"N",2048}}}, {"matmul_q4k", "main", {{"T",1},{"K",2304},{"N",1024}}},
    {"matmul_q4k", "main", {{"T",1},{"K",2048},{"N",2304}}}, {"matmul_q6k", "main", {{"T",1},{"K",9216},{"N",2304}}},
    {"matmul_q4k", "main", {{"T",1},{"K",9216},{"N",2304}}},
    {"ffn_gate_up_q4k", "main", {{"T",1},{"E",2304},{"F",9216}}}, {"matmul_q6k", "main", {{"T",1},{"K",2304},{"N",256000}}},
    {"matmul_f16", "main", {{"T",1},{"K",2304},{"N",9216}}}, {"matmul_q8_0", "main", {{"T",1},{"K",2304},{"N",9216}}},
  };
  for (auto& c : cases) {
    for (const char* wg : {"32", "64", "128", "256"}) for (const char* rows : {"1", "2", "4", "8"}) {
      uint64_t bytes; double ms = bench(c.id, c.entry, c.sym, {{"WG_SIZE", wg}, {"ROWS", rows}}, &bytes, m.values);
      std::fprintf(stderr, "%-16s %s K/E=%-5ld N/F=%-6ld WG=%-3s ROWS=%s: %8.4f ms %7.1f GB/s\n", c.id.c_str(), c.entry.c_str(), (long)(c.sym.count("K") ? c.sym["K"] : c.sym["E"]), (long)(c.sym.count("N") ? c.sym["N"] : c.sym["F"]), wg, rows, ms, bytes / ms / 1e6);
    }
  }
  for (int64_t t : {64, 512}) {
    uint64_t bytes; double ms = bench("ffn_gate_up_q4k", "gemm", {{"T",t},{"E",2304},{"F",9216}}, {}, &bytes, m.values);
    std::fprintf(stderr, "ffn_gate_up_q4k gemm T=%ld: %8.4f ms %7.1f GFLOP/s\n", (long)t, ms, 2.0*2*t*2304*9216/ms/1e6);
    ms = bench("matmul_q4k", "gemm", {{"T",t},{"K",2304},{"N",2048}}, {}, &bytes, m.values);
    std::fprintf(stderr, "matmul_q4k gemm T=%ld K=2304 N=2048: %8.4f ms %7.1f GFLOP/s\n", (long)t, ms, 2.0*t*2304*2048/ms/1e6);
  }
  for (uint32_t pos : {100u, 1000u, 4000u}) {
    KpParams p{}; p.pos0 = pos; p.n_tokens = 1; p.kv_len = pos + 1;
    uint64_t bytes; double ms = bench("attention", "main", {{"T",1},{"QC",2048},{"KC",1024},{"CTX",8192}}, {}, &bytes, m.values, p);
    std::fprintf(stderr, "attention decode pos=%u: %8.4f ms\n", pos, ms);
  }
  for (auto [id, sym] : std::vector<std::pair<std::string, std::map<std::string,int64_t>>>{{"rmsnorm", {{"T",1},{"N",2304}}}, {"rmsnorm_residual", {{"T",1},{"N",2304}}}, {"rope_neox", {{"T",1},{"C",2048}}}, {"softcap", {{"T",1},{"N",256000}}}, {"embed_q6k", {{"T",1},{"E",2304},{"V",4096}}}}) {
    uint64_t bytes; double ms = bench(id, "main", sym, {}, &bytes, m.values);
    std::fprintf(stderr, "%s: %8.4f ms\n", id.c_str(), ms);
  }
  for (const char* e : {"argmax", "sample"}) {
    KpParams p{}; p.temperature = 0.8f; p.top_k = 40; p.top_p = 0.95f; p.min_p = 0.05f; p.rand_u = 0.3f;
    uint64_t bytes; double ms = bench("sample", e, {{"T",1},{"V",256000}}, {}, &bytes, m.values, p);
    std::fprintf(stderr, "sample.%s V=256000: %8.4f ms\n", e, ms);
    p.top_k = 0; p.min_p = 0; p.top_p = 0.9f;
    ms = bench("sample", e, {{"T",1},{"V",256000}}, {}, &bytes, m.values, p);
    std::fprintf(stderr, "sample.%s V=256000 (no top_k/min_p): %8.4f ms\n", e, ms);
  }
}
}
}

// NVRTC compilation of every CUDA kernel, GPU-free (runs in CI): each entry of
// kernels/cuda/registry.json is compiled for sm_90 and sm_80 with the constants
// the built-in paths resolve at Gemma 2 2B and fixture shapes, and must compile
// without register spills. Also the pieces of nvrtc_compile.h that need no
// compiler: the ptxas report parser, #define rendering, include resolution.
#include <gtest/gtest.h>

#include <atomic>
#include <filesystem>
#include <fstream>
#include <thread>

#include "backend/cuda/nvrtc_compile.h"
#include "cuda_shapes.h"
#include "kernel_path/constants.h"
#include "kernel_path/registry.h"

namespace kp::backend {
namespace {

namespace fs = std::filesystem;

TEST(NvrtcReport, ParsesTheNamedFunctionOnly) {
  const std::string log =
      "ptxas info    : 0 bytes gmem\n"
      "ptxas info    : Compiling entry function 'first_fn' for 'sm_90'\n"
      "ptxas info    : Function properties for first_fn\n"
      "ptxas         .     24 bytes stack frame, 8 bytes spill stores, 12 bytes spill loads\n"
      "ptxas info    : Used 255 registers, used 1 barriers, 368 bytes cmem[0]\n"
      "ptxas info    : Compiling entry function 'second_fn' for 'sm_90'\n"
      "ptxas info    : Function properties for second_fn\n"
      "ptxas         .     0 bytes stack frame, 0 bytes spill stores, 0 bytes spill loads\n"
      "ptxas info    : Used 40 registers, used 0 barriers, 368 bytes cmem[0]\n";
  CompiledKernel a, b, c;
  ASSERT_TRUE(parse_ptxas_report(log, "first_fn", &a));
  EXPECT_EQ(a.registers, 255);
  EXPECT_EQ(a.stack_bytes, 24);
  EXPECT_EQ(a.spill_stores, 8);
  EXPECT_EQ(a.spill_loads, 12);
  ASSERT_TRUE(parse_ptxas_report(log, "second_fn", &b));
  EXPECT_EQ(b.registers, 40);
  EXPECT_EQ(b.spill_stores, 0);
  EXPECT_EQ(b.spill_loads, 0);
  EXPECT_FALSE(parse_ptxas_report(log, "first", &c));  // names match whole
  EXPECT_FALSE(parse_ptxas_report(log, "third_fn", &c));
}

TEST(NvrtcCubin, FindsWholeSymbolNames) {
  const char table[] = "\0.text.first_fn\0first_fn\0second\0";
  const std::vector<uint8_t> bytes(table, table + sizeof table - 1);
  EXPECT_TRUE(cubin_has_symbol(bytes, "first_fn"));
  EXPECT_TRUE(cubin_has_symbol(bytes, "second"));
  EXPECT_FALSE(cubin_has_symbol(bytes, "first"));
  EXPECT_FALSE(cubin_has_symbol(bytes, "fn"));
  EXPECT_FALSE(cubin_has_symbol(bytes, "third"));
}

TEST(NvrtcDefines, RendersEveryConstantType) {
  const kpath::ConstantValues values = {{"K", kpath::ConstValue{2304u}},     {"OFF", kpath::ConstValue{int32_t{-3}}},
                                        {"EPS", kpath::ConstValue{1e-6f}},   {"SCALE", kpath::ConstValue{48.0f}},
                                        {"NEG", kpath::ConstValue{-0.5f}},   {"ON", kpath::ConstValue{true}},
                                        {"THIRD", kpath::ConstValue{1.0f / 3.0f}}};
  EXPECT_EQ(constant_defines(values),
            "#define K 2304u\n"
            "#define OFF (-3)\n"
            "#define EPS 1e-06f\n"
            "#define SCALE 48.0f\n"
            "#define NEG (-0.5f)\n"
            "#define ON 1\n"
            "#define THIRD 0.33333334f\n");
}

class TempDir {
 public:
  TempDir() {
    path_ = fs::temp_directory_path() / fmt::format("kp_nvrtc_test_{}", ::testing::UnitTest::GetInstance()->random_seed());
    fs::remove_all(path_);
    fs::create_directories(path_ / "cuda");
    fs::create_directories(path_ / "include");
  }
  ~TempDir() { fs::remove_all(path_); }
  const fs::path& path() const { return path_; }
  void write(const std::string& rel, const std::string& text) const { std::ofstream(path_ / rel) << text; }

 private:
  fs::path path_;
};

TEST(KernelSource, ResolvesNestedIncludesAndHashesThem) {
  TempDir dir;
  dir.write("cuda/main.cu", "#include \"a.cuh\"\n  #  include \"shared.h\"\nint x;\n");
  dir.write("cuda/a.cuh", "#include \"shared.h\"\nint a;\n");
  dir.write("include/shared.h", "int shared_v1;\n");
  const std::vector<std::string> dirs = {(dir.path() / "cuda").string(), (dir.path() / "include").string()};
  auto first = load_kernel_source((dir.path() / "cuda/main.cu").string(), dirs);
  ASSERT_TRUE(first.ok()) << first.error().message;
  ASSERT_EQ(first->headers.size(), 2u);
  EXPECT_EQ(first->headers[0].name, "shared.h");  // dependencies first, each once
  EXPECT_EQ(first->headers[1].name, "a.cuh");
  dir.write("include/shared.h", "int shared_v2;\n");  // an include changes: the key changes
  auto second = load_kernel_source((dir.path() / "cuda/main.cu").string(), dirs);
  ASSERT_TRUE(second.ok()) << second.error().message;
  EXPECT_NE(first->hash, second->hash);

  dir.write("cuda/broken.cu", "#include \"missing.cuh\"\n");
  auto broken = load_kernel_source((dir.path() / "cuda/broken.cu").string(), dirs);
  ASSERT_FALSE(broken.ok());
  EXPECT_NE(broken.error().message.find("broken.cu"), std::string::npos) << broken.error().message;
  EXPECT_NE(broken.error().message.find("missing.cuh"), std::string::npos) << broken.error().message;
}

#define KP_REQUIRE_NVRTC()                                                          \
  do {                                                                              \
    const std::string why = nvrtc_unavailable_reason();                             \
    if (!why.empty()) GTEST_SKIP() << "NVRTC is not available here: " << why;       \
  } while (0)

TEST(NvrtcCompile, ReportsCompilerErrorsWithTheFileName) {
  KP_REQUIRE_NVRTC();
  TempDir dir;
  dir.write("cuda/bad.cu", "extern \"C\" __global__ void bad_fn(float* y) { y[0] = undeclared_name; }\n");
  auto src = load_kernel_source((dir.path() / "cuda/bad.cu").string(), {});
  ASSERT_TRUE(src.ok()) << src.error().message;
  auto r = nvrtc_compile(*src, "", "bad_fn", "sm_90");
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().message.find("bad.cu"), std::string::npos) << r.error().message;
  EXPECT_NE(r.error().message.find("undeclared_name"), std::string::npos) << r.error().message;
}

TEST(NvrtcCompile, DefinesReachTheSourceAndMissingFunctionsAreErrors) {
  KP_REQUIRE_NVRTC();
  TempDir dir;
  dir.write("cuda/k.cu",
            "#include <stdint.h>\n"
            "static_assert(WIDTH == 7u, \"WIDTH comes from the defines\");\n"
            "extern \"C\" __global__ void k_fn(uint32_t* y) { y[threadIdx.x] = WIDTH; }\n");
  auto src = load_kernel_source((dir.path() / "cuda/k.cu").string(), {});
  ASSERT_TRUE(src.ok()) << src.error().message;
  const std::string defines = constant_defines({{"WIDTH", kpath::ConstValue{7u}}});
  auto ok = nvrtc_compile(*src, defines, "k_fn", "sm_90");
  ASSERT_TRUE(ok.ok()) << ok.error().message;
  EXPECT_GT(ok->registers, 0);
  EXPECT_GT(ok->cubin.size(), 64u);
  EXPECT_EQ(ok->arch, "sm_90");
  EXPECT_FALSE(nvrtc_compile(*src, constant_defines({{"WIDTH", kpath::ConstValue{8u}}}), "k_fn", "sm_90").ok());
  auto missing = nvrtc_compile(*src, defines, "other_fn", "sm_90");
  ASSERT_FALSE(missing.ok());
  EXPECT_NE(missing.error().message.find("other_fn"), std::string::npos) << missing.error().message;
}

struct CompileJob {
  std::string label;  // "matmul_q4k gemma2-2b K=2304 N=256000 sm_90"
  const kpath::KernelImpl* impl = nullptr;
  std::string defines;
  std::vector<std::string> functions;  // every entry of the implementation: one file holds them all
  std::string arch;
};

TEST(NvrtcCompile, EveryKernelEntryCompilesWithoutSpills) {
  KP_REQUIRE_NVRTC();
  auto registry = kpath::Registry::load_builtin(std::string(KP_SOURCE_DIR) + "/kernels");
  ASSERT_TRUE(registry.ok()) << registry.error().message;

  std::vector<CompileJob> jobs;
  std::set<std::string> seen;  // (file, defines, arch): shapes that resolve alike compile once
  for (const auto& [id, kernel] : registry->kernels()) {
    auto impl = kernel.impls.find("cuda");
    if (impl == kernel.impls.end()) {
      ADD_FAILURE() << "kernel " << id << " has no CUDA implementation in kernels/cuda/registry.json";
      continue;
    }
    for (const auto& [entry, unused] : kernel.entries) {
      EXPECT_TRUE(impl->second.entries.count(entry)) << id << ": the CUDA implementation lacks entry " << entry;
    }
    for (const cuda_test::ModelShapes& model : {cuda_test::gemma2_2b(), cuda_test::kjv_tiny()}) {
      const auto shapes = cuda_test::path_shapes(id, model);
      if (shapes.empty()) ADD_FAILURE() << "no path shapes known for kernel " << id << " (tests/cuda/cuda_shapes.h)";
      for (const auto& symbols : shapes) {
        kpath::SymbolTable table;
        model.values.add_to(table);
        table["T"] = kpath::ExprValue{1, true};
        std::string label = id + " " + model.name;
        for (const auto& [name, value] : symbols) {
          table[name] = kpath::ExprValue{static_cast<double>(value), true};
          label += fmt::format(" {}={}", name, value);
        }
        auto constants = kpath::resolve_constants(kernel, &impl->second, {}, table, label);
        ASSERT_TRUE(constants.ok()) << constants.error().message;
        const std::string defines = constant_defines(*constants);
        for (const char* arch : {"sm_90", "sm_80"}) {
          if (!seen.insert(impl->second.file + "\n" + defines + arch).second) continue;
          CompileJob job{label + " " + arch, &impl->second, defines, {}, arch};
          for (const auto& [entry, e] : impl->second.entries) job.functions.push_back(e.function);
          jobs.push_back(std::move(job));
        }
      }
    }
  }
  ASSERT_FALSE(jobs.empty());

  // NVRTC compiles independent programs in parallel.
  std::vector<std::string> failures(jobs.size());
  std::vector<std::string> reports(jobs.size());
  std::atomic<size_t> next{0};
  auto worker = [&] {
    for (size_t i = next++; i < jobs.size(); i = next++) {
      const CompileJob& job = jobs[i];
      auto src = load_kernel_source(job.impl->file, cuda_include_dirs(*job.impl));
      if (!src.ok()) {
        failures[i] = src.error().message;
        continue;
      }
      // NVRTC 13 caches ptxas results by PTX within a process and prints no
      // report for a hit; an unused global of this job's own keeps the PTX
      // unique (other tests may have compiled the same kernel already).
      const std::string nonce = fmt::format("__device__ int kp_nvrtc_test_nonce_{};\n", i);
      auto compiled = nvrtc_compile(*src, nonce + job.defines, job.functions.front(), job.arch);
      if (!compiled.ok()) {
        failures[i] = compiled.error().message;
        continue;
      }
      for (const std::string& fn : job.functions) {
        CompiledKernel k;
        if (!parse_ptxas_report(compiled->log, fn, &k)) {
          failures[i] += fmt::format("{}: no ptxas report for {}\n", job.label, fn);
        } else if (k.spill_stores != 0 || k.spill_loads != 0) {
          failures[i] += fmt::format("{}: {} spills ({} bytes stored, {} loaded, {} registers)\n{}", job.label, fn,
                                     k.spill_stores, k.spill_loads, k.registers, compiled->log);
        } else {
          reports[i] += fmt::format("{} {}: {} registers\n", job.label, fn, k.registers);
        }
      }
    }
  };
  std::vector<std::thread> threads;
  const unsigned n_threads = std::max(1u, std::min(8u, std::thread::hardware_concurrency()));
  for (unsigned t = 0; t < n_threads; ++t) threads.emplace_back(worker);
  for (auto& t : threads) t.join();
  for (size_t i = 0; i < jobs.size(); ++i) {
    EXPECT_TRUE(failures[i].empty()) << jobs[i].label << ":\n" << failures[i];
  }
  std::string all;
  for (const auto& r : reports) all += r;
  std::cout << "NVRTC " << nvrtc_version() << ", " << jobs.size() << " compilations:\n" << all;
}

}  // namespace
}  // namespace kp::backend

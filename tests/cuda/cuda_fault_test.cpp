// A real device fault on the CUDA backend: a user's kernel that writes through
// a null pointer (CUDA_ERROR_ILLEGAL_ADDRESS) in one layer's activation step.
// With --sync-each-dispatch the error names that path step; without it (a CUDA
// graph), the steps in flight. Either way the call returns an error instead
// of crashing. Skipped where there is no CUDA device. Each test faults its
// CUDA context, so run them one per process (ctest does; scripts/gpu_check.sh
// runs them apart from the other CUDA tests).
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "../runtime/broken_path_fixture.h"
#include "../support/path_runs.h"
#include "backend/cuda/nvrtc_compile.h"

namespace kp::test {
namespace {

using testing::HasSubstr;

constexpr const char* kFaultingCu = R"(// gelu_mul_mine.cu: writes through a null pointer.
#include "common.cuh"

extern "C" __global__ void __launch_bounds__(BLOCK)
    gelu_mul_mine_main(const KpParams* params, KpStepParams step, const float* g, const float* u, float* y) {
  (void)params;
  (void)step;
  const unsigned i = blockIdx.y * F + blockIdx.x * BLOCK + threadIdx.x;
  volatile float* nowhere = nullptr;
  if (blockIdx.x * BLOCK + threadIdx.x < F) nowhere[i] = g[i] * u[i];
  (void)y;
}
)";

// The user's kernel directory: gelu_mul_mine (CPU code: gelu_mul's) with the
// faulting CUDA implementation.
std::string faulting_kernel_dir(const std::string& root) {
  const std::string dir = verify_testing::make_kernel_dir(root, "gelu_mul", "F", "");
  const nlohmann::json impl = {
      {"backend", "cuda"},
      {"kernels",
       {{"gelu_mul_mine",
         {{"file", "gelu_mul_mine.cu"},
          {"constants", {{{"name", "BLOCK"}, {"type", "u32"}, {"default", "256"}}}},
          {"entries",
           {{"main",
             {{"function", "gelu_mul_mine_main"},
              {"grid", {"cdiv(F, BLOCK)", "T", "1"}},
              {"block", {"BLOCK", "1", "1"}}}}}}}}}}};
  verify_testing::write_text(std::filesystem::path(dir) / "cuda" / "registry.json", impl.dump(1));
  verify_testing::write_text(std::filesystem::path(dir) / "cuda" / "gelu_mul_mine.cu", kFaultingCu);
  return dir;
}

Result<std::unique_ptr<runtime::Session>> open_faulting(const format::GgufFile& model, bool sync_each) {
  const std::string root = verify_testing::fresh_dir(sync_each ? "cuda_fault_sync" : "cuda_fault_graph");
  runtime::SessionOptions o;
  o.backend.name = "cuda";
  o.backend.sync_each_dispatch = sync_each;
  o.kernel_dir = faulting_kernel_dir(root);
  o.kernel_path = verify_testing::make_broken_path(root, 1);
  o.ctx = 256;
  o.max_batch = 64;
  return runtime::Session::open(model, o);
}

bool have_cuda(std::string* why) {
  runtime::BackendRequest probe;
  probe.name = "cuda";
  auto be = runtime::open_backend(probe);
  if (!be.ok()) *why = be.error().message;
  return be.ok();
}

// Without a GPU, NVRTC still proves the user's kernel compiles against the
// built-in headers it includes.
TEST(CudaFault, TheUsersKernelCompilesWithTheBuiltinHeaders) {
  if (const std::string why = backend::nvrtc_unavailable_reason(); !why.empty()) GTEST_SKIP() << why;
  const std::string root = verify_testing::fresh_dir("cuda_fault_nvrtc");
  const std::string dir = faulting_kernel_dir(root);
  kpath::KernelImpl impl;
  impl.file = dir + "/cuda/gelu_mul_mine.cu";
  impl.source_dir = dir + "/cuda";
  auto src = backend::load_kernel_source(impl.file, backend::cuda_include_dirs(impl));
  ASSERT_TRUE(src.ok()) << src.error().message;
  auto compiled = backend::nvrtc_compile(*src, "#define F 1152u\n#define BLOCK 256u\n", "gelu_mul_mine_main", "sm_90");
  EXPECT_TRUE(compiled.ok()) << compiled.error().message;
}

TEST(CudaFault, WithSyncEachDispatchTheErrorNamesTheStep) {
  std::string why;
  if (!have_cuda(&why)) GTEST_SKIP() << "no CUDA device: " << why;
  auto model = format::GgufFile::open(verify_testing::kQ4kModel);
  ASSERT_TRUE(model.ok()) << model.error().message;
  auto session = open_faulting(*model, true);
  ASSERT_TRUE(session.ok()) << session.error().message;
  runtime::Executor& ex = (*session)->executor();
  const kpath::PlannedStep& bad = *ex.forward_steps(3).at(verify_testing::prefill_activation_index(1));
  ASSERT_EQ(bad.kernel->id, "gelu_mul_mine");

  Status st = ex.forward(std::vector<int32_t>{2, 651, 2080});
  ASSERT_FALSE(st.ok());
  const std::string& m = st.error().message;
  EXPECT_THAT(m, HasSubstr("step " + bad.location + " (op activation, kernel gelu_mul_mine, entry main)"));
  EXPECT_THAT(m, HasSubstr("failed on the device"));
  EXPECT_THAT(m, HasSubstr("CUDA_ERROR_ILLEGAL_ADDRESS"));
}

TEST(CudaFault, AsAGraphTheErrorNamesTheStepsInFlight) {
  std::string why;
  if (!have_cuda(&why)) GTEST_SKIP() << "no CUDA device: " << why;
  auto model = format::GgufFile::open(verify_testing::kQ4kModel);
  ASSERT_TRUE(model.ok()) << model.error().message;
  auto session = open_faulting(*model, false);
  ASSERT_TRUE(session.ok()) << session.error().message;
  runtime::Executor& ex = (*session)->executor();
  const size_t n = ex.forward_steps(3).size();

  Status st = ex.forward(std::vector<int32_t>{2, 651, 2080});
  ASSERT_FALSE(st.ok());
  const std::string& m = st.error().message;
  EXPECT_THAT(m, HasSubstr(fmt::format("a device error while running {} steps", n)));
  EXPECT_THAT(m, HasSubstr("CUDA_ERROR_ILLEGAL_ADDRESS"));
  EXPECT_THAT(m, HasSubstr("--sync-each-dispatch"));
}

}  // namespace
}  // namespace kp::test

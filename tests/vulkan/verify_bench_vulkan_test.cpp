// kpath verify and kpath bench on the Vulkan backend (lavapipe in CI): a
// custom Vulkan kernel that forgets the GELU is reported at its exact step
// against the CPU backend, a built-in path passes the default tolerances, and
// bench's JSON carries the device's copy bandwidth and every per-path field.
#include <gtest/gtest.h>

#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "../runtime/broken_path_fixture.h"
#include "../support/shared_model.h"
#include "backend/vulkan/vulkan_backend.h"
#include "runtime/session.h"
#include "runtime/verify.h"
#include "vulkan_env.h"

namespace kp::vulkan_test {
namespace {

using verify_testing::kQ4kModel;

const format::GgufFile& q4k_model() { return test::shared_model(kQ4kModel); }

Result<std::unique_ptr<runtime::Session>> open(const std::string& backend, const std::string& path,
                                               const std::string& kernel_dir) {
  runtime::SessionOptions o;
  o.backend.name = backend;
  o.backend.vulkan_validation = backend == "vulkan" && env().validation;
  o.backend.cpu_reference_kernels = backend == "cpu";  // verify's reference, as kpath verify opens it
  o.kernel_path = path;
  o.kernel_dir = kernel_dir;
  o.ctx = 8;
  o.max_batch = 8;
  return runtime::Session::open(q4k_model(), o);
}

const std::vector<int32_t> kPrompt = {2, 300, 263, 620, 47, 91};

TEST(VulkanVerify, ForgetfulCustomKernelIsReportedAtItsStep) {
  KP_REQUIRE_VULKAN();
  constexpr uint32_t kLayer = 3;
  const std::string root = fresh_temp_dir("verify-broken");
  // The CPU side runs gelu_mul's code (right); the Vulkan side computes g * u.
  const std::string kernels =
      verify_testing::make_kernel_dir(root, "gelu_mul", "F", verify_testing::kForgetfulGeluComp);
  const std::string path = verify_testing::make_broken_path(root, kLayer);
  auto gpu = open("vulkan", path, kernels);
  ASSERT_TRUE(gpu.ok()) << gpu.error().message;
  auto cpu = open("cpu", path, kernels);
  ASSERT_TRUE(cpu.ok()) << cpu.error().message;
  runtime::VerifyOptions o;
  o.prompt = kPrompt;
  o.n_decode = 1;
  auto r = runtime::verify_steps((*gpu)->executor(), (*cpu)->executor(), o);
  ASSERT_TRUE(r.ok()) << r.error().message;
  const size_t first = verify_testing::prefill_activation_index(kLayer);
  ASSERT_TRUE(r->first_over.has_value());
  EXPECT_EQ(*r->first_over, first);
  const runtime::StepCheck& s = r->steps.at(first);
  EXPECT_EQ(s.phase, "prefill");
  EXPECT_EQ(s.layer, static_cast<int32_t>(kLayer));
  EXPECT_EQ(s.op, "activation");
  EXPECT_EQ(s.kernel, "gelu_mul_mine");
  size_t over = 0;
  for (const auto& c : r->steps) {
    over += c.over ? 1 : 0;
    if (c.over) {
      EXPECT_EQ(c.kernel, "gelu_mul_mine") << c.location;
    }
  }
  EXPECT_EQ(over, 2u) << "the prefill and the decode activation of layer " << kLayer;
  if (env().validation) {
    auto* vk = dynamic_cast<backend::VulkanBackend*>(&(*gpu)->backend());
    ASSERT_NE(vk, nullptr);
    EXPECT_EQ(vk->validation_message_count(), 0u);
  }
}

// The copy that bench measures runs under the validation layer without a message.
TEST(VulkanBench, CopyBandwidthIsMeasuredValidly) {
  KP_REQUIRE_VULKAN();
  const uint64_t before = env().vulkan->validation_message_count();
  auto bw = env().backend->measure_copy_bandwidth(4 << 20, 2);
  ASSERT_TRUE(bw.ok()) << bw.error().message;
  EXPECT_GT(*bw, 0);
  EXPECT_EQ(env().vulkan->validation_message_count(), before) << validation_report(before);
  EXPECT_FALSE(env().backend->measure_copy_bandwidth(0, 1).ok());
}

TEST(VulkanVerify, BuiltinPathIsWithinTheDefaultTolerances) {
  KP_REQUIRE_VULKAN();
  auto gpu = open("vulkan", "gemma2-q4k-fused", "");
  ASSERT_TRUE(gpu.ok()) << gpu.error().message;
  auto cpu = open("cpu", "gemma2-q4k-fused", "");
  ASSERT_TRUE(cpu.ok()) << cpu.error().message;
  runtime::VerifyOptions o;
  o.prompt = kPrompt;
  o.n_decode = 1;
  auto r = runtime::verify_steps((*gpu)->executor(), (*cpu)->executor(), o);
  ASSERT_TRUE(r.ok()) << r.error().message;
  ASSERT_FALSE(r->first_over.has_value()) << r->steps[*r->first_over].location << ": "
                                          << r->steps[*r->first_over].rel_error;
  // A Vulkan kernel is not the CPU code: somewhere the summation order shows.
  double worst = 0;
  for (const auto& c : r->steps) worst = std::max(worst, c.rel_error);
  EXPECT_GT(worst, 0.0);
}

std::string slurp(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

TEST(VulkanBench, JsonFieldsOnTheVulkanBackend) {
  KP_REQUIRE_VULKAN();
  const std::string dir = fresh_temp_dir("bench-cli");
  const std::string out = dir + "/out.json", err = dir + "/err.txt";
  const std::string cmd = std::string("'") + KP_BINARY + "' bench -m '" + kQ4kModel +
                          "' --backend vulkan --kernel-path gemma2-q4k-fused -p 8 -n 4 -r 2 --bandwidth-mib 8 --json >'" +
                          out + "' 2>'" + err + "'";
  const int status = std::system(cmd.c_str());
  ASSERT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << slurp(err);
  const auto doc = nlohmann::json::parse(slurp(out), nullptr, false);
  ASSERT_FALSE(doc.is_discarded()) << slurp(out);
  EXPECT_EQ(doc["backend"], "vulkan");
  EXPECT_EQ(doc["device"], env().backend->info().name);
  ASSERT_TRUE(doc["copy_bandwidth_bytes_per_s"].is_number()) << doc["copy_bandwidth_note"];
  EXPECT_GT(doc["copy_bandwidth_bytes_per_s"].get<double>(), 0);
  ASSERT_EQ(doc["paths"].size(), 1u);
  const auto& p = doc["paths"][0];
  EXPECT_EQ(p["path"], "gemma2-q4k-fused");
  EXPECT_EQ(p["decode_tokens_per_s"]["samples"].size(), 2u);
  EXPECT_EQ(p["prefill_tokens_per_s"]["samples"].size(), 2u);
  EXPECT_GT(p["decode_tokens_per_s"]["median"].get<double>(), 0);
  EXPECT_EQ(p["dispatches_per_decode_token"], 1 + 6 * 13 + 3 + 2);
  uint64_t stored = 0;
  for (const auto& t : q4k_model().tensors()) stored += t.n_bytes;
  EXPECT_EQ(p["weight_bytes_per_decode_token"], stored);
  // Device memory holds at least the weights (Vulkan allocations round up).
  EXPECT_GE(p["peak_memory_bytes"].get<uint64_t>(), stored);
  EXPECT_TRUE(p["decode_bandwidth_fraction_of_copy"].is_number());
}

}  // namespace
}  // namespace kp::vulkan_test

// `kpath verify` through the built binary on the CPU backend: a custom path
// with a broken custom kernel drifts at its exact step (exit code 1, JSON and
// one stderr line), --text reports perplexity and KL divergence per path, and
// bad input gives one clear error line.
#include <gtest/gtest.h>

#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>

#include "../support/run_kpath.h"
#include "../runtime/broken_path_fixture.h"

namespace {

using kp::test::Output;
using kp::test::slurp;

std::string verify_temp_path(const std::string& name) { return kp::test::temp_path("kp_cli_verify", name); }
Output kpath_verify(const std::string& args) { return kp::test::run_kpath("kp_cli_verify", args); }

using kp::verify_testing::kQ4kModel;

size_t lines(const std::string& s) {
  size_t n = 0;
  for (char c : s) n += c == '\n' ? 1 : 0;
  return n;
}

class VerifyCli : public ::testing::Test {
 protected:
  void SetUp() override {
    root_ = kp::verify_testing::fresh_dir("cli");
    kernel_dir_ = kp::verify_testing::make_kernel_dir(root_, "add", "N", "");
    path_ = kp::verify_testing::make_broken_path(root_, 2);
  }
  void TearDown() override { std::filesystem::remove_all(root_); }
  std::string root_, kernel_dir_, path_;
};

TEST_F(VerifyCli, BrokenCustomKernelDriftsAtItsStep) {
  const Output o = kpath_verify("verify -m '" + kQ4kModel + "' --backend cpu --kernel-path '" + path_ + "' --kernel-dir '" +
                         kernel_dir_ + "' --reference-path gemma2-q4k-dequant-f32 -p 'And God said' --json");
  EXPECT_EQ(o.exit_code, 1) << o.err;
  const auto doc = nlohmann::json::parse(o.out, nullptr, false);
  ASSERT_FALSE(doc.is_discarded()) << o.out;
  const size_t first = kp::verify_testing::prefill_activation_index(2);
  ASSERT_EQ(doc["first_drift"], first);
  EXPECT_EQ(doc["ok"], false);
  EXPECT_EQ(doc["path"], "verify-test-broken");
  EXPECT_EQ(doc["reference"]["path"], "gemma2-q4k-dequant-f32");
  const auto& step = doc["steps"][first];
  EXPECT_EQ(step["op"], "activation");
  EXPECT_EQ(step["layer"], 2);
  EXPECT_EQ(step["kernel"], "gelu_mul_mine");
  EXPECT_EQ(step["phase"], "prefill");
  EXPECT_EQ(step["over"], true);
  EXPECT_EQ(lines(o.err), 1u) << o.err;
  EXPECT_EQ(o.err.rfind("kpath: step " + std::to_string(first) + " drifts", 0), 0u) << o.err;
}

TEST_F(VerifyCli, TableMarksTheFirstDrift) {
  const Output o = kpath_verify("verify -m '" + kQ4kModel + "' --backend cpu --kernel-path '" + path_ + "' --kernel-dir '" +
                         kernel_dir_ + "' --reference-path gemma2-q4k-dequant-f32 -n 0");
  EXPECT_EQ(o.exit_code, 1) << o.err;
  const size_t at = o.out.find("<- first drift");
  ASSERT_NE(at, std::string::npos) << o.out;
  const std::string row = o.out.substr(o.out.rfind('\n', at) + 1, at - o.out.rfind('\n', at));
  EXPECT_EQ(row.rfind(std::to_string(kp::verify_testing::prefill_activation_index(2)) + " ", 0), 0u) << row;
  EXPECT_NE(row.find("gelu_mul_mine"), std::string::npos) << row;
}

TEST_F(VerifyCli, CustomKernelWithoutItsDirectoryIsOneError) {
  const Output o = kpath_verify("verify -m '" + kQ4kModel + "' --backend cpu --kernel-path '" + path_ + "'");
  EXPECT_EQ(o.exit_code, 1);
  EXPECT_EQ(o.err.rfind("kpath: ", 0), 0u) << o.err;
  EXPECT_NE(o.err.find("gelu_mul_mine"), std::string::npos) << o.err;
}

TEST(VerifyCliText, PerplexityAndDivergencePerPath) {
  const std::string text = verify_temp_path("text.txt");
  {
    std::ofstream f(text);
    for (int i = 0; i < 8; ++i) f << "In the beginning God created the heaven and the earth. And the earth was without form. ";
  }
  const Output o = kpath_verify("verify -m '" + kQ4kModel +
                         "' --backend cpu --kernel-path gemma2-q4k-fused,gemma2-q4k-dequant-f16 --text '" + text +
                         "' -c 32 --chunks 2 --json");
  ASSERT_EQ(o.exit_code, 0) << o.err;
  const auto doc = nlohmann::json::parse(o.out, nullptr, false);
  ASSERT_FALSE(doc.is_discarded()) << o.out;
  EXPECT_EQ(doc["ctx"], 32);
  ASSERT_EQ(doc["paths"].size(), 2u);
  const auto& fused = doc["paths"][0];
  const auto& f16 = doc["paths"][1];
  EXPECT_EQ(fused["path"], "gemma2-q4k-fused");
  EXPECT_EQ(fused["chunks"], 2);
  EXPECT_EQ(fused["tokens"], 2 * (32 - 1 - 16));
  // The CPU backend computes the fused path on the same weights as the reference, with the
  // activations of its K-quant products rounded to 16 bits (about 3e-5 relative per product).
  EXPECT_LT(fused["kld_mean"].get<double>(), 1e-6);
  EXPECT_EQ(fused["top1"], 1.0);
  const double ref_ppl = doc["reference"]["ppl"].get<double>();
  EXPECT_NEAR(fused["ppl"].get<double>(), ref_ppl, 1e-4 * ref_ppl);
  // Weights rounded to f16 move the distribution, a little.
  EXPECT_GT(f16["kld_mean"].get<double>(), fused["kld_mean"].get<double>());
  EXPECT_LT(f16["kld_mean"].get<double>(), 1e-2);
  std::remove(text.c_str());
}

TEST(VerifyCliErrors, BadInputIsOneLine) {
  const std::string m = "-m '" + kQ4kModel + "' --backend cpu ";
  for (const std::string& args :
       {m + "--tolerance -1", m + "-n -3", m + "--text /nonexistent/kjv.txt",
        m + "--kernel-path gemma2-q4k-fused,gemma2-q4k-dequant-f32", m + "--kernel-path no-such-path",
        m + "--reference-path no-such-path", std::string("--backend nope"), m + "--text /dev/null -c 2"}) {
    const Output o = kpath_verify("verify " + args);
    EXPECT_NE(o.exit_code, 0) << args;
    EXPECT_NE(o.exit_code, -1) << args << ": crashed";
    EXPECT_EQ(o.err.rfind("kpath: ", 0), 0u) << args << ": " << o.err;
    EXPECT_EQ(lines(o.err), 1u) << args << ": " << o.err;
  }
}

}  // namespace

// `kpath info` end to end: runs the kpath binary and reads its output.
// Expected numbers come from the fixture's architecture (tests/data README):
// parameters = 4096*256 (token_embd) + 6 layers * (q 256*256 + k 256*128 +
// v 256*128 + o 256*256 + 3 FFN 256*768 + 4 norms 256) + output_norm 256.
#include <gtest/gtest.h>

#include <sstream>
#include <string>

#include "../support/run_kpath.h"

namespace {

using RunResult = kp::test::Output;

RunResult run_kpath(const std::string& args) { return kp::test::run_kpath("gguf_info_cli", args); }

// The first line starting with `prefix`, its words joined by single spaces.
std::string words_of_line(const std::string& text, const std::string& prefix) {
  const size_t at = text.find("\n" + prefix);
  if (at == std::string::npos) return "<no line starting with '" + prefix + "'>";
  std::istringstream line(text.substr(at + 1, text.find('\n', at + 1) - at - 1));
  std::string word, out;
  while (line >> word) out += (out.empty() ? "" : " ") + word;
  return out;
}

bool has(const std::string& text, const std::string& needle) { return text.find(needle) != std::string::npos; }

TEST(KpathInfo, DescribesTheQ4KMFixture) {
  const RunResult r = run_kpath(std::string("info '") + KP_SOURCE_DIR + "/models/kjv-tiny-q4_k_m.gguf'");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_TRUE(r.err.empty()) << r.err;
  EXPECT_TRUE(has(r.out, "version 3, alignment 32")) << r.out;
  EXPECT_TRUE(has(r.out, "metadata (27 keys):"));
  EXPECT_TRUE(has(r.out, "\n  general.architecture = gemma2\n"));
  EXPECT_TRUE(has(r.out, "\n  gemma2.block_count = 6\n"));
  EXPECT_TRUE(has(r.out, "\n  gemma2.attn_logit_softcapping = 50\n"));
  EXPECT_TRUE(has(r.out, "\n  tokenizer.ggml.add_bos_token = true\n"));
  // A long array: summarized with its count, type and first items.
  EXPECT_TRUE(has(r.out, "\n  tokenizer.ggml.tokens = [4096 x string] \"<pad>\", \"<eos>\", \"<bos>\", \"<unk>\", \"\\n\", ...\n"))
      << r.out;
  EXPECT_TRUE(has(r.out, "tensors (68;"));
  // token_embd: Q6_K, 4096 rows of 256 = 4096 blocks of 210 bytes.
  const size_t row = r.out.find("\n  token_embd.weight ");
  ASSERT_NE(row, std::string::npos);
  const std::string line = r.out.substr(row + 1, r.out.find('\n', row + 1) - row - 1);
  EXPECT_TRUE(has(line, " Q6_K ")) << line;
  EXPECT_TRUE(has(line, " [256, 4096] ")) << line;
  EXPECT_TRUE(line.ends_with(" 860160")) << line;
  EXPECT_TRUE(has(r.out, "68 tensors, 5,773,568 parameters, 3,658,240 bytes")) << r.out;
  // Per type: Q6_K = token_embd + attn_v and ffn_down of layers 2 and 5; bytes at 210 per 256.
  EXPECT_EQ(words_of_line(r.out, "  Q6_K "), "Q6_K 5 tensors 1,507,328 parameters 1,236,480 bytes 33.8% 6.56 bits/weight");
  EXPECT_EQ(words_of_line(r.out, "  Q4_K "), "Q4_K 38 tensors 4,259,840 parameters 2,396,160 bytes 65.5% 4.50 bits/weight");
  EXPECT_EQ(words_of_line(r.out, "  F32 "), "F32 25 tensors 6,400 parameters 25,600 bytes 0.7% 32.00 bits/weight");
}

TEST(KpathInfo, FullPrintsEveryItem) {
  const RunResult r = run_kpath(std::string("info --full '") + KP_TEST_DATA + "/kjv-tiny-f16.gguf'");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_FALSE(has(r.out, "[4096 x string]"));
  EXPECT_TRUE(has(r.out, "\"<0x0A>\", \"<0x0B>\""));
  EXPECT_TRUE(has(r.out, "43 tensors")) << r.out;  // the F16 matrices
}

TEST(KpathInfo, MissingFileIsOneLineOnStderr) {
  const RunResult r = run_kpath("info /nonexistent/dir/model.gguf");
  EXPECT_NE(r.exit_code, 0);
  EXPECT_TRUE(r.out.empty()) << r.out;
  EXPECT_EQ(r.err, "kpath: /nonexistent/dir/model.gguf: cannot open: No such file or directory\n");
}

TEST(KpathInfo, NotAGgufFileIsOneLineOnStderr) {
  const std::string path = std::string(KP_TEST_DATA) + "/dequant-golden.json";
  const RunResult r = run_kpath("info '" + path + "'");
  EXPECT_NE(r.exit_code, 0);
  EXPECT_TRUE(r.out.empty()) << r.out;
  EXPECT_TRUE(r.err.starts_with("kpath: " + path + ": not a GGUF file: magic")) << r.err;
  EXPECT_EQ(r.err.find('\n'), r.err.size() - 1) << r.err;
}

}  // namespace

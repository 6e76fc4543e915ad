// Reproducibility: the same model, kernel path, backend, seed and prompt give
// the same tokens every time: twice in one session, in a second session of the
// same process, and (SampledRunsOfTheCliAgree) in two runs of the kpath binary.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "../support/run_kpath.h"
#include "../support/shared_model.h"
#include "../support/soak.h"

namespace kp::soak {
namespace {

const std::string kQ4k = std::string(KP_TEST_DATA) + "/kjv-tiny-q4_k.gguf";

const format::GgufFile& model() { return test::shared_model(kQ4k); }

std::vector<int32_t> prompt() {
  auto tok = model::Tokenizer::from_gguf(model());
  EXPECT_TRUE(tok.ok()) << tok.error().message;
  return tok->encode("And God said, Let there be light", true);
}

TEST(Reproducibility, SameSeedSameTokensInOneProcess) {
  const std::vector<int32_t> p = prompt();
  auto first = open_session(model(), "cpu");
  ASSERT_TRUE(first.ok()) << first.error().message;
  Sampling sampled;  // temperature 0.8, top-k 40, top-p 0.95, min-p 0.05
  sampled.seed = 1;
  Sampling greedy;
  greedy.temperature = 0.0f;

  auto a = generate((*first)->executor(), p, 24, sampled);
  ASSERT_TRUE(a.ok()) << a.error().message;
  auto g = generate((*first)->executor(), p, 24, greedy);
  ASSERT_TRUE(g.ok()) << g.error().message;
  auto b = generate((*first)->executor(), p, 24, sampled);  // after other work in the same session
  ASSERT_TRUE(b.ok()) << b.error().message;
  EXPECT_EQ(*a, *b);

  auto second = open_session(model(), "cpu");
  ASSERT_TRUE(second.ok()) << second.error().message;
  auto c = generate((*second)->executor(), p, 24, sampled);
  ASSERT_TRUE(c.ok()) << c.error().message;
  EXPECT_EQ(*a, *c);
  auto g2 = generate((*second)->executor(), p, 24, greedy);
  ASSERT_TRUE(g2.ok()) << g2.error().message;
  EXPECT_EQ(*g, *g2);

  // The seed matters: a sampled run is not greedy decoding in disguise.
  Sampling other = sampled;
  other.seed = 2;
  auto d = generate((*second)->executor(), p, 24, other);
  ASSERT_TRUE(d.ok()) << d.error().message;
  EXPECT_NE(*a, *d) << "seeds 1 and 2 gave the same 24 sampled tokens";
}

// Runs `kpath <args>` (args already shell-quoted).
using test::Output;
Output kpath(const std::string& args) { return test::run_kpath("kp_repro", args); }

TEST(Reproducibility, SampledRunsOfTheCliAgree) {
  const std::string args = "run --backend cpu --seed 1 -m '" + kQ4k + "' -p 'And God said' -n 24 --temp 0.8";
  const Output a = kpath(args);
  ASSERT_EQ(a.exit_code, 0) << a.err;
  const Output b = kpath(args);
  ASSERT_EQ(b.exit_code, 0) << b.err;
  EXPECT_GT(a.out.size(), std::string("And God said").size()) << "nothing was generated";
  EXPECT_EQ(a.out, b.out);
}

}  // namespace
}  // namespace kp::soak

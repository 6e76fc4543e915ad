// Sampler: greedy, the empirical distribution against softmax(logits / T),
// seeded determinism, each filter's effect (top-k, top-p, min-p), llama.cpp's
// filter-then-temperature order, the repetition penalty and parameter checks.
#include <gtest/gtest.h>

#include <cmath>
#include <map>
#include <vector>

#include "runtime/sampler.h"

namespace kp::runtime {
namespace {

// Parameters with every filter off and temperature 1: plain softmax sampling.
SamplingParams plain(uint64_t seed = 1) {
  SamplingParams p;
  p.temperature = 1.0f;
  p.top_k = 0;
  p.top_p = 1.0f;
  p.min_p = 0.0f;
  p.repeat_penalty = 1.0f;
  p.seed = seed;
  return p;
}

std::vector<float> log_probs(const std::vector<double>& p) {
  std::vector<float> z;
  for (double x : p) z.push_back(static_cast<float>(std::log(x)));
  return z;
}

std::vector<int32_t> ids_of(const std::vector<TokenLogit>& c) {
  std::vector<int32_t> ids;
  for (const TokenLogit& t : c) ids.push_back(t.id);
  return ids;
}

// Frequencies of each id over n draws.
std::vector<double> frequencies(Sampler& s, const std::vector<float>& logits, int n) {
  std::vector<double> f(logits.size(), 0.0);
  for (int i = 0; i < n; ++i) f[static_cast<size_t>(s.sample(logits, {}))] += 1.0 / n;
  return f;
}

TEST(Sampler, GreedyPicksTheArgmaxAndTheLowestIdOnATie) {
  SamplingParams p = plain();
  p.temperature = 0.0f;
  Sampler s(p);
  EXPECT_EQ(s.sample(std::vector<float>{0.1f, 3.0f, -2.0f, 2.9f}, {}), 1);
  EXPECT_EQ(s.sample(std::vector<float>{1.0f, 5.0f, 5.0f}, {}), 1);
  p.temperature = -1.0f;  // negative also means greedy
  Sampler s2(p);
  EXPECT_EQ(s2.sample(std::vector<float>{-4.0f, -3.0f, -3.5f}, {}), 1);
  EXPECT_EQ(argmax(std::vector<float>{2.0f, 1.0f, 2.0f}), 0);
}

TEST(Sampler, DrawsFollowTheSoftmax) {
  const std::vector<double> want = {0.1, 0.2, 0.3, 0.4};
  Sampler s(plain(42));
  const std::vector<double> got = frequencies(s, log_probs(want), 200000);
  // Binomial standard deviation at p = 0.4, n = 2e5 is 0.0011; allow ~5 sigma.
  for (size_t i = 0; i < want.size(); ++i) EXPECT_NEAR(got[i], want[i], 0.006) << "token " << i;
}

TEST(Sampler, TemperatureSharpensAndFlattens) {
  const std::vector<double> p = {0.1, 0.2, 0.3, 0.4};
  SamplingParams params = plain(7);
  params.temperature = 0.5f;  // probabilities ~ p^2
  Sampler cold(params);
  std::vector<double> got = frequencies(cold, log_probs(p), 200000);
  const double z2 = 0.01 + 0.04 + 0.09 + 0.16;
  for (size_t i = 0; i < p.size(); ++i) EXPECT_NEAR(got[i], p[i] * p[i] / z2, 0.006) << "token " << i;

  params.temperature = 2.0f;  // probabilities ~ sqrt(p)
  Sampler hot(params);
  got = frequencies(hot, log_probs(p), 200000);
  double zs = 0;
  for (double x : p) zs += std::sqrt(x);
  for (size_t i = 0; i < p.size(); ++i) EXPECT_NEAR(got[i], std::sqrt(p[i]) / zs, 0.006) << "token " << i;

  const std::vector<TokenLogit> c = hot.candidates(std::vector<float>{1.0f, 3.0f}, {});
  ASSERT_EQ(c.size(), 2u);
  EXPECT_EQ(c[0].id, 1);
  EXPECT_FLOAT_EQ(c[0].logit, 1.5f);
  EXPECT_FLOAT_EQ(c[1].logit, 0.5f);
}

TEST(Sampler, SameSeedSameTokensDifferentSeedDifferentTokens) {
  const std::vector<float> flat(100, 0.0f);
  auto draw = [&](uint64_t seed) {
    Sampler s(plain(seed));
    std::vector<int32_t> out;
    for (int i = 0; i < 50; ++i) out.push_back(s.sample(flat, {}));
    return out;
  };
  EXPECT_EQ(draw(123), draw(123));
  EXPECT_NE(draw(123), draw(124));  // equal with probability 1e-100
}

TEST(Sampler, TopKKeepsTheKLargest) {
  SamplingParams p = plain();
  p.top_k = 2;
  Sampler s(p);
  const std::vector<float> z = {0.5f, 2.0f, -1.0f, 1.5f, 0.0f};
  EXPECT_EQ(ids_of(s.candidates(z, {})), (std::vector<int32_t>{1, 3}));
  for (int i = 0; i < 2000; ++i) {
    const int32_t id = s.sample(z, {});
    ASSERT_TRUE(id == 1 || id == 3) << id;
  }
  p.top_k = 10;  // more than the vocabulary: all kept, sorted
  EXPECT_EQ(ids_of(Sampler(p).candidates(z, {})), (std::vector<int32_t>{1, 3, 0, 4, 2}));
}

TEST(Sampler, TopPKeepsTheSmallestPrefixReachingP) {
  const std::vector<float> z = log_probs({0.05, 0.5, 0.15, 0.3});
  SamplingParams p = plain();
  p.top_p = 0.75f;  // 0.5 < 0.75 <= 0.8
  EXPECT_EQ(ids_of(Sampler(p).candidates(z, {})), (std::vector<int32_t>{1, 3}));
  p.top_p = 0.85f;  // 0.8 < 0.85 <= 0.95
  EXPECT_EQ(ids_of(Sampler(p).candidates(z, {})), (std::vector<int32_t>{1, 3, 2}));
  p.top_p = 0.0f;   // always at least one token
  EXPECT_EQ(ids_of(Sampler(p).candidates(z, {})), (std::vector<int32_t>{1}));
  p.top_p = 1.0f;   // off
  EXPECT_EQ(Sampler(p).candidates(z, {}).size(), 4u);

  // The kept tokens are drawn renormalized: 0.5 / 0.8 and 0.3 / 0.8.
  p.top_p = 0.75f;
  Sampler s(p);
  const std::vector<double> f = frequencies(s, z, 100000);
  EXPECT_NEAR(f[1], 0.625, 0.008);
  EXPECT_NEAR(f[3], 0.375, 0.008);
  EXPECT_EQ(f[0] + f[2], 0.0);
}

TEST(Sampler, MinPDropsTokensBelowAFractionOfTheBest) {
  const std::vector<float> z = log_probs({0.05, 0.5, 0.15, 0.3});
  SamplingParams p = plain();
  p.min_p = 0.2f;  // keeps p >= 0.1
  EXPECT_EQ(ids_of(Sampler(p).candidates(z, {})), (std::vector<int32_t>{1, 3, 2}));
  p.min_p = 0.5f;  // keeps p >= 0.25
  EXPECT_EQ(ids_of(Sampler(p).candidates(z, {})), (std::vector<int32_t>{1, 3}));
  p.min_p = 1.0f;
  EXPECT_EQ(ids_of(Sampler(p).candidates(z, {})), (std::vector<int32_t>{1}));
}

// llama.cpp applies temperature after the filters: a high temperature must not
// let more tokens through min-p or top-p.
TEST(Sampler, FiltersSeeTheUntemperedDistribution) {
  const std::vector<float> z = log_probs({0.05, 0.5, 0.15, 0.3});
  SamplingParams p = plain();
  p.temperature = 100.0f;
  p.min_p = 0.5f;
  EXPECT_EQ(ids_of(Sampler(p).candidates(z, {})), (std::vector<int32_t>{1, 3}));
  p.min_p = 0.0f;
  p.top_p = 0.75f;
  EXPECT_EQ(ids_of(Sampler(p).candidates(z, {})), (std::vector<int32_t>{1, 3}));
}

TEST(Sampler, RepeatPenaltyDividesPositiveAndMultipliesNegativeLogits) {
  std::vector<float> z = {2.0f, -2.0f, 1.0f, 0.5f};
  const std::vector<int32_t> history = {3, 0, 1, 0};
  apply_repeat_penalty(z, history, 3, 2.0f);  // window {0, 1, 0}: token 0 once, token 1
  EXPECT_EQ(z, (std::vector<float>{1.0f, -4.0f, 1.0f, 0.5f}));

  z = {2.0f, -2.0f, 1.0f, 0.5f};
  apply_repeat_penalty(z, history, -1, 2.0f);  // whole history: 3 too
  EXPECT_EQ(z, (std::vector<float>{1.0f, -4.0f, 1.0f, 0.25f}));

  z = {2.0f, -2.0f, 1.0f, 0.5f};
  apply_repeat_penalty(z, history, 0, 2.0f);  // off
  EXPECT_EQ(z, (std::vector<float>{2.0f, -2.0f, 1.0f, 0.5f}));

  // The penalty changes the greedy choice: token 0 (2.0 -> 1.0) loses to 1.5.
  SamplingParams p = plain();
  p.temperature = 0.0f;
  p.repeat_penalty = 2.0f;
  p.repeat_last_n = 64;
  Sampler s(p);
  EXPECT_EQ(s.sample(std::vector<float>{2.0f, 1.5f}, std::vector<int32_t>{0}), 1);
  EXPECT_EQ(s.sample(std::vector<float>{2.0f, 1.5f}, std::vector<int32_t>{1}), 0);
}

TEST(Sampler, ValidateNamesTheBadParameter) {
  auto error_of = [](SamplingParams p) {
    const Status st = validate(p);
    return st.ok() ? std::string() : st.error().message;
  };
  EXPECT_EQ(error_of(SamplingParams{}), "");
  SamplingParams p;
  p.top_p = 1.5f;
  EXPECT_NE(error_of(p).find("top-p"), std::string::npos);
  p = {};
  p.top_p = -0.1f;
  EXPECT_NE(error_of(p).find("top-p"), std::string::npos);
  p = {};
  p.min_p = 2.0f;
  EXPECT_NE(error_of(p).find("min-p"), std::string::npos);
  p = {};
  p.repeat_penalty = 0.0f;
  EXPECT_NE(error_of(p).find("repeat-penalty"), std::string::npos);
  p = {};
  p.repeat_last_n = -2;
  EXPECT_NE(error_of(p).find("repeat-last-n"), std::string::npos);
  p = {};
  p.temperature = NAN;
  EXPECT_NE(error_of(p).find("temperature"), std::string::npos);
}

}  // namespace
}  // namespace kp::runtime

// The reference forward pass against outside oracles (tests/data):
//   golden-hf-kjv-tiny.json            HF transformers, float64, on the F16 file
//   golden-numpy-kjv-tiny-{q4_k_m,q4_k} float64 numpy on gguf-py's dequantized weights
//   golden-llamacpp-kjv-tiny-*.json    llama.cpp's CPU backend (f16 KV, 8-bit activations)
// Each model runs every prompt once (prefill with all logits, then 48 greedy
// decode steps, one token each); the tests share those runs.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "core/check.h"
#include "core/mapped_file.h"
#include "format/gguf.h"
#include "model/gemma2_config.h"
#include "model/reference_forward.h"

namespace kp::model {
namespace {

const std::string kData = KP_TEST_DATA;
const std::string kF16Path = kData + "/kjv-tiny-f16.gguf";
const std::string kQ4K = kData + "/kjv-tiny-q4_k.gguf";
const std::string kQ4KM = std::string(KP_SOURCE_DIR) + "/models/kjv-tiny-q4_k_m.gguf";

struct GoldenCase {
  std::vector<int32_t> tokens;
  std::vector<float> last_logits;
  std::vector<int32_t> greedy_tokens;
  std::vector<std::vector<int32_t>> top5_per_position;  // HF golden only
};

const std::vector<GoldenCase>& golden(const std::string& file) {
  static std::map<std::string, std::vector<GoldenCase>> cache;
  auto it = cache.find(file);
  if (it != cache.end()) return it->second;
  Result<std::string> text = read_text_file(kData + "/" + file);
  KP_CHECK(text.ok(), "cannot read a golden file");
  const nlohmann::json j = nlohmann::json::parse(*text);
  std::vector<GoldenCase> cases;
  for (const auto& c : j.at("cases")) {
    GoldenCase g;
    g.tokens = c.at("tokens").get<std::vector<int32_t>>();
    g.last_logits = c.at("last_logits").get<std::vector<float>>();
    g.greedy_tokens = c.at("greedy_tokens").get<std::vector<int32_t>>();
    if (c.contains("top5_per_position")) {
      g.top5_per_position = c.at("top5_per_position").get<std::vector<std::vector<int32_t>>>();
    }
    cases.push_back(std::move(g));
  }
  return cache.emplace(file, std::move(cases)).first->second;
}

// What the reference computes for one prompt.
struct CaseRun {
  std::vector<float> last_logits;       // [n_vocab]
  std::vector<int32_t> top1_per_position;
  std::vector<int32_t> greedy_tokens;   // 48, EOS does not stop
};

int32_t argmax(const float* z, size_t n) {
  size_t best = 0;
  for (size_t i = 1; i < n; ++i) {
    if (z[i] > z[best]) best = i;
  }
  return static_cast<int32_t>(best);
}

double rel_l2(const std::vector<float>& got, const std::vector<float>& want) {
  EXPECT_EQ(got.size(), want.size());
  double num = 0, den = 0;
  for (size_t i = 0; i < std::min(got.size(), want.size()); ++i) {
    const double d = static_cast<double>(got[i]) - want[i];
    num += d * d;
    den += static_cast<double>(want[i]) * want[i];
  }
  return std::sqrt(num / den);
}

struct LoadedModel {
  Gemma2Config cfg;
  std::shared_ptr<const DenseWeights> weights;
};

const LoadedModel& loaded(const std::string& path) {
  static std::map<std::string, LoadedModel> cache;
  auto it = cache.find(path);
  if (it != cache.end()) return it->second;
  Result<format::GgufFile> file = format::GgufFile::open(path);
  EXPECT_TRUE(file.ok()) << file.error().message;
  KP_CHECK(file.ok(), "cannot open a fixture model");
  Result<Gemma2Config> cfg = load_gemma2_config(*file);
  EXPECT_TRUE(cfg.ok()) << cfg.error().message;
  KP_CHECK(cfg.ok(), "fixture config does not load");
  Result<DenseWeights> w = load_dense_weights(*file, *cfg);
  EXPECT_TRUE(w.ok()) << w.error().message;
  KP_CHECK(w.ok(), "fixture weights do not load");
  LoadedModel m{*cfg, std::make_shared<const DenseWeights>(std::move(w).value())};
  return cache.emplace(path, std::move(m)).first->second;
}

// Runs the HF golden's prompts through the model at `path`, once per path.
const std::vector<CaseRun>& runs(const std::string& path) {
  static std::map<std::string, std::vector<CaseRun>> cache;
  auto it = cache.find(path);
  if (it != cache.end()) return it->second;
  const LoadedModel& m = loaded(path);
  const size_t n_vocab = m.cfg.n_vocab;
  std::vector<CaseRun> out;
  for (const GoldenCase& g : golden("golden-hf-kjv-tiny.json")) {
    ReferenceModel model(m.cfg, m.weights, m.cfg.n_ctx);
    CaseRun r;
    Result<std::vector<float>> all = model.forward(g.tokens, /*all_logits=*/true);
    KP_CHECK(all.ok(), "prefill failed");
    KP_CHECK(all->size() == g.tokens.size() * n_vocab, "prefill returned the wrong logits shape");
    for (size_t t = 0; t < g.tokens.size(); ++t) {
      r.top1_per_position.push_back(argmax(all->data() + t * n_vocab, n_vocab));
    }
    r.last_logits.assign(all->end() - static_cast<std::ptrdiff_t>(n_vocab), all->end());
    int32_t next = r.top1_per_position.back();
    for (size_t step = 0; step < g.greedy_tokens.size(); ++step) {
      r.greedy_tokens.push_back(next);
      if (step + 1 == g.greedy_tokens.size()) break;
      Result<std::vector<float>> z = model.forward({next}, /*all_logits=*/false);
      KP_CHECK(z.ok() && z->size() == n_vocab, "decode failed");
      next = argmax(z->data(), n_vocab);
    }
    out.push_back(std::move(r));
  }
  return cache.emplace(path, std::move(out)).first->second;
}

// Last-position logits within `max_rel` (relative L2) and the same 48 greedy tokens.
void expect_matches_exact_oracle(const std::string& model_path, const std::string& golden_file,
                                 double max_rel) {
  const std::vector<GoldenCase>& want = golden(golden_file);
  const std::vector<CaseRun>& got = runs(model_path);
  ASSERT_EQ(want.size(), got.size());
  for (size_t c = 0; c < want.size(); ++c) {
    ASSERT_EQ(want[c].tokens, golden("golden-hf-kjv-tiny.json")[c].tokens) << golden_file << " case " << c;
    const double rel = rel_l2(got[c].last_logits, want[c].last_logits);
    std::printf("  %s case %zu (%zu tokens): relative L2 %.3g\n", golden_file.c_str(), c,
                want[c].tokens.size(), rel);
    EXPECT_LE(rel, max_rel) << golden_file << " case " << c;
    EXPECT_EQ(got[c].greedy_tokens, want[c].greedy_tokens) << golden_file << " case " << c;
  }
}

// Every position's top-1 token is among HF's top 5 there.
void expect_top1_in_hf_top5(const std::string& model_path) {
  const std::vector<GoldenCase>& want = golden("golden-hf-kjv-tiny.json");
  const std::vector<CaseRun>& got = runs(model_path);
  ASSERT_EQ(want.size(), got.size());
  for (size_t c = 0; c < want.size(); ++c) {
    ASSERT_EQ(want[c].top5_per_position.size(), want[c].tokens.size());
    ASSERT_EQ(got[c].top1_per_position.size(), want[c].tokens.size());
    for (size_t t = 0; t < want[c].tokens.size(); ++t) {
      const std::vector<int32_t>& top5 = want[c].top5_per_position[t];
      EXPECT_NE(std::find(top5.begin(), top5.end(), got[c].top1_per_position[t]), top5.end())
          << "case " << c << " position " << t << ": top-1 " << got[c].top1_per_position[t];
    }
  }
}

// llama.cpp quantizes the KV cache and activations, so only the argmax and a
// loose relative error are expected to agree.
void expect_close_to_llamacpp(const std::string& model_path, const std::string& golden_file) {
  const std::vector<GoldenCase>& want = golden(golden_file);
  const std::vector<CaseRun>& got = runs(model_path);
  ASSERT_EQ(want.size(), got.size());
  for (size_t c = 0; c < want.size(); ++c) {
    ASSERT_EQ(want[c].tokens, golden("golden-hf-kjv-tiny.json")[c].tokens) << golden_file << " case " << c;
    const double rel = rel_l2(got[c].last_logits, want[c].last_logits);
    std::printf("  %s case %zu: relative L2 %.3g\n", golden_file.c_str(), c, rel);
    EXPECT_LE(rel, 5e-2) << golden_file << " case " << c;
    const size_t n = want[c].last_logits.size();
    EXPECT_EQ(argmax(got[c].last_logits.data(), n), argmax(want[c].last_logits.data(), n))
        << golden_file << " case " << c;
  }
}

// One test per model file, so that a process (ctest runs each test in its
// own) computes that model's runs once and checks every oracle against them.
TEST(ReferenceForward, F16MatchesHfAndLlamaCpp) {
  {
    SCOPED_TRACE("HF float64 golden");
    expect_matches_exact_oracle(kF16Path, "golden-hf-kjv-tiny.json", 1e-4);
    expect_top1_in_hf_top5(kF16Path);
  }
  SCOPED_TRACE("llama.cpp golden");
  expect_close_to_llamacpp(kF16Path, "golden-llamacpp-kjv-tiny-f16.json");
}

TEST(ReferenceForward, Q4KMMatchesNumpyAndLlamaCpp) {
  {
    SCOPED_TRACE("numpy float64 golden");
    expect_matches_exact_oracle(kQ4KM, "golden-numpy-kjv-tiny-q4_k_m.json", 1e-4);
  }
  SCOPED_TRACE("llama.cpp golden");
  expect_close_to_llamacpp(kQ4KM, "golden-llamacpp-kjv-tiny-q4_k_m.json");
}

TEST(ReferenceForward, Q4KMatchesNumpyAndLlamaCpp) {
  {
    SCOPED_TRACE("numpy float64 golden");
    expect_matches_exact_oracle(kQ4K, "golden-numpy-kjv-tiny-q4_k.json", 1e-4);
  }
  SCOPED_TRACE("llama.cpp golden");
  expect_close_to_llamacpp(kQ4K, "golden-llamacpp-kjv-tiny-q4_k.json");
}

// Prefill in pieces through the KV cache must give the rows of one prefill.
// The 274-token prompt crosses the 64-token sliding window.
TEST(ReferenceForward, ChunkedPrefillMatchesOnePrefill) {
  const LoadedModel& m = loaded(kF16Path);
  const std::vector<int32_t>& prompt = golden("golden-hf-kjv-tiny.json").back().tokens;
  const std::vector<size_t> chunks = {1, 66, 3, 70};  // 140 tokens, more than twice the window
  ASSERT_GE(prompt.size(), 140u);
  const std::vector<int32_t> tokens(prompt.begin(), prompt.begin() + 140);
  ASSERT_GT(tokens.size(), 2u * m.cfg.sliding_window);
  ReferenceModel whole(m.cfg, m.weights, m.cfg.n_ctx);
  Result<std::vector<float>> all = whole.forward(tokens, true);
  ASSERT_TRUE(all.ok()) << all.error().message;

  ReferenceModel pieces(m.cfg, m.weights, m.cfg.n_ctx);
  const size_t n_vocab = m.cfg.n_vocab;
  size_t begin = 0;
  for (const size_t len : chunks) {
    std::vector<int32_t> chunk(tokens.begin() + begin, tokens.begin() + begin + len);
    Result<std::vector<float>> z = pieces.forward(chunk, true);
    ASSERT_TRUE(z.ok()) << z.error().message;
    ASSERT_EQ(z->size(), len * n_vocab);
    for (size_t t = 0; t < len; ++t) {
      std::vector<float> row(z->begin() + t * n_vocab, z->begin() + (t + 1) * n_vocab);
      std::vector<float> ref(all->begin() + (begin + t) * n_vocab, all->begin() + (begin + t + 1) * n_vocab);
      EXPECT_LE(rel_l2(row, ref), 1e-6) << "position " << begin + t;
    }
    begin += len;
  }
  EXPECT_EQ(pieces.pos(), tokens.size());
}

TEST(ReferenceForward, LastRowOnlyEqualsLastRowOfAll) {
  const LoadedModel& m = loaded(kF16Path);
  const std::vector<int32_t>& tokens = golden("golden-hf-kjv-tiny.json")[1].tokens;
  ReferenceModel a(m.cfg, m.weights, 64), b(m.cfg, m.weights, 64);
  Result<std::vector<float>> all = a.forward(tokens, true);
  Result<std::vector<float>> last = b.forward(tokens, false);
  ASSERT_TRUE(all.ok() && last.ok());
  ASSERT_EQ(last->size(), m.cfg.n_vocab);
  EXPECT_EQ(*last, std::vector<float>(all->end() - m.cfg.n_vocab, all->end()));
}

TEST(ReferenceForward, RejectsContextOverflowBadTokensAndEmptyInput) {
  const LoadedModel& m = loaded(kF16Path);
  ReferenceModel model(m.cfg, m.weights, 4);
  Result<std::vector<float>> r = model.forward({2, 300, 263, 345, 824}, false);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().message.find("overflow the context of 4"), std::string::npos) << r.error().message;
  EXPECT_EQ(model.pos(), 0u);

  r = model.forward({2, static_cast<int32_t>(m.cfg.n_vocab)}, false);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().message.find("outside the vocabulary"), std::string::npos) << r.error().message;
  r = model.forward({-1}, false);
  ASSERT_FALSE(r.ok());
  r = model.forward({}, false);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(model.pos(), 0u);

  ASSERT_TRUE(model.forward({2, 300, 263, 345}, false).ok());
  EXPECT_EQ(model.pos(), 4u);
  r = model.forward({1}, false);
  ASSERT_FALSE(r.ok());
  model.reset();
  EXPECT_TRUE(model.forward({2}, false).ok());
}

}  // namespace
}  // namespace kp::model

// Tokenizer speed on a vocabulary the size of Gemma's (256,000 pieces):
//   BM_Encode1MiB        encode 1 MiB of English-like text (Zipf-distributed words)
//   BM_DecodeAll         decode the ids of that text back to a string
//   BM_LoadFromGguf      parse a 256,000-piece GGUF (in memory) and build the tokenizer
//
// The vocabulary is synthetic but shaped like a SentencePiece BPE one: control
// and byte pieces, single characters, then for words in frequency order their
// "▁"-prefixed prefixes and their suffixes, scored so that shorter pieces merge
// first. Words past the vocabulary's reach are segmented into smaller pieces
// and characters it lacks fall back to bytes. Everything is generated from a
// fixed seed (splitmix64), so every run measures the same text.
//
// Run: build/<dir>/bench/kp_tokenizer_bench   (results in bench/results/)
#include <benchmark/benchmark.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <set>
#include <string>
#include <unordered_set>
#include <vector>

#include "core/check.h"
#include "core/mapped_file.h"
#include "format/gguf.h"
#include "model/tokenizer.h"

namespace {

using kp::model::TokenizerVocab;
using kp::model::TokenType;

constexpr size_t kVocabSize = 256000;
constexpr size_t kTextBytes = 1 << 20;
const std::string kSpace = "\xE2\x96\x81";  // "▁"

struct SplitMix64 {
  uint64_t s;
  uint64_t next() {
    uint64_t z = (s += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
  }
  size_t below(size_t n) { return static_cast<size_t>(next() % n); }
  double unit() { return static_cast<double>(next() >> 11) * 0x1.0p-53; }
};

// Distinct lowercase words of 1 to 5 syllables, most frequent first.
std::vector<std::string> make_words(size_t n, SplitMix64& rng) {
  static const char* const kOnsets[] = {"b", "c", "d", "f", "g", "h", "j", "k", "l", "m", "n", "p", "r",
                                        "s", "t", "v", "w", "th", "sh", "ch", "br", "st", "gr", "pl"};
  static const char* const kVowels[] = {"a", "e", "i", "o", "u", "ea", "ou", "ai", "ie"};
  static const char* const kCodas[] = {"", "", "", "n", "r", "s", "th", "st", "nd", "ng", "l", "t"};
  std::vector<std::string> words;
  std::unordered_set<std::string> seen;
  while (words.size() < n) {
    std::string w;
    const size_t syllables = 1 + rng.below(3) + (rng.below(4) == 0 ? rng.below(3) : 0);
    for (size_t k = 0; k < syllables; ++k) {
      w += kOnsets[rng.below(std::size(kOnsets))];
      w += kVowels[rng.below(std::size(kVowels))];
      w += kCodas[rng.below(std::size(kCodas))];
    }
    if (seen.insert(w).second) words.push_back(std::move(w));
  }
  return words;
}

struct Corpus {
  TokenizerVocab vocab;
  std::string text;
};

Corpus make_corpus() {
  SplitMix64 rng{20261124};
  const std::vector<std::string> words = make_words(400000, rng);
  Corpus c;
  TokenizerVocab& v = c.vocab;
  std::unordered_set<std::string> have;
  const auto add = [&](const std::string& p, float score, TokenType t) {
    if (t != TokenType::kByte && t != TokenType::kControl && !have.insert(p).second) return;
    v.pieces.push_back(p);
    v.scores.push_back(score);
    v.types.push_back(t);
  };
  add("<pad>", 0, TokenType::kControl);
  add("<eos>", 0, TokenType::kControl);
  add("<bos>", 0, TokenType::kControl);
  add("<unk>", 0, TokenType::kUnknown);
  add("\n", 0, TokenType::kUserDefined);
  for (int b = 0; b < 256; ++b) {
    char name[8];
    std::snprintf(name, sizeof(name), "<0x%02X>", b);
    add(name, 0, TokenType::kByte);
  }
  // Single characters (no digits and no "q": those fall back to bytes).
  std::vector<std::string> chars = {kSpace, ",", ".", ";", ":", "!", "?", "'", "-"};
  for (char ch = 'a'; ch <= 'z'; ++ch) {
    if (ch != 'q') chars.emplace_back(1, ch);
  }
  for (char ch = 'A'; ch <= 'Z'; ++ch) chars.emplace_back(1, ch);

  // Candidate pieces: "▁" + every prefix of a word, and every suffix, ranked by
  // (length, word frequency) as BPE would learn them.
  struct Candidate {
    size_t len;
    size_t rank;
    std::string piece;
  };
  std::vector<Candidate> cands;
  for (size_t r = 0; r < 120000; ++r) {
    const std::string& w = words[r];
    for (size_t len = 1; len <= w.size(); ++len) cands.push_back({len + 1, r, kSpace + w.substr(0, len)});
    for (size_t len = 2; len < w.size(); ++len) cands.push_back({len, r, w.substr(w.size() - len)});
  }
  std::stable_sort(cands.begin(), cands.end(), [](const Candidate& a, const Candidate& b) {
    return a.len != b.len ? a.len < b.len : a.rank < b.rank;
  });
  float score = 0;
  for (const std::string& ch : chars) add(ch, score--, TokenType::kNormal);
  for (const Candidate& cand : cands) {
    if (v.pieces.size() == kVocabSize) break;
    add(cand.piece, score--, TokenType::kNormal);
  }
  KP_CHECK(v.pieces.size() == kVocabSize, "enough candidate pieces for the vocabulary");
  v.add_space_prefix = true;

  // Text: words drawn with rank = 400000^u (u uniform), about Zipf's law, in
  // sentences of 8 to 30 words with capitals, commas and periods, a newline
  // every few sentences, and now and then a number or a non-ASCII word.
  std::string& t = c.text;
  t.reserve(kTextBytes + 256);
  while (t.size() < kTextBytes) {
    const size_t n_words = 8 + rng.below(23);
    for (size_t k = 0; k < n_words; ++k) {
      std::string w = words[std::min(words.size() - 1, static_cast<size_t>(std::pow(400000.0, rng.unit())) - 1)];
      if (k == 0) w[0] = static_cast<char>(w[0] - 'a' + 'A');
      if (rng.below(200) == 0) w = std::to_string(rng.below(100000));
      if (rng.below(400) == 0) w += "\xC3\xA9";  // "é"
      t += w;
      t += k + 1 == n_words ? ". " : (rng.below(8) == 0 ? ", " : " ");
    }
    if (rng.below(4) == 0) t += "\n";
  }
  t.resize(kTextBytes);
  return c;
}

const Corpus& corpus() {
  static const Corpus c = make_corpus();
  return c;
}

kp::model::Tokenizer build_tokenizer() {
  kp::Result<kp::model::Tokenizer> t = kp::model::Tokenizer::from_vocab(corpus().vocab, "synthetic 256k vocabulary");
  KP_CHECK(t.ok(), "the synthetic vocabulary is valid");
  return std::move(t).value();
}

void BM_Encode1MiB(benchmark::State& state) {
  const kp::model::Tokenizer tok = build_tokenizer();
  const std::string& text = corpus().text;
  size_t n_tokens = 0;
  for (auto _ : state) {
    const std::vector<int32_t> ids = tok.encode(text, true);
    n_tokens = ids.size();
    benchmark::DoNotOptimize(ids.data());
  }
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * text.size()));
  state.counters["vocab"] = static_cast<double>(tok.n_vocab());
  state.counters["tokens"] = static_cast<double>(n_tokens);
  state.counters["bytes/token"] = static_cast<double>(text.size()) / static_cast<double>(n_tokens);
}
BENCHMARK(BM_Encode1MiB)->Unit(benchmark::kMillisecond);

void BM_DecodeAll(benchmark::State& state) {
  const kp::model::Tokenizer tok = build_tokenizer();
  const std::vector<int32_t> ids = tok.encode(corpus().text, false);
  for (auto _ : state) {
    std::string back = tok.decode(ids);
    KP_CHECK(back == corpus().text, "decode(encode(text)) == text");
    benchmark::DoNotOptimize(back.data());
  }
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * corpus().text.size()));
}
BENCHMARK(BM_DecodeAll)->Unit(benchmark::kMillisecond);

void BM_LoadFromGguf(benchmark::State& state) {
  using kp::format::GgufValue;
  using kp::format::GgufValueType;
  const TokenizerVocab& v = corpus().vocab;
  std::vector<GgufValue> tokens, scores, types;
  for (size_t i = 0; i < v.pieces.size(); ++i) {
    tokens.push_back(GgufValue::string(v.pieces[i]));
    scores.push_back(GgufValue::f32(v.scores[i]));
    types.push_back(GgufValue::i32(static_cast<int32_t>(v.types[i])));
  }
  kp::format::GgufWriter w;
  w.set("tokenizer.ggml.model", GgufValue::string("llama"));
  w.set("tokenizer.ggml.tokens", GgufValue::array(GgufValueType::STRING, std::move(tokens)));
  w.set("tokenizer.ggml.scores", GgufValue::array(GgufValueType::FLOAT32, std::move(scores)));
  w.set("tokenizer.ggml.token_type", GgufValue::array(GgufValueType::INT32, std::move(types)));
  const std::vector<uint8_t> bytes = w.to_bytes();
  const auto file_bytes = kp::MappedFile::from_bytes(bytes, "synthetic-256k.gguf");
  for (auto _ : state) {
    kp::Result<kp::format::GgufFile> f = kp::format::GgufFile::parse(file_bytes);
    KP_CHECK(f.ok(), "the synthetic GGUF parses");
    kp::Result<kp::model::Tokenizer> t = kp::model::Tokenizer::from_gguf(*f);
    KP_CHECK(t.ok() && t->n_vocab() == static_cast<int32_t>(kVocabSize), "the synthetic GGUF loads");
    benchmark::DoNotOptimize(t->n_vocab());
  }
  state.counters["gguf_MiB"] = static_cast<double>(bytes.size()) / (1 << 20);
}
BENCHMARK(BM_LoadFromGguf)->Unit(benchmark::kMillisecond);

}  // namespace

BENCHMARK_MAIN();

// Tokenizer tests: the kjv-tiny GGUF vocabulary against sentencepiece 0.1.97
// (tests/data/tokenizer-golden.json, 223 strings), edge cases (BOS, byte
// fallback, control-token text, empty and invalid UTF-8 input), random
// vocabularies against a plain quadratic BPE written here from the algorithm's
// definition, rejection of malformed GGUF tokenizer metadata, and `kpath tokenize`.
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <sys/wait.h>

#include <cmath>
#include <cstdio>
#include <fstream>
#include <map>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "core/check.h"
#include "core/mapped_file.h"
#include "format/gguf.h"
#include "model/tokenizer.h"

namespace kp::model {
namespace {

using format::GgufValue;
using format::GgufValueType;

const std::string kModelPath = std::string(KP_SOURCE_DIR) + "/models/kjv-tiny-q4_k_m.gguf";
constexpr const char* kSpace = "\xE2\x96\x81";  // "▁"

// Ids in the kjv-tiny vocabulary (from the fixture README and the golden file).
constexpr int32_t kPad = 0, kEos = 1, kBos = 2, kUnk = 3, kNewline = 4;
constexpr int32_t kFirstByte = 5;  // <0x00>; <0xNN> is 5 + NN

// tests/data/tokenizer-golden.json: {"cases": [{"text", "ids", "pieces", "decoded"}, ...]}.
const nlohmann::json& golden_cases() {
  static const nlohmann::json cases = [] {
    std::ifstream in(std::string(KP_TEST_DATA) + "/tokenizer-golden.json");
    KP_CHECK(in.good(), "tests/data/tokenizer-golden.json opens");
    return nlohmann::json::parse(in).at("cases");
  }();
  return cases;
}

// The golden case whose text is `text`.
const nlohmann::json& golden_case(const std::string& text) {
  for (const nlohmann::json& c : golden_cases()) {
    if (c.at("text").get<std::string>() == text) return c;
  }
  KP_CHECK(false, "the text is one of the golden cases");
  std::abort();
}

class KjvTokenizer : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    Result<format::GgufFile> file = format::GgufFile::open(kModelPath);
    ASSERT_TRUE(file.ok()) << file.error().message;
    Result<Tokenizer> tok = Tokenizer::from_gguf(*file);
    ASSERT_TRUE(tok.ok()) << tok.error().message;
    tok_ = std::make_unique<Tokenizer>(std::move(tok).value());
  }
  void SetUp() override { ASSERT_NE(tok_, nullptr) << "the kjv-tiny tokenizer did not load"; }
  static const Tokenizer& tok() { return *tok_; }

 private:
  static inline std::unique_ptr<Tokenizer> tok_;
};

TEST_F(KjvTokenizer, ReadsTheFixtureMetadata) {
  EXPECT_EQ(tok().n_vocab(), 4096);
  EXPECT_EQ(tok().bos_id(), kBos);
  EXPECT_EQ(tok().eos_id(), kEos);
  EXPECT_EQ(tok().unk_id(), kUnk);
  EXPECT_EQ(tok().pad_id(), kPad);
  EXPECT_TRUE(tok().add_bos_token());
  EXPECT_FALSE(tok().add_space_prefix());
  EXPECT_EQ(tok().piece(kBos), "<bos>");
  EXPECT_EQ(tok().type(kBos), TokenType::kControl);
  EXPECT_EQ(tok().piece(kNewline), "\n");
  EXPECT_EQ(tok().type(kNewline), TokenType::kUserDefined);
  EXPECT_EQ(tok().piece(kFirstByte + 0x3C), "<0x3C>");
  EXPECT_EQ(tok().type(kFirstByte + 0x3C), TokenType::kByte);
}

TEST_F(KjvTokenizer, MatchesSentencePieceOnAllGoldenCases) {
  const nlohmann::json& cases = golden_cases();
  ASSERT_EQ(cases.size(), 223u);
  size_t n_ids_equal = 0;
  size_t n_decoded_equal = 0;
  for (size_t k = 0; k < cases.size(); ++k) {
    const auto text = cases[k].at("text").get<std::string>();
    const auto ids = cases[k].at("ids").get<std::vector<int32_t>>();
    const auto pieces = cases[k].at("pieces").get<std::vector<std::string>>();
    const auto decoded = cases[k].at("decoded").get<std::string>();
    ASSERT_EQ(ids.size(), pieces.size()) << "golden case " << k;

    const std::vector<int32_t> got = tok().encode(text, /*add_bos=*/false);
    EXPECT_EQ(got, ids) << "case " << k << ": \"" << text << "\"";
    n_ids_equal += got == ids;
    for (size_t i = 0; i < ids.size(); ++i) {
      ASSERT_GE(ids[i], 0);
      ASSERT_LT(ids[i], tok().n_vocab());
      EXPECT_EQ(tok().piece(ids[i]), pieces[i]) << "case " << k << " token " << i;
    }
    const std::string back = tok().decode(ids);
    EXPECT_EQ(back, decoded) << "case " << k;
    n_decoded_equal += back == decoded;
  }
  EXPECT_EQ(n_ids_equal, 223u);
  EXPECT_EQ(n_decoded_equal, 223u);
}

TEST_F(KjvTokenizer, AddsBosOnlyWhenAsked) {
  const std::string text = "In the beginning God created the heaven and the earth.";
  const std::vector<int32_t> plain = {1146, 263, 2080, 391, 3339, 263, 737, 272, 263, 620, 4057};
  EXPECT_EQ(tok().encode(text, false), plain);
  std::vector<int32_t> with_bos = {kBos};
  with_bos.insert(with_bos.end(), plain.begin(), plain.end());
  EXPECT_EQ(tok().encode(text, true), with_bos);
  // BOS is a control token: it decodes to nothing.
  EXPECT_EQ(tok().decode(with_bos), text);
  EXPECT_EQ(tok().piece_text(kBos), "");
}

TEST_F(KjvTokenizer, EmptyText) {
  EXPECT_TRUE(tok().encode("", false).empty());
  EXPECT_EQ(tok().encode("", true), std::vector<int32_t>{kBos});
  EXPECT_EQ(tok().decode({}), "");
  EXPECT_EQ(tok().decode({kBos, kEos, kPad}), "");
}

TEST_F(KjvTokenizer, FallsBackToBytesForCharactersOutsideTheVocabulary) {
  // "日" = E6 97 A5, "é" = C3 A9: no pieces for them, so one byte piece per byte.
  EXPECT_EQ(tok().encode("\xE6\x97\xA5", false),
            (std::vector<int32_t>{kFirstByte + 0xE6, kFirstByte + 0x97, kFirstByte + 0xA5}));
  EXPECT_EQ(tok().decode({kFirstByte + 0xE6, kFirstByte + 0x97, kFirstByte + 0xA5}), "\xE6\x97\xA5");
  EXPECT_EQ(tok().encode("a\xC3\xA9", false), (std::vector<int32_t>{4038, kFirstByte + 0xC3, kFirstByte + 0xA9}));
  // Streaming: each byte piece is one raw byte.
  EXPECT_EQ(tok().piece_text(kFirstByte + 0xE6), "\xE6");
  EXPECT_EQ(tok().piece_text(kFirstByte + 0x41), "A");
}

TEST_F(KjvTokenizer, ControlTokenTextIsOrdinaryText) {
  for (const std::string text : {"<bos>", "<eos>", "<pad>", "<unk>", "<bos>In the beginning"}) {
    const std::vector<int32_t> ids = tok().encode(text, false);
    ASSERT_FALSE(ids.empty());
    EXPECT_EQ(ids.front(), kFirstByte + '<') << text;
    for (const int32_t id : ids) {
      EXPECT_NE(tok().type(id), TokenType::kControl) << text;
      EXPECT_NE(tok().type(id), TokenType::kUnknown) << text;
    }
    EXPECT_EQ(tok().decode(ids), text);
  }
  // Nor is the spelling of a byte piece: "<0x41>" is six characters of text.
  const std::vector<int32_t> ids = tok().encode("<0x41>", false);
  EXPECT_GT(ids.size(), 1u);
  EXPECT_EQ(tok().decode(ids), "<0x41>");
}

TEST_F(KjvTokenizer, NewlineIsItsUserDefinedPiece) {
  EXPECT_EQ(tok().encode("\n\n", false), (std::vector<int32_t>{kNewline, kNewline}));
  EXPECT_EQ(tok().encode("a\nb", false), (std::vector<int32_t>{4038, kNewline, 4054}));
  EXPECT_EQ(tok().piece_text(kNewline), "\n");
}

TEST_F(KjvTokenizer, InvalidUtf8FallsBackToBytesAndRoundTrips) {
  const std::vector<std::string> texts = {
      "\xFF",                    // never valid
      "\x80" "abc",              // lone continuation byte
      "\xE6\x97",                // truncated 3-byte character at the end
      "\xE6\x97" "x",            // truncated in the middle
      "the \xC3 earth",          // lead byte followed by ASCII
      "\xF8\x88\x80\x80\x80",    // 5-byte form (not UTF-8)
      std::string("nul\0byte", 8),
  };
  for (const std::string& text : texts) {
    const std::vector<int32_t> ids = tok().encode(text, false);
    EXPECT_EQ(tok().decode(ids), text);
    size_t n_bytes = 0;
    for (const int32_t id : ids) n_bytes += tok().type(id) == TokenType::kByte;
    EXPECT_GT(n_bytes, 0u) << "the invalid bytes become byte pieces";
  }
  EXPECT_EQ(tok().encode("\xFF", false), std::vector<int32_t>{kFirstByte + 0xFF});
  EXPECT_EQ(tok().encode("\xE6\x97", false), (std::vector<int32_t>{kFirstByte + 0xE6, kFirstByte + 0x97}));
}

TEST_F(KjvTokenizer, DecodesSpaceSymbolAsSpace) {
  EXPECT_EQ(tok().piece(263), std::string(kSpace) + "the");
  EXPECT_EQ(tok().piece_text(263), " the");
  // No dummy prefix in this vocabulary, so a leading "▁" is kept.
  EXPECT_EQ(tok().decode({263, 620}), " the earth");
}

// ---- A small vocabulary built in memory -------------------------------------

// Control pieces 0-2, unknown 3, "\n" user-defined 4, then (optionally) the
// 256 byte pieces, then the given normal pieces with their scores.
TokenizerVocab small_vocab(const std::vector<std::pair<std::string, float>>& normal, bool bytes,
                           bool space_prefix) {
  TokenizerVocab v;
  const auto add = [&](std::string p, float s, TokenType t) {
    v.pieces.push_back(std::move(p));
    v.scores.push_back(s);
    v.types.push_back(t);
  };
  add("<pad>", 0, TokenType::kControl);
  add("<eos>", 0, TokenType::kControl);
  add("<bos>", 0, TokenType::kControl);
  add("<unk>", 0, TokenType::kUnknown);
  add("\n", 0, TokenType::kUserDefined);
  if (bytes) {
    for (int b = 0; b < 256; ++b) {
      char name[8];
      std::snprintf(name, sizeof(name), "<0x%02X>", b);
      add(name, 0, TokenType::kByte);
    }
  }
  for (const auto& [p, s] : normal) add(p, s, TokenType::kNormal);
  v.add_space_prefix = space_prefix;
  return v;
}

Tokenizer must_build(TokenizerVocab v) {
  Result<Tokenizer> t = Tokenizer::from_vocab(std::move(v), "test vocabulary");
  KP_CHECK(t.ok(), "the test vocabulary is valid");
  return std::move(t).value();
}

TEST(Tokenizer, DummyPrefixIsAddedAndDecodedAway) {
  const std::string sp = kSpace;
  const Tokenizer tok = must_build(small_vocab(
      {{sp, -1}, {"h", -2}, {"i", -3}, {sp + "h", -4}, {sp + "hi", -5}}, true, /*space_prefix=*/true));
  const int32_t first = 5 + 256;  // ids of the normal pieces start here
  EXPECT_EQ(tok.encode("hi", false), std::vector<int32_t>{first + 4});
  EXPECT_EQ(tok.encode("hi hi", false), (std::vector<int32_t>{first + 4, first + 4}));
  EXPECT_EQ(tok.decode({first + 4, first + 4}), "hi hi");
  EXPECT_EQ(tok.decode({2, first + 4}), "hi") << "a control token first does not keep the space";
  EXPECT_TRUE(tok.encode("", false).empty()) << "no dummy prefix for empty text";
}

TEST(Tokenizer, MergesHighestScoreFirstAndLeftmostOnTies) {
  // "abc": "ab" (-1) beats "bc" (-2) -> [ab, c].
  {
    const Tokenizer tok = must_build(small_vocab(
        {{"a", -5}, {"b", -5}, {"c", -5}, {"ab", -1}, {"bc", -2}}, true, false));
    EXPECT_EQ(tok.encode("abc", false), (std::vector<int32_t>{261 + 3, 261 + 2}));
  }
  // "bc" higher -> [a, bc].
  {
    const Tokenizer tok = must_build(small_vocab(
        {{"a", -5}, {"b", -5}, {"c", -5}, {"ab", -2}, {"bc", -1}}, true, false));
    EXPECT_EQ(tok.encode("abc", false), (std::vector<int32_t>{261 + 0, 261 + 4}));
  }
  // "aaa" with only "aa": a tie between the two pairs, the left one wins -> [aa, a].
  {
    const Tokenizer tok = must_build(small_vocab({{"a", -5}, {"aa", -1}}, true, false));
    EXPECT_EQ(tok.encode("aaa", false), (std::vector<int32_t>{261 + 1, 261 + 0}));
  }
}

TEST(Tokenizer, UnknownTokenWithoutBytePieces) {
  const Tokenizer tok = must_build(small_vocab({{"a", -1}}, /*bytes=*/false, false));
  EXPECT_EQ(tok.encode("a\xC3\xA9" "a", false), (std::vector<int32_t>{5, 3, 3, 5}));
  // SentencePiece's surface for the unknown piece: " \u2047 ".
  EXPECT_EQ(tok.decode({5, 3, 3, 5}), "a \xE2\x81\x87  \xE2\x81\x87 a");
}

// ---- Random vocabularies against a quadratic reference -------------------------

// SentencePiece BPE from its definition, in the plainest form: O(n^2) per text.
std::vector<int32_t> reference_encode(const TokenizerVocab& v, const std::string& text) {
  std::map<std::string, int32_t> mergeable;
  std::vector<std::pair<std::string, int32_t>> user;
  int32_t byte_id[256];
  std::fill(std::begin(byte_id), std::end(byte_id), -1);
  for (size_t i = 0; i < v.pieces.size(); ++i) {
    const auto id = static_cast<int32_t>(i);
    if (v.types[i] == TokenType::kNormal || v.types[i] == TokenType::kUserDefined) {
      mergeable.emplace(v.pieces[i], id);
    }
    if (v.types[i] == TokenType::kUserDefined) user.emplace_back(v.pieces[i], id);
    if (v.types[i] == TokenType::kByte) {
      const int b = std::stoi(v.pieces[i].substr(3, 2), nullptr, 16);
      if (byte_id[b] < 0) byte_id[b] = id;
    }
  }
  if (text.empty()) return {};
  std::string norm = v.add_space_prefix ? kSpace : "";
  for (const char c : text) norm += c == ' ' ? std::string(kSpace) : std::string(1, c);

  struct Sym {
    std::string s;
    bool frozen;
  };
  std::vector<Sym> syms;
  for (size_t pos = 0; pos < norm.size();) {
    size_t best = 0;
    for (const auto& [p, id] : user) {
      if (p.size() > best && norm.compare(pos, p.size(), p) == 0) best = p.size();
    }
    if (best > 0) {
      syms.push_back({norm.substr(pos, best), true});
      pos += best;
      continue;
    }
    const auto c = static_cast<unsigned char>(norm[pos]);
    size_t len = c < 0x80 ? 1 : c >= 0xF0 && c < 0xF8 ? 4 : c >= 0xE0 && c < 0xF0 ? 3 : c >= 0xC0 && c < 0xE0 ? 2 : 1;
    if (pos + len > norm.size()) len = 1;
    for (size_t k = 1; k < len; ++k) {
      if ((static_cast<unsigned char>(norm[pos + k]) & 0xC0) != 0x80) len = 1;
    }
    syms.push_back({norm.substr(pos, len), false});
    pos += len;
  }
  for (;;) {
    int best = -1;
    float best_score = 0;
    for (size_t i = 0; i + 1 < syms.size(); ++i) {
      if (syms[i].frozen || syms[i + 1].frozen) continue;
      const auto it = mergeable.find(syms[i].s + syms[i + 1].s);
      if (it == mergeable.end()) continue;
      const float s = v.scores[static_cast<size_t>(it->second)];
      if (best < 0 || s > best_score) {
        best = static_cast<int>(i);
        best_score = s;
      }
    }
    if (best < 0) break;
    syms[static_cast<size_t>(best)].s += syms[static_cast<size_t>(best) + 1].s;
    syms.erase(syms.begin() + best + 1);
  }
  std::vector<int32_t> ids;
  for (const Sym& s : syms) {
    const auto it = mergeable.find(s.s);
    if (it != mergeable.end()) {
      ids.push_back(it->second);
      continue;
    }
    for (const char c : s.s) {
      const int32_t b = byte_id[static_cast<unsigned char>(c)];
      ids.push_back(b >= 0 ? b : v.unk);
    }
  }
  return ids;
}

TEST(Tokenizer, MatchesQuadraticReferenceOnRandomVocabularies) {
  // Characters (some multi-byte, one user-defined, one invalid byte) that
  // random pieces and texts are made of. Few distinct scores, so ties are common.
  const std::vector<std::string> alphabet = {"a", "b", "c", "d", " ", "\xC3\xA9", "\xE2\x96\x81", "\n",
                                             "\xE6\x97\xA5", "\xFF", "x"};
  std::mt19937 rng(20261124);
  const auto pick = [&](size_t n) { return static_cast<size_t>(rng() % n); };
  size_t n_texts = 0;
  for (int round = 0; round < 40; ++round) {
    std::vector<std::pair<std::string, float>> normal;
    // Single characters, leaving some out so that byte fallback happens.
    for (const char* ch : {"a", "b", "c", "d", "\xE2\x96\x81", "\xC3\xA9"}) {
      if (pick(5) != 0) normal.emplace_back(ch, -static_cast<float>(pick(4)));
    }
    // Random multi-character pieces (spaces appear as "▁" inside pieces).
    const size_t n_pieces = 5 + pick(40);
    for (size_t i = 0; i < n_pieces; ++i) {
      std::string p;
      const size_t len = 2 + pick(4);
      for (size_t k = 0; k < len; ++k) {
        std::string ch = alphabet[pick(7)];
        p += ch == " " ? std::string(kSpace) : ch;
      }
      normal.emplace_back(p, -static_cast<float>(pick(4)));
    }
    TokenizerVocab v = small_vocab(normal, /*bytes=*/pick(4) != 0, /*space_prefix=*/pick(2) != 0);
    if (pick(2) != 0) {  // a second, multi-character user-defined piece
      v.pieces.push_back("xa");
      v.scores.push_back(0);
      v.types.push_back(TokenType::kUserDefined);
    }
    const Tokenizer tok = must_build(v);
    for (int t = 0; t < 100; ++t) {
      std::string text;
      const size_t len = t % 4 == 0 ? pick(150) : pick(30);  // long texts repeat parts
      for (size_t k = 0; k < len; ++k) text += alphabet[pick(alphabet.size())];
      ASSERT_EQ(tok.encode(text, false), reference_encode(v, text)) << "round " << round << " text \"" << text << "\"";
      ++n_texts;
    }
  }
  EXPECT_EQ(n_texts, 4000u);
}

// ---- GGUF validation --------------------------------------------------------------

using Kv = std::vector<std::pair<std::string, GgufValue>>;

GgufValue strings(const std::vector<std::string>& s) {
  std::vector<GgufValue> e;
  for (const std::string& x : s) e.push_back(GgufValue::string(x));
  return GgufValue::array(GgufValueType::STRING, std::move(e));
}
GgufValue floats(const std::vector<float>& s) {
  std::vector<GgufValue> e;
  for (const float x : s) e.push_back(GgufValue::f32(x));
  return GgufValue::array(GgufValueType::FLOAT32, std::move(e));
}
GgufValue ints(const std::vector<int32_t>& s) {
  std::vector<GgufValue> e;
  for (const int32_t x : s) e.push_back(GgufValue::i32(x));
  return GgufValue::array(GgufValueType::INT32, std::move(e));
}

// A valid 7-token vocabulary: <pad> <eos> <bos> <unk> <0x41> "a" "▁a".
Kv tiny_kv() {
  return {
      {"tokenizer.ggml.model", GgufValue::string("llama")},
      {"tokenizer.ggml.tokens", strings({"<pad>", "<eos>", "<bos>", "<unk>", "<0x41>", "a", std::string(kSpace) + "a"})},
      {"tokenizer.ggml.scores", floats({0, 0, 0, 0, 0, -1, -2})},
      {"tokenizer.ggml.token_type", ints({3, 3, 3, 2, 6, 1, 1})},
      {"tokenizer.ggml.bos_token_id", GgufValue::u32(2)},
      {"tokenizer.ggml.eos_token_id", GgufValue::u32(1)},
  };
}

Kv with(Kv kv, const std::string& key, GgufValue value) {
  for (auto& [k, v] : kv) {
    if (k == key) {
      v = std::move(value);
      return kv;
    }
  }
  kv.emplace_back(key, std::move(value));
  return kv;
}
Kv without(Kv kv, const std::string& key) {
  std::erase_if(kv, [&](const auto& e) { return e.first == key; });
  return kv;
}

Result<Tokenizer> load_kv(const Kv& kv) {
  format::GgufWriter w;
  for (const auto& [k, v] : kv) w.set(k, v);
  const std::vector<uint8_t> bytes = w.to_bytes();
  KP_TRY(const format::GgufFile file, format::GgufFile::parse(MappedFile::from_bytes(bytes, "tiny.gguf")));
  return Tokenizer::from_gguf(file);
}

// The load fails and the message names the file and `key`.
void expect_rejected(const Kv& kv, const std::string& key) {
  const Result<Tokenizer> t = load_kv(kv);
  ASSERT_FALSE(t.ok()) << "expected an error naming " << key;
  EXPECT_NE(t.error().message.find(key), std::string::npos) << t.error().message;
  EXPECT_NE(t.error().message.find("tiny.gguf"), std::string::npos) << t.error().message;
}

TEST(TokenizerGguf, LoadsAValidVocabulary) {
  const Result<Tokenizer> t = load_kv(tiny_kv());
  ASSERT_TRUE(t.ok()) << t.error().message;
  EXPECT_EQ(t->n_vocab(), 7);
  EXPECT_EQ(t->bos_id(), 2);
  EXPECT_TRUE(t->add_bos_token());
  EXPECT_TRUE(t->add_space_prefix()) << "absent add_space_prefix defaults to true";
  EXPECT_EQ(t->encode("a", true), (std::vector<int32_t>{2, 6}));  // dummy prefix: "▁a"
  // "▁A": "▁" has neither a piece nor byte pieces (3 x unk), "A" is its byte piece.
  EXPECT_EQ(t->encode("A", false), (std::vector<int32_t>{3, 3, 3, 4}));
  const Result<Tokenizer> t2 = load_kv(with(with(tiny_kv(), "tokenizer.ggml.add_space_prefix", GgufValue::boolean(false)),
                                            "tokenizer.ggml.add_bos_token", GgufValue::boolean(false)));
  ASSERT_TRUE(t2.ok()) << t2.error().message;
  EXPECT_FALSE(t2->add_bos_token());
  EXPECT_EQ(t2->encode("aA", false), (std::vector<int32_t>{5, 4}));
}

TEST(TokenizerGguf, RejectsMissingKeys) {
  expect_rejected(without(tiny_kv(), "tokenizer.ggml.model"), "tokenizer.ggml.model");
  expect_rejected(without(tiny_kv(), "tokenizer.ggml.tokens"), "tokenizer.ggml.tokens");
  expect_rejected(without(tiny_kv(), "tokenizer.ggml.scores"), "tokenizer.ggml.scores");
  expect_rejected(without(tiny_kv(), "tokenizer.ggml.token_type"), "tokenizer.ggml.token_type");
}

TEST(TokenizerGguf, RejectsWrongTypes) {
  expect_rejected(with(tiny_kv(), "tokenizer.ggml.model", GgufValue::string("gpt2")), "tokenizer.ggml.model");
  expect_rejected(with(tiny_kv(), "tokenizer.ggml.model", GgufValue::u32(1)), "tokenizer.ggml.model");
  expect_rejected(with(tiny_kv(), "tokenizer.ggml.tokens", GgufValue::string("<pad>")), "tokenizer.ggml.tokens");
  expect_rejected(with(tiny_kv(), "tokenizer.ggml.tokens", ints({0, 1, 2, 3, 4, 5, 6})), "tokenizer.ggml.tokens");
  expect_rejected(with(tiny_kv(), "tokenizer.ggml.scores", strings({"0", "0", "0", "0", "0", "0", "0"})),
                  "tokenizer.ggml.scores");
  expect_rejected(with(tiny_kv(), "tokenizer.ggml.token_type", floats({3, 3, 3, 2, 6, 1, 1})),
                  "tokenizer.ggml.token_type");
  expect_rejected(with(tiny_kv(), "tokenizer.ggml.add_bos_token", GgufValue::u32(1)),
                  "tokenizer.ggml.add_bos_token");
  expect_rejected(with(tiny_kv(), "tokenizer.ggml.bos_token_id", GgufValue::string("2")),
                  "tokenizer.ggml.bos_token_id");
}

TEST(TokenizerGguf, RejectsLengthsThatDisagree) {
  expect_rejected(with(tiny_kv(), "tokenizer.ggml.scores", floats({0, 0, 0, 0, 0, -1})), "tokenizer.ggml.scores");
  expect_rejected(with(tiny_kv(), "tokenizer.ggml.token_type", ints({3, 3, 3, 2, 6, 1, 1, 1})),
                  "tokenizer.ggml.token_type");
  expect_rejected(with(with(with(tiny_kv(), "tokenizer.ggml.tokens", strings({})), "tokenizer.ggml.scores",
                            floats({})), "tokenizer.ggml.token_type", ints({})),
                  "tokenizer.ggml.tokens");
}

TEST(TokenizerGguf, RejectsIdsAndValuesOutOfRange) {
  expect_rejected(with(tiny_kv(), "tokenizer.ggml.bos_token_id", GgufValue::u32(7)), "tokenizer.ggml.bos_token_id");
  expect_rejected(with(tiny_kv(), "tokenizer.ggml.eos_token_id", GgufValue::u32(4000000000u)),
                  "tokenizer.ggml.eos_token_id");
  expect_rejected(with(tiny_kv(), "tokenizer.ggml.unknown_token_id", GgufValue::u32(99)),
                  "tokenizer.ggml.unknown_token_id");
  expect_rejected(with(tiny_kv(), "tokenizer.ggml.padding_token_id", GgufValue::i32(-1)),
                  "tokenizer.ggml.padding_token_id");
  expect_rejected(with(tiny_kv(), "tokenizer.ggml.token_type", ints({3, 3, 3, 2, 6, 1, 9})),
                  "tokenizer.ggml.token_type");
  expect_rejected(with(tiny_kv(), "tokenizer.ggml.token_type", ints({3, 3, 3, 2, 6, 1, 0})),
                  "tokenizer.ggml.token_type");
  // A byte token must be spelled <0xNN>.
  expect_rejected(with(tiny_kv(), "tokenizer.ggml.token_type", ints({3, 3, 3, 2, 6, 6, 1})),
                  "tokenizer.ggml.tokens");
  expect_rejected(with(tiny_kv(), "tokenizer.ggml.scores", floats({0, 0, 0, 0, 0, std::nanf(""), -2})),
                  "tokenizer.ggml.scores");
}

TEST(TokenizerGguf, DefaultModelAndF16FileShareTheVocabulary) {
  Result<format::GgufFile> f16 = format::GgufFile::open(std::string(KP_TEST_DATA) + "/kjv-tiny-f16.gguf");
  ASSERT_TRUE(f16.ok()) << f16.error().message;
  Result<Tokenizer> tok = Tokenizer::from_gguf(*f16);
  ASSERT_TRUE(tok.ok()) << tok.error().message;
  const nlohmann::json& c = golden_case("And God said, Let there be light: and there was light.");
  EXPECT_EQ(tok->encode(c.at("text").get<std::string>(), false), c.at("ids").get<std::vector<int32_t>>());
}

// ---- kpath tokenize -------------------------------------------------------------

struct KpathRun {
  int exit_code;
  std::string out;
};

// Runs the kpath binary with `args` (already shell-quoted); stdout only.
KpathRun run_kpath(const std::string& args) {
  const std::string cmd = std::string(KP_BINARY) + " " + args + " 2>/dev/null";
  FILE* p = ::popen(cmd.c_str(), "r");
  KP_CHECK(p != nullptr, "popen works");
  std::string out;
  char buf[4096];
  size_t n;
  while ((n = std::fread(buf, 1, sizeof(buf), p)) > 0) out.append(buf, n);
  const int status = ::pclose(p);
  return {WIFEXITED(status) ? WEXITSTATUS(status) : -1, out};
}

TEST(KpathTokenize, IdsOnlyWithoutBos) {
  const KpathRun r = run_kpath("tokenize --ids-only --no-bos 'In the beginning God created the heaven and the earth.'");
  EXPECT_EQ(r.exit_code, 0);
  EXPECT_EQ(r.out, "1146 263 2080 391 3339 263 737 272 263 620 4057\n");
}

TEST(KpathTokenize, IdsAndPiecesWithBos) {
  // One token a line; the newline piece is printed escaped so that it stays on its line.
  const nlohmann::json& c = golden_case("line one\nline two\n\nline four");
  std::string expected = "2\t<bos>\n";
  const auto ids = c.at("ids").get<std::vector<int32_t>>();
  const auto pieces = c.at("pieces").get<std::vector<std::string>>();
  for (size_t i = 0; i < ids.size(); ++i) {
    expected += std::to_string(ids[i]) + "\t" + (pieces[i] == "\n" ? "\\n" : pieces[i]) + "\n";
  }
  const KpathRun r = run_kpath("tokenize -m " + kModelPath + " 'line one\nline two\n\nline four'");
  EXPECT_EQ(r.exit_code, 0);
  EXPECT_EQ(r.out, expected);
}

TEST(KpathTokenize, ReportsAMissingModel) {
  const KpathRun r = run_kpath("tokenize -m /nonexistent/model.gguf 'text'");
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_EQ(r.out, "");
}

}  // namespace
}  // namespace kp::model

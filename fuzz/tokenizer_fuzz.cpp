// Fuzz target: the tokenizer (model::Tokenizer) of tests/data/kjv-tiny-f16.gguf
// on arbitrary bytes.
//   - encode() of the input as text must return ids in the vocabulary, and for
//     short texts the same ids as a plain quadratic BPE written from the
//     algorithm in tokenizer.h (the library's version splits the text into
//     independent parts and caches them; the two must agree);
//   - decode() of encode() must give the text back when every character can
//     be spelled (the vocabulary has all 256 byte pieces) and the text holds no
//     "▁", which decodes to a space;
//   - decode() and piece_text() of the input read as ids (two bytes each,
//     modulo the vocabulary size) must not crash.
// Seeds: the prompts and texts of the tests (scripts/fuzz.sh).
#include <cstdint>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "format/gguf.h"
#include "fuzz_support.h"
#include "model/tokenizer.h"
#include "model/tokenizer_index.h"

namespace {

using kp::model::Tokenizer;
using kp::model::TokenType;

constexpr std::string_view kSpaceSymbol = "\xE2\x96\x81";
constexpr size_t kReferenceMaxBytes = 192;  // the quadratic reference is run on texts this short

struct Vocab {
  Tokenizer tok;
  std::unordered_map<std::string, int32_t> mergeable;  // normal and user-defined pieces, first id wins
  std::vector<std::string> user_defined;
  int32_t byte_id[256];  // the first <0xNN> piece of each byte, or the unknown token
  int byte_pieces = 0;   // distinct bytes with a <0xNN> piece
};

const Vocab& vocab() {
  static const Vocab v = [] {
    auto file = kp::format::GgufFile::open(kp::fuzz::data_path("kjv-tiny-f16.gguf"));
    KP_CHECK(file.ok(), "kjv-tiny-f16.gguf opens");
    auto tok = Tokenizer::from_gguf(*file);
    KP_CHECK(tok.ok(), "kjv-tiny-f16.gguf has a tokenizer");
    Vocab out{std::move(*tok), {}, {}, {}, 0};
    for (int32_t& id : out.byte_id) id = out.tok.unk_id();
    bool seen[256] = {};
    for (int32_t id = 0; id < out.tok.n_vocab(); ++id) {
      const TokenType t = out.tok.type(id);
      if (t == TokenType::kNormal || t == TokenType::kUserDefined) out.mergeable.emplace(out.tok.piece(id), id);
      if (t == TokenType::kUserDefined) out.user_defined.push_back(out.tok.piece(id));
      if (t == TokenType::kByte) {
        const std::string text = out.tok.piece_text(id);
        if (text.size() == 1 && !seen[static_cast<uint8_t>(text[0])]) {
          seen[static_cast<uint8_t>(text[0])] = true;
          out.byte_id[static_cast<uint8_t>(text[0])] = id;
          ++out.byte_pieces;
        }
      }
    }
    return out;
  }();
  return v;
}

// tokenizer.h's algorithm, directly: quadratic in the text length.
std::vector<int32_t> reference_encode(const Vocab& v, std::string_view text, bool add_bos) {
  std::vector<int32_t> out;
  if (add_bos) out.push_back(v.tok.bos_id());
  if (text.empty()) return out;
  std::string norm = v.tok.add_space_prefix() ? std::string(kSpaceSymbol) : std::string();
  for (const char c : text) {
    if (c == ' ') norm += kSpaceSymbol;
    else norm += c;
  }
  struct Sym {
    std::string bytes;
    bool frozen;  // a user-defined piece matched whole
  };
  std::vector<Sym> syms;
  for (size_t pos = 0; pos < norm.size();) {
    size_t best = 0;
    for (const std::string& u : v.user_defined) {
      if (u.size() > best && std::string_view(norm).substr(pos).starts_with(u)) best = u.size();
    }
    if (best > 0) {
      syms.push_back({norm.substr(pos, best), true});
      pos += best;
      continue;
    }
    const size_t len = kp::model::utf8_char_len(std::string_view(norm).substr(pos));
    syms.push_back({norm.substr(pos, len), false});
    pos += len;
  }
  for (;;) {
    size_t best_i = syms.size();
    float best_score = 0;
    for (size_t i = 0; i + 1 < syms.size(); ++i) {
      if (syms[i].frozen || syms[i + 1].frozen) continue;
      const auto it = v.mergeable.find(syms[i].bytes + syms[i + 1].bytes);
      if (it == v.mergeable.end()) continue;
      const float score = v.tok.score(it->second);
      if (best_i == syms.size() || score > best_score) {
        best_i = i;
        best_score = score;
      }
    }
    if (best_i == syms.size()) break;
    syms[best_i].bytes += syms[best_i + 1].bytes;
    syms.erase(syms.begin() + static_cast<std::ptrdiff_t>(best_i) + 1);
  }
  for (const Sym& s : syms) {
    if (const auto it = v.mergeable.find(s.bytes); it != v.mergeable.end()) {
      out.push_back(it->second);
      continue;
    }
    for (const char c : s.bytes) out.push_back(v.byte_id[static_cast<uint8_t>(c)]);
  }
  return out;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const Vocab& v = vocab();
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  const bool add_bos = size % 2 == 1;

  const std::vector<int32_t> ids = v.tok.encode(text, add_bos);
  for (const int32_t id : ids) KP_FUZZ_CHECK(id >= 0 && id < v.tok.n_vocab(), "encode returns vocabulary ids");
  if (size <= kReferenceMaxBytes) {
    KP_FUZZ_CHECK(ids == reference_encode(v, text, add_bos), "encode agrees with the quadratic BPE");
  }
  if (v.byte_pieces == 256 && text.find(kSpaceSymbol) == std::string_view::npos) {
    KP_FUZZ_CHECK(v.tok.decode(ids) == text, "decode(encode(text)) == text");
  }

  std::vector<int32_t> as_ids;
  for (size_t i = 0; i + 1 < size; i += 2) {
    as_ids.push_back(static_cast<int32_t>((data[i] | data[i + 1] << 8) % v.tok.n_vocab()));
  }
  (void)v.tok.decode(as_ids);
  for (const int32_t id : as_ids) (void)v.tok.piece_text(id);
  return 0;
}

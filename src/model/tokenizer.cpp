// Tokenizer: reading the vocabulary from GGUF, validating it, building the
// lookup tables, and decoding. Encoding (the BPE merges) is in tokenizer_encode.cpp.
#include "model/tokenizer.h"

#include <cmath>
#include <limits>

#include "core/check.h"
#include "model/tokenizer_index.h"

namespace kp::model {
namespace {

constexpr std::string_view kModelKey = "tokenizer.ggml.model";
constexpr std::string_view kTokensKey = "tokenizer.ggml.tokens";
constexpr std::string_view kScoresKey = "tokenizer.ggml.scores";
constexpr std::string_view kTypesKey = "tokenizer.ggml.token_type";

// "▁" (U+2581), SentencePiece's visible space.
constexpr std::string_view kSpaceSymbol = "\xE2\x96\x81";
// What SentencePiece prints for the unknown piece.
constexpr std::string_view kUnknownSurface = " \xE2\x81\x87 ";

// The array stored under `key`, which must exist.
Result<const format::GgufArray*> required_array(const format::GgufFile& file, std::string_view key) {
  const format::GgufValue* v = file.find(key);
  if (v == nullptr) return make_error("{}: missing key '{}' (needed by the tokenizer)", file.name(), key);
  const format::GgufArray* a = v->as_array();
  if (a == nullptr) {
    return make_error("{}: key '{}': expected an array, got {}", file.name(), key,
                      format::value_type_name(v->type));
  }
  return a;
}

// tokenizer.ggml.<name>_token_id: absent -> `fallback`; must fit in int32
// (the range check against the vocabulary is from_vocab's).
Result<int32_t> special_id(const format::GgufFile& file, std::string_view key, int32_t fallback) {
  KP_TRY(const uint64_t id, file.get_u64_or(key, static_cast<uint64_t>(fallback)));
  if (id > static_cast<uint64_t>(std::numeric_limits<int32_t>::max())) {
    return make_error("{}: key '{}': token id {} is out of range", file.name(), key, id);
  }
  return static_cast<int32_t>(id);
}

bool is_integer_type(format::GgufValueType t) {
  using T = format::GgufValueType;
  return t == T::UINT8 || t == T::INT8 || t == T::UINT16 || t == T::INT16 || t == T::UINT32 ||
         t == T::INT32 || t == T::UINT64 || t == T::INT64;
}

// "<0xNN>" -> NN, or -1 when `piece` is not spelled that way.
int parse_byte_piece(std::string_view piece) {
  if (piece.size() != 6 || piece.substr(0, 3) != "<0x" || piece[5] != '>') return -1;
  auto hex = [](char c) -> int {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    return -1;
  };
  const int hi = hex(piece[3]);
  const int lo = hex(piece[4]);
  if (hi < 0 || lo < 0) return -1;
  return hi * 16 + lo;
}

// Appends `piece` with every "▁" replaced by a space.
void append_unescaped(std::string_view piece, std::string* out) {
  size_t pos = 0;
  while (pos < piece.size()) {
    const size_t hit = piece.find(kSpaceSymbol, pos);
    if (hit == std::string_view::npos) {
      out->append(piece.substr(pos));
      return;
    }
    out->append(piece.substr(pos, hit - pos));
    out->push_back(' ');
    pos = hit + kSpaceSymbol.size();
  }
}

}  // namespace

Result<Tokenizer> Tokenizer::from_gguf(const format::GgufFile& file) {
  KP_TRY(const std::string model, file.get_string(kModelKey));
  if (model != "llama") {
    return make_error("{}: key '{}': tokenizer '{}' is not supported (expected \"llama\", "
                      "SentencePiece BPE)", file.name(), kModelKey, model);
  }
  KP_TRY(const format::GgufArray* tokens, required_array(file, kTokensKey));
  KP_TRY(const format::GgufArray* scores, required_array(file, kScoresKey));
  KP_TRY(const format::GgufArray* types, required_array(file, kTypesKey));

  const size_t n = tokens->elems.size();
  if (n == 0) return make_error("{}: key '{}': the vocabulary is empty", file.name(), kTokensKey);
  if (n > static_cast<size_t>(std::numeric_limits<int32_t>::max())) {
    return make_error("{}: key '{}': {} tokens do not fit 32-bit ids", file.name(), kTokensKey, n);
  }
  if (tokens->elem_type != format::GgufValueType::STRING) {
    return make_error("{}: key '{}': expected an array of strings, got an array of {}", file.name(),
                      kTokensKey, format::value_type_name(tokens->elem_type));
  }
  if (scores->elem_type != format::GgufValueType::FLOAT32 &&
      scores->elem_type != format::GgufValueType::FLOAT64) {
    return make_error("{}: key '{}': expected an array of float32, got an array of {}", file.name(),
                      kScoresKey, format::value_type_name(scores->elem_type));
  }
  if (!is_integer_type(types->elem_type)) {
    return make_error("{}: key '{}': expected an array of int32, got an array of {}", file.name(),
                      kTypesKey, format::value_type_name(types->elem_type));
  }
  if (scores->elems.size() != n) {
    return make_error("{}: key '{}' has {} entries but '{}' has {}", file.name(), kScoresKey,
                      scores->elems.size(), kTokensKey, n);
  }
  if (types->elems.size() != n) {
    return make_error("{}: key '{}' has {} entries but '{}' has {}", file.name(), kTypesKey,
                      types->elems.size(), kTokensKey, n);
  }

  TokenizerVocab vocab;
  vocab.pieces.reserve(n);
  vocab.scores.reserve(n);
  vocab.types.reserve(n);
  for (size_t i = 0; i < n; ++i) {
    KP_TRY(std::string piece, tokens->elems[i].as_string(kTokensKey));
    KP_TRY(const double score, scores->elems[i].as_f64(kScoresKey));
    vocab.pieces.push_back(std::move(piece));
    vocab.scores.push_back(static_cast<float>(score));
    KP_TRY(const int64_t t, types->elems[i].as_i64(kTypesKey));
    if (t < static_cast<int64_t>(TokenType::kNormal) || t > static_cast<int64_t>(TokenType::kByte)) {
      return make_error("{}: key '{}': entry {} is {}, expected a token type from 1 to 6", file.name(),
                        kTypesKey, i, t);
    }
    vocab.types.push_back(static_cast<TokenType>(t));
  }
  KP_TRY(vocab.bos, special_id(file, "tokenizer.ggml.bos_token_id", vocab.bos));
  KP_TRY(vocab.eos, special_id(file, "tokenizer.ggml.eos_token_id", vocab.eos));
  KP_TRY(vocab.unk, special_id(file, "tokenizer.ggml.unknown_token_id", vocab.unk));
  KP_TRY(vocab.pad, special_id(file, "tokenizer.ggml.padding_token_id", vocab.pad));
  KP_TRY(vocab.add_bos, file.get_bool_or("tokenizer.ggml.add_bos_token", true));
  // llama.cpp's default when the key is absent: a dummy prefix, as SentencePiece.
  KP_TRY(vocab.add_space_prefix, file.get_bool_or("tokenizer.ggml.add_space_prefix", true));
  return from_vocab(std::move(vocab), file.name());
}

Result<Tokenizer> Tokenizer::from_vocab(TokenizerVocab vocab, std::string_view source) {
  const size_t n = vocab.pieces.size();
  if (n == 0) return make_error("{}: key '{}': the vocabulary is empty", source, kTokensKey);
  if (n > static_cast<size_t>(std::numeric_limits<int32_t>::max())) {
    return make_error("{}: key '{}': {} tokens do not fit 32-bit ids", source, kTokensKey, n);
  }
  if (vocab.scores.size() != n) {
    return make_error("{}: key '{}' has {} entries but '{}' has {}", source, kScoresKey,
                      vocab.scores.size(), kTokensKey, n);
  }
  if (vocab.types.size() != n) {
    return make_error("{}: key '{}' has {} entries but '{}' has {}", source, kTypesKey,
                      vocab.types.size(), kTokensKey, n);
  }
  const auto check_id = [&](std::string_view name, int32_t id) -> Status {
    if (id < 0 || static_cast<size_t>(id) >= n) {
      return make_error("{}: key 'tokenizer.ggml.{}_token_id': token id {} is out of range for a "
                        "vocabulary of {} tokens", source, name, id, n);
    }
    return {};
  };
  KP_TRY_STATUS(check_id("bos", vocab.bos));
  KP_TRY_STATUS(check_id("eos", vocab.eos));
  KP_TRY_STATUS(check_id("unknown", vocab.unk));
  KP_TRY_STATUS(check_id("padding", vocab.pad));

  // The lookup tables address piece bytes with 32-bit offsets.
  uint64_t total_bytes = 0;
  for (const std::string& p : vocab.pieces) total_bytes += p.size();
  if (total_bytes > std::numeric_limits<uint32_t>::max() / 2) {
    return make_error("{}: key '{}': {} bytes of token text exceed the limit of 2 GiB", source,
                      kTokensKey, total_bytes);
  }

  auto index = std::make_shared<Index>();
  index->byte_id.fill(-1);
  size_t n_mergeable = 0;
  for (size_t i = 0; i < n; ++i) {
    const TokenType t = vocab.types[i];
    if (t < TokenType::kNormal || t > TokenType::kByte) {
      return make_error("{}: key '{}': entry {} is {}, expected a token type from 1 to 6", source,
                        kTypesKey, i, static_cast<int32_t>(t));
    }
    if (std::isnan(vocab.scores[i])) {
      return make_error("{}: key '{}': entry {} is NaN", source, kScoresKey, i);
    }
    if (t == TokenType::kNormal || t == TokenType::kUserDefined) ++n_mergeable;
  }
  index->mergeable.reserve(n_mergeable);
  for (size_t i = 0; i < n; ++i) {
    const auto id = static_cast<int32_t>(i);
    const std::string& piece = vocab.pieces[i];
    switch (vocab.types[i]) {
      case TokenType::kNormal:
        index->mergeable.insert(piece, id);
        index->joinable.insert_pairs_of(piece);
        break;
      case TokenType::kUserDefined:
        if (piece.empty()) {
          return make_error("{}: key '{}': user-defined token {} is empty", source, kTokensKey, i);
        }
        index->mergeable.insert(piece, id);
        index->joinable.insert_pairs_of(piece);
        index->user_defined.insert(piece, id);
        break;
      case TokenType::kByte: {
        const int b = parse_byte_piece(piece);
        if (b < 0) {
          return make_error("{}: key '{}': byte token {} is '{}', expected the form <0xNN>", source,
                            kTokensKey, i, piece);
        }
        if (index->byte_id[static_cast<size_t>(b)] < 0) index->byte_id[static_cast<size_t>(b)] = id;
        break;
      }
      case TokenType::kUnknown:
      case TokenType::kControl:
      case TokenType::kUnused:
        break;  // never produced from text
    }
  }

  Tokenizer tok;
  tok.pieces_ = std::move(vocab.pieces);
  tok.scores_ = std::move(vocab.scores);
  tok.types_ = std::move(vocab.types);
  tok.bos_ = vocab.bos;
  tok.eos_ = vocab.eos;
  tok.unk_ = vocab.unk;
  tok.pad_ = vocab.pad;
  tok.add_bos_ = vocab.add_bos;
  tok.add_space_prefix_ = vocab.add_space_prefix;
  tok.index_ = std::move(index);
  return tok;
}

std::string Tokenizer::piece_text(int32_t id) const {
  KP_CHECK(id >= 0 && id < n_vocab(), "token id in [0, n_vocab)");
  const auto i = static_cast<size_t>(id);
  std::string out;
  switch (types_[i]) {
    case TokenType::kControl:
      break;
    case TokenType::kUnknown:
      out = kUnknownSurface;
      break;
    case TokenType::kByte:
      // Validated in from_vocab: the piece is spelled <0xNN>.
      out.push_back(static_cast<char>(parse_byte_piece(pieces_[i])));
      break;
    case TokenType::kNormal:
    case TokenType::kUserDefined:
    case TokenType::kUnused:
      append_unescaped(pieces_[i], &out);
      break;
  }
  return out;
}

std::string Tokenizer::decode(const std::vector<int32_t>& ids) const {
  std::string out;
  // SentencePiece drops the dummy-prefix space once: from the first piece that
  // is not a control token, if that piece starts with "▁".
  bool at_start = add_space_prefix_;
  for (const int32_t id : ids) {
    KP_CHECK(id >= 0 && id < n_vocab(), "token id in [0, n_vocab)");
    const auto i = static_cast<size_t>(id);
    if (types_[i] == TokenType::kControl) continue;
    if (at_start) {
      at_start = false;
      const std::string& p = pieces_[i];
      if (types_[i] != TokenType::kByte && types_[i] != TokenType::kUnknown &&
          std::string_view(p).starts_with(kSpaceSymbol)) {
        append_unescaped(std::string_view(p).substr(kSpaceSymbol.size()), &out);
        continue;
      }
    }
    out += piece_text(id);
  }
  return out;
}

}  // namespace kp::model

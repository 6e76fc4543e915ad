// SentencePiece-BPE tokenizer as stored in GGUF (tokenizer.ggml.model = "llama"):
// merges chosen by piece score, byte fallback <0xNN>, user-defined pieces
// matched whole, control tokens never produced from plain text.
//
// Encoding (the SentencePiece BPE algorithm, checked against sentencepiece
// 0.1.97 by tests/model/tokenizer_test.cpp):
//   1. spaces become U+2581 "▁"; with add_space_prefix a "▁" is prepended;
//   2. the text is cut into UTF-8 characters, except that user-defined pieces
//      (type 4) are matched whole (longest first) and never merged further;
//      a byte that does not start a well-formed UTF-8 character is a symbol
//      of its own;
//   3. repeatedly, of all adjacent symbol pairs whose concatenation is a normal
//      or user-defined piece, the one with the highest score is merged (ties:
//      the leftmost pair);
//   4. a final symbol that is not a piece becomes one <0xNN> piece per byte
//      (the unknown token when the vocabulary has no piece for that byte).
// Control (3), unknown (2), unused (5) and byte (6) pieces are never the result
// of a merge, so text spelling "<bos>" or "<0x41>" is ordinary text.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "core/result.h"
#include "format/gguf.h"

namespace kp::model {

enum class TokenType : int32_t {
  kNormal = 1, kUnknown = 2, kControl = 3, kUserDefined = 4, kUnused = 5, kByte = 6,
};

// A vocabulary as plain data: what from_gguf reads from the tokenizer.ggml.* keys.
struct TokenizerVocab {
  std::vector<std::string> pieces;  // [n_vocab], UTF-8 with "▁" for space
  std::vector<float> scores;        // [n_vocab], merge priority (higher first)
  std::vector<TokenType> types;     // [n_vocab]
  int32_t bos = 2, eos = 1, unk = 3, pad = 0;
  bool add_bos = true;
  bool add_space_prefix = true;
};

class Tokenizer {
 public:
  // Reads tokenizer.ggml.{model,tokens,scores,token_type,bos_token_id,
  // eos_token_id,unknown_token_id,padding_token_id,add_bos_token,
  // add_space_prefix}. Errors name the file and the key.
  static Result<Tokenizer> from_gguf(const format::GgufFile& file);
  // Validates a vocabulary (lengths agree, ids in range, byte pieces spelled
  // <0xNN>) and builds the lookup tables. `source` names it in errors.
  static Result<Tokenizer> from_vocab(TokenizerVocab vocab, std::string_view source);

  // Text -> ids. Adds BOS when add_bos is true (callers pass add_bos_token()).
  // Any bytes are accepted (invalid UTF-8 falls back to byte pieces); the text
  // must be shorter than 2 GiB.
  std::vector<int32_t> encode(std::string_view text, bool add_bos) const;
  // Ids -> UTF-8 text; control tokens decode to "" and byte pieces are joined.
  // With add_space_prefix the "▁" of the first piece is dropped again, as
  // SentencePiece does. Ids must lie in [0, n_vocab).
  std::string decode(const std::vector<int32_t>& ids) const;
  // One token's text for streaming (bytes of a <0xNN> piece as one raw byte).
  std::string piece_text(int32_t id) const;
  const std::string& piece(int32_t id) const { return pieces_.at(static_cast<size_t>(id)); }
  TokenType type(int32_t id) const { return types_.at(static_cast<size_t>(id)); }
  float score(int32_t id) const { return scores_.at(static_cast<size_t>(id)); }

  int32_t n_vocab() const { return static_cast<int32_t>(pieces_.size()); }
  int32_t bos_id() const { return bos_; }
  int32_t eos_id() const { return eos_; }
  int32_t unk_id() const { return unk_; }
  int32_t pad_id() const { return pad_; }
  bool add_bos_token() const { return add_bos_; }
  bool add_space_prefix() const { return add_space_prefix_; }

 private:
  std::vector<std::string> pieces_;
  std::vector<float> scores_;
  std::vector<TokenType> types_;
  int32_t bos_ = 2, eos_ = 1, unk_ = 3, pad_ = 0;
  bool add_bos_ = true;
  bool add_space_prefix_ = false;
  // Lookup structures are the implementation's (tokenizer_index.h). Shared and
  // immutable, so copies of a Tokenizer are cheap and safe.
  struct Index;
  std::shared_ptr<const Index> index_;
};

}  // namespace kp::model

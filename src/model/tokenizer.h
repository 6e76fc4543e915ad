// SentencePiece-BPE tokenizer as stored in GGUF (tokenizer.ggml.model = "llama"):
// merges chosen by piece score, byte fallback <0xNN>, user-defined pieces
// matched whole, control tokens never produced from plain text.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "core/result.h"
#include "format/gguf.h"

namespace kp::model {

enum class TokenType : int32_t {
  kNormal = 1, kUnknown = 2, kControl = 3, kUserDefined = 4, kUnused = 5, kByte = 6,
};

class Tokenizer {
 public:
  static Result<Tokenizer> from_gguf(const format::GgufFile& file);

  // Text -> ids. Adds BOS when add_bos is true (callers pass add_bos_token()).
  std::vector<int32_t> encode(std::string_view text, bool add_bos) const;
  // Ids -> UTF-8 text; control tokens decode to "" and byte pieces are joined.
  std::string decode(const std::vector<int32_t>& ids) const;
  // One token's text for streaming (bytes of a <0xNN> piece as one raw byte).
  std::string piece_text(int32_t id) const;
  const std::string& piece(int32_t id) const { return pieces_.at(static_cast<size_t>(id)); }

  int32_t n_vocab() const { return static_cast<int32_t>(pieces_.size()); }
  int32_t bos_id() const { return bos_; }
  int32_t eos_id() const { return eos_; }
  bool add_bos_token() const { return add_bos_; }

 private:
  std::vector<std::string> pieces_;
  std::vector<float> scores_;
  std::vector<TokenType> types_;
  int32_t bos_ = 2, eos_ = 1, unk_ = 3, pad_ = 0;
  bool add_bos_ = true;
  bool add_space_prefix_ = false;
  // Lookup structures are the implementation's (tokenizer.cpp).
  struct Index;
  std::shared_ptr<const Index> index_;
};

}  // namespace kp::model

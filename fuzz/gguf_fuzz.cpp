// Fuzz target: the GGUF reader (format::GgufFile::parse) on arbitrary bytes,
// and what kpath does next with a file that parses: every metadata value
// through the typed accessors, one row of every tensor dequantized, the
// Gemma 2 config and the tokenizer read from it. Any of these may reject the
// file with an error; none may crash, leak or read outside the input.
// Seeds: small GGUF files written by gguf_seeds.cpp (scripts/fuzz.sh).
#include <algorithm>
#include <cstdint>
#include <span>
#include <vector>

#include "core/mapped_file.h"
#include "format/gguf.h"
#include "format/quant.h"
#include "fuzz_support.h"
#include "model/gemma2_config.h"
#include "model/tokenizer.h"

namespace {

using kp::format::GgufValue;

// Walks a value through every accessor (each either succeeds or names the
// key); counts the values. Of an array's elements only the first few go
// through the accessors: an error message per element and accessor would make
// a vocabulary of a few hundred tokens cost milliseconds per input.
size_t visit(const GgufValue& v, std::string_view key, bool accessors = true) {
  size_t n = 1;
  if (accessors) {
    (void)kp::format::value_type_name(v.type);
    (void)v.as_u64(key);
    (void)v.as_i64(key);
    (void)v.as_f64(key);
    (void)v.as_bool(key);
    (void)v.as_string(key);
  }
  if (const kp::format::GgufArray* a = v.as_array()) {
    for (size_t i = 0; i < a->elems.size(); ++i) n += visit(a->elems[i], key, accessors && i < 4);
  }
  return n;
}

// Dequantizes the first row of each tensor (at most 64K elements): the reader
// promised that every tensor's bytes lie inside the file.
void dequantize_first_rows(const kp::format::GgufFile& file) {
  std::vector<float> row;
  for (const auto& t : file.tensors()) {
    if (!kp::format::can_dequantize(t.type)) continue;
    const uint64_t block = kp::format::traits(t.type).block_elems;
    const uint64_t n = std::min<uint64_t>(t.cols(), 1u << 16) / block * block;
    if (n == 0) continue;
    KP_FUZZ_CHECK(kp::format::row_bytes(t.type, n) <= t.n_bytes, "a row lies inside the tensor");
    row.resize(n);
    const kp::Status st = kp::format::dequantize(t.type, t.data, row.data(), static_cast<int64_t>(n));
    KP_FUZZ_CHECK(st.ok(), "a type can_dequantize accepts dequantizes");
  }
}

void use_tokenizer(const kp::model::Tokenizer& tok) {
  const std::vector<int32_t> ids = tok.encode("In the beginning God created the heaven and the earth.\n\xff", true);
  for (const int32_t id : ids) {
    KP_FUZZ_CHECK(id >= 0 && id < tok.n_vocab(), "encode returns ids in the vocabulary");
    (void)tok.piece_text(id);
  }
  (void)tok.decode(ids);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  auto bytes = kp::MappedFile::from_bytes(std::span<const uint8_t>(data, size), "fuzz.gguf");
  kp::Result<kp::format::GgufFile> file = kp::format::GgufFile::parse(bytes);
  if (!file) {
    KP_FUZZ_CHECK(!file.error().message.empty(), "an error has a message");
    return 0;
  }
  size_t values = 0;
  for (const auto& [key, value] : file->metadata()) {
    KP_FUZZ_CHECK(file->find(key) == &value, "find returns the key's value");
    values += visit(value, key);
  }
  KP_FUZZ_CHECK(values <= size + 1, "every value takes at least one byte");
  for (const auto& t : file->tensors()) KP_FUZZ_CHECK(file->tensor(t.name) == &t, "tensor() finds each tensor");
  (void)file->get_u64_or("general.alignment", 32);
  (void)file->get_string("general.architecture");
  dequantize_first_rows(*file);
  (void)kp::model::load_gemma2_config(*file);
  if (kp::Result<kp::model::Tokenizer> tok = kp::model::Tokenizer::from_gguf(*file)) use_tokenizer(*tok);
  return 0;
}

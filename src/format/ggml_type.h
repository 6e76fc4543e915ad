// Tensor element types as numbered by GGUF (ggml's enum), and their block
// geometry. Only the types kpath reads are "supported"; the others are known
// by number so that `kpath info` can name them and loaders can refuse them.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string_view>

namespace kp::format {

enum class GgmlType : uint32_t {
  F32 = 0,
  F16 = 1,
  Q4_0 = 2,
  Q4_1 = 3,
  Q5_0 = 6,
  Q5_1 = 7,
  Q8_0 = 8,
  Q8_1 = 9,
  Q2_K = 10,
  Q3_K = 11,
  Q4_K = 12,
  Q5_K = 13,
  Q6_K = 14,
  Q8_K = 15,
  IQ2_XXS = 16,
  IQ2_XS = 17,
  IQ3_XXS = 18,
  IQ1_S = 19,
  IQ4_NL = 20,
  IQ3_S = 21,
  IQ2_S = 22,
  IQ4_XS = 23,
  I8 = 24,
  I16 = 25,
  I32 = 26,
  I64 = 27,
  F64 = 28,
  IQ1_M = 29,
  BF16 = 30,
  TQ1_0 = 34,
  TQ2_0 = 35,
};

struct TypeTraits {
  std::string_view name;  // "Q4_K", as llama.cpp prints it
  uint32_t block_elems;   // weights per block (1 for plain types)
  uint32_t block_bytes;   // bytes per block
  bool supported;         // kpath can dequantize it
};

// nullopt for a number GGUF does not define.
std::optional<TypeTraits> type_traits(uint32_t raw_type);
const TypeTraits& traits(GgmlType t);  // t must be a defined type
std::string_view type_name(GgmlType t);
// Parses "q4_k", "Q4_K", "f16", "bf16" ...; nullopt if unknown.
std::optional<GgmlType> parse_type(std::string_view name);

// Bytes of a row of n elements; n must be a multiple of the block size.
inline size_t row_bytes(GgmlType t, uint64_t n) {
  const TypeTraits& tt = traits(t);
  return static_cast<size_t>(n / tt.block_elems) * tt.block_bytes;
}

}  // namespace kp::format

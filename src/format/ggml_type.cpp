// Block geometry of every tensor type GGUF defines, numbered as in ggml's
// `enum ggml_type`. The sizes are those of ggml's block structs
// (ggml-common.h); the ones kpath reads are also static_asserted in
// format/quant_blocks.h.
#include "format/ggml_type.h"

#include <array>
#include <cctype>
#include <string>

#include "core/check.h"

namespace kp::format {
namespace {

struct Entry {
  GgmlType type;
  TypeTraits traits;
};

// {name, weights per block, bytes per block, supported}
constexpr std::array<Entry, 31> kTypes{{
    {GgmlType::F32, {"F32", 1, 4, true}},
    {GgmlType::F16, {"F16", 1, 2, true}},
    {GgmlType::Q4_0, {"Q4_0", 32, 18, false}},      // f16 d + 16 B of nibbles
    {GgmlType::Q4_1, {"Q4_1", 32, 20, false}},      // f16 d, m + 16 B
    {GgmlType::Q5_0, {"Q5_0", 32, 22, false}},      // f16 d + 4 B high bits + 16 B
    {GgmlType::Q5_1, {"Q5_1", 32, 24, false}},      // f16 d, m + 4 B + 16 B
    {GgmlType::Q8_0, {"Q8_0", 32, 34, true}},       // f16 d + 32 int8
    {GgmlType::Q8_1, {"Q8_1", 32, 36, false}},      // f16 d, s + 32 int8
    {GgmlType::Q2_K, {"Q2_K", 256, 84, false}},     // 16 scales + 64 quants + f16 d, dmin
    {GgmlType::Q3_K, {"Q3_K", 256, 110, false}},    // 32 hmask + 64 qs + 12 scales + f16 d
    {GgmlType::Q4_K, {"Q4_K", 256, 144, true}},     // f16 d, dmin + 12 scales + 128 qs
    {GgmlType::Q5_K, {"Q5_K", 256, 176, true}},     // as Q4_K + 32 qh
    {GgmlType::Q6_K, {"Q6_K", 256, 210, true}},     // 128 ql + 64 qh + 16 scales + f16 d
    {GgmlType::Q8_K, {"Q8_K", 256, 292, false}},    // f32 d + 256 qs + 16 int16 bsums
    {GgmlType::IQ2_XXS, {"IQ2_XXS", 256, 66, false}},  // f16 d + 32 uint16
    {GgmlType::IQ2_XS, {"IQ2_XS", 256, 74, false}},    // f16 d + 32 uint16 + 8 scales
    {GgmlType::IQ3_XXS, {"IQ3_XXS", 256, 98, false}},  // f16 d + 96 B
    {GgmlType::IQ1_S, {"IQ1_S", 256, 50, false}},      // f16 d + 32 qs + 8 uint16 qh
    {GgmlType::IQ4_NL, {"IQ4_NL", 32, 18, false}},     // f16 d + 16 B
    {GgmlType::IQ3_S, {"IQ3_S", 256, 110, false}},     // f16 d + 64 qs + 8 qh + 32 signs + 4 scales
    {GgmlType::IQ2_S, {"IQ2_S", 256, 82, false}},      // f16 d + 64 qs + 8 qh + 8 scales
    {GgmlType::IQ4_XS, {"IQ4_XS", 256, 136, false}},   // f16 d + uint16 scales_h + 4 scales_l + 128 qs
    {GgmlType::I8, {"I8", 1, 1, false}},
    {GgmlType::I16, {"I16", 1, 2, false}},
    {GgmlType::I32, {"I32", 1, 4, false}},
    {GgmlType::I64, {"I64", 1, 8, false}},
    {GgmlType::F64, {"F64", 1, 8, false}},
    {GgmlType::IQ1_M, {"IQ1_M", 256, 56, false}},      // 32 qs + 16 qh + 8 scales
    {GgmlType::BF16, {"BF16", 1, 2, true}},
    {GgmlType::TQ1_0, {"TQ1_0", 256, 54, false}},      // 48 qs + 4 qh + f16 d
    {GgmlType::TQ2_0, {"TQ2_0", 256, 66, false}},      // 64 qs + f16 d
}};

const Entry* find_entry(uint32_t raw) {
  for (const Entry& e : kTypes) {
    if (static_cast<uint32_t>(e.type) == raw) return &e;
  }
  return nullptr;
}

}  // namespace

std::optional<TypeTraits> type_traits(uint32_t raw_type) {
  const Entry* e = find_entry(raw_type);
  if (e == nullptr) return std::nullopt;
  return e->traits;
}

const TypeTraits& traits(GgmlType t) {
  const Entry* e = find_entry(static_cast<uint32_t>(t));
  KP_CHECK(e != nullptr, "GgmlType value is not a defined GGUF tensor type");
  return e->traits;
}

std::string_view type_name(GgmlType t) { return traits(t).name; }

std::optional<GgmlType> parse_type(std::string_view name) {
  std::string upper(name);
  for (char& c : upper) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  for (const Entry& e : kTypes) {
    if (e.traits.name == upper) return e.type;
  }
  return std::nullopt;
}

}  // namespace kp::format

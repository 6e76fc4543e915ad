// Tensor type numbering and block geometry, against ggml's tables
// (ggml.c type_traits: blck_size and type_size).
#include <gtest/gtest.h>

#include "format/ggml_type.h"

namespace kp::format {
namespace {

struct Expected {
  uint32_t number;
  const char* name;
  uint32_t block_elems;
  uint32_t block_bytes;
  bool supported;
};

// Every type number GGUF defines today, with ggml's geometry.
const Expected kAll[] = {
    {0, "F32", 1, 4, true},        {1, "F16", 1, 2, true},          {2, "Q4_0", 32, 18, false},
    {3, "Q4_1", 32, 20, false},    {6, "Q5_0", 32, 22, false},      {7, "Q5_1", 32, 24, false},
    {8, "Q8_0", 32, 34, true},     {9, "Q8_1", 32, 36, false},      {10, "Q2_K", 256, 84, false},
    {11, "Q3_K", 256, 110, false}, {12, "Q4_K", 256, 144, true},    {13, "Q5_K", 256, 176, true},
    {14, "Q6_K", 256, 210, true},  {15, "Q8_K", 256, 292, false},   {16, "IQ2_XXS", 256, 66, false},
    {17, "IQ2_XS", 256, 74, false}, {18, "IQ3_XXS", 256, 98, false}, {19, "IQ1_S", 256, 50, false},
    {20, "IQ4_NL", 32, 18, false}, {21, "IQ3_S", 256, 110, false},  {22, "IQ2_S", 256, 82, false},
    {23, "IQ4_XS", 256, 136, false}, {24, "I8", 1, 1, false},        {25, "I16", 1, 2, false},
    {26, "I32", 1, 4, false},      {27, "I64", 1, 8, false},        {28, "F64", 1, 8, false},
    {29, "IQ1_M", 256, 56, false}, {30, "BF16", 1, 2, true},        {34, "TQ1_0", 256, 54, false},
    {35, "TQ2_0", 256, 66, false},
};

TEST(GgmlType, GeometryOfEveryDefinedType) {
  for (const Expected& e : kAll) {
    SCOPED_TRACE(e.name);
    const std::optional<TypeTraits> t = type_traits(e.number);
    ASSERT_TRUE(t.has_value());
    EXPECT_EQ(t->name, e.name);
    EXPECT_EQ(t->block_elems, e.block_elems);
    EXPECT_EQ(t->block_bytes, e.block_bytes);
    EXPECT_EQ(t->supported, e.supported);
    EXPECT_EQ(type_name(static_cast<GgmlType>(e.number)), e.name);
    EXPECT_EQ(traits(static_cast<GgmlType>(e.number)).block_bytes, e.block_bytes);
  }
}

TEST(GgmlType, UndefinedNumbersAreUnknown) {
  // 4 and 5 (the removed Q4_2, Q4_3), 31-33 (removed Q4_0_4_4 ...), 36-38, and beyond.
  for (uint32_t n : {4u, 5u, 31u, 32u, 33u, 36u, 37u, 38u, 40u, 99u, 0xffffffffu}) {
    EXPECT_FALSE(type_traits(n).has_value()) << n;
  }
}

TEST(GgmlType, ParseIsCaseInsensitive) {
  EXPECT_EQ(parse_type("q4_k"), GgmlType::Q4_K);
  EXPECT_EQ(parse_type("Q6_K"), GgmlType::Q6_K);
  EXPECT_EQ(parse_type("f16"), GgmlType::F16);
  EXPECT_EQ(parse_type("bf16"), GgmlType::BF16);
  EXPECT_EQ(parse_type("iq4_xs"), GgmlType::IQ4_XS);
  EXPECT_FALSE(parse_type("q4_k_m").has_value());
  EXPECT_FALSE(parse_type("").has_value());
  EXPECT_FALSE(parse_type("f").has_value());
}

TEST(GgmlType, RowBytes) {
  EXPECT_EQ(row_bytes(GgmlType::Q4_K, 2304), 9u * 144u);
  EXPECT_EQ(row_bytes(GgmlType::Q8_0, 256), 8u * 34u);
  EXPECT_EQ(row_bytes(GgmlType::F16, 3), 6u);
  EXPECT_EQ(row_bytes(GgmlType::Q6_K, 9216), 36u * 210u);
}

}  // namespace
}  // namespace kp::format

// The block structs of format/quant_blocks.h have ggml's byte layout
// (ggml-common.h): field offsets, sizes, and agreement with the type table
// that GGUF sizes are computed from (format/ggml_type.cpp).
#include <gtest/gtest.h>

#include <cstddef>

#include "format/ggml_type.h"
#include "format/quant_blocks.h"

namespace kp::format {
namespace {

TEST(QuantLayout, Q8_0) {
  EXPECT_EQ(offsetof(BlockQ8_0, d), 0u);
  EXPECT_EQ(offsetof(BlockQ8_0, qs), 2u);
  EXPECT_EQ(sizeof(BlockQ8_0), 34u);
  EXPECT_EQ(alignof(BlockQ8_0), 2u);
}

TEST(QuantLayout, Q4_K) {
  EXPECT_EQ(offsetof(BlockQ4_K, d), 0u);
  EXPECT_EQ(offsetof(BlockQ4_K, dmin), 2u);
  EXPECT_EQ(offsetof(BlockQ4_K, scales), 4u);
  EXPECT_EQ(offsetof(BlockQ4_K, qs), 16u);
  EXPECT_EQ(sizeof(BlockQ4_K), 144u);
}

TEST(QuantLayout, Q5_K) {
  EXPECT_EQ(offsetof(BlockQ5_K, d), 0u);
  EXPECT_EQ(offsetof(BlockQ5_K, dmin), 2u);
  EXPECT_EQ(offsetof(BlockQ5_K, scales), 4u);
  EXPECT_EQ(offsetof(BlockQ5_K, qh), 16u);
  EXPECT_EQ(offsetof(BlockQ5_K, qs), 48u);
  EXPECT_EQ(sizeof(BlockQ5_K), 176u);
}

TEST(QuantLayout, Q6_K) {
  EXPECT_EQ(offsetof(BlockQ6_K, ql), 0u);
  EXPECT_EQ(offsetof(BlockQ6_K, qh), 128u);
  EXPECT_EQ(offsetof(BlockQ6_K, scales), 192u);
  EXPECT_EQ(offsetof(BlockQ6_K, d), 208u);
  EXPECT_EQ(sizeof(BlockQ6_K), 210u);
}

TEST(QuantLayout, TypeTableAgreesWithStructs) {
  struct Case {
    GgmlType type;
    size_t elems;
    size_t bytes;
  };
  const Case cases[] = {
      {GgmlType::Q8_0, kQK8_0, sizeof(BlockQ8_0)},
      {GgmlType::Q4_K, kQK_K, sizeof(BlockQ4_K)},
      {GgmlType::Q5_K, kQK_K, sizeof(BlockQ5_K)},
      {GgmlType::Q6_K, kQK_K, sizeof(BlockQ6_K)},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(type_name(c.type));
    EXPECT_EQ(traits(c.type).block_elems, c.elems);
    EXPECT_EQ(traits(c.type).block_bytes, c.bytes);
    EXPECT_EQ(row_bytes(c.type, 2 * c.elems), 2 * c.bytes);
  }
}

}  // namespace
}  // namespace kp::format

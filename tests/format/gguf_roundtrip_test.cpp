// GgufWriter -> GgufFile round trips (every value type, nested arrays,
// alignment, tensors), the writer's exact bytes against a hand-assembled
// file, version 2 files, and the typed lookups.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdio>
#include <fstream>
#include <iterator>
#include <limits>

#include "format/gguf.h"
#include "gguf_test_bytes.h"

namespace kp::format {
namespace {

using test::Bytes;

Result<GgufFile> parse_roundtrip_bytes(const std::vector<uint8_t>& bytes, std::string name = "rt.gguf") {
  return GgufFile::parse(MappedFile::from_bytes(bytes, std::move(name)));
}

// Structural equality; floats by bits so that -0.0 and NaN round-trip exactly.
void expect_same(const GgufValue& a, const GgufValue& b, const std::string& where) {
  ASSERT_EQ(a.type, b.type) << where;
  ASSERT_EQ(a.v.index(), b.v.index()) << where;
  if (const auto* x = std::get_if<double>(&a.v)) {
    const double y = std::get<double>(b.v);
    EXPECT_EQ(std::memcmp(x, &y, sizeof(double)), 0) << where << ": " << *x << " vs " << y;
  } else if (const GgufArray* arr = a.as_array()) {
    const GgufArray* brr = b.as_array();
    ASSERT_NE(brr, nullptr) << where;
    ASSERT_EQ(arr->elem_type, brr->elem_type) << where;
    ASSERT_EQ(arr->elems.size(), brr->elems.size()) << where;
    for (size_t i = 0; i < arr->elems.size(); ++i) {
      expect_same(arr->elems[i], brr->elems[i], where + "[" + std::to_string(i) + "]");
    }
  } else {
    EXPECT_TRUE(a.v == b.v) << where;
  }
}

std::vector<std::pair<std::string, GgufValue>> all_value_kinds() {
  using V = GgufValue;
  using T = GgufValueType;
  std::vector<std::pair<std::string, GgufValue>> kv;
  kv.emplace_back("t.u8", V::u8(255));
  kv.emplace_back("t.i8", V::i8(-128));
  kv.emplace_back("t.u16", V::u16(65535));
  kv.emplace_back("t.i16", V::i16(-32768));
  kv.emplace_back("t.u32", V::u32(4294967295u));
  kv.emplace_back("t.i32", V::i32(std::numeric_limits<int32_t>::min()));
  kv.emplace_back("t.u64", V::u64(std::numeric_limits<uint64_t>::max()));
  kv.emplace_back("t.i64", V::i64(std::numeric_limits<int64_t>::min()));
  kv.emplace_back("t.f32", V::f32(1e-6f));
  kv.emplace_back("t.f32_neg_zero", V::f32(-0.0f));
  kv.emplace_back("t.f32_nan", V::f32(std::numeric_limits<float>::quiet_NaN()));
  kv.emplace_back("t.f64", V::f64(3.141592653589793));
  kv.emplace_back("t.true", V::boolean(true));
  kv.emplace_back("t.false", V::boolean(false));
  kv.emplace_back("t.string", V::string("In the beginning \xe2\x80\x94 \xe5\x88\x9d"));
  kv.emplace_back("t.string_nul", V::string(std::string("a\0b", 3)));
  kv.emplace_back("t.empty_string", V::string(""));
  kv.emplace_back("t.empty_array", V::array(T::INT32, {}));
  kv.emplace_back("t.u8_array", V::array(T::UINT8, {V::u8(0), V::u8(7), V::u8(255)}));
  kv.emplace_back("t.i64_array", V::array(T::INT64, {V::i64(-1), V::i64(1ll << 40)}));
  kv.emplace_back("t.f32_array", V::array(T::FLOAT32, {V::f32(0.5f), V::f32(-2.25f)}));
  kv.emplace_back("t.bool_array", V::array(T::BOOL, {V::boolean(true), V::boolean(false)}));
  kv.emplace_back("t.string_array", V::array(T::STRING, {V::string("<pad>"), V::string(""), V::string("\n")}));
  // Array of arrays, each inner array with its own element type.
  kv.emplace_back("t.nested", V::array(T::ARRAY, {V::array(T::STRING, {V::string("x"), V::string("yz")}),
                                                  V::array(T::UINT16, {V::u16(9)}),
                                                  V::array(T::FLOAT64, {})}));
  // Three levels.
  kv.emplace_back("t.nested3", V::array(T::ARRAY, {V::array(T::ARRAY, {V::array(T::INT8, {V::i8(-3)})})}));
  return kv;
}

TEST(GgufRoundTrip, EveryValueType) {
  GgufWriter w;
  const auto kvs = all_value_kinds();
  for (const auto& [k, v] : kvs) w.set(k, v);
  const Result<GgufFile> f = parse_roundtrip_bytes(w.to_bytes());
  ASSERT_TRUE(f.ok()) << f.error().message;
  EXPECT_EQ(f->version(), 3u);
  ASSERT_EQ(f->metadata().size(), kvs.size());
  for (size_t i = 0; i < kvs.size(); ++i) {
    EXPECT_EQ(f->metadata()[i].first, kvs[i].first);  // insertion order is kept
    const GgufValue* v = f->find(kvs[i].first);
    ASSERT_NE(v, nullptr) << kvs[i].first;
    expect_same(kvs[i].second, *v, kvs[i].first);
  }
  // Spot checks with literal expectations.
  EXPECT_EQ(f->get_u64("t.u64").value(), 18446744073709551615ull);
  EXPECT_EQ(f->find("t.i8")->as_i64("t.i8").value(), -128);
  EXPECT_EQ(f->get_f64("t.f32").value(), static_cast<double>(1e-6f));
  EXPECT_EQ(f->get_string("t.string_nul").value(), std::string("a\0b", 3));
  const GgufArray* nested = f->find("t.nested")->as_array();
  ASSERT_NE(nested, nullptr);
  EXPECT_EQ(nested->elem_type, GgufValueType::ARRAY);
  ASSERT_EQ(nested->elems.size(), 3u);
  EXPECT_EQ(nested->elems[0].as_array()->elems[1].as_string("e").value(), "yz");
  EXPECT_EQ(nested->elems[1].as_array()->elem_type, GgufValueType::UINT16);
  EXPECT_EQ(nested->elems[1].as_array()->elems[0].as_u64("e").value(), 9u);
}

TEST(GgufRoundTrip, ArraysAtTheDepthLimitAreAccepted) {
  GgufValue v = GgufValue::array(GgufValueType::UINT8, {GgufValue::u8(42)});
  for (int d = 1; d < kGgufMaxArrayDepth; ++d) v = GgufValue::array(GgufValueType::ARRAY, {v});
  GgufWriter w;
  w.set("t.deep", v);
  const Result<GgufFile> f = parse_roundtrip_bytes(w.to_bytes());
  ASSERT_TRUE(f.ok()) << f.error().message;
  const GgufValue* cur = f->find("t.deep");
  for (int d = 0; d < kGgufMaxArrayDepth; ++d) {
    ASSERT_NE(cur->as_array(), nullptr) << "level " << d;
    cur = &cur->as_array()->elems.at(0);
  }
  EXPECT_EQ(cur->as_u64("leaf").value(), 42u);
}

// Tensor bytes of n elements of `type`, filled with a recognisable pattern.
std::vector<uint8_t> pattern(size_t n, uint8_t seed) {
  std::vector<uint8_t> b(n);
  for (size_t i = 0; i < n; ++i) b[i] = static_cast<uint8_t>(seed + i * 13);
  return b;
}

TEST(GgufRoundTrip, TensorsAndAlignment) {
  for (uint32_t alignment : {1u, 32u, 64u, 4096u}) {
    GgufWriter w;
    w.set("general.architecture", GgufValue::string("gemma2"));
    if (alignment != 32) w.set_alignment(alignment);
    // {name, type, dims, bytes}: bytes from the block geometry in ggml-common.h.
    struct T { const char* name; GgmlType type; std::vector<uint64_t> dims; size_t bytes; };
    const std::vector<T> ts = {
        {"norm", GgmlType::F32, {5}, 20},
        {"emb", GgmlType::F16, {3, 7}, 42},
        {"q4k", GgmlType::Q4_K, {512, 2}, 4 * 144},
        {"q6k", GgmlType::Q6_K, {256, 1, 3}, 3 * 210},
        {"q8", GgmlType::Q8_0, {64, 2, 1, 2}, 8 * 34},
        {"bf", GgmlType::BF16, {1}, 2},
        {"q5k", GgmlType::Q5_K, {256}, 176},
        {"iq4nl", GgmlType::IQ4_NL, {32}, 18},
    };
    for (size_t i = 0; i < ts.size(); ++i) {
      ASSERT_TRUE(w.add_tensor(ts[i].name, ts[i].type, ts[i].dims, pattern(ts[i].bytes, static_cast<uint8_t>(i))).ok());
    }
    const std::vector<uint8_t> bytes = w.to_bytes();
    const Result<GgufFile> f = parse_roundtrip_bytes(bytes);
    ASSERT_TRUE(f.ok()) << f.error().message;
    EXPECT_EQ(f->alignment(), alignment);
    EXPECT_EQ(f->data_offset() % alignment, 0u);
    if (alignment != 32) EXPECT_EQ(f->get_u64("general.alignment").value(), alignment);
    else EXPECT_EQ(f->find("general.alignment"), nullptr);
    ASSERT_EQ(f->tensors().size(), ts.size());
    for (size_t i = 0; i < ts.size(); ++i) {
      const GgufTensorInfo& t = f->tensors()[i];
      SCOPED_TRACE(ts[i].name);
      EXPECT_EQ(t.name, ts[i].name);
      EXPECT_EQ(t.type, ts[i].type);
      EXPECT_EQ(t.dims, ts[i].dims);
      EXPECT_EQ(t.n_bytes, ts[i].bytes);
      EXPECT_EQ(t.offset % alignment, 0u);
      EXPECT_EQ(t.data, f->file()->data() + f->data_offset() + t.offset);
      const std::vector<uint8_t> want = pattern(ts[i].bytes, static_cast<uint8_t>(i));
      EXPECT_TRUE(std::equal(want.begin(), want.end(), t.data));
      EXPECT_EQ(f->tensor(ts[i].name), &t);
    }
    // Tensors are packed in order: each starts at the first aligned byte after the previous.
    uint64_t expect_offset = 0;
    for (const GgufTensorInfo& t : f->tensors()) {
      EXPECT_EQ(t.offset, expect_offset);
      expect_offset = (t.offset + t.n_bytes + alignment - 1) / alignment * alignment;
    }
    EXPECT_EQ(bytes.size(), f->data_offset() + expect_offset);
    EXPECT_EQ(f->tensors()[3].cols(), 256u);
    EXPECT_EQ(f->tensors()[3].rows(), 3u);
    EXPECT_EQ(f->tensors()[3].n_elements, 768u);
  }
}

// The writer's bytes, field by field, as the specification lays them out.
TEST(GgufRoundTrip, WriterBytesMatchTheSpecification) {
  GgufWriter w;
  w.set("general.architecture", GgufValue::string("gemma2"));
  w.set("t.arr", GgufValue::array(GgufValueType::INT16, {GgufValue::i16(-2), GgufValue::i16(3)}));
  ASSERT_TRUE(w.add_tensor("w", GgmlType::F16, {2, 3}, pattern(12, 1)).ok());
  ASSERT_TRUE(w.add_tensor("v", GgmlType::F32, {1}, pattern(4, 2)).ok());

  Bytes e;
  e.raw("GGUF").u32(3).u64(2).u64(2);
  e.str("general.architecture").u32(test::kString).str("gemma2");
  e.str("t.arr").u32(test::kArray).u32(test::kI16).u64(2).put<int16_t>(-2).put<int16_t>(3);
  e.str("w").u32(2).u64(2).u64(3).u32(test::kTypeF16).u64(0);
  e.str("v").u32(1).u64(1).u32(test::kTypeF32).u64(32);  // 12 bytes padded to 32
  e.pad_to(32);
  e.raw(pattern(12, 1)).zeros(20).raw(pattern(4, 2)).zeros(28);
  EXPECT_EQ(w.to_bytes(), e.b);

  // Determinism, and write() produces the same bytes as to_bytes().
  EXPECT_EQ(w.to_bytes(), w.to_bytes());
  const std::string path = ::testing::TempDir() + "gguf_roundtrip_written.gguf";
  ASSERT_TRUE(w.write(path).ok());
  std::ifstream in(path, std::ios::binary);
  const std::vector<uint8_t> on_disk((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  EXPECT_EQ(on_disk, e.b);
  const Result<GgufFile> opened = GgufFile::open(path);
  ASSERT_TRUE(opened.ok()) << opened.error().message;
  EXPECT_EQ(opened->name(), path);
  EXPECT_EQ(opened->tensor("v")->data[0], pattern(4, 2)[0]);
  std::remove(path.c_str());
}

TEST(GgufRoundTrip, SetReplacesAKeyInPlace) {
  GgufWriter w;
  w.set("a", GgufValue::u32(1));
  w.set("b", GgufValue::u32(2));
  w.set("a", GgufValue::string("one"));
  const Result<GgufFile> f = parse_roundtrip_bytes(w.to_bytes());
  ASSERT_TRUE(f.ok());
  ASSERT_EQ(f->metadata().size(), 2u);
  EXPECT_EQ(f->metadata()[0].first, "a");
  EXPECT_EQ(f->get_string("a").value(), "one");
}

TEST(GgufRoundTrip, AddTensorRejectsBadInput) {
  GgufWriter w;
  ASSERT_TRUE(w.add_tensor("x", GgmlType::F32, {4}, std::vector<uint8_t>(16)).ok());
  const Status dup = w.add_tensor("x", GgmlType::F32, {4}, std::vector<uint8_t>(16));
  ASSERT_FALSE(dup.ok());
  EXPECT_NE(dup.error().message.find("tensor 'x': added twice"), std::string::npos) << dup.error().message;
  const Status size = w.add_tensor("y", GgmlType::Q4_K, {256, 2}, std::vector<uint8_t>(287));
  ASSERT_FALSE(size.ok());
  EXPECT_NE(size.error().message.find("tensor 'y': data has 287 bytes, expected 288 for 512 elements of Q4_K"),
            std::string::npos) << size.error().message;
  const Status block = w.add_tensor("z", GgmlType::Q8_0, {48}, std::vector<uint8_t>(51));
  ASSERT_FALSE(block.ok());
  EXPECT_NE(block.error().message.find("dim 0 (48) is not a multiple of the Q8_0 block size 32"),
            std::string::npos) << block.error().message;
  const Status dims = w.add_tensor("d", GgmlType::F32, {1, 1, 1, 1, 1}, std::vector<uint8_t>(4));
  ASSERT_FALSE(dims.ok());
  EXPECT_NE(dims.error().message.find("5 dims (expected 1 to 4)"), std::string::npos);
  const Status zero = w.add_tensor("e", GgmlType::F32, {4, 0}, {});
  ASSERT_FALSE(zero.ok());
  EXPECT_NE(zero.error().message.find("dim 1 is 0"), std::string::npos);
}

// A version 2 file (same layout as 3 for little-endian files) is read.
TEST(GgufRoundTrip, ReadsVersion2) {
  Bytes b;
  b.raw("GGUF").u32(2).u64(1).u64(1);
  b.str("general.architecture").u32(test::kString).str("gemma2");
  b.str("t").u32(1).u64(8).u32(test::kTypeF32).u64(0);
  b.pad_to(32).raw(pattern(32, 5));
  const Result<GgufFile> f = parse_roundtrip_bytes(b.b);
  ASSERT_TRUE(f.ok()) << f.error().message;
  EXPECT_EQ(f->version(), 2u);
  EXPECT_EQ(f->get_string("general.architecture").value(), "gemma2");
  EXPECT_EQ(f->data_offset(), 128u);  // 24 + 46 + 33 = 103 bytes before the data, padded to 128
  EXPECT_EQ(f->tensor("t")->n_bytes, 32u);
}

// A file with no tensors may end right after its metadata, without padding.
TEST(GgufRoundTrip, MetadataOnlyFileWithoutPadding) {
  Bytes b;
  b.raw("GGUF").u32(3).u64(0).u64(1).str("k").u32(test::kU8).u8(1);
  const Result<GgufFile> f = parse_roundtrip_bytes(b.b);
  ASSERT_TRUE(f.ok()) << f.error().message;
  EXPECT_TRUE(f->tensors().empty());
  EXPECT_EQ(f->data_size(), 0u);
}

TEST(GgufLookup, TypedGettersNameTheFileAndKey) {
  GgufWriter w;
  w.set("n", GgufValue::u32(7));
  w.set("neg", GgufValue::i32(-1));
  w.set("s", GgufValue::string("text"));
  w.set("f", GgufValue::f32(0.25f));
  w.set("b", GgufValue::boolean(true));
  const Result<GgufFile> f = parse_roundtrip_bytes(w.to_bytes(), "m.gguf");
  ASSERT_TRUE(f.ok());
  EXPECT_EQ(f->get_u64("n").value(), 7u);
  EXPECT_EQ(f->get_f64("n").value(), 7.0);  // integers read as numbers
  EXPECT_EQ(f->get_f64("f").value(), 0.25);
  EXPECT_TRUE(f->get_bool("b").value());
  EXPECT_EQ(f->get_u64_or("absent", 11).value(), 11u);
  EXPECT_EQ(f->get_f64_or("absent", 1.5).value(), 1.5);
  EXPECT_FALSE(f->get_bool_or("absent", false).value());
  EXPECT_EQ(f->get_u64_or("n", 11).value(), 7u);
  EXPECT_EQ(f->find("absent"), nullptr);
  EXPECT_EQ(f->tensor("absent"), nullptr);

  EXPECT_EQ(f->get_u64("absent").error().message, "m.gguf: missing key 'absent'");
  EXPECT_EQ(f->get_string("n").error().message, "m.gguf: key 'n': expected a string, got uint32");
  EXPECT_EQ(f->get_u64("s").error().message, "m.gguf: key 's': expected an integer, got string");
  EXPECT_EQ(f->get_u64("neg").error().message, "m.gguf: key 'neg': expected a non-negative integer, got -1");
  EXPECT_EQ(f->get_bool_or("n", true).error().message, "m.gguf: key 'n': expected a bool, got uint32");
  EXPECT_EQ(f->get_f64("s").error().message, "m.gguf: key 's': expected a number, got string");
  EXPECT_EQ(f->find("neg")->as_i64("neg").value(), -1);
  EXPECT_EQ(GgufValue::u64(1ull << 63).as_i64("big").error().message,
            "key 'big': 9223372036854775808 does not fit in a signed 64-bit integer");
}

}  // namespace
}  // namespace kp::format

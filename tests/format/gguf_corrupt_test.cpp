// Hand-made corrupt GGUF files: each must be rejected with its own message,
// naming the file, the field and what was expected. The files are built here
// (hand-assembled from a valid description, or written by GgufWriter and then
// patched), so every case documents exactly which bytes are wrong.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstring>
#include <cstdio>
#include <functional>
#include <random>

#include "core/check.h"
#include "format/gguf.h"
#include "gguf_test_bytes.h"

namespace kp::format {
namespace {

using test::assemble;
using test::Bytes;
using test::FileSpec;
using test::kv;
using test::kv_string;
using test::kv_u32;
using test::valid_spec;

Result<GgufFile> parse_bytes(const std::vector<uint8_t>& bytes) {
  return GgufFile::parse(MappedFile::from_bytes(bytes, "x.gguf"));
}

// Edits the valid spec and assembles it.
std::vector<uint8_t> with(const std::function<void(FileSpec&)>& edit) {
  FileSpec s = valid_spec();
  edit(s);
  return assemble(s);
}

// A writer-made file whose fourth tensor (index 3) is blk.0.attn_q.weight.
std::vector<uint8_t> writer_file() {
  GgufWriter w;
  w.set("general.architecture", GgufValue::string("gemma2"));
  w.set("gemma2.block_count", GgufValue::u32(1));
  const char* names[] = {"token_embd.weight", "output_norm.weight", "blk.0.attn_norm.weight",
                         "blk.0.attn_q.weight"};
  for (const char* n : names) {
    KP_CHECK(w.add_tensor(n, GgmlType::F32, {8, 2}, std::vector<uint8_t>(64, 0x11)).ok(), n);
  }
  return w.to_bytes();
}

// Offset of the tensor info field that follows the name `name`: n_dims.
size_t info_after_name(const std::vector<uint8_t>& bytes, std::string_view name) {
  Bytes needle;
  needle.str(name);
  const auto it = std::search(bytes.begin(), bytes.end(), needle.b.begin(), needle.b.end());
  KP_CHECK(it != bytes.end(), "tensor name present");
  return static_cast<size_t>(it - bytes.begin()) + needle.size();
}

void patch_u32(std::vector<uint8_t>& b, size_t at, uint32_t x) { std::memcpy(b.data() + at, &x, 4); }
void patch_u64(std::vector<uint8_t>& b, size_t at, uint64_t x) { std::memcpy(b.data() + at, &x, 8); }

// A value nested `depth` arrays deep: array(array(...(uint8 7))).
Bytes nested_arrays(int depth) {
  Bytes b;
  for (int i = 0; i < depth - 1; ++i) b.u32(test::kArray).u64(1);
  b.u32(test::kU8).u64(1).u8(7);
  return b;
}

struct CorruptCase {
  const char* name;
  std::function<std::vector<uint8_t>()> make;
  const char* expected;  // distinctive substring of the error
};

std::vector<CorruptCase> corrupt_cases() {
  return {
      {"empty_file", [] { return std::vector<uint8_t>{}; },
       "x.gguf: not a GGUF file: 0 bytes, too short for the magic"},
      {"bad_magic", [] { return with([](FileSpec& s) { s.magic = "GGML"; }); },
       "x.gguf: not a GGUF file: magic 'GGML', expected 'GGUF'"},
      {"binary_magic", [] { return with([](FileSpec& s) { s.magic = std::string("\x7f" "ELF", 4); }); },
       "magic '\\x7fELF'"},
      {"truncated_header", [] { return Bytes().raw("GGUF").u32(3).u32(0).b; },
       "x.gguf: truncated header: 12 bytes, a GGUF header needs 24"},
      {"version_1", [] { return with([](FileSpec& s) { s.version = 1; }); },
       "x.gguf: GGUF version 1 is not supported"},
      {"version_4", [] { return with([](FileSpec& s) { s.version = 4; }); },
       "x.gguf: GGUF version 4 is not supported (expected 2 or 3)"},
      {"big_endian", [] { return with([](FileSpec& s) { s.version = 0x03000000; }); },
       "big-endian GGUF is not supported (version field 0x03000000)"},
      {"tensor_count_too_large", [] { return with([](FileSpec& s) { s.n_tensors = 1'000'000; }); },
       "x.gguf: header: tensor count 1000000 exceeds what the"},
      {"tensor_count_max", [] { return with([](FileSpec& s) { s.n_tensors = UINT64_MAX; }); },
       "tensor count 18446744073709551615 exceeds"},
      {"kv_count_too_large", [] { return with([](FileSpec& s) { s.n_kv = 1ull << 40; }); },
       "x.gguf: header: metadata count 1099511627776 exceeds what the"},
      {"kv_count_past_end", [] { return with([](FileSpec& s) { s.n_kv = 2; s.tensors.clear(); s.data_bytes = 0; }); },
       "x.gguf: key 1: truncated: key name length needs 8 bytes"},
      {"key_length_too_long",
       [] { return with([](FileSpec& s) { s.kvs[0] = Bytes().u64(999999).raw("general").b; }); },
       "x.gguf: key 0: key name length 999999 exceeds the"},
      {"empty_key", [] { return with([](FileSpec& s) { s.kvs[0] = kv_u32("", 1); }); },
       "x.gguf: key 0: empty key name"},
      {"duplicate_key",
       [] { return with([](FileSpec& s) { s.kvs.push_back(kv_string("general.architecture", "llama")); }); },
       "x.gguf: key 1 'general.architecture': duplicate key (first defined as key 0)"},
      {"unknown_value_type",
       [] { return with([](FileSpec& s) { s.kvs.push_back(kv("general.odd", 13, Bytes().u32(0))); }); },
       "x.gguf: key 1 'general.odd': value type 13 is not a GGUF value type"},
      {"string_value_too_long",
       [] { return with([](FileSpec& s) { s.kvs[0] = kv("general.name", test::kString, Bytes().u64(1ull << 60)); }); },
       "x.gguf: key 0 'general.name': string length 1152921504606846976 exceeds the"},
      {"array_count_too_large",
       [] {
         return with([](FileSpec& s) {
           s.kvs.push_back(kv("tokenizer.ggml.scores", test::kArray, Bytes().u32(test::kF32).u64(1ull << 61)));
         });
       },
       "key 1 'tokenizer.ggml.scores': array count 2305843009213693952 of float32 exceeds what the"},
      {"string_array_count_too_large",
       // 304 bytes remain, so 40 strings (>= 8 bytes each) cannot fit although 40 bytes would.
       [] {
         return with([](FileSpec& s) {
           s.kvs.push_back(kv("tokenizer.ggml.tokens", test::kArray, Bytes().u32(test::kString).u64(40)));
           s.tensors.clear();
           s.data_bytes = 0;
           s.kvs.push_back(kv("general.pad", test::kU8, Bytes().u8(0)));
           s.kvs.back().resize(s.kvs.back().size() + 280, 0);
         });
       },
       "array count 40 of string exceeds what the"},
      {"too_many_array_elements",
       // The array fits in the file (one byte per element) but passes kGgufMaxMetadataValues.
       [] {
         return with([](FileSpec& s) {
           const uint64_t n = kGgufMaxMetadataValues + 1;
           s.kvs.push_back(kv("x.big", test::kArray, Bytes().u32(test::kU8).u64(n).zeros(n)));
         });
       },
       "x.gguf: key 1 'x.big': array count 16777217 takes the metadata past the limit of 16777216 array elements"},
      {"array_element_type_unknown",
       [] { return with([](FileSpec& s) { s.kvs.push_back(kv("x.arr", test::kArray, Bytes().u32(77).u64(1))); }); },
       "x.gguf: key 1 'x.arr': array element type 77 is not a GGUF value type"},
      {"arrays_nested_too_deep",
       [] { return with([](FileSpec& s) { s.kvs.push_back(kv("x.deep", test::kArray, nested_arrays(kGgufMaxArrayDepth + 1))); }); },
       "x.gguf: key 1 'x.deep' element 0 element 0 element 0 element 0 element 0 element 0 element 0 element 0: arrays nested deeper than 8 levels"},
      {"bool_not_0_or_1",
       [] { return with([](FileSpec& s) { s.kvs.push_back(kv("tokenizer.ggml.add_bos_token", test::kBool, Bytes().u8(2))); }); },
       "x.gguf: key 1 'tokenizer.ggml.add_bos_token': bool value 2 is neither 0 nor 1"},
      {"truncated_in_value",
       [] { return Bytes().raw("GGUF").u32(3).u64(0).u64(1).str("general.block").u32(test::kU32).u8(6).u8(0).b; },
       "x.gguf: key 0 'general.block': truncated: uint32 value needs 4 bytes at offset 49, but the file ends at 51"},
      {"truncated_in_nested_array",
       [] {
         Bytes b;
         b.raw("GGUF").u32(3).u64(0).u64(1).str("x.nested").u32(test::kArray);
         b.u32(test::kArray).u64(2);                    // two inner arrays
         b.u32(test::kI16).u64(1).put<int16_t>(-5);      // [ -5 ]
         b.u32(test::kString).u64(2).str("hello world!!!!").u32(10);  // [ "hello...", <4 of 8 length bytes> ]
         return b.b;
       },
       "x.gguf: key 0 'x.nested' element 1 element 1: truncated: string length needs 8 bytes at offset"},
      {"hostile_key_name_escaped",
       [] { return with([](FileSpec& s) { s.kvs.push_back(kv("a\nb\x1b", 99, Bytes())); }); },
       "key 1 'a\\x0ab\\x1b': value type 99"},
      {"alignment_wrong_type",
       [] { return with([](FileSpec& s) { s.kvs.push_back(kv_string("general.alignment", "32")); }); },
       "x.gguf: key 'general.alignment': expected an integer, got string"},
      {"alignment_zero", [] { return with([](FileSpec& s) { s.kvs.push_back(kv_u32("general.alignment", 0)); }); },
       "x.gguf: key 'general.alignment': 0 is invalid (expected a nonzero power of two)"},
      {"alignment_not_power_of_two",
       [] { return with([](FileSpec& s) { s.kvs.push_back(kv_u32("general.alignment", 48)); }); },
       "x.gguf: key 'general.alignment': 48 is not a power of two"},
      {"alignment_too_large",
       [] { return with([](FileSpec& s) { s.kvs.push_back(kv_u32("general.alignment", 1u << 21)); }); },
       "x.gguf: key 'general.alignment': 2097152 exceeds the limit of 1048576"},
      {"alignment_negative",
       [] { return with([](FileSpec& s) { s.kvs.push_back(kv("general.alignment", test::kI32, Bytes().put<int32_t>(-32))); }); },
       "key 'general.alignment': expected a non-negative integer, got -32"},
      {"tensor_name_too_long",
       // One tensor info: name length 5000, then 40 bytes.
       [] { return Bytes().raw("GGUF").u32(3).u64(1).u64(0).u64(5000).zeros(40).b; },
       "x.gguf: tensor 0: name length 5000 exceeds the 40 bytes left in the file"},
      {"empty_tensor_name", [] { return with([](FileSpec& s) { s.tensors[0].name = ""; }); },
       "x.gguf: tensor 0: empty tensor name"},
      {"duplicate_tensor_name", [] { return with([](FileSpec& s) { s.tensors[1].name = "a"; }); },
       "x.gguf: tensor 1 'a': duplicate tensor name (first defined as tensor 0)"},
      {"n_dims_zero", [] { return with([](FileSpec& s) { s.tensors[0].dims = {}; }); },
       "x.gguf: tensor 0 'a': n_dims 0 is out of range (expected 1 to 4)"},
      {"n_dims_five", [] { return with([](FileSpec& s) { s.tensors[0].dims = {8, 1, 1, 1, 1}; }); },
       "x.gguf: tensor 0 'a': n_dims 5 is out of range (expected 1 to 4)"},
      {"dim_zero", [] { return with([](FileSpec& s) { s.tensors[1].dims = {32, 0}; }); },
       "x.gguf: tensor 1 'b': dim 1 is 0 (expected > 0)"},
      {"element_count_overflow",
       [] { return with([](FileSpec& s) { s.tensors[1].dims = {1ull << 32, 1ull << 31, 4}; }); },
       "x.gguf: tensor 1 'b': element count of dims 4294967296 x 2147483648 x 4 overflows 64 bits"},
      {"byte_size_overflow",
       // 2^63 elements fit in 64 bits, their 2^65 bytes do not.
       [] { return with([](FileSpec& s) { s.tensors[0].dims = {1ull << 31, 1ull << 31, 2}; }); },
       "x.gguf: tensor 0 'a': byte size of 9223372036854775808 F32 elements overflows 64 bits"},
      {"unknown_tensor_type", [] { return with([](FileSpec& s) { s.tensors[1].type = 99; }); },
       "x.gguf: tensor 1 'b': type 99 is not a GGUF tensor type"},
      {"removed_tensor_type", [] { return with([](FileSpec& s) { s.tensors[0].type = 4; }); },
       "x.gguf: tensor 0 'a': type 4 is not a GGUF tensor type"},
      {"dim0_not_block_multiple", [] { return with([](FileSpec& s) { s.tensors[1].dims = {40, 2}; }); },
       "x.gguf: tensor 1 'b': dim 0 (40) is not a multiple of the Q8_0 block size 32"},
      {"offset_misaligned", [] { return with([](FileSpec& s) { s.tensors[1].offset = 48; }); },
       "x.gguf: tensor 1 'b': offset 48 is not a multiple of the alignment 32"},
      {"offset_misaligned_custom_alignment",
       [] {
         return with([](FileSpec& s) {
           s.kvs.push_back(kv_u32("general.alignment", 64));
           s.alignment = 64;
         });
       },
       "x.gguf: tensor 1 'b': offset 32 is not a multiple of the alignment 64"},
      {"data_past_section_end", [] { return with([](FileSpec& s) { s.tensors[1].offset = 64; }); },
       "x.gguf: tensor 1 'b': data [64, 132) lies outside the data section (128 bytes)"},
      {"offset_near_u64_max",
       [] { return with([](FileSpec& s) { s.tensors[1].offset = UINT64_MAX - 31; }); },
       "x.gguf: tensor 1 'b': data [18446744073709551584, 18446744073709551615) lies outside the data section"},
      {"tensor_too_large_for_file",
       [] { return with([](FileSpec& s) { s.tensors[1].dims = {32, 1ull << 40}; }); },
       "x.gguf: tensor 1 'b': data [32, 37383395344416) lies outside the data section (128 bytes)"},
      {"overlapping_tensors", [] { return with([](FileSpec& s) { s.tensors[1].offset = 0; }); },
       "x.gguf: tensor 1 'b': data [0, 68) overlaps tensor 0 'a' [0, 32)"},
      {"overlap_by_one_byte",
       [] {
         return with([](FileSpec& s) {
           s.kvs.push_back(kv_u32("general.alignment", 1));
           s.alignment = 1;
           s.tensors[1].offset = 31;  // a is [0, 32)
         });
       },
       "x.gguf: tensor 1 'b': data [31, 99) overlaps tensor 0 'a' [0, 32)"},
      {"overlapping_tensors_reversed_order",
       [] {
         return with([](FileSpec& s) {
           s.tensors[0].offset = 64;                      // a: [64, 96)
           s.tensors.push_back({"c", {16}, test::kTypeF32, 96});  // c: [96, 160) past b: fine
           s.tensors[1].offset = 32;                      // b: [32, 100) overlaps a and c
           s.data_bytes = 160;
         });
       },
       "x.gguf: tensor 1 'b': data [32, 100) overlaps tensor 0 'a' [64, 96)"},
      {"data_section_missing", [] { return with([](FileSpec& s) { s.data_bytes = 0; }); },
       "x.gguf: truncated: the data section of 2 tensors starts at offset 160, but the file ends at 144"},
      {"truncated_in_tensor_dims",
       [] {
         std::vector<uint8_t> b = with([](FileSpec&) {});
         const size_t at = info_after_name(b, "b") + 4 + 8;  // n_dims, dim 0
         b.resize(at + 3);
         return b;
       },
       "x.gguf: tensor 1 'b': truncated: dim 1 needs 8 bytes"},
      {"writer_file_bad_tensor_type",
       [] {
         std::vector<uint8_t> b = writer_file();
         patch_u32(b, info_after_name(b, "blk.0.attn_q.weight") + 4 + 2 * 8, 99);
         return b;
       },
       "x.gguf: tensor 3 'blk.0.attn_q.weight': type 99 is not a GGUF tensor type"},
      {"writer_file_n_dims_patched",
       [] {
         std::vector<uint8_t> b = writer_file();
         patch_u32(b, info_after_name(b, "output_norm.weight"), 9);
         return b;
       },
       "x.gguf: tensor 1 'output_norm.weight': n_dims 9 is out of range (expected 1 to 4)"},
      {"writer_file_offset_into_previous",
       [] {
         std::vector<uint8_t> b = writer_file();
         // Each tensor is 64 bytes at 64 * i; move tensor 2 onto tensor 1.
         patch_u64(b, info_after_name(b, "blk.0.attn_norm.weight") + 4 + 2 * 8 + 4, 64);
         return b;
       },
       "x.gguf: tensor 2 'blk.0.attn_norm.weight': data [64, 128) overlaps tensor 1 'output_norm.weight' [64, 128)"},
      {"writer_file_version_patched",
       [] {
         std::vector<uint8_t> b = writer_file();
         patch_u32(b, 4, 1);
         return b;
       },
       "GGUF version 1 is not supported"},
      {"writer_file_tensor_count_patched",
       [] {
         std::vector<uint8_t> b = writer_file();
         patch_u64(b, 8, 5);  // one more tensor than there are infos: the data is read as an info
         return b;
       },
       "x.gguf: tensor 4"},
  };
}

void PrintTo(const CorruptCase& c, std::ostream* os) { *os << c.name; }

class GgufCorrupt : public ::testing::TestWithParam<CorruptCase> {};

TEST_P(GgufCorrupt, IsRejectedWithItsMessage) {
  const CorruptCase& c = GetParam();
  const Result<GgufFile> r = parse_bytes(c.make());
  ASSERT_FALSE(r.ok()) << c.name << " was accepted";
  EXPECT_NE(r.error().message.find(c.expected), std::string::npos)
      << "message: " << r.error().message << "\nexpected to contain: " << c.expected;
  EXPECT_EQ(r.error().message.find('\n'), std::string::npos) << "one line: " << r.error().message;
}

INSTANTIATE_TEST_SUITE_P(Corpus, GgufCorrupt, ::testing::ValuesIn(corrupt_cases()),
                         [](const ::testing::TestParamInfo<CorruptCase>& param_info) {
                           return std::string(param_info.param.name);
                         });

TEST(GgufCorrupt, CorpusIsLargeAndBaselineIsValid) {
  EXPECT_GE(corrupt_cases().size(), 25u);
  // The unmodified descriptions parse, so each case fails only through its edit.
  const Result<GgufFile> base = parse_bytes(assemble(valid_spec()));
  ASSERT_TRUE(base.ok()) << base.error().message;
  EXPECT_EQ(base->tensors().size(), 2u);
  const Result<GgufFile> wf = parse_bytes(writer_file());
  ASSERT_TRUE(wf.ok()) << wf.error().message;
  EXPECT_EQ(wf->tensors().size(), 4u);
}

TEST(GgufCorrupt, OpenNamesThePath) {
  const std::string path = ::testing::TempDir() + "gguf_corrupt_version.gguf";
  std::vector<uint8_t> b = with([](FileSpec& s) { s.version = 1; });
  std::FILE* f = std::fopen(path.c_str(), "wb");
  ASSERT_NE(f, nullptr);
  ASSERT_EQ(std::fwrite(b.data(), 1, b.size(), f), b.size());
  std::fclose(f);
  const Result<GgufFile> r = GgufFile::open(path);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().message.rfind(path + ": GGUF version 1 is not supported", 0), 0u) << r.error().message;
  std::remove(path.c_str());

  const Result<GgufFile> missing = GgufFile::open(path + ".absent");
  ASSERT_FALSE(missing.ok());
  EXPECT_NE(missing.error().message.find(path + ".absent: cannot open"), std::string::npos)
      << missing.error().message;
}

// Every proper prefix of a file that cuts into a tensor is rejected; prefixes
// that keep all tensor bytes (only trailing padding is cut) are accepted.
TEST(GgufCorrupt, EveryTruncationIsRejected) {
  const std::vector<uint8_t> full = writer_file();
  const Result<GgufFile> ok = parse_bytes(full);
  ASSERT_TRUE(ok.ok()) << ok.error().message;
  uint64_t needed = 0;
  for (const GgufTensorInfo& t : ok->tensors()) needed = std::max(needed, ok->data_offset() + t.offset + t.n_bytes);
  ASSERT_EQ(needed, full.size());  // 64-byte tensors end on the 32-byte alignment: no trailing pad
  for (size_t n = 0; n < full.size(); ++n) {
    const std::vector<uint8_t> prefix(full.begin(), full.begin() + static_cast<std::ptrdiff_t>(n));
    const Result<GgufFile> r = parse_bytes(prefix);
    EXPECT_FALSE(r.ok()) << "prefix of " << n << " bytes accepted";
  }
}

// Random byte corruption of the header and infos never crashes (the
// sanitizer build checks memory); an accepted file has every tensor inside it.
TEST(GgufCorrupt, RandomByteFlipsNeverEscapeTheFile) {
  const std::vector<uint8_t> full = writer_file();
  const Result<GgufFile> ok = parse_bytes(full);
  ASSERT_TRUE(ok.ok());
  const size_t head = static_cast<size_t>(ok->data_offset());
  std::mt19937 rng(1234);
  int accepted = 0;
  for (int iter = 0; iter < 3000; ++iter) {
    std::vector<uint8_t> b = full;
    const int flips = 1 + static_cast<int>(rng() % 4);
    for (int k = 0; k < flips; ++k) b[rng() % head] = static_cast<uint8_t>(rng());
    const auto mapped = MappedFile::from_bytes(b, "x.gguf");
    const Result<GgufFile> r = GgufFile::parse(mapped);
    if (!r.ok()) {
      EXPECT_EQ(r.error().message.rfind("x.gguf: ", 0), 0u) << r.error().message;
      continue;
    }
    ++accepted;
    for (const GgufTensorInfo& t : r->tensors()) {
      ASSERT_GE(t.data, mapped->data() + r->data_offset());
      ASSERT_LE(t.data + t.n_bytes, mapped->data() + mapped->size()) << t.name;
    }
  }
  EXPECT_GT(accepted, 0);  // some flips land in string bytes and are harmless
}

}  // namespace
}  // namespace kp::format

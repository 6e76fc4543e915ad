// GgufStreamWriter writes exactly GgufWriter's bytes, whatever the pieces its
// data arrives in; it refuses bad input and never leaves a partial file; and
// write_gguf_streamed gives the same file on any number of threads, with each
// row quantized as quantize() does it.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>

#include "format/gguf.h"
#include "format/gguf_stream_writer.h"
#include "format/quant.h"
#include "format/quant_stream.h"

namespace kp::format {
namespace {

std::string temp_path(const std::string& name) {
  return (std::filesystem::temp_directory_path() / ("kp_quant_stream_" + name)).string();
}

std::vector<uint8_t> read_all(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::vector<uint8_t>(std::istreambuf_iterator<char>(in), {});
}

std::vector<uint8_t> stream_pattern(size_t n, uint8_t seed) {
  std::vector<uint8_t> v(n);
  for (size_t i = 0; i < n; ++i) v[i] = static_cast<uint8_t>(seed + i * 31);
  return v;
}

using Metadata = std::vector<std::pair<std::string, GgufValue>>;

Metadata sample_metadata() {
  Metadata kv;
  kv.emplace_back("general.architecture", GgufValue::string("gemma2"));
  kv.emplace_back("general.alignment", GgufValue::u32(64));
  kv.emplace_back("a.u8", GgufValue::u8(200));
  kv.emplace_back("a.i16", GgufValue::i16(-300));
  kv.emplace_back("a.u64", GgufValue::u64(1ull << 40));
  kv.emplace_back("a.i64", GgufValue::i64(-5));
  kv.emplace_back("a.f32", GgufValue::f32(0.1f));
  kv.emplace_back("a.f64", GgufValue::f64(-2.5e300));
  kv.emplace_back("a.bool", GgufValue::boolean(true));
  kv.emplace_back("a.strings", GgufValue::array(GgufValueType::STRING,
                                                {GgufValue::string("x"), GgufValue::string(""), GgufValue::string("▁y")}));
  kv.emplace_back("a.nested", GgufValue::array(GgufValueType::ARRAY,
                                               {GgufValue::array(GgufValueType::INT32, {GgufValue::i32(1)}),
                                                GgufValue::array(GgufValueType::INT32, {})}));
  return kv;
}

struct SampleTensor {
  GgufTensorSpec spec;
  std::vector<uint8_t> data;
};

std::vector<SampleTensor> sample_tensors() {
  return {
      {{"norm", GgmlType::F32, {3}}, stream_pattern(12, 1)},
      {{"q8", GgmlType::Q8_0, {64, 2}}, stream_pattern(4 * 34, 2)},
      {{"half", GgmlType::F16, {5, 3}}, stream_pattern(30, 3)},
  };
}

TEST(GgufStreamWriter, SameBytesAsGgufWriter) {
  const Metadata kv = sample_metadata();
  const std::vector<SampleTensor> tensors = sample_tensors();
  GgufWriter reference;
  for (const auto& [k, v] : kv) reference.set(k, v);
  std::vector<GgufTensorSpec> specs;
  std::vector<uint8_t> all_data;
  for (const SampleTensor& t : tensors) {
    ASSERT_TRUE(reference.add_tensor(t.spec.name, t.spec.type, t.spec.dims, t.data).ok());
    specs.push_back(t.spec);
    all_data.insert(all_data.end(), t.data.begin(), t.data.end());
  }
  const std::vector<uint8_t> want = reference.to_bytes();

  for (size_t piece : {size_t{1}, size_t{7}, all_data.size()}) {
    SCOPED_TRACE(piece);
    const std::string path = temp_path("same_bytes.gguf");
    {
      Result<GgufStreamWriter> w = GgufStreamWriter::create(path, kv, specs);
      ASSERT_TRUE(w.ok()) << w.error().message;
      for (size_t at = 0; at < all_data.size(); at += piece) {
        const size_t n = std::min(piece, all_data.size() - at);
        ASSERT_TRUE(w->append(std::span<const uint8_t>(all_data.data() + at, n)).ok());
      }
      EXPECT_EQ(w->current_tensor(), tensors.size());
      ASSERT_TRUE(w->finish().ok());
    }
    EXPECT_EQ(read_all(path), want);
    const Result<GgufFile> f = GgufFile::open(path);
    ASSERT_TRUE(f.ok()) << f.error().message;
    EXPECT_EQ(f->alignment(), 64u);
    std::remove(path.c_str());
  }
}

TEST(GgufStreamWriter, RejectsBadInputAndRemovesPartialFiles) {
  const std::string path = temp_path("bad.gguf");
  std::vector<GgufTensorSpec> specs = {{"t", GgmlType::F32, {4}}};

  EXPECT_FALSE(GgufStreamWriter::create(path, {}, {{"t", GgmlType::F32, {0}}}).ok());
  EXPECT_FALSE(GgufStreamWriter::create(path, {}, {{"t", GgmlType::Q4_K, {128}}}).ok());
  EXPECT_FALSE(GgufStreamWriter::create(path, {}, {{"t", GgmlType::F32, {1}}, {"t", GgmlType::F32, {1}}}).ok());
  EXPECT_FALSE(GgufStreamWriter::create(path, {{"general.alignment", GgufValue::u32(48)}}, specs).ok());
  EXPECT_FALSE(GgufStreamWriter::create(path, {{"k", GgufValue::u8(1)}, {"k", GgufValue::u8(2)}}, specs).ok());

  {
    Result<GgufStreamWriter> w = GgufStreamWriter::create(path, {}, specs);
    ASSERT_TRUE(w.ok()) << w.error().message;
    const std::vector<uint8_t> too_many(20, 0);
    const Status s = w->append(too_many);
    ASSERT_FALSE(s.ok());
    EXPECT_NE(s.error().message.find("past the last tensor"), std::string::npos) << s.error().message;
  }
  EXPECT_FALSE(std::filesystem::exists(path)) << "an unfinished file is removed";

  {
    Result<GgufStreamWriter> w = GgufStreamWriter::create(path, {}, specs);
    ASSERT_TRUE(w.ok());
    ASSERT_TRUE(w->append(std::vector<uint8_t>(8, 0)).ok());
    const Status s = w->finish();
    ASSERT_FALSE(s.ok());
    EXPECT_NE(s.error().message.find("'t' has 8 of 16 bytes"), std::string::npos) << s.error().message;
  }
  EXPECT_FALSE(std::filesystem::exists(path));
}

// Row r of a test tensor: smooth values with a per-row scale.
Status test_row(uint64_t row, std::span<float> out) {
  for (size_t i = 0; i < out.size(); ++i) {
    out[i] = std::sin(0.37f * static_cast<float>(i) + static_cast<float>(row)) * (1.0f + static_cast<float>(row % 5));
  }
  return {};
}

TEST(WriteGgufStreamed, SameFileOnAnyThreadCount) {
  const std::vector<uint8_t> raw = stream_pattern(8 * 4, 9);
  std::vector<StreamedTensor> tensors(3);
  tensors[0].spec = {"w4", GgmlType::Q4_K, {512, 37}};
  tensors[0].rows = test_row;
  tensors[1].spec = {"raw", GgmlType::F32, {8}};
  tensors[1].raw = raw;
  tensors[2].spec = {"w6", GgmlType::Q6_K, {256, 9}};
  tensors[2].rows = test_row;
  const Metadata kv = {{"general.architecture", GgufValue::string("test")}};

  std::vector<std::vector<uint8_t>> files;
  for (int threads : {1, 3, 8}) {
    const std::string path = temp_path("threads.gguf");
    StreamOptions opt;
    opt.n_threads = threads;
    size_t reported = 0;
    opt.on_tensor = [&](size_t i, const StreamedTensor& t) {
      EXPECT_EQ(i, reported++);
      EXPECT_EQ(t.spec.name, tensors[i].spec.name);
    };
    const Status s = write_gguf_streamed(path, kv, tensors, opt);
    ASSERT_TRUE(s.ok()) << s.error().message;
    EXPECT_EQ(reported, 3u);
    files.push_back(read_all(path));

    // Each row is what quantize() makes of it; the raw tensor is copied.
    const Result<GgufFile> f = GgufFile::open(path);
    ASSERT_TRUE(f.ok()) << f.error().message;
    for (const char* name : {"w4", "w6"}) {
      const GgufTensorInfo* t = f->tensor(name);
      ASSERT_NE(t, nullptr);
      const size_t rb = row_bytes(t->type, t->cols());
      std::vector<float> row(t->cols());
      std::vector<uint8_t> want(rb);
      for (uint64_t r = 0; r < t->rows(); ++r) {
        ASSERT_TRUE(test_row(r, row).ok());
        ASSERT_TRUE(quantize(t->type, row.data(), want.data(), static_cast<int64_t>(row.size())).ok());
        ASSERT_EQ(std::memcmp(t->data + r * rb, want.data(), rb), 0) << name << " row " << r;
      }
    }
    const GgufTensorInfo* r = f->tensor("raw");
    ASSERT_NE(r, nullptr);
    EXPECT_EQ(std::vector<uint8_t>(r->data, r->data + r->n_bytes), raw);
    std::remove(path.c_str());
  }
  EXPECT_EQ(files[0], files[1]);
  EXPECT_EQ(files[0], files[2]);
}

TEST(WriteGgufStreamed, ReportsFailingRowAndLeavesNoFile) {
  const std::string path = temp_path("fail.gguf");
  std::vector<StreamedTensor> tensors(1);
  tensors[0].spec = {"blk.0.w", GgmlType::Q8_0, {64, 100}};
  tensors[0].rows = [](uint64_t row, std::span<float> out) -> Status {
    if (row == 57) return make_error("source unreadable");
    for (float& v : out) v = 1.0f;
    return {};
  };
  StreamOptions opt;
  opt.n_threads = 2;
  const Status s = write_gguf_streamed(path, {}, tensors, opt);
  ASSERT_FALSE(s.ok());
  EXPECT_NE(s.error().message.find("tensor 'blk.0.w' row 57: source unreadable"), std::string::npos)
      << s.error().message;
  EXPECT_FALSE(std::filesystem::exists(path));

  tensors[0].rows = nullptr;  // raw bytes of the wrong size
  tensors[0].raw = std::span<const uint8_t>();
  EXPECT_FALSE(write_gguf_streamed(path, {}, tensors, opt).ok());
  EXPECT_FALSE(std::filesystem::exists(path));
}

}  // namespace
}  // namespace kp::format

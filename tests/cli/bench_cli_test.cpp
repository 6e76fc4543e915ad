// `kpath bench` through the built binary on the CPU backend: the JSON fields
// and how they relate (weight bytes against the GGUF file, bandwidth against
// tokens/s), the markdown table, the SVG chart, --save, and one error line
// for bad input. Speeds are only required to be positive: no timing is asserted.
#include <gtest/gtest.h>

#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>

#include "../support/run_kpath.h"
#include "format/gguf.h"

namespace {

using kp::test::Output;
using kp::test::slurp;

std::string temp_path(const std::string& name) { return kp::test::temp_path("kp_cli_bench", name); }
Output kpath(const std::string& args) { return kp::test::run_kpath("kp_cli_bench", args); }

const std::string kQ4k = std::string(KP_TEST_DATA) + "/kjv-tiny-q4_k.gguf";

// Bytes of the file's tensors as stored, and as f32.
std::pair<uint64_t, uint64_t> tensor_bytes() {
  auto f = kp::format::GgufFile::open(kQ4k);
  EXPECT_TRUE(f.ok());
  uint64_t stored = 0, f32 = 0;
  for (const auto& t : f->tensors()) {
    stored += t.n_bytes;
    f32 += 4 * t.n_elements;
  }
  return {stored, f32};
}

void expect_spread(const nlohmann::json& s, size_t reps, const std::string& what) {
  ASSERT_EQ(s["samples"].size(), reps) << what;
  EXPECT_GT(s["median"].get<double>(), 0) << what;
  EXPECT_LE(s["min"].get<double>(), s["median"].get<double>()) << what;
  EXPECT_LE(s["median"].get<double>(), s["max"].get<double>()) << what;
  EXPECT_GE(s["stddev"].get<double>(), 0) << what;
}

TEST(BenchCli, JsonFieldsOnTheCpuBackend) {
  const std::string chart = temp_path("chart.svg");
  const Output o = kpath("bench -m '" + kQ4k +
                         "' --backend cpu --kernel-path gemma2-q4k-fused,gemma2-q4k-dequant-f32 -p 8 -n 4 -r 2 "
                         "--bandwidth-mib 4 --json --chart '" + chart + "'");
  ASSERT_EQ(o.exit_code, 0) << o.err;
  const auto doc = nlohmann::json::parse(o.out, nullptr, false);
  ASSERT_FALSE(doc.is_discarded()) << o.out;
  EXPECT_EQ(doc["backend"], "cpu");
  EXPECT_FALSE(doc["device"].get<std::string>().empty());
  EXPECT_EQ(doc["n_prompt"], 8);
  EXPECT_EQ(doc["n_gen"], 4);
  EXPECT_EQ(doc["repetitions"], 2);
  EXPECT_NE(doc["command"].get<std::string>().find("-p 8 -n 4 -r 2"), std::string::npos);
  EXPECT_EQ(doc["date"].get<std::string>().size(), std::string("2026-01-01T00:00:00Z").size());
  const double copy = doc["copy_bandwidth_bytes_per_s"].get<double>();
  EXPECT_GT(copy, 0);
  ASSERT_EQ(doc["paths"].size(), 2u);

  const auto [stored, f32] = tensor_bytes();
  // Dispatches per decoded token: embed + per-layer steps x 6 + 3 postLayer + 2 sampling.
  const struct {
    const char* id;
    uint64_t weight_bytes;
    uint64_t dispatches;
  } want[2] = {{"gemma2-q4k-fused", stored, 1 + 6 * 13 + 3 + 2}, {"gemma2-q4k-dequant-f32", f32, 1 + 6 * 15 + 3 + 2}};
  for (size_t i = 0; i < 2; ++i) {
    const auto& p = doc["paths"][i];
    EXPECT_EQ(p["path"], want[i].id);
    expect_spread(p["decode_tokens_per_s"], 2, want[i].id);
    expect_spread(p["prefill_tokens_per_s"], 2, want[i].id);
    EXPECT_EQ(p["dispatches_per_decode_token"], want[i].dispatches);
    EXPECT_EQ(p["weight_bytes_per_decode_token"], want[i].weight_bytes);
    EXPECT_EQ(p["weight_bytes_on_device"], want[i].weight_bytes);
    const double bw = p["decode_bandwidth_bytes_per_s"].get<double>();
    EXPECT_NEAR(bw, want[i].weight_bytes * p["decode_tokens_per_s"]["median"].get<double>(), 1e-6 * bw);
    EXPECT_NEAR(p["decode_bandwidth_fraction_of_copy"].get<double>(), bw / copy, 1e-9);
    EXPECT_GE(p["peak_memory_bytes"].get<uint64_t>(), want[i].weight_bytes);
  }
  const std::string svg = slurp(chart);
  EXPECT_EQ(svg.rfind("<svg", 0), 0u);
  EXPECT_NE(svg.find("</svg>"), std::string::npos);
  EXPECT_NE(svg.find(">gemma2-q4k-fused<"), std::string::npos);
  EXPECT_NE(svg.find(">gemma2-q4k-dequant-f32<"), std::string::npos);
  std::remove(chart.c_str());
}

TEST(BenchCli, MarkdownTableAndSavedResults) {
  const std::string dir = temp_path("results");
  std::filesystem::create_directories(dir);
  const Output o = kpath("bench -m '" + kQ4k + "' --backend cpu -p 4 -n 2 -r 1 --bandwidth-mib 0 --save '" + dir + "'");
  ASSERT_EQ(o.exit_code, 0) << o.err;
  EXPECT_NE(o.out.find("| path | backend | test | t/s |"), std::string::npos) << o.out;
  EXPECT_NE(o.out.find("| gemma2-q4k-x8 | cpu | pp4 |"), std::string::npos) << o.out;  // the preset's cpu choice
  EXPECT_NE(o.out.find("| gemma2-q4k-x8 | cpu | tg2 |"), std::string::npos) << o.out;
  EXPECT_NE(o.out.find("not measured"), std::string::npos) << o.out;
  size_t files = 0;
  for (const auto& e : std::filesystem::directory_iterator(dir)) {
    const std::string name = e.path().filename().string();
    EXPECT_NE(name.find("-bench-cpu-kjv-tiny-q4_k."), std::string::npos) << name;
    if (e.path().extension() == ".md") {
      EXPECT_NE(slurp(e.path().string()).find("command: `kpath bench"), std::string::npos);
    }
    ++files;
  }
  EXPECT_EQ(files, 3u);  // .md, .json, .svg
  std::filesystem::remove_all(dir);
}

TEST(BenchCli, BadInputIsOneLine) {
  const std::string m = "bench -m '" + kQ4k + "' --backend cpu ";
  for (const std::string& args : {m + "-r 0", m + "-p 0 -n 0", m + "-p -1", m + "--save /nonexistent/dir",
                                  m + "--kernel-path no-such-path", std::string("bench --backend nope"),
                                  m + "-p 2000 -n 100", m + "--chart /nonexistent/dir/c.svg -p 2 -n 1 -r 1"}) {
    const Output o = kpath(args);
    EXPECT_EQ(o.exit_code, 1) << args << ": " << o.err;
    // One error line, the last on stderr (progress lines may precede it).
    const size_t at = o.err.find("kpath: ");
    ASSERT_NE(at, std::string::npos) << args << ": " << o.err;
    EXPECT_TRUE(at == 0 || o.err[at - 1] == '\n') << args << ": " << o.err;
    EXPECT_EQ(o.err.find('\n', at), o.err.size() - 1) << args << ": " << o.err;
  }
}

}  // namespace

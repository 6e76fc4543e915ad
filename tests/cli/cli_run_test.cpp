// `kpath eval` and `kpath run` through the built binary: eval's JSON against
// the HF and numpy goldens, greedy `run` text against HF's greedy text, seeded
// sampling reproducibility, and the exit code and one-line message of bad input.
#include <gtest/gtest.h>

#include "../support/run_kpath.h"

#include <sys/wait.h>
#include <unistd.h>

#include <cmath>
#include <cstdlib>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>
#include <vector>

namespace {

using kp::test::Output;
using kp::test::slurp;

std::string run_temp_path(const std::string& name) { return kp::test::temp_path("kp_cli_run", name); }
Output kpath_run(const std::string& args) { return kp::test::run_kpath("kp_cli_run", args); }

const std::string kData = KP_TEST_DATA;
const std::string kF16 = kData + "/kjv-tiny-f16.gguf";

std::string write_file(const std::string& name, const std::string& text) {
  const std::string path = run_temp_path(name);
  std::ofstream(path, std::ios::binary) << text;
  return path;
}

std::string join_ids(const std::vector<int32_t>& ids) {
  std::string s;
  for (int32_t id : ids) {
    if (!s.empty()) s += ' ';
    s += std::to_string(id);
  }
  return s;
}

const nlohmann::json& golden(const std::string& file) {
  static std::map<std::string, nlohmann::json> cache;
  auto it = cache.find(file);
  if (it == cache.end()) it = cache.emplace(file, nlohmann::json::parse(slurp(kData + "/" + file))).first;
  return it->second;
}

double rel_l2(const std::vector<double>& got, const std::vector<double>& want) {
  double num = 0, den = 0;
  for (size_t i = 0; i < want.size(); ++i) {
    num += (got[i] - want[i]) * (got[i] - want[i]);
    den += want[i] * want[i];
  }
  return std::sqrt(num / den);
}

// eval on golden cases `which`; logits within max_rel and identical greedy tokens.
void expect_eval_matches(const std::string& model_flag, const std::string& golden_file,
                         const std::vector<size_t>& which, double max_rel) {
  const nlohmann::json& g = golden(golden_file);
  std::string lines;
  for (size_t c : which) lines += join_ids(g["cases"][c]["tokens"].get<std::vector<int32_t>>()) + "\n";
  const std::string prompts = write_file("prompts.txt", lines);
  const Output o = kpath_run("eval " + model_flag + " --backend reference --prompt-tokens '" + prompts + "' --n-gen 48");
  ASSERT_EQ(o.exit_code, 0) << o.err;
  const nlohmann::json j = nlohmann::json::parse(o.out);
  ASSERT_EQ(j["cases"].size(), which.size());
  for (size_t i = 0; i < which.size(); ++i) {
    const nlohmann::json& want = g["cases"][which[i]];
    const nlohmann::json& got = j["cases"][i];
    EXPECT_EQ(got["tokens"], want["tokens"]);
    const auto got_logits = got["last_logits"].get<std::vector<double>>();
    const auto want_logits = want["last_logits"].get<std::vector<double>>();
    ASSERT_EQ(got_logits.size(), want_logits.size());
    EXPECT_LE(rel_l2(got_logits, want_logits), max_rel) << golden_file << " case " << which[i];
    EXPECT_EQ(got["greedy_tokens"], want["greedy_tokens"]) << golden_file << " case " << which[i];
  }
}

TEST(CliEval, F16MatchesHfGolden) {
  expect_eval_matches("-m '" + kF16 + "'", "golden-hf-kjv-tiny.json", {2, 3}, 1e-4);
}

TEST(CliEval, EmbeddedModelMatchesNumpyQ4KMGolden) {
  expect_eval_matches("", "golden-numpy-kjv-tiny-q4_k_m.json", {0}, 1e-4);
}

TEST(CliRun, GreedyTextMatchesHfAndStopsAtEos) {
  // HF's greedy continuation of "Blessed are the" reaches EOS at step 12; its
  // greedy_text (EOS decoding to "") starts with the text before it.
  const std::string continuation = " poor in spirit: for they be troubled on every side.";
  const nlohmann::json& c = golden("golden-hf-kjv-tiny.json")["cases"][3];
  ASSERT_EQ(c["prompt"], "Blessed are the");
  ASSERT_EQ(c["greedy_tokens"][12], 1);
  ASSERT_EQ(c["greedy_text"].get<std::string>().rfind(continuation, 0), 0u);

  // The oracle, and the F16 path on the CPU backend (the same f32 arithmetic on
  // the same weights, sampled by the path's own argmax step).
  for (const std::string backend : {"--backend reference", "--backend cpu --kernel-path gemma2-f16-native"}) {
    const Output o = kpath_run("run -m '" + kF16 + "' -p 'Blessed are the' -n 48 --temp 0 " + backend);
    ASSERT_EQ(o.exit_code, 0) << o.err;
    EXPECT_EQ(o.out, "Blessed are the" + continuation + "\n") << backend;
    EXPECT_NE(o.err.find("prompt:"), std::string::npos) << o.err;
    EXPECT_NE(o.err.find("generation:    13 tokens"), std::string::npos) << o.err;
    EXPECT_NE(o.err.find("tokens/s"), std::string::npos) << o.err;
  }
}

// `kpath run` says which path runs and where the choice came from, in the
// documented precedence: --kernel-path > --config > model preset.
TEST(CliRun, PrintsThePathAndTheSourceOfTheChoice) {
  const std::string base = "run -p 'In the beginning' -n 2 --temp 0 --backend cpu ";
  Output o = kpath_run(base);
  ASSERT_EQ(o.exit_code, 0) << o.err;
  EXPECT_NE(o.err.find("kernel path: gemma2-q4k-x8 (chosen by model preset"), std::string::npos) << o.err;
  EXPECT_NE(o.err.find("backend:     cpu"), std::string::npos) << o.err;
  EXPECT_NE(o.err.find("dispatches: 84 per decoded token"), std::string::npos) << o.err;

  const std::string config =
      write_file("config.json", R"({"inference": {"kernelPath": "gemma2-q4k-dequant-f32"}})");
  o = kpath_run(base + "--config '" + config + "'");
  ASSERT_EQ(o.exit_code, 0) << o.err;
  EXPECT_NE(o.err.find("kernel path: gemma2-q4k-dequant-f32 (chosen by runtime config"), std::string::npos) << o.err;
  EXPECT_NE(o.err.find("dispatches: 96 per decoded token"), std::string::npos) << o.err;

  o = kpath_run(base + "--config '" + config + "' --kernel-path gemma2-q4k-dequant-f16");
  ASSERT_EQ(o.exit_code, 0) << o.err;
  EXPECT_NE(o.err.find("kernel path: gemma2-q4k-dequant-f16 (chosen by --kernel-path)"), std::string::npos) << o.err;

  const std::string legacy = write_file("legacy.json", R"({"inference": {"q4kStrategy": "dequant_f32"}})");
  o = kpath_run(base + "--config '" + legacy + "'");
  ASSERT_EQ(o.exit_code, 0) << o.err;
  EXPECT_NE(o.err.find("kernel path: gemma2-q4k-dequant-f32 (chosen by runtime config"), std::string::npos) << o.err;
  EXPECT_NE(o.err.find("deprecat"), std::string::npos) << o.err;
}

// --trace writes one Chrome trace event per dispatch, named by the step's op.
TEST(CliRun, TraceHasOneEventPerDispatch) {
  const std::string trace = run_temp_path("trace.json");
  const Output o = kpath_run("run -p 'In the beginning' -n 3 --temp 0 --ignore-eos --backend cpu --trace '" + trace + "'");
  ASSERT_EQ(o.exit_code, 0) << o.err;
  const nlohmann::json j = nlohmann::json::parse(slurp(trace));
  const nlohmann::json& events = j.is_array() ? j : j["traceEvents"];
  size_t complete = 0, attention = 0;
  double last_ts = -1;
  std::vector<std::string> batches;
  for (const auto& e : events) {
    if (e.value("ph", "") != "X") continue;
    if (e.value("tid", -1) == 0) {
      batches.push_back(e.value("name", ""));
      continue;
    }
    ++complete;
    if (e.value("name", "") == "attention") ++attention;
    // Dispatches at the times they ran: in order, never overlapping.
    EXPECT_GE(e.value("ts", -1.0), last_ts - 1e-3) << e.dump();  // microseconds, up to rounding
    EXPECT_GE(e.value("dur", -1.0), 0.0) << e.dump();
    last_ts = e.value("ts", -1.0) + e.value("dur", 0.0);
    EXPECT_TRUE(e["args"].contains("pos0")) << e.dump();
  }
  // The prompt's forward (82 steps), the two sampling steps for the first
  // token, then two decode steps of 84 dispatches (forward and sampling) each.
  EXPECT_EQ(complete, 82u + 2u + 2u * 84u);
  EXPECT_EQ(attention, 6u * 3u);
  // One slice per submission on the batches track: the prompt, the first
  // token's sampling, two decoded tokens.
  ASSERT_EQ(batches.size(), 4u);
  EXPECT_EQ(batches[0].rfind("prefill 0..", 0), 0u) << batches[0];
  EXPECT_EQ(batches[2].rfind("token ", 0), 0u) << batches[2];
  EXPECT_NE(batches[2], batches[3]);
}

TEST(CliRun, SeedMakesSamplingReproducible) {
  const std::string args = "run -p 'And the LORD said' -n 24 --temp 1.0 --top-k 0 --top-p 1 --min-p 0 --backend cpu ";
  const Output a = kpath_run(args + "--seed 7"), b = kpath_run(args + "--seed 7"), c = kpath_run(args + "--seed 8");
  ASSERT_EQ(a.exit_code, 0) << a.err;
  ASSERT_EQ(b.exit_code, 0) << b.err;
  ASSERT_EQ(c.exit_code, 0) << c.err;
  EXPECT_EQ(a.out, b.out);
  EXPECT_NE(a.out, c.out);  // 24 tokens drawn at temperature 1 from the full vocabulary
  EXPECT_EQ(a.out.rfind("And the LORD said", 0), 0u) << a.out;
  EXPECT_NE(a.err.find("seed: 7"), std::string::npos) << a.err;
}

// A failure: non-zero exit, nothing on stdout, one line on stderr naming the problem.
void expect_error(const std::string& args, const std::string& needle) {
  const Output o = kpath_run(args);
  EXPECT_NE(o.exit_code, 0) << args;
  EXPECT_EQ(o.out, "") << args;
  ASSERT_FALSE(o.err.empty()) << args;
  EXPECT_EQ(o.err.find('\n'), o.err.size() - 1) << args << "\n" << o.err;
  EXPECT_EQ(o.err.rfind("kpath: ", 0), 0u) << o.err;
  EXPECT_NE(o.err.find(needle), std::string::npos) << args << "\n" << o.err;
}

TEST(CliErrors, BadInputFailsWithOneLine) {
  const std::string ok_prompts = write_file("ok.txt", "2 300 263\n");
  const std::string model = " -m '" + kF16 + "' ";
  expect_error("eval -m /nonexistent/model.gguf --prompt-tokens '" + ok_prompts + "'",
               "/nonexistent/model.gguf");
  expect_error("run -m /nonexistent/model.gguf -p hi", "/nonexistent/model.gguf");
  const std::string not_gguf = kData + "/golden-hf-kjv-tiny.json";
  expect_error("eval -m '" + not_gguf + "' --prompt-tokens '" + ok_prompts + "'", "golden-hf-kjv-tiny.json");
  expect_error("eval" + model + "--prompt-tokens /nonexistent/prompts.txt", "/nonexistent/prompts.txt");
  expect_error("run" + model + "-p hi --bogus-flag", "--bogus-flag");
  expect_error("eval" + model + "--prompt-tokens '" + ok_prompts + "' --bogus-flag", "--bogus-flag");

  const std::string out_of_range = write_file("range.txt", "2 300\n2 4096 5\n");
  expect_error("eval" + model + "--prompt-tokens '" + out_of_range + "'", "range.txt:2: token id 4096");
  const std::string not_a_number = write_file("nan.txt", "2 3x\n");
  expect_error("eval" + model + "--prompt-tokens '" + not_a_number + "'", "'3x' is not a token id");

  std::string long_line;
  for (int i = 0; i < 1025; ++i) long_line += "300 ";
  const std::string too_long = write_file("long.txt", long_line + "\n");
  expect_error("eval" + model + "--prompt-tokens '" + too_long + "'", "context of 1024 tokens");
  expect_error("run" + model + "--ctx-size 4 -p 'And the LORD spake unto Moses'", "context of 4 tokens");

  expect_error("run" + model + "-p hi -n -5", "-n must be between 0 and");
  expect_error("eval" + model + "--prompt-tokens '" + ok_prompts + "' --n-gen -2", "--n-gen must be between 0 and");
  expect_error("run" + model + "-p hi --top-p 7", "top-p must be in [0, 1]");
  expect_error("run" + model + "--backend cpu --ctx-size 4 -p 'And the LORD spake unto Moses'", "context of 4 tokens");
  expect_error("run" + model + "-p hi --backend cpu --kernel-path no-such-path", "no-such-path");
  expect_error("run" + model + "-p hi --backend reference --kernel-path gemma2-f16-native", "takes no kernel path");
  expect_error("run" + model + "-p hi --top-p 1.5", "top-p must be in [0, 1]");
  expect_error("run" + model + "-p hi --top-p -0.5", "top-p must be in [0, 1]");
  expect_error("run" + model + "-p hi --backend metal", "unknown backend 'metal'");
}

}  // namespace

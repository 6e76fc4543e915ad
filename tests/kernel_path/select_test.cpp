// Choosing a kernel path: --kernel-path > runtime config > model preset >
// auto-selection; the legacy q4kStrategy flags; user path directories.
#include "kernel_path/select.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>

#include "path_test_support.h"

namespace kp::kpath {
namespace {

namespace fs = std::filesystem;

// A fresh directory per test, removed afterwards.
class SelectTest : public ::testing::Test {
 protected:
  void SetUp() override {
    const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
    dir_ = fs::temp_directory_path() / fmt::format("kpath_select_{}_{}", getpid(), info->name());
    fs::remove_all(dir_);
    fs::create_directories(dir_);
    lib_.builtin_dir = testing::source_path("kernel_paths");
  }
  void TearDown() override { fs::remove_all(dir_); }

  std::string write(const std::string& rel, const std::string& text) {
    const fs::path p = dir_ / rel;
    fs::create_directories(p.parent_path());
    std::ofstream(p) << text;
    return p.string();
  }

  // A user path: a copy of a built-in one under another id.
  std::string user_path(const std::string& rel, const std::string& id) {
    KernelPath p = testing::load_path_file(testing::source_path("kernel_paths/gemma2-q4k-dequant-f32.json"));
    p.id = id;
    return write(rel, kernel_path_to_json(p));
  }

  Selection select_ok(const SelectionInput& in) {
    auto s = select_path(lib_, in);
    EXPECT_TRUE(s.ok()) << s.error().message;
    return s.ok() ? std::move(*s) : Selection{};
  }

  std::string select_error(const SelectionInput& in) {
    auto s = select_path(lib_, in);
    EXPECT_FALSE(s.ok()) << "chose " << s->path.id;
    return s.ok() ? std::string() : s.error().message;
  }

  fs::path dir_;
  PathLibrary lib_;
};

TEST_F(SelectTest, CommandLineWinsOverConfigWhichWinsOverPreset) {
  SelectionInput in;
  in.dominant_type = format::GgmlType::Q4_K;
  in.config_file = write("cfg.json", R"({"inference": {"kernelPath": "gemma2-q4k-dequant-f32"}})");
  in.cli_kernel_path = "gemma2-q4k-dequant-f16";
  Selection s = select_ok(in);
  EXPECT_EQ(s.path.id, "gemma2-q4k-dequant-f16");
  EXPECT_EQ(s.source, ChoiceSource::kCli);
  EXPECT_EQ(s.detail, "--kernel-path gemma2-q4k-dequant-f16");

  in.cli_kernel_path.clear();
  s = select_ok(in);
  EXPECT_EQ(s.path.id, "gemma2-q4k-dequant-f32");
  EXPECT_EQ(s.source, ChoiceSource::kRuntimeConfig);
  EXPECT_EQ(s.detail, "runtime config " + in.config_file);
  EXPECT_TRUE(s.warnings.empty());

  in.config_file.clear();
  s = select_ok(in);
  EXPECT_EQ(s.path.id, "gemma2-q4k-fused");
  EXPECT_EQ(s.source, ChoiceSource::kModelPreset);
  EXPECT_EQ(s.detail, "preset gemma2 for Q4_K weights");
}

TEST_F(SelectTest, AConfigWithoutAChoiceFallsThroughToThePreset) {
  SelectionInput in;
  in.dominant_type = format::GgmlType::F16;
  in.config_file = write("cfg.json", R"({"$comment": "nothing chosen", "inference": {}})");
  Selection s = select_ok(in);
  EXPECT_EQ(s.path.id, "gemma2-f16-native");
  EXPECT_EQ(s.source, ChoiceSource::kModelPreset);
}

TEST_F(SelectTest, PresetMapsEachWeightType) {
  const std::pair<format::GgmlType, const char*> expected[] = {
      {format::GgmlType::Q4_K, "gemma2-q4k-fused"},       {format::GgmlType::Q6_K, "gemma2-q4k-fused"},
      {format::GgmlType::Q8_0, "gemma2-q4k-fused"},       {format::GgmlType::F16, "gemma2-f16-native"},
      {format::GgmlType::BF16, "gemma2-q4k-dequant-f32"}, {format::GgmlType::F32, "gemma2-q4k-dequant-f32"},
  };
  for (auto [type, id] : expected) {
    SelectionInput in;
    in.dominant_type = type;
    Selection s = select_ok(in);
    EXPECT_EQ(s.path.id, id) << format::type_name(type);
    EXPECT_EQ(s.source, ChoiceSource::kModelPreset);
  }
  // A type the preset does not list is auto-selected.
  SelectionInput in;
  in.dominant_type = format::GgmlType::Q5_K;
  Selection s = select_ok(in);
  EXPECT_EQ(s.path.id, "gemma2-q4k-dequant-f32");
  EXPECT_EQ(s.source, ChoiceSource::kAuto);
  EXPECT_EQ(s.detail, "auto: Q5_K weights");
}

TEST_F(SelectTest, AutoSelectionWithoutAPresetSkipsPathsTheDeviceCannotRun) {
  // A built-in directory with the paths but no presets/.
  fs::create_directories(dir_ / "builtin");
  for (const auto& e : fs::directory_iterator(testing::source_path("kernel_paths"))) {
    if (e.is_regular_file()) fs::copy_file(e.path(), dir_ / "builtin" / e.path().filename(), fs::copy_options::none);
  }
  lib_.builtin_dir = (dir_ / "builtin").string();
  Registry registry = testing::builtin_registry();
  KernelImpl needs_f16;
  needs_f16.backend = "cpu";
  needs_f16.features = {"f16_storage"};
  needs_f16.entries["main"] = KernelImpl::Entry{"main", {}, {}};
  needs_f16.entries["gemm"] = KernelImpl::Entry{"gemm", {}, {}};
  registry.add_impl("matmul_f16", needs_f16);

  SelectionInput in;
  in.registry = &registry;
  in.backend = "cpu";
  in.dominant_type = format::GgmlType::Q4_K;
  Selection s = select_ok(in);
  EXPECT_EQ(s.path.id, "gemma2-q4k-fused");
  EXPECT_EQ(s.source, ChoiceSource::kAuto);
  EXPECT_EQ(s.detail, "auto: Q4_K weights");

  in.dominant_type = format::GgmlType::F16;
  s = select_ok(in);
  EXPECT_EQ(s.path.id, "gemma2-q4k-dequant-f32");
  EXPECT_EQ(s.detail,
            "auto: F16 weights (gemma2-f16-native skipped: kernel 'matmul_f16' (cpu) needs the device "
            "feature 'f16_storage')");
  in.device_features = {"f16_storage"};
  s = select_ok(in);
  EXPECT_EQ(s.path.id, "gemma2-f16-native");

  in.dominant_type = format::GgmlType::F32;
  s = select_ok(in);
  EXPECT_EQ(s.path.id, "gemma2-q4k-dequant-f32");

  // A backend with no implementations runs nothing.
  in.backend = "metal";
  EXPECT_EQ(select_error(in),
            "no built-in kernel path runs on this device for F32 weights: gemma2-q4k-dequant-f32 "
            "skipped: kernel 'embed_f32' has no metal implementation");
}

TEST_F(SelectTest, ThePresetTakesTheFirstPathOfItsListTheBackendCanRun) {
  Registry registry = testing::builtin_registry();
  SelectionInput in;
  in.registry = &registry;
  in.dominant_type = format::GgmlType::Q4_K;
  // The built-in preset: 8-bit activations (and prefill on tensor cores) on
  // CUDA, 8-bit activations on the cpu backend, gemma2-q4k-fused elsewhere.
  for (const char* backend : {"cuda", "cpu", "vulkan"}) {
    in.backend = backend;
    in.device_features = {"f16", "int_dot", "subgroups"};
    if (std::string(backend) == "cuda") in.device_features.insert("mma_f16");
    Selection s = select_ok(in);
    const std::string want = std::string(backend) == "cuda"  ? "gemma2-q4k-x8-h16"
                             : std::string(backend) == "cpu" ? "gemma2-q4k-x8"
                                                             : "gemma2-q4k-fused";
    EXPECT_EQ(s.path.id, want) << backend;
    EXPECT_EQ(s.source, ChoiceSource::kModelPreset);
    EXPECT_EQ(s.detail, "preset gemma2 for Q4_K weights");
  }
  // A CUDA device without tensor-core f16 products (before sm_80) runs the next path of the list.
  in.backend = "cuda";
  in.device_features = {"f16", "int_dot", "subgroups"};
  Selection old_gpu = select_ok(in);
  EXPECT_EQ(old_gpu.path.id, "gemma2-q4k-x8");
  EXPECT_EQ(old_gpu.detail,
            "preset gemma2 for Q4_K weights (gemma2-q4k-x8-h16 skipped: kernel 'matmul_q4k_h16' (cuda) needs the "
            "device feature 'mma_f16')");

  // A list is tried in order; what was skipped is said, and a list none of
  // whose paths can run is an error naming each.
  fs::create_directories(dir_ / "builtin" / "presets");
  for (const auto& e : fs::directory_iterator(testing::source_path("kernel_paths"))) {
    if (e.is_regular_file()) fs::copy_file(e.path(), dir_ / "builtin" / e.path().filename(), fs::copy_options::none);
  }
  lib_.builtin_dir = (dir_ / "builtin").string();
  auto preset = [&](const std::string& kernel_path) {
    std::ofstream(dir_ / "builtin" / "presets" / "gemma2.json")
        << R"({"id": "gemma2", "inference": {"kernelPath": )" << kernel_path << "}}";
  };
  // A backend's own table is consulted first.
  preset(R"({"cuda": {"Q4_K": ["gemma2-q4k-fused-max"]}, "Q4_K": "gemma2-q4k-fused"})");
  in.backend = "cuda";
  Selection s = select_ok(in);
  EXPECT_EQ(s.path.id, "gemma2-q4k-fused-max");
  in.backend = "cpu";
  EXPECT_EQ(select_ok(in).path.id, "gemma2-q4k-fused");
  preset(R"({"Q4_K": ["gemma2-q4k-fused-max", "gemma2-q4k-dequant-f32"]})");
  in.backend = "vulkan";
  s = select_ok(in);
  EXPECT_EQ(s.path.id, "gemma2-q4k-dequant-f32");
  EXPECT_EQ(s.detail,
            "preset gemma2 for Q4_K weights (gemma2-q4k-fused-max skipped: kernel 'matmul_norm_q4k' has no vulkan "
            "implementation)");
  preset(R"({"Q4_K": ["gemma2-q4k-fused-max"]})");
  EXPECT_THAT(select_error(in), ::testing::HasSubstr("no path of the preset for Q4_K weights runs on this device: "
                                                   "gemma2-q4k-fused-max skipped: kernel 'matmul_norm_q4k' has no "
                                                   "vulkan implementation"));
  preset(R"({"Q4_K": []})");
  EXPECT_THAT(select_error(in), ::testing::HasSubstr("inference.kernelPath.Q4_K: expected a path id or a non-empty "
                                                   "list of path ids"));
  preset(R"({"metal": {"Q4_K": "gemma2-q4k-fused"}})");
  EXPECT_THAT(select_error(in), ::testing::HasSubstr("inference.kernelPath.metal: not a GGUF tensor type or a backend"));
}

TEST_F(SelectTest, LegacyQ4kStrategyMapsWithADeprecationWarning) {
  struct Case {
    const char* inference;
    const char* path;
    const char* detail;
  };
  const Case cases[] = {
      {R"({"q4kStrategy": "fused_q4k", "fusedFFNQ4K": true})", "gemma2-q4k-fused", "q4kStrategy \"fused_q4k\""},
      {R"({"q4kStrategy": "fused_q4k"})", "gemma2-q4k-fused", "q4kStrategy \"fused_q4k\""},
      {R"({"fusedFFNQ4K": true})", "gemma2-q4k-fused", "fusedFFNQ4K true"},
      {R"({"q4kStrategy": "dequant_f32"})", "gemma2-q4k-dequant-f32", "q4kStrategy \"dequant_f32\""},
      {R"({"q4kStrategy": "dequant_f16"})", "gemma2-q4k-dequant-f16", "q4kStrategy \"dequant_f16\""},
  };
  for (const auto& c : cases) {
    SelectionInput in;
    in.config_file = write("legacy.json", fmt::format(R"({{"inference": {}}})", c.inference));
    Selection s = select_ok(in);
    EXPECT_EQ(s.path.id, c.path) << c.inference;
    EXPECT_EQ(s.source, ChoiceSource::kRuntimeConfig);
    EXPECT_EQ(s.detail, fmt::format("runtime config {} ({})", in.config_file, c.detail));
    ASSERT_FALSE(s.warnings.empty()) << c.inference;
    const std::string flag =
        std::string(c.inference).find("q4kStrategy") != std::string::npos ? "q4kStrategy" : "fusedFFNQ4K";
    EXPECT_EQ(
        s.warnings[0].rfind(
            fmt::format("{}: {} is deprecated; use inference.kernelPath = \"{}\"", in.config_file, flag, c.path), 0),
        0u)
        << s.warnings[0];
  }
  SelectionInput in;
  in.config_file = write("legacy.json", R"({"inference": {"q4kStrategy": "dequant_f16"}})");
  EXPECT_NE(select_ok(in).warnings[0].find("not recommended"), std::string::npos);
  in.config_file = write("legacy.json", R"({"inference": {"q4kStrategy": "dequant_f32", "fusedFFNQ4K": true}})");
  Selection s = select_ok(in);
  ASSERT_EQ(s.warnings.size(), 2u);
  EXPECT_EQ(s.warnings[1], in.config_file + ": fusedFFNQ4K only applies to q4kStrategy \"fused_q4k\"; ignored");
}

TEST_F(SelectTest, ConfigErrors) {
  struct Case {
    const char* config;
    const char* message;  // after "<file>: "
  };
  const Case cases[] = {
      {R"({"inference": {"q4kStrategy": "dequant_f23"}})",
       "inference.q4kStrategy: 'dequant_f23' (expected fused_q4k, dequant_f32 or dequant_f16) (did you mean "
       "'dequant_f32'?)"},
      {R"({"inference": {"q4kStrategy": "fused_q4k", "fusedFFNQ4K": false}})",
       "inference: q4kStrategy \"fused_q4k\" with fusedFFNQ4K false has no built-in kernel path"},
      {R"({"inference": {"kernelPath": "gemma2-q4k-fused", "q4kStrategy": "dequant_f32"}})",
       "inference: give kernelPath or the deprecated q4kStrategy / fusedFFNQ4K, not both"},
      {R"({"inference": {"kernelpath": "gemma2-q4k-fused"}})",
       "inference.kernelpath: unknown key 'kernelpath' (did you mean 'kernelPath'?)"},
      {R"({"inferense": {}})", "inferense: unknown key 'inferense' (did you mean 'inference'?)"},
      {R"({"inference": {"fusedFFNQ4K": "yes"}})", "inference.fusedFFNQ4K: expected true or false"},
      {R"({"inference": {"kernelPath": 3}})", "inference.kernelPath: expected a kernel path id or file"},
      {R"({"inference": {"kernelPath": "gemma2-q4k-fusd"}})",
       "inference.kernelPath: unknown kernel path 'gemma2-q4k-fusd' (did you mean 'gemma2-q4k-fused'?)"},
      {R"({"inference": [)", "not valid JSON"},
  };
  for (const auto& c : cases) {
    SelectionInput in;
    in.config_file = write("bad.json", c.config);
    const std::string error = select_error(in);
    EXPECT_EQ(error.rfind(in.config_file + ": " + c.message, 0), 0u) << c.config << "\n" << error;
  }
  SelectionInput in;
  in.config_file = (dir_ / "missing.json").string();
  EXPECT_NE(select_error(in).find("missing.json"), std::string::npos);
}

TEST_F(SelectTest, ConfigFilesAreRelativeToTheConfig) {
  user_path("conf/paths/mine.json", "my-path");
  SelectionInput in;
  in.config_file = write("conf/cfg.json", R"({"inference": {"kernelPath": "paths/mine.json"}})");
  Selection s = select_ok(in);
  EXPECT_EQ(s.path.id, "my-path");
  EXPECT_EQ(s.path.source, (dir_ / "conf/paths/mine.json").string());
}

TEST_F(SelectTest, UserDirectoriesAddPathsById) {
  lib_.user_dirs = {(dir_ / "a").string(), (dir_ / "missing").string(), (dir_ / "b").string()};
  const std::string mine = user_path("a/mine.json", "my-path");
  user_path("b/other.json", "other-path");
  auto ids = lib_.list_ids();
  ASSERT_TRUE(ids.ok()) << ids.error().message;
  EXPECT_EQ(*ids, (std::vector<std::string>{"gemma2-f16-native", "gemma2-q4k-dequant-f16", "gemma2-q4k-dequant-f32",
                                            "gemma2-q4k-fused-max", "gemma2-q4k-fused", "gemma2-q4k-x8-h16",
                                            "gemma2-q4k-x8-max", "gemma2-q4k-x8", "my-path", "other-path"}));
  auto p = lib_.load("my-path");
  ASSERT_TRUE(p.ok()) << p.error().message;
  EXPECT_EQ(p->source, mine);
  auto found = lib_.find("other-path");
  ASSERT_TRUE(found.ok());
  EXPECT_FALSE(found->second);
  EXPECT_TRUE(lib_.find("gemma2-q4k-fused")->second);

  SelectionInput in;
  in.cli_kernel_path = "other-path";
  EXPECT_EQ(select_ok(in).path.id, "other-path");
}

TEST_F(SelectTest, AUserPathMayNotShadowABuiltinId) {
  lib_.user_dirs = {dir_.string()};
  const std::string file = user_path("fused.json", "gemma2-q4k-fused");
  auto ids = lib_.list_ids();
  ASSERT_FALSE(ids.ok());
  EXPECT_EQ(ids.error().message.rfind(file + ": id 'gemma2-q4k-fused' is the id of a built-in kernel path", 0), 0u)
      << ids.error().message;
  EXPECT_FALSE(lib_.load("gemma2-q4k-dequant-f32").ok());
  // Loaded by file, a copy keeps whatever id it has.
  auto by_file = lib_.load(file);
  ASSERT_TRUE(by_file.ok()) << by_file.error().message;
  EXPECT_EQ(by_file->source, file);
}

TEST_F(SelectTest, DuplicateUserIdsAreAnError) {
  lib_.user_dirs = {(dir_ / "a").string(), (dir_ / "b").string()};
  user_path("a/x.json", "same");
  const std::string second = user_path("b/y.json", "same");
  auto ids = lib_.list_ids();
  ASSERT_FALSE(ids.ok());
  EXPECT_EQ(ids.error().message, second + ": id 'same' is also the id of " + (dir_ / "a/x.json").string());
}

TEST_F(SelectTest, UnknownIdsSuggestTheClosest) {
  auto p = lib_.load("gemma2-q4k-fusde");
  ASSERT_FALSE(p.ok());
  EXPECT_EQ(p.error().message, "unknown kernel path 'gemma2-q4k-fusde' (did you mean 'gemma2-q4k-fused'?)");
  auto q = lib_.load("llama");
  ASSERT_FALSE(q.ok());
  EXPECT_EQ(q.error().message,
            "unknown kernel path 'llama' (known: gemma2-f16-native, gemma2-q4k-dequant-f16, "
            "gemma2-q4k-dequant-f32, gemma2-q4k-fused-max, gemma2-q4k-fused, gemma2-q4k-x8-h16, "
            "gemma2-q4k-x8-max, gemma2-q4k-x8)");
  auto f = lib_.load((dir_ / "nope.json").string());
  ASSERT_FALSE(f.ok());
  EXPECT_NE(f.error().message.find("nope.json"), std::string::npos);
}

TEST(Select, ChoiceSourceNames) {
  EXPECT_EQ(choice_source_name(ChoiceSource::kCli), "--kernel-path");
  EXPECT_EQ(choice_source_name(ChoiceSource::kRuntimeConfig), "runtime config");
  EXPECT_EQ(choice_source_name(ChoiceSource::kModelPreset), "model preset");
  EXPECT_EQ(choice_source_name(ChoiceSource::kAuto), "auto");
  EXPECT_EQ(default_paths_dir(), testing::source_path("kernel_paths"));
  EXPECT_TRUE(user_paths_dir().ends_with("/kpath/kernel_paths"));
}

}  // namespace
}  // namespace kp::kpath

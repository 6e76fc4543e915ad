// A user's kernel directory and kernel path with one deliberately broken step,
// for the tests of kpath verify (tests/runtime, tests/cli, tests/vulkan).
//
// The kernel `gelu_mul_mine` is declared with gelu_mul's interface (g, u in,
// y out, [T, <symbol>] f32). Its CPU code is that of the built-in it names as
// `reference`: naming `add` makes the CPU implementation wrong (y = g + u);
// naming `gelu_mul` makes it right, and a Vulkan source may then be wrong.
// The path is gemma2-q4k-dequant-f32 with one layer's `activation` step (both
// phases) pointed at gelu_mul_mine through layerOverrides.
#pragma once

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <string>

#include <unistd.h>

namespace kp::verify_testing {

inline const std::string kSource = KP_SOURCE_DIR;
inline const std::string kQ4kModel = std::string(KP_TEST_DATA) + "/kjv-tiny-q4_k.gguf";

// Fresh per process: ctest runs the tests of a file in parallel processes.
inline std::string fresh_dir(const std::string& stem) {
  const auto dir = std::filesystem::temp_directory_path() / ("kp_verify_" + stem + "_" + std::to_string(getpid()));
  std::filesystem::remove_all(dir);
  std::filesystem::create_directories(dir);
  return dir.string();
}

inline void write_text(const std::filesystem::path& path, const std::string& text) {
  std::filesystem::create_directories(path.parent_path());
  std::ofstream(path, std::ios::binary) << text;
}

// `symbol`: the column symbol the reference's CPU code reads ("N" for add, "F" for gelu_mul).
// `vulkan_comp`: GLSL of a Vulkan implementation, or "" for none.
inline std::string make_kernel_dir(const std::string& root, const std::string& cpu_reference,
                                   const std::string& symbol, const std::string& vulkan_comp) {
  const std::filesystem::path dir = std::filesystem::path(root) / "kernels";
  nlohmann::json binding = {{"kind", "in"}, {"shape", {"T", symbol}}, {"dtype", "f32"}};
  nlohmann::json g = binding, u = binding, y = binding;
  g["name"] = "g";
  u["name"] = "u";
  y["name"] = "y";
  y["kind"] = "out";
  const nlohmann::json logical = {
      {"kernels",
       {{"gelu_mul_mine",
         {{"description", "y = gelu_tanh(g) * u, as a user wrote it"},
          {"reference", cpu_reference},
          {"bindings", {g, u, y}},
          {"constants", {{{"name", symbol}, {"type", "u32"}, {"default", symbol}}}},
          {"entries", {{"main", nlohmann::json::object()}}}}}}}};
  write_text(dir / "registry.json", logical.dump(1));
  if (!vulkan_comp.empty()) {
    const nlohmann::json impl = {
        {"backend", "vulkan"},
        {"kernels",
         {{"gelu_mul_mine",
           {{"file", "gelu_mul_mine.comp"},
            {"constants", {{{"name", "WG_SIZE"}, {"type", "u32"}, {"default", "256"}}}},
            {"entries", {{"main", {{"grid", {"cdiv(" + symbol + ", WG_SIZE)", "T", "1"}}}}}}}}}}};
    write_text(dir / "vulkan" / "registry.json", impl.dump(1));
    write_text(dir / "vulkan" / "gelu_mul_mine.comp", vulkan_comp);
  }
  return dir.string();
}

// gemma2-q4k-dequant-f32 with layer `layer`'s activation step on gelu_mul_mine.
inline std::string make_broken_path(const std::string& root, uint32_t layer) {
  std::ifstream in(kSource + "/kernel_paths/gemma2-q4k-dequant-f32.json");
  nlohmann::json path = nlohmann::json::parse(in);
  path["id"] = "verify-test-broken";
  nlohmann::json over = {{"layers", {layer}}};
  for (const char* phase : {"decode", "prefill"}) {
    nlohmann::json steps = path[phase]["steps"];
    for (auto& s : steps) {
      if (s["op"] == "activation") s["kernel"] = "gelu_mul_mine";
    }
    over[phase] = {{"steps", steps}};
  }
  path["layerOverrides"] = nlohmann::json::array({over});
  const std::string file = (std::filesystem::path(root) / "broken-path.json").string();
  write_text(file, path.dump(1));
  return file;
}

// Where the prefill `activation` step of `layer` runs in gemma2-q4k-dequant-f32
// (kernel_paths/gemma2-q4k-dequant-f32.json): one preLayer step (embed), then
// 15 steps per layer, of which `activation` is the 13th.
inline size_t prefill_activation_index(uint32_t layer) { return 1 + 15 * static_cast<size_t>(layer) + 12; }

// A Vulkan gelu_mul that forgets the GELU: y = g * u.
inline const char* const kForgetfulGeluComp = R"(#version 450
#extension GL_GOOGLE_include_directive : require
#include "kp_common.glsl"
KP_CONSTANTS
layout(local_size_x_id = KP_ID_WG_SIZE) in;
layout(set = 0, binding = 1, std430) readonly buffer GBuffer { float g[]; };
layout(set = 0, binding = 2, std430) readonly buffer UBuffer { float u[]; };
layout(set = 0, binding = 3, std430) writeonly buffer YBuffer { float y[]; };
void main() {
  const uint i = gl_GlobalInvocationID.x;
  if (i >= F) return;
  const uint e = gl_WorkGroupID.y * F + i;
  y[e] = g[e] * u[e];
}
)";

}  // namespace kp::verify_testing

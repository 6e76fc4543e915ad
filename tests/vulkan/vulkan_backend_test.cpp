// The Vulkan backend's machinery: device listing, buffers, the shader caches
// (memory, disk, includes), kernels from a user directory, barriers between
// dependent dispatches, replay with rewritten params, timestamps, checks of
// recorded dispatches, and the validation-message counter.
#include <gtest/gtest.h>
#include <sys/wait.h>

#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <numeric>

#include "backend/vulkan/vk_commands.h"
#include "kernel_path/constants.h"
#include "vulkan_env.h"

namespace kp::vulkan_test {
namespace {

using backend::Access;
using backend::Binding;
using backend::BufferId;
using backend::BufferUsage;
using backend::DispatchDesc;
using backend::PipelineDesc;

void write_file(const std::filesystem::path& path, const std::string& text) {
  std::filesystem::create_directories(path.parent_path());
  std::ofstream(path) << text;
}

// A user kernel directory (--kernel-dir layout) with `probe_scale`:
// y = x * PROBE_FACTOR, PROBE_FACTOR defined in an included file.
std::string make_probe_dir(const std::string& comp_source, const std::string& factor) {
  const std::filesystem::path dir = fresh_temp_dir("vulkan-probe");
  write_file(dir / "registry.json", R"json({"kernels": {"probe_scale": {
    "description": "y = x * PROBE_FACTOR",
    "bindings": [{"name": "x", "kind": "in", "shape": ["T", "N"], "dtype": "f32"},
                 {"name": "y", "kind": "out", "shape": ["T", "N"], "dtype": "f32"}],
    "constants": [{"name": "N", "type": "u32", "default": "N"}],
    "entries": {"main": {}}}}})json");
  write_file(dir / "vulkan" / "registry.json", R"json({"backend": "vulkan", "kernels": {"probe_scale": {
    "file": "probe_scale.comp",
    "constants": [{"name": "WG_SIZE", "type": "u32", "default": "64"}],
    "entries": {"main": {"grid": ["cdiv(N, WG_SIZE)", "T", "1"]}}}}})json");
  write_file(dir / "vulkan" / "probe_scale.comp", comp_source);
  write_file(dir / "vulkan" / "probe_factor.glsl", "#define PROBE_FACTOR " + factor + "\n");
  return dir.string();
}

const char* const kProbeSource = R"(#version 450
#extension GL_GOOGLE_include_directive : require
#include "kp_common.glsl"
#include "probe_factor.glsl"
KP_CONSTANTS
layout(local_size_x_id = KP_ID_WG_SIZE) in;
layout(set = 0, binding = 1, std430) readonly buffer XBuffer { float x[]; };
layout(set = 0, binding = 2, std430) writeonly buffer YBuffer { float y[]; };
void main() {
  const uint i = gl_GlobalInvocationID.x;
  if (i >= N) return;
  const uint e = gl_WorkGroupID.y * N + i;
  y[e] = x[e] * PROBE_FACTOR;
}
)";

struct Probe {
  kpath::Registry registry;
  const kpath::KernelDesc* kernel = nullptr;
};

Result<Probe> load_probe(const std::string& dir) {
  KP_TRY(kpath::Registry registry, kpath::Registry::load_builtin(std::string(KP_SOURCE_DIR) + "/kernels"));
  KP_TRY_STATUS(registry.add_dir(dir));
  Probe p{std::move(registry)};
  p.kernel = p.registry.find("probe_scale");
  return p;
}

PipelineDesc probe_pipeline(const kpath::KernelDesc& k, uint32_t n) {
  return PipelineDesc{&k, &k.impls.at("vulkan"), "main", {{"N", n}, {"WG_SIZE", 64u}}};
}

// Runs probe_scale on x (N = x.size(), T = 1) and returns y.
Result<std::vector<float>> run_probe(backend::Backend& be, const kpath::KernelDesc& k, const std::vector<float>& x) {
  const uint64_t bytes = x.size() * sizeof(float);
  KP_TRY(BufferId xb, be.create_buffer(bytes, BufferUsage::kDevice, "x"));
  KP_TRY(BufferId yb, be.create_buffer(bytes, BufferUsage::kDevice, "y"));
  KP_TRY_STATUS(be.write_buffer(xb, 0, x.data(), bytes));
  KP_TRY(auto pipeline, be.create_pipeline(probe_pipeline(k, static_cast<uint32_t>(x.size()))));
  DispatchDesc d;
  d.pipeline = pipeline;
  d.bindings = {Binding{xb, 0, bytes, Access::kRead}, Binding{yb, 0, bytes, Access::kWrite}};
  d.grid = {static_cast<uint32_t>((x.size() + 63) / 64), 1, 1};
  KP_TRY(auto list, be.record(std::span<const DispatchDesc>(&d, 1)));
  KP_TRY_STATUS(be.submit(list, KpParams{}, false));
  std::vector<float> y(x.size());
  KP_TRY_STATUS(be.read_buffer(yb, 0, y.data(), bytes));
  be.destroy_command_list(list);
  be.destroy_buffer(xb);
  be.destroy_buffer(yb);
  return y;
}

TEST(VulkanDevices, ListsTheDeviceTheBackendOpened) {
  KP_REQUIRE_VULKAN();
  auto devices = backend::list_vulkan_devices();
  ASSERT_TRUE(devices.ok()) << devices.error().message;
  ASSERT_FALSE(devices->empty());
  const auto& opened = env().backend->info();
  bool found = false;
  for (const auto& d : *devices) {
    EXPECT_EQ(d.backend, "vulkan");
    EXPECT_FALSE(d.driver.empty()) << d.name;
    EXPECT_GT(d.memory_bytes, 0u) << d.name;
    for (const auto& f : d.features) EXPECT_TRUE(f == "f16" || f == "subgroups" || f == "int_dot") << f;
    found = found || (d.name == opened.name && d.driver == opened.driver && d.features == opened.features);
  }
  EXPECT_TRUE(found) << opened.name << " is not among the listed devices";
}

// `kpath devices` names every Vulkan device with its index, then the CPU backend.
TEST(VulkanDevices, KpathDevicesListsThem) {
  KP_REQUIRE_VULKAN();
  auto devices = backend::list_vulkan_devices();
  ASSERT_TRUE(devices.ok()) << devices.error().message;
  FILE* pipe = ::popen((std::string("'") + KP_BINARY + "' devices 2>&1").c_str(), "r");
  ASSERT_NE(pipe, nullptr);
  std::string out;
  char buf[4096];
  for (size_t n; (n = std::fread(buf, 1, sizeof buf, pipe)) > 0;) out.append(buf, n);
  const int status = ::pclose(pipe);
  ASSERT_TRUE(WIFEXITED(status)) << out;
  EXPECT_EQ(WEXITSTATUS(status), 0) << out;
  for (size_t i = 0; i < devices->size(); ++i) {
    const auto& d = (*devices)[i];
    EXPECT_NE(out.find(fmt::format("{}: {}", i, d.name)), std::string::npos) << out;
    EXPECT_NE(out.find(d.driver), std::string::npos) << out;
  }
  EXPECT_NE(out.find("CPU backend"), std::string::npos) << out;
}

TEST(VulkanDevices, UnknownIndexNamesTheDevices) {
  KP_REQUIRE_VULKAN();
  backend::VulkanOptions o;
  o.device_index = 99;
  auto be = backend::make_vulkan_backend(o);
  ASSERT_FALSE(be.ok());
  EXPECT_NE(be.error().message.find("Vulkan device 99 does not exist"), std::string::npos) << be.error().message;
  EXPECT_NE(be.error().message.find(env().backend->info().name), std::string::npos) << be.error().message;
}

TEST(VulkanBuffers, RoundTripAtOffsets) {
  KP_REQUIRE_VULKAN();
  backend::Backend& be = *env().backend;
  for (BufferUsage usage : {BufferUsage::kDevice, BufferUsage::kHostVisible}) {
    const uint64_t n = 300001;  // not a multiple of 16 bytes
    std::vector<uint8_t> data(n);
    std::iota(data.begin(), data.end(), uint8_t{7});
    auto id = be.create_buffer(n, usage, "roundtrip");
    ASSERT_TRUE(id.ok()) << id.error().message;
    ASSERT_TRUE(be.write_buffer(*id, 0, data.data(), n).ok());
    const std::vector<uint8_t> patch = {1, 2, 3, 4, 5};
    ASSERT_TRUE(be.write_buffer(*id, 1000, patch.data(), patch.size()).ok());
    std::copy(patch.begin(), patch.end(), data.begin() + 1000);
    std::vector<uint8_t> back(n - 3);
    ASSERT_TRUE(be.read_buffer(*id, 3, back.data(), back.size()).ok());
    EXPECT_TRUE(std::equal(back.begin(), back.end(), data.begin() + 3));
    auto bad = be.write_buffer(*id, n - 2, patch.data(), patch.size());
    ASSERT_FALSE(bad.ok());
    EXPECT_NE(bad.error().message.find("'roundtrip'"), std::string::npos) << bad.error().message;
    EXPECT_GE(be.peak_memory(), n);
    be.destroy_buffer(*id);
  }
}

TEST(VulkanShaderCache, ReusesPipelinesAndSpirv) {
  KP_REQUIRE_VULKAN();
  auto probe = load_probe(make_probe_dir(kProbeSource, "3.0"));
  ASSERT_TRUE(probe.ok()) << probe.error().message;
  const kpath::KernelDesc& k = *probe->kernel;
  backend::VulkanOptions o;
  o.cache_dir = fresh_temp_dir("vulkan-cache");
  {
    auto be = backend::make_vulkan_backend(o);
    ASSERT_TRUE(be.ok()) << be.error().message;
    auto& vk = dynamic_cast<backend::VulkanBackend&>(**be);
    auto a = (*be)->create_pipeline(probe_pipeline(k, 100));
    auto b = (*be)->create_pipeline(probe_pipeline(k, 100));
    auto c = (*be)->create_pipeline(probe_pipeline(k, 200));
    ASSERT_TRUE(a.ok() && b.ok() && c.ok());
    EXPECT_EQ(*a, *b);  // same (source, entry, constants): the same pipeline
    EXPECT_NE(*a, *c);  // other constants: another pipeline from the same SPIR-V
    EXPECT_EQ(vk.shader_cache_stats().compiled, 1u);
    EXPECT_EQ(vk.shader_cache_stats().memory_hits, 1u);
    EXPECT_EQ(vk.shader_cache_stats().disk_hits, 1u);
  }
  {
    auto be = backend::make_vulkan_backend(o);
    ASSERT_TRUE(be.ok()) << be.error().message;
    auto& vk = dynamic_cast<backend::VulkanBackend&>(**be);
    ASSERT_TRUE((*be)->create_pipeline(probe_pipeline(k, 100)).ok());
    EXPECT_EQ(vk.shader_cache_stats().compiled, 0u) << "a new backend should find the SPIR-V on disk";
    EXPECT_EQ(vk.shader_cache_stats().disk_hits, 1u);
  }
  o.disk_cache = false;
  auto be = backend::make_vulkan_backend(o);
  ASSERT_TRUE(be.ok()) << be.error().message;
  ASSERT_TRUE((*be)->create_pipeline(probe_pipeline(k, 100)).ok());
  EXPECT_EQ(dynamic_cast<backend::VulkanBackend&>(**be).shader_cache_stats().compiled, 1u);
}

TEST(VulkanShaderCache, EditedIncludeIsRecompiledWithoutRebuild) {
  KP_REQUIRE_VULKAN();
  const std::string dir = make_probe_dir(kProbeSource, "3.0");
  auto probe = load_probe(dir);
  ASSERT_TRUE(probe.ok()) << probe.error().message;
  backend::Backend& be = *env().backend;
  const std::vector<float> x = {1.0f, -2.0f, 0.5f, 4.0f, 8.0f};
  auto y = run_probe(be, *probe->kernel, x);
  ASSERT_TRUE(y.ok()) << y.error().message;
  EXPECT_EQ(*y, (std::vector<float>{3.0f, -6.0f, 1.5f, 12.0f, 24.0f}));
  write_file(std::filesystem::path(dir) / "vulkan" / "probe_factor.glsl", "#define PROBE_FACTOR -0.5\n");
  y = run_probe(be, *probe->kernel, x);
  ASSERT_TRUE(y.ok()) << y.error().message;
  EXPECT_EQ(*y, (std::vector<float>{-0.5f, 1.0f, -0.25f, -2.0f, -4.0f}));
}

TEST(VulkanShaderCache, CompileErrorNamesTheFileAndEntry) {
  KP_REQUIRE_VULKAN();
  std::string broken = kProbeSource;
  broken.replace(broken.find("y[e] ="), 6, "y[e] = undeclared_name +");
  auto probe = load_probe(make_probe_dir(broken, "3.0"));
  ASSERT_TRUE(probe.ok()) << probe.error().message;
  auto p = env().backend->create_pipeline(probe_pipeline(*probe->kernel, 10));
  ASSERT_FALSE(p.ok());
  EXPECT_NE(p.error().message.find("probe_scale.comp"), std::string::npos) << p.error().message;
  EXPECT_NE(p.error().message.find("ENTRY_main"), std::string::npos) << p.error().message;
  EXPECT_NE(p.error().message.find("undeclared_name"), std::string::npos) << p.error().message;
}

Binding bind(BufferId b, uint64_t offset, uint64_t bytes, Access a) { return Binding{b, offset, bytes, a}; }

DispatchDesc dispatch_of(std::vector<Binding> bindings) {
  DispatchDesc d;
  d.bindings = std::move(bindings);
  return d;
}

TEST(VulkanBarriers, OnlyBetweenDependentDispatches) {
  using backend::vk::barriers_needed;
  // Reads of the same data and writes of disjoint ranges need no barrier.
  std::vector<DispatchDesc> independent = {
      dispatch_of({bind(1, 0, 64, Access::kRead), bind(2, 0, 64, Access::kWrite)}),
      dispatch_of({bind(1, 0, 64, Access::kRead), bind(2, 64, 64, Access::kWrite)}),
      dispatch_of({bind(3, 0, 16, Access::kRead), bind(4, 0, 16, Access::kWrite)})};
  EXPECT_EQ(barriers_needed(independent), (std::vector<bool>{false, false, false}));
  std::vector<DispatchDesc> chain = {
      dispatch_of({bind(1, 0, 64, Access::kRead), bind(2, 0, 64, Access::kWrite)}),
      dispatch_of({bind(4, 0, 64, Access::kRead), bind(1, 0, 64, Access::kWrite)}),       // overwrites 0's input
      dispatch_of({bind(2, 32, 8, Access::kRead), bind(3, 0, 64, Access::kWrite)}),       // 0 is done already
      dispatch_of({bind(5, 0, 64, Access::kRead), bind(6, 0, 64, Access::kWrite)}),       // independent
      dispatch_of({bind(6, 60, 8, Access::kReadWrite)}),                                 // reads 3's output
      dispatch_of({bind(3, 0, 64, Access::kRead), bind(7, 0, 64, Access::kWrite)}),      // 2 is done already
      dispatch_of({bind(8, 0, 16, Access::kWrite)}),
      dispatch_of({bind(8, 8, 16, Access::kWrite)})};                                    // write after write
  EXPECT_EQ(barriers_needed(chain), (std::vector<bool>{false, true, false, false, true, false, false, true}));
}

// A list of dependent dispatches computes what running them one by one does.
TEST(VulkanCommands, DependentChainReplaysWithNewParams) {
  KP_REQUIRE_VULKAN();
  Env& e = env();
  const kpath::KernelDesc* add = e.registry->find("add");
  const kpath::KernelDesc* penalty = e.registry->find("repeat_penalty");
  ASSERT_TRUE(add && penalty);
  backend::Backend& be = *e.backend;
  const uint32_t n = 1000;
  const uint64_t bytes = n * 4;
  std::vector<float> a(n), b(n);
  for (uint32_t i = 0; i < n; ++i) {
    a[i] = 0.25f * static_cast<float>(i) - 50.0f;
    b[i] = 1.0f + static_cast<float>(i % 7);
  }
  const std::vector<int32_t> history = {3, 999, 3, 500};
  auto ab = be.create_buffer(bytes, BufferUsage::kDevice, "a");
  auto bb = be.create_buffer(bytes, BufferUsage::kDevice, "b");
  auto hb = be.create_buffer(16, BufferUsage::kHostVisible, "history");
  ASSERT_TRUE(ab.ok() && bb.ok() && hb.ok());
  ASSERT_TRUE(be.write_buffer(*ab, 0, a.data(), bytes).ok());
  ASSERT_TRUE(be.write_buffer(*bb, 0, b.data(), bytes).ok());
  ASSERT_TRUE(be.write_buffer(*hb, 0, history.data(), 16).ok());

  auto pipeline = [&](const kpath::KernelDesc& k, std::map<std::string, int64_t> symbols) {
    kpath::SymbolTable table;
    for (const auto& [name, v] : symbols) table[name] = kpath::ExprValue{static_cast<double>(v), true};
    auto constants = kpath::resolve_constants(k, &k.impls.at("vulkan"), {}, table, "test");
    EXPECT_TRUE(constants.ok());
    auto id = be.create_pipeline(PipelineDesc{&k, &k.impls.at("vulkan"), "main", *constants});
    EXPECT_TRUE(id.ok()) << id.error().message;
    return *id;
  };
  // b = a + b (in place), then a = penalty(b) with the history, then b = a + b.
  std::vector<DispatchDesc> ds(3);
  ds[0].pipeline = pipeline(*add, {{"N", n}});
  ds[0].bindings = {bind(*ab, 0, bytes, Access::kRead), bind(*bb, 0, bytes, Access::kRead),
                    bind(*bb, 0, bytes, Access::kWrite)};
  ds[0].grid = {(n + 255) / 256, 1, 1};
  ds[1].pipeline = pipeline(*penalty, {{"V", n}, {"H", 4}});
  ds[1].bindings = {bind(*bb, 0, bytes, Access::kRead), bind(*hb, 0, 16, Access::kRead),
                    bind(*ab, 0, bytes, Access::kWrite)};
  ds[1].grid = {(n + 255) / 256, 1, 1};
  ds[2] = ds[0];
  auto list = be.record(ds);
  ASSERT_TRUE(list.ok()) << list.error().message;

  for (float pen : {2.0f, 4.0f}) {
    ASSERT_TRUE(be.write_buffer(*ab, 0, a.data(), bytes).ok());
    ASSERT_TRUE(be.write_buffer(*bb, 0, b.data(), bytes).ok());
    KpParams params{};
    params.n_history = 4;
    params.repeat_penalty = pen;
    ASSERT_TRUE(be.submit(*list, params, false).ok());
    std::vector<float> got(n);
    ASSERT_TRUE(be.read_buffer(*bb, 0, got.data(), bytes).ok());
    for (uint32_t i = 0; i < n; ++i) {
      const float s = a[i] + b[i];
      const bool hit = i == 3 || i == 999 || i == 500;
      const float p = hit ? (s > 0 ? s / pen : s * pen) : s;
      ASSERT_EQ(got[i], p + s) << "element " << i << " with repeat_penalty " << pen;
    }
  }
  ASSERT_TRUE(be.submit(*list, KpParams{}, true).ok());
  const auto ms = be.last_timings();
  ASSERT_EQ(ms.size(), 3u);
  for (double t : ms) EXPECT_GE(t, 0.0);
  EXPECT_GT(ms[0] + ms[1] + ms[2], 0.0);
  be.destroy_command_list(*list);
  for (BufferId id : {*ab, *bb, *hb}) be.destroy_buffer(id);
}

TEST(VulkanCommands, RecordRejectsInvalidDispatches) {
  KP_REQUIRE_VULKAN();
  Env& e = env();
  backend::Backend& be = *e.backend;
  const kpath::KernelDesc* add = e.registry->find("add");
  ASSERT_NE(add, nullptr);
  auto p = be.create_pipeline(PipelineDesc{add, &add->impls.at("vulkan"), "main", {{"N", 64u}, {"WG_SIZE", 64u}}});
  ASSERT_TRUE(p.ok()) << p.error().message;
  auto buf = be.create_buffer(1024, BufferUsage::kDevice, "buf");
  ASSERT_TRUE(buf.ok());
  DispatchDesc good;
  good.pipeline = *p;
  good.bindings = {bind(*buf, 0, 256, Access::kRead), bind(*buf, 256, 256, Access::kRead),
                   bind(*buf, 512, 256, Access::kWrite)};
  auto expect_error = [&](DispatchDesc d, const std::string& needle) {
    std::vector<DispatchDesc> ds = {good, d};
    auto r = be.record(ds);
    ASSERT_FALSE(r.ok()) << needle;
    EXPECT_NE(r.error().message.find("dispatch 1 (add:main)"), std::string::npos) << r.error().message;
    EXPECT_NE(r.error().message.find(needle), std::string::npos) << r.error().message;
  };
  DispatchDesc d = good;
  d.bindings.pop_back();
  expect_error(d, "2 bindings given, the kernel has 3");
  d = good;
  d.bindings[2].offset = 900;
  expect_error(d, "outside buffer 'buf'");
  d = good;
  d.bindings[1].offset = 4;
  expect_error(d, "not a multiple of the device's storage buffer alignment");
  d = good;
  d.grid = {0, 1, 1};
  expect_error(d, "outside the device's limits");
  be.destroy_buffer(*buf);
}

TEST(VulkanCommands, SyncEachDispatchRunsTheSameList) {
  KP_REQUIRE_VULKAN();
  auto probe = load_probe(make_probe_dir(kProbeSource, "2.0"));
  ASSERT_TRUE(probe.ok()) << probe.error().message;
  backend::VulkanOptions o;
  o.cache_dir = fresh_temp_dir("vulkan-cache");
  o.sync_each_dispatch = true;
  auto be = backend::make_vulkan_backend(o);
  ASSERT_TRUE(be.ok()) << be.error().message;
  const std::vector<float> x = {1.0f, 2.0f, 3.0f};
  auto y = run_probe(**be, *probe->kernel, x);
  ASSERT_TRUE(y.ok()) << y.error().message;
  EXPECT_EQ(*y, (std::vector<float>{2.0f, 4.0f, 6.0f}));
}

// The counter is live: a pipeline whose shader reads push constants beyond the
// 16-byte KpStepParams range is invalid, and the layer says so.
TEST(VulkanValidation, CountsMessages) {
  KP_REQUIRE_VULKAN();
  if (!env().validation) GTEST_SKIP() << "validation layer unavailable: " << env().no_validation;
  const std::string source = R"(#version 450
layout(constant_id = 0) const uint N = 1u;
layout(constant_id = 1) const uint WG_SIZE = 1u;
layout(local_size_x_id = 1) in;
layout(set = 0, binding = 2, std430) writeonly buffer YBuffer { float y[]; };
layout(push_constant, std430) uniform Oversized { uint pad[7]; float factor; } pc;
void main() { if (gl_GlobalInvocationID.x < N) y[gl_GlobalInvocationID.x] = pc.factor; }
)";
  auto probe = load_probe(make_probe_dir(source, "1.0"));
  ASSERT_TRUE(probe.ok()) << probe.error().message;
  backend::VulkanOptions o;
  o.validation = true;
  o.cache_dir = fresh_temp_dir("vulkan-cache");
  auto be = backend::make_vulkan_backend(o);
  ASSERT_TRUE(be.ok()) << be.error().message;
  auto& vk = dynamic_cast<backend::VulkanBackend&>(**be);
  EXPECT_EQ(vk.validation_message_count(), 0u);
  (void)(*be)->create_pipeline(probe_pipeline(*probe->kernel, 8));
  EXPECT_GT(vk.validation_message_count(), 0u);
  ASSERT_FALSE(vk.validation_messages().empty());
  EXPECT_NE(vk.validation_messages()[0].find("Push constant"), std::string::npos) << vk.validation_messages()[0];
}

// Everything the shared backend did in this process was valid Vulkan (the op
// tests check the same per kernel).
TEST(VulkanValidation, SharedBackendStaysSilent) {
  KP_REQUIRE_VULKAN();
  if (!env().validation) GTEST_SKIP() << "validation layer unavailable: " << env().no_validation;
  EXPECT_EQ(env().vulkan->validation_message_count(), 0u) << validation_report(0);
}

}  // namespace
}  // namespace kp::vulkan_test

// Fuzz target: the kernel-path loader and validator on arbitrary text.
//   - kpath::parse_kernel_path: any text either parses or is rejected with an
//     error naming the document;
//   - a path that parses is written back (kernel_path_to_json), which must
//     parse again to the same document (schema.h's promise), and described
//     (chain, diff) as `kpath paths show/diff` do;
//   - it is validated against the built-in registry (with the CPU kernels) and
//     tests/data/kjv-tiny-q4_k.gguf for one backend (cpu, vulkan or cuda, by
//     the input's length) with every feature that backend's implementations
//     ask for, as `kpath paths validate` does without a device.
// Seeds: kernel_paths/*.json and tests/data/invalid_paths/*.json (scripts/fuzz.sh).
#include <cstdint>
#include <cstdio>
#include <set>
#include <string>

#include "backend/cpu/cpu_backend.h"
#include "format/gguf.h"
#include "fuzz_support.h"
#include "kernel_path/describe.h"
#include "kernel_path/plan.h"
#include "kernel_path/registry.h"
#include "kernel_path/schema.h"
#include "model/gemma2_config.h"
#include "runtime/model_values.h"

namespace {

struct Fixture {
  kp::format::GgufFile model;
  kp::kpath::Registry registry;
  kp::kpath::ValidateOptions cpu, vulkan, cuda;
};

kp::kpath::ValidateOptions options_for(const Fixture& f, const kp::model::Gemma2Config& config,
                                       const std::string& backend) {
  kp::kpath::ValidateOptions o;
  o.backend = backend;
  o.ctx = 256;
  o.model = kp::runtime::model_values(config);
  o.resolve_weight = [](const std::string& name) { return kp::model::resolve_weight_name(name); };
  for (const auto& [id, k] : f.registry.kernels()) {
    if (auto impl = k.impls.find(backend); impl != k.impls.end()) {
      o.device_features.insert(impl->second.features.begin(), impl->second.features.end());
    }
  }
  return o;
}

const Fixture& fixture() {
  static const Fixture f = [] {
    auto model = kp::format::GgufFile::open(kp::fuzz::data_path("kjv-tiny-q4_k.gguf"));
    KP_CHECK(model.ok(), "kjv-tiny-q4_k.gguf opens");
    auto config = kp::model::load_gemma2_config(*model);
    KP_CHECK(config.ok(), "kjv-tiny-q4_k.gguf is Gemma 2");
    auto registry = kp::kpath::Registry::load_builtin(kp::fuzz::source_path("kernels"));
    KP_CHECK(registry.ok(), "the built-in registry loads");
    kp::backend::register_cpu_kernels(*registry);
    Fixture out{std::move(*model), std::move(*registry), {}, {}, {}};
    out.cpu = options_for(out, *config, "cpu");
    out.vulkan = options_for(out, *config, "vulkan");
    out.cuda = options_for(out, *config, "cuda");
    return out;
  }();
  return f;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const Fixture& f = fixture();
  const std::string text(reinterpret_cast<const char*>(data), size);
  kp::Result<kp::kpath::KernelPath> path = kp::kpath::parse_kernel_path(text, "fuzz.json");
  if (!path) {
    KP_FUZZ_CHECK(path.error().message.starts_with("fuzz.json"), "errors name the document");
    return 0;
  }

  const std::string json = kp::kpath::kernel_path_to_json(*path);
  kp::Result<kp::kpath::KernelPath> again = kp::kpath::parse_kernel_path(json, "again.json");
  if (!again) std::fprintf(stderr, "%s\n%s\n", json.c_str(), again.error().message.c_str());
  KP_FUZZ_CHECK(again.ok(), "a path written by kernel_path_to_json parses");
  KP_FUZZ_CHECK(kp::kpath::kernel_path_to_json(*again) == json, "writing a path back is a fixed point");
  KP_FUZZ_CHECK(kp::kpath::diff_paths(*path, *again).empty(), "a path written back has no differences");
  (void)kp::kpath::chain(path->decode);
  for (const auto& s : path->prefill) (void)kp::kpath::constants_label(s);

  // One backend per input (validation costs tens of milliseconds under ASan):
  // chosen by the input's length, so a mutation that keeps the length keeps it.
  const kp::kpath::ValidateOptions* backends[] = {&f.cpu, &f.vulkan, &f.cuda};
  kp::Result<kp::kpath::Plan> plan = kp::kpath::validate_path(*path, f.registry, f.model, *backends[size % 3]);
  if (!plan) {
    KP_FUZZ_CHECK(plan.error().message.starts_with("fuzz.json"), "validation errors name the document");
    return 0;
  }
  KP_FUZZ_CHECK(!plan->decode.empty(), "a valid plan dispatches something per token");
  for (const auto& step : plan->decode) KP_FUZZ_CHECK(step.kernel != nullptr, "planned steps have a kernel");
  return 0;
}

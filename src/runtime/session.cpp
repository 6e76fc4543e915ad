#include "runtime/session.h"

#include <algorithm>
#include <map>

#include "backend/cpu/cpu_backend.h"
#include "runtime/model_values.h"

namespace kp::runtime {

format::GgmlType dominant_weight_type(const format::GgufFile& model) {
  std::map<format::GgmlType, uint64_t> elems;
  for (const auto& t : model.tensors()) {
    if (t.dims.size() >= 2) elems[t.type] += t.n_elements;
  }
  format::GgmlType best = format::GgmlType::F32;
  uint64_t most = 0;
  for (const auto& [type, n] : elems) {
    if (n > most) {
      most = n;
      best = type;
    }
  }
  return best;
}

Result<kpath::Registry> load_registry(const std::string& kernel_dir) {
  KP_TRY(kpath::Registry registry, kpath::Registry::load_builtin(kpath::default_kernels_dir()));
  backend::register_cpu_kernels(registry);
  if (!kernel_dir.empty()) {
    KP_TRY_STATUS(registry.add_dir(kernel_dir));
    backend::register_cpu_kernels(registry);  // custom kernels with a `reference` get CPU code too
  }
  return registry;
}

Result<std::unique_ptr<Session>> Session::open(const format::GgufFile& model, const SessionOptions& options) {
  KP_TRY(OpenedBackend opened, open_backend(options.backend));
  return open(model, options, std::move(opened));
}

Result<std::unique_ptr<Session>> Session::open(const format::GgufFile& model, const SessionOptions& options,
                                               OpenedBackend opened) {
  if (opened.backend == nullptr) return make_error("Session::open: no backend given");
  std::unique_ptr<Session> s(new Session());
  KP_TRY(s->config_, model::load_gemma2_config(model));
  KP_TRY(s->registry_, load_registry(options.kernel_dir));
  s->backend_ = std::move(opened.backend);
  s->backend_why_ = std::move(opened.why);

  kpath::PathLibrary lib;
  lib.builtin_dir = kpath::default_paths_dir();
  lib.user_dirs = options.path_dirs;
  lib.user_dirs.push_back(kpath::user_paths_dir());
  kpath::SelectionInput in;
  in.cli_kernel_path = options.kernel_path;
  in.config_file = options.config_file;
  KP_TRY(in.architecture, model.get_string("general.architecture"));
  in.dominant_type = dominant_weight_type(model);
  in.device_features = s->backend_->info().features;
  in.registry = &s->registry_;
  in.backend = s->backend_->info().backend;
  for (const auto& t : model.tensors()) {
    if (t.dims.size() >= 2) in.weight_types.insert(t.type);
  }
  KP_TRY(s->selection_, kpath::select_path(lib, in));

  kpath::ValidateOptions vopts;
  vopts.backend = s->backend_->info().backend;
  vopts.device_features = s->backend_->info().features;
  const uint32_t ctx = options.ctx != 0 ? options.ctx : std::min<uint32_t>(s->config_.n_ctx, 4096);
  if (ctx > s->config_.n_ctx) {
    return make_error("--ctx-size {} exceeds the model's context length {}", ctx, s->config_.n_ctx);
  }
  vopts.ctx = ctx;
  vopts.model = model_values(s->config_);
  vopts.model.max_workgroup_size = s->backend_->info().max_workgroup_size;
  vopts.resolve_weight = [](const std::string& name) { return model::resolve_weight_name(name); };
  KP_TRY(s->plan_, kpath::validate_path(s->selection_.path, s->registry_, model, vopts));

  ExecutorOptions eopts;
  // Rows per prefill dispatch: -ub (or the device's default), at most -b and the context.
  const int64_t ubatch = options.max_ubatch > 0 ? options.max_ubatch : s->backend_->info().prefill_batch;
  eopts.max_batch = std::max<int64_t>(1, std::min<int64_t>({options.max_batch, ubatch, int64_t{ctx}}));
  for (uint32_t l = 0; l < s->config_.n_layer; ++l) eopts.layer_windows.push_back(s->config_.layer_window(l));
  KP_TRY(s->executor_, Executor::create(s->plan_, model, *s->backend_, eopts));
  return s;
}

}  // namespace kp::runtime

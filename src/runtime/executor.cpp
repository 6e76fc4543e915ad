#include "runtime/executor.h"

#include <fmt/core.h>

#include <algorithm>
#include <cstring>
#include <optional>

#include "core/fp16.h"
#include "format/quant.h"
#include "kernel_path/constants.h"

namespace kp::runtime {
namespace {

uint64_t dtype_bytes(kpath::SlotDType t) { return t == kpath::SlotDType::F16 ? 2 : 4; }

backend::Access access_of(kpath::BindingKind k) {
  switch (k) {
    case kpath::BindingKind::Out: return backend::Access::kWrite;
    case kpath::BindingKind::InOut: return backend::Access::kReadWrite;
    default: return backend::Access::kRead;
  }
}

// The symbols of a step for expressions: compile-time dims, plus T when known.
kpath::SymbolTable step_symbols(const kpath::PlannedStep& step, const kpath::ModelValues& model, int64_t rows) {
  kpath::SymbolTable table;
  model.add_to(table);
  for (const auto& [name, dim] : step.symbols) {
    if (!dim.is_t) {
      table[name] = kpath::ExprValue{static_cast<double>(dim.value), true};
    } else if (rows > 0) {
      table[name] = kpath::ExprValue{static_cast<double>(dim.eval(rows)), true};
    }
  }
  // T: the batch, unless the step runs on a fixed number of rows (the last
  // row's logits, sampling); step.symbols then holds it.
  if (rows > 0 && !step.symbols.contains("T")) table["T"] = kpath::ExprValue{static_cast<double>(rows), true};
  return table;
}

std::string describe_step(const kpath::PlannedStep& s) {
  return fmt::format("{} (op {}, kernel {}, entry {})", s.location, s.op, s.kernel->id, s.entry);
}

}  // namespace

Executor::Executor(const kpath::Plan& plan, backend::Backend& backend, ExecutorOptions options)
    : plan_(plan), backend_(backend), options_(std::move(options)) {}

Executor::~Executor() {
  for (auto& [rows, rec] : forward_lists_) backend_.destroy_command_list(rec.list);
  for (auto& [key, rec] : step_lists_) backend_.destroy_command_list(rec.list);
  if (decode_sampling_) backend_.destroy_command_list(decode_sampling_->list);
  if (sampling_) backend_.destroy_command_list(sampling_->list);
  for (auto& [name, id] : weight_buffers_) backend_.destroy_buffer(id);
  for (auto& [name, id] : slot_buffers_) backend_.destroy_buffer(id);
}

Result<std::unique_ptr<Executor>> Executor::create(const kpath::Plan& plan, const format::GgufFile& model,
                                                   backend::Backend& backend, ExecutorOptions options) {
  if (options.max_batch < 1) return make_error("max batch must be at least 1");
  if (options.layer_windows.size() != plan.model.n_layer) {
    return make_error("executor: {} layer windows given for {} layers", options.layer_windows.size(),
                      plan.model.n_layer);
  }
  std::unique_ptr<Executor> ex(new Executor(plan, backend, std::move(options)));
  for (const auto& s : plan.prefill) {
    if (s.phase_section != "sampling") ex->prefill_forward_.push_back(&s);
  }
  for (const auto& s : plan.decode) {
    if (s.phase_section == "sampling") {
      ex->sampling_steps_.push_back(&s);
    } else {
      ex->decode_forward_.push_back(&s);
    }
  }
  if (!plan.slots.count("logits")) return make_error("{}: no step writes the 'logits' slot", plan.path->source);
  if (!plan.slots.count("token_ids")) return make_error("{}: no step reads the 'token_ids' slot", plan.path->source);
  KP_TRY_STATUS(ex->check_memory(model));
  KP_TRY_STATUS(ex->upload_weights(model));
  KP_TRY_STATUS(ex->create_slots());
  // Compile every pipeline now, so errors surface before the first token.
  for (const auto* list : {&ex->prefill_forward_, &ex->decode_forward_, &ex->sampling_steps_}) {
    for (const auto* step : *list) {
      KP_TRY(backend::PipelineId unused, ex->pipeline_for(*step));
      (void)unused;
    }
  }
  return ex;
}

uint64_t Executor::slot_alloc_bytes(const kpath::SlotInfo& slot) const {
  const int64_t rows = slot.persistent ? slot.rows.value : slot.rows.eval(options_.max_batch);
  return std::max<uint64_t>(4, static_cast<uint64_t>(rows * slot.cols) * dtype_bytes(slot.dtype));
}

Status Executor::check_memory(const format::GgufFile& model) const {
  uint64_t weights = 0;
  for (const auto& name : plan_.weights) {
    const format::GgufTensorInfo* t = model.tensor(name);
    if (t == nullptr) return make_error("{}: tensor '{}' not found", model.name(), name);
    weights += plan_.device_bytes(*t);
  }
  uint64_t kept = 0, scratch = 0;  // persistent slots (the KV cache), per-batch activations
  for (const auto& [name, slot] : plan_.slots) (slot.persistent ? kept : scratch) += slot_alloc_bytes(slot);
  const uint64_t need = weights + kept + scratch;
  const backend::DeviceInfo& info = backend_.info();
  const uint64_t free = backend_.free_memory();
  const uint64_t limit = free != 0 ? free : info.memory_bytes;
  if (limit == 0 || need <= limit) return {};
  const auto gib = [](uint64_t b) { return static_cast<double>(b) / (1ull << 30); };
  return make_error(
      "{}: the session needs {:.2f} GiB on {} (weights {:.2f} GiB as the path '{}' stores them, KV cache and other "
      "persistent slots {:.2f} GiB for a context of {}, activations {:.2f} GiB for batches of {}), but {} {:.2f} GiB "
      "{}; use a smaller --ctx-size or --batch-size, a path with smaller weights, or another device",
      model.name(), gib(need), info.name, gib(weights), plan_.path->id, gib(kept), plan_.ctx, gib(scratch),
      options_.max_batch, free != 0 ? "only" : "the device has", gib(limit),
      free != 0 ? (info.memory_bytes != 0 ? fmt::format("is free (of {:.2f} GiB)", gib(info.memory_bytes))
                                          : std::string("of host memory is available"))
                : std::string("in all"));
}

Status Executor::upload_weights(const format::GgufFile& model) {
  for (const auto& name : plan_.weights) {
    const format::GgufTensorInfo* t = model.tensor(name);
    if (t == nullptr) return make_error("{}: tensor '{}' not found", model.name(), name);
    const format::GgmlType target = plan_.device_type(*t);
    const void* data = t->data;
    const uint64_t bytes = plan_.device_bytes(*t);
    std::vector<uint8_t> converted;
    if (target != t->type) {
      std::vector<float> f32(t->n_elements);
      KP_TRY_STATUS(format::dequantize(t->type, t->data, f32.data(), static_cast<int64_t>(t->n_elements)));
      converted.resize(bytes);
      KP_TRY_STATUS(format::quantize(target, f32.data(), converted.data(), static_cast<int64_t>(t->n_elements)));
      data = converted.data();
    }
    KP_TRY(backend::BufferId id, backend_.create_buffer(bytes, backend::BufferUsage::kDevice, name));
    KP_TRY_STATUS(backend_.write_buffer(id, 0, data, bytes));
    weight_buffers_[name] = id;
    weight_sizes_[name] = bytes;
    weight_bytes_ += bytes;
  }
  return {};
}

Status Executor::create_slots() {
  for (const auto& [name, slot] : plan_.slots) {
    const uint64_t bytes = slot_alloc_bytes(slot);
    const auto usage = slot.host_written ? backend::BufferUsage::kHostVisible : backend::BufferUsage::kDevice;
    KP_TRY(backend::BufferId id, backend_.create_buffer(bytes, usage, name));
    if (slot.persistent || slot.host_written) {
      std::vector<uint8_t> zeros(bytes, 0);
      KP_TRY_STATUS(backend_.write_buffer(id, 0, zeros.data(), bytes));
    }
    slot_buffers_[name] = id;
  }
  return {};
}

Result<backend::PipelineId> Executor::pipeline_for(const kpath::PlannedStep& step) {
  const kpath::SymbolTable table = step_symbols(step, plan_.model, 0);
  KP_TRY(kpath::ConstantValues constants,
         kpath::resolve_constants(*step.kernel, step.impl, step.constant_overrides, table, step.location));
  std::string key = step.kernel->id + "|" + (step.impl ? step.impl->backend : "") + "|" + step.entry;
  for (const auto& [n, v] : constants) key += "|" + n + "=" + kpath::const_value_string(v);
  if (auto it = pipelines_.find(key); it != pipelines_.end()) return it->second;
  backend::PipelineDesc desc{step.kernel, step.impl, step.entry, std::move(constants)};
  auto id = backend_.create_pipeline(desc);
  if (!id.ok()) return make_error("{}: {}", step.location, id.error().message);
  pipelines_[key] = *id;
  return *id;
}

Result<Executor::Recorded> Executor::record(const std::vector<const kpath::PlannedStep*>& steps, int64_t rows) {
  std::vector<backend::DispatchDesc> dispatches;
  dispatches.reserve(steps.size());
  for (const auto* step : steps) {
    backend::DispatchDesc d;
    KP_TRY(d.pipeline, pipeline_for(*step));
    for (const auto& b : step->bindings) {
      backend::Binding bind;
      bind.access = access_of(b.kind);
      if (b.kind == kpath::BindingKind::Weight) {
        bind.buffer = weight_buffers_.at(b.tensor);
        bind.bytes = weight_sizes_.at(b.tensor);
      } else {
        const kpath::SlotInfo& slot = plan_.slots.at(b.slot);
        bind.buffer = slot_buffers_.at(b.slot);
        const int64_t slot_rows = slot.persistent ? slot.rows.value : slot.rows.eval(rows);
        bind.bytes = std::max<uint64_t>(4, static_cast<uint64_t>(slot_rows * slot.cols) * dtype_bytes(slot.dtype));
      }
      d.bindings.push_back(bind);
    }
    if (step->layer >= 0) {
      d.step.layer = static_cast<uint32_t>(step->layer);
      d.step.window = options_.layer_windows.at(static_cast<size_t>(step->layer));
    }
    kpath::SymbolTable table = step_symbols(*step, plan_.model, rows);
    KP_TRY(kpath::ConstantValues constants,
           kpath::resolve_constants(*step->kernel, step->impl, step->constant_overrides, table, step->location));
    kpath::add_constants(constants, table);
    if (step->impl != nullptr) {
      auto e = step->impl->entries.find(step->entry);
      if (e != step->impl->entries.end() && !e->second.grid.empty()) {
        KP_TRY(d.grid, kpath::eval_dims(e->second.grid, table, step->location + " grid"));
      }
    }
    for (const auto& [name, dim] : step->symbols) d.symbols.emplace_back(name, dim.eval(rows));
    if (!step->symbols.contains("T")) d.symbols.emplace_back("T", rows);
    dispatches.push_back(std::move(d));
  }
  KP_TRY(backend::CommandListId list, backend_.record(dispatches));
  return Recorded{list, steps};
}

Result<const Executor::Recorded*> Executor::forward_list(int64_t rows) {
  auto it = forward_lists_.find(rows);
  if (it != forward_lists_.end()) return &it->second;
  KP_TRY(Recorded rec, record(rows == 1 ? decode_forward_ : prefill_forward_, rows));
  return &forward_lists_.emplace(rows, std::move(rec)).first->second;
}

Result<const Executor::Recorded*> Executor::decode_sampling_list() {
  if (!decode_sampling_) {
    std::vector<const kpath::PlannedStep*> steps = decode_forward_;
    steps.insert(steps.end(), sampling_steps_.begin(), sampling_steps_.end());
    KP_TRY(Recorded rec, record(steps, 1));
    decode_sampling_ = std::make_unique<Recorded>(std::move(rec));
  }
  return decode_sampling_.get();
}

Result<const Executor::Recorded*> Executor::sampling_list() {
  if (sampling_steps_.empty()) return make_error("{}: the path has no sampling steps", plan_.path->source);
  if (!sampling_) {
    KP_TRY(Recorded rec, record(sampling_steps_, 1));
    sampling_ = std::make_unique<Recorded>(std::move(rec));
  }
  return sampling_.get();
}

Status Executor::submit(const Recorded& rec, const KpParams& params) {
  const auto host_start = std::chrono::steady_clock::now();
  if (tracing_ && trace_.empty()) trace_origin_ = host_start;
  if (Status st = backend_.submit(rec.list, params, tracing_); !st.ok()) {
    // Name the path step: the backend knows only its dispatch index.
    const std::optional<size_t> i = backend_.failed_dispatch();
    if (i && *i < rec.steps.size()) {
      return make_error("{}: step {} failed on the device: {}", plan_.path->source, describe_step(*rec.steps[*i]),
                        st.error().message);
    }
    if (rec.steps.empty()) return st;
    return make_error("{}: a device error while running {} steps, {} .. {}: {}", plan_.path->source,
                      rec.steps.size(), describe_step(*rec.steps.front()), describe_step(*rec.steps.back()),
                      st.error().message);
  }
  if (tracing_) {
    const std::vector<std::pair<double, double>> spans = backend_.last_spans();
    const double base = std::chrono::duration<double, std::milli>(host_start - trace_origin_).count();
    for (size_t i = 0; i < rec.steps.size(); ++i) {
      const auto* s = rec.steps[i];
      const std::pair<double, double> span = i < spans.size() ? spans[i] : std::pair<double, double>{0.0, 0.0};
      trace_.push_back(TraceEvent{s->op, s->kernel->id, s->entry, s->phase_section, s->layer,
                                  span.second - span.first, base + span.first, params.pos0, params.n_tokens});
    }
  }
  return {};
}

Status Executor::write_tokens(std::span<const int32_t> tokens, uint32_t pos0) {
  std::vector<int32_t> positions(tokens.size());
  for (size_t i = 0; i < tokens.size(); ++i) positions[i] = static_cast<int32_t>(pos0 + i);
  KP_TRY_STATUS(backend_.write_buffer(slot_buffers_.at("token_ids"), 0, tokens.data(), tokens.size_bytes()));
  if (auto it = slot_buffers_.find("positions"); it != slot_buffers_.end()) {
    KP_TRY_STATUS(backend_.write_buffer(it->second, 0, positions.data(), positions.size() * sizeof(int32_t)));
  }
  return {};
}

KpParams Executor::params_for(uint32_t n_tokens, const SamplingInput* s) {
  KpParams p{};
  p.n_tokens = n_tokens;
  p.pos0 = pos_;
  p.kv_len = pos_ + n_tokens;
  p.temperature = 0;
  p.top_k = 0;
  p.top_p = 1;
  p.min_p = 0;
  p.repeat_penalty = 1;
  if (s != nullptr) {
    p.temperature = s->temperature;
    p.top_k = s->top_k;
    p.top_p = s->top_p;
    p.min_p = s->min_p;
    p.rand_u = s->rand_u;
    p.repeat_penalty = s->repeat_penalty;
  }
  return p;
}

Status Executor::write_history(const SamplingInput& s, uint32_t* n_history) {
  *n_history = 0;
  auto it = slot_buffers_.find("history");
  if (it == slot_buffers_.end()) return {};
  const int64_t rows = plan_.slots.at("history").rows.value;
  const size_t n = std::min<size_t>(s.history.size(), static_cast<size_t>(rows));
  if (n > 0) {
    KP_TRY_STATUS(backend_.write_buffer(it->second, 0, s.history.data() + (s.history.size() - n),
                                        n * sizeof(int32_t)));
  }
  *n_history = static_cast<uint32_t>(n);
  return {};
}

Status Executor::forward(std::span<const int32_t> tokens) {
  if (tokens.empty()) return make_error("no tokens to run");
  if (pos_ + tokens.size() > static_cast<uint64_t>(plan_.ctx)) {
    return make_error("{} tokens at position {} exceed the context size {}", tokens.size(), pos_, plan_.ctx);
  }
  for (size_t i = 0; i < tokens.size(); i += static_cast<size_t>(options_.max_batch)) {
    const size_t n = std::min<size_t>(static_cast<size_t>(options_.max_batch), tokens.size() - i);
    KP_TRY_STATUS(write_tokens(tokens.subspan(i, n), pos_));
    KP_TRY(const Recorded* rec, forward_list(static_cast<int64_t>(n)));
    KP_TRY_STATUS(submit(*rec, params_for(static_cast<uint32_t>(n), nullptr)));
    pos_ += static_cast<uint32_t>(n);
  }
  return {};
}

Result<std::vector<float>> Executor::logits() {
  const kpath::SlotInfo& slot = plan_.slots.at("logits");
  std::vector<float> out(static_cast<size_t>(slot.cols));
  KP_TRY_STATUS(backend_.read_buffer(slot_buffers_.at("logits"), 0, out.data(), out.size() * sizeof(float)));
  return out;
}

Result<int32_t> Executor::sample(const SamplingInput& s) {
  KP_TRY(const Recorded* rec, sampling_list());
  KpParams p = params_for(1, &s);
  KP_TRY_STATUS(write_history(s, &p.n_history));
  // Sampling reads the logits of the last forward; pos0 is informational here.
  KP_TRY_STATUS(submit(*rec, p));
  int32_t token = 0;
  KP_TRY_STATUS(backend_.read_buffer(slot_buffers_.at("token_ids"), 0, &token, sizeof token));
  return token;
}

Result<int32_t> Executor::decode_and_sample(int32_t token, const SamplingInput& s) {
  if (pos_ + 1 > static_cast<uint64_t>(plan_.ctx)) {
    return make_error("the context is full ({} tokens)", plan_.ctx);
  }
  if (sampling_steps_.empty()) return make_error("{}: the path has no sampling steps", plan_.path->source);
  KP_TRY_STATUS(write_tokens(std::span<const int32_t>(&token, 1), pos_));
  KP_TRY(const Recorded* rec, decode_sampling_list());
  KpParams p = params_for(1, &s);
  KP_TRY_STATUS(write_history(s, &p.n_history));
  KP_TRY_STATUS(submit(*rec, p));
  pos_ += 1;
  int32_t next = 0;
  KP_TRY_STATUS(backend_.read_buffer(slot_buffers_.at("token_ids"), 0, &next, sizeof next));
  return next;
}

Status Executor::begin_batch(std::span<const int32_t> tokens) {
  if (tokens.empty() || static_cast<int64_t>(tokens.size()) > options_.max_batch) {
    return make_error("a batch holds 1 to {} tokens, got {}", options_.max_batch, tokens.size());
  }
  if (pos_ + tokens.size() > static_cast<uint64_t>(plan_.ctx)) {
    return make_error("{} tokens at position {} exceed the context size {}", tokens.size(), pos_, plan_.ctx);
  }
  return write_tokens(tokens, pos_);
}

Status Executor::run_step(const kpath::PlannedStep& step, int64_t rows, const SamplingInput* s) {
  auto key = std::make_pair(&step, rows);
  auto it = step_lists_.find(key);
  if (it == step_lists_.end()) {
    KP_TRY(Recorded rec, record({&step}, rows));
    it = step_lists_.emplace(key, std::move(rec)).first;
  }
  KpParams p = params_for(static_cast<uint32_t>(rows), s);
  if (s != nullptr) KP_TRY_STATUS(write_history(*s, &p.n_history));
  return submit(it->second, p);
}

uint64_t Executor::slot_bytes(const std::string& name, int64_t rows) const {
  const kpath::SlotInfo& slot = plan_.slots.at(name);
  const int64_t slot_rows = slot.persistent ? slot.rows.value : slot.rows.eval(rows);
  return static_cast<uint64_t>(slot_rows * slot.cols) * dtype_bytes(slot.dtype);
}

Result<std::vector<uint8_t>> Executor::read_slot(const std::string& name, int64_t rows) {
  auto it = slot_buffers_.find(name);
  if (it == slot_buffers_.end()) return make_error("no slot '{}'", name);
  std::vector<uint8_t> out(slot_bytes(name, rows));
  KP_TRY_STATUS(backend_.read_buffer(it->second, 0, out.data(), out.size()));
  return out;
}

Status Executor::write_slot(const std::string& name, const std::vector<uint8_t>& bytes) {
  auto it = slot_buffers_.find(name);
  if (it == slot_buffers_.end()) return make_error("no slot '{}'", name);
  return backend_.write_buffer(it->second, 0, bytes.data(), bytes.size());
}

size_t Executor::decode_dispatches() const { return decode_forward_.size() + sampling_steps_.size(); }

}  // namespace kp::runtime

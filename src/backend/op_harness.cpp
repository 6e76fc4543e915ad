#include "backend/op_harness.h"

#include <algorithm>
#include <array>
#include <cmath>
#include <cstring>
#include <random>

#include "core/fp16.h"
#include "format/quant.h"
#include "format/quant_blocks.h"
#include "kernel_path/constants.h"

namespace kp::backend {
namespace {

// The f32 quiet NaN, also written into i32 outputs (2143289344 is no token id).
constexpr uint32_t kPoison32 = 0x7fc00000u;
constexpr uint16_t kPoison16 = 0x7e00u;

kpath::SymbolTable symbol_table(const std::map<std::string, int64_t>& symbols, const kpath::ModelValues& model) {
  kpath::SymbolTable table;
  model.add_to(table);
  for (const auto& [name, value] : symbols) table[name] = kpath::ExprValue{static_cast<double>(value), true};
  return table;
}

size_t slot_elem_bytes(const std::string& dtype) { return dtype == "f16" ? 2 : 4; }

std::string where_of(const kpath::KernelDesc& k, const std::string& entry) {
  return fmt::format("op {}.{}", k.id, entry);
}

// Realistic input scales: logits spread like a model's, softcap inputs around the cap.
double input_scale(const std::string& kernel, const std::string& binding) {
  if (kernel == "softcap" && binding == "x") return 40.0;
  if ((kernel == "sample" && binding == "logits") || (kernel == "repeat_penalty" && binding == "x")) return 4.0;
  return 1.0;
}

std::vector<uint8_t> f32_bytes(const std::vector<float>& v) {
  std::vector<uint8_t> out(v.size() * sizeof(float));
  std::memcpy(out.data(), v.data(), out.size());
  return out;
}

// Normal draws, the same numbers libstdc++'s std::normal_distribution<double>
// makes from mt19937_64 (Marsaglia's polar method; each uniform is the 64-bit
// draw over 2^64, as its std::generate_canonical makes it), without the two
// logl calls per uniform that generate_canonical makes and clang does not fold:
// with them, drawing the inputs took about 40% of a Gemma 2 2B shape case in
// the clang sanitizer build (perf, CpuFastKernel ffn_gate_up_q6k).
class NormalDraws {
 public:
  NormalDraws(double mean, double stddev) : mean_(mean), stddev_(stddev) {}

  double operator()(std::mt19937_64& rng) {
    double z;
    if (saved_available_) {
      saved_available_ = false;
      z = saved_;
    } else {
      double x, y, r2;
      do {
        x = 2.0 * uniform(rng) - 1.0;
        y = 2.0 * uniform(rng) - 1.0;
        r2 = x * x + y * y;
      } while (r2 > 1.0 || r2 == 0.0);
      const double mult = std::sqrt(-2 * std::log(r2) / r2);
      saved_ = x * mult;
      saved_available_ = true;
      z = y * mult;
    }
    return z * stddev_ + mean_;
  }

 private:
  // [0, 1): the draw over 2^64, rounded to double; a draw that rounds to 1
  // becomes the largest double below 1.
  static double uniform(std::mt19937_64& rng) {
    static_assert(std::mt19937_64::min() == 0 && std::mt19937_64::max() == ~uint64_t{0});
    const double u = static_cast<double>(rng()) * 0x1p-64;
    return u >= 1.0 ? std::nextafter(1.0, 0.0) : u;
  }

  double mean_, stddev_;
  double saved_ = 0;
  bool saved_available_ = false;
};

std::vector<float> gaussian(std::mt19937_64& rng, int64_t n, double mean, double stddev) {
  NormalDraws dist(mean, stddev);
  std::vector<float> v(static_cast<size_t>(n));
  for (auto& x : v) {
    do {
      x = static_cast<float>(dist(rng));
    } while (x == 0.0f);  // never exact zeros
  }
  return v;
}

// Random Q5_K blocks whose values have about the given standard deviation:
// y = d * sc * q - dmin * m with sc, m in [0, 64), q in [0, 32); for uniform
// bits E[sc q] ~ 488, and dmin = 15.5 d centres the values; std(y) ~ 525 d.
std::vector<uint8_t> random_q5_k(std::mt19937_64& rng, int64_t n, double stddev) {
  const int64_t n_blocks = n / format::kQK_K;
  std::vector<format::BlockQ5_K> blocks(static_cast<size_t>(n_blocks));
  std::uniform_int_distribution<int> byte(0, 255);
  std::uniform_real_distribution<double> jitter(0.5, 1.5);
  for (auto& b : blocks) {
    const double d = stddev / 525.0 * jitter(rng);
    b.d = f32_to_f16(static_cast<float>(d));
    b.dmin = f32_to_f16(static_cast<float>(15.5 * d));
    for (auto& x : b.scales) x = static_cast<uint8_t>(byte(rng));
    for (auto& x : b.qh) x = static_cast<uint8_t>(byte(rng));
    for (auto& x : b.qs) x = static_cast<uint8_t>(byte(rng));
  }
  std::vector<uint8_t> out(blocks.size() * sizeof(format::BlockQ5_K));
  std::memcpy(out.data(), blocks.data(), out.size());
  return out;
}

Result<std::vector<uint8_t>> make_weight(std::mt19937_64& rng, format::GgmlType type, int64_t rows, int64_t cols,
                                         bool norm_weight, const std::string& where) {
  const auto& traits = format::traits(type);
  if (cols % traits.block_elems != 0) {
    return make_error("{}: {} rows of {} are not whole blocks of {}", where, traits.name, cols, traits.block_elems);
  }
  const double stddev = norm_weight ? 0.25 : 1.0 / std::sqrt(static_cast<double>(cols));
  if (type == format::GgmlType::Q5_K) return random_q5_k(rng, rows * cols, stddev);
  if (!format::can_quantize(type)) return make_error("{}: cannot make {} weights", where, traits.name);
  const std::vector<float> values = gaussian(rng, rows * cols, norm_weight ? 1.0 : 0.0, stddev);
  std::vector<uint8_t> out(static_cast<size_t>(rows) * format::row_bytes(type, static_cast<uint64_t>(cols)));
  KP_TRY_STATUS(format::quantize(type, values.data(), out.data(), rows * cols));
  return out;
}

// i32 inputs by what they hold: token ids below V, or positions pos0 + t.
Result<std::vector<uint8_t>> make_i32(std::mt19937_64& rng, const std::string& name, int64_t count,
                                      const std::map<std::string, int64_t>& symbols, uint32_t pos0,
                                      const std::string& where) {
  std::vector<int32_t> v(static_cast<size_t>(count));
  if (name == "positions") {
    for (int64_t i = 0; i < count; ++i) v[i] = static_cast<int32_t>(pos0 + i);
  } else if (name == "ids" || name == "history") {
    auto it = symbols.find("V");
    if (it == symbols.end() || it->second < 1) return make_error("{}: token ids need the symbol V", where);
    std::uniform_int_distribution<int32_t> id(0, static_cast<int32_t>(it->second - 1));
    std::bernoulli_distribution repeat(0.3);  // a history repeats tokens
    for (int64_t i = 0; i < count; ++i) {
      if (name == "history" && i > 0 && repeat(rng)) {
        v[i] = v[std::uniform_int_distribution<int64_t>(0, i - 1)(rng)];
      } else {
        v[i] = id(rng);
      }
    }
  } else {
    return make_error("{}: no rule for the i32 input '{}' (expected ids, history or positions)", where, name);
  }
  std::vector<uint8_t> out(v.size() * sizeof(int32_t));
  std::memcpy(out.data(), v.data(), out.size());
  return out;
}

std::vector<uint8_t> poison(const std::string& dtype, int64_t count) {
  std::vector<uint8_t> out(static_cast<size_t>(count) * slot_elem_bytes(dtype));
  if (dtype == "f16") {
    for (size_t i = 0; i < out.size(); i += 2) std::memcpy(&out[i], &kPoison16, 2);
  } else {
    for (size_t i = 0; i < out.size(); i += 4) std::memcpy(&out[i], &kPoison32, 4);
  }
  return out;
}

std::vector<double> as_doubles(const std::vector<uint8_t>& bytes, const std::string& dtype) {
  std::vector<double> out;
  if (dtype == "f16") {
    out.resize(bytes.size() / 2);
    for (size_t i = 0; i < out.size(); ++i) {
      uint16_t h;
      std::memcpy(&h, &bytes[2 * i], 2);
      out[i] = f16_to_f32(h);
    }
  } else if (dtype == "i32") {
    out.resize(bytes.size() / 4);
    for (size_t i = 0; i < out.size(); ++i) {
      int32_t x;
      std::memcpy(&x, &bytes[4 * i], 4);
      out[i] = x;
    }
  } else {
    out.resize(bytes.size() / 4);
    for (size_t i = 0; i < out.size(); ++i) {
      float x;
      std::memcpy(&x, &bytes[4 * i], 4);
      out[i] = x;
    }
  }
  return out;
}

BindingError compare(const std::string& name, const std::string& dtype, const std::vector<uint8_t>& target,
                     const std::vector<uint8_t>& ref) {
  const std::vector<double> t = as_doubles(target, dtype);
  const std::vector<double> r = as_doubles(ref, dtype);
  BindingError e;
  e.binding = name;
  e.elements = static_cast<int64_t>(std::min(t.size(), r.size()));
  double diff2 = 0, ref2 = 0;
  int64_t differ = 0;
  for (int64_t i = 0; i < e.elements; ++i) {
    const bool t_ok = std::isfinite(t[i]);
    const bool r_ok = std::isfinite(r[i]);
    if (!r_ok) {
      ++e.ref_nonfinite;
      if (t_ok) ++e.extra_finite;
      continue;
    }
    if (!t_ok) {
      ++e.nan_count;
      continue;
    }
    const double d = t[i] - r[i];
    diff2 += d * d;
    ref2 += r[i] * r[i];
    e.max_abs = std::max(e.max_abs, std::abs(d));
    if (d != 0) ++differ;
  }
  if (dtype == "i32") {
    e.rel_l2 = e.elements > 0 ? static_cast<double>(differ + e.nan_count) / static_cast<double>(e.elements) : 0;
  } else {
    e.rel_l2 = ref2 > 0 ? std::sqrt(diff2 / ref2) : std::sqrt(diff2);
  }
  return e;
}

// Destroys what one dispatch created, whichever way run_dispatch leaves.
struct DispatchResources {
  Backend& backend;
  std::vector<BufferId> buffers;
  std::vector<CommandListId> lists;
  ~DispatchResources() {
    for (CommandListId l : lists) backend.destroy_command_list(l);
    for (BufferId b : buffers) backend.destroy_buffer(b);
  }
};

Access access_of(kpath::BindingKind k) {
  switch (k) {
    case kpath::BindingKind::Out: return Access::kWrite;
    case kpath::BindingKind::InOut: return Access::kReadWrite;
    default: return Access::kRead;
  }
}

}  // namespace

KpParams default_op_params() {
  KpParams p{};
  p.temperature = 0.8f;
  p.top_k = 40;
  p.top_p = 0.95f;
  p.min_p = 0.05f;
  p.rand_u = 0.37f;
  p.repeat_penalty = 1.3f;
  return p;
}

std::string describe(const OpCase& c) {
  std::string s = c.kernel + "." + c.entry;
  for (const auto& [name, value] : c.symbols) s += fmt::format(" {}={}", name, value);
  for (const auto& [name, type] : c.weight_types) s += fmt::format(" {}={}", name, format::type_name(type));
  if (c.params.pos0 != 0) s += fmt::format(" pos0={}", c.params.pos0);
  if (c.step.window != 0) s += fmt::format(" window={}", c.step.window);
  for (const auto& [name, value] : c.constant_overrides) s += fmt::format(" {}={}", name, value);
  if (c.in_place) s += " in-place";
  return s;
}

double OpResult::max_rel_l2() const {
  double m = 0;
  for (const auto& e : outputs) m = std::max(m, e.rel_l2);
  return m;
}

int64_t OpResult::total_nan() const {
  int64_t n = 0;
  for (const auto& e : outputs) n += e.nan_count + e.extra_finite;
  return n;
}

std::string OpResult::summary() const {
  std::string s;
  for (const auto& e : outputs) {
    s += fmt::format("{}{}: rel_l2 {:.3g} max_abs {:.3g} nan {} extra {} ref_nonfinite {} ({} elements)",
                     s.empty() ? "" : "; ", e.binding, e.rel_l2, e.max_abs, e.nan_count, e.extra_finite,
                     e.ref_nonfinite, e.elements);
  }
  return s;
}

Result<std::pair<int64_t, int64_t>> binding_shape(const kpath::KernelDesc& kernel, const std::string& entry,
                                                  size_t b, const std::map<std::string, int64_t>& symbols,
                                                  const kpath::ModelValues& model) {
  const kpath::BindingDesc& bd = kernel.bindings.at(b);
  std::vector<std::string> shape = bd.shape;
  if (auto e = kernel.entries.find(entry); e != kernel.entries.end()) {
    if (auto s = e->second.shapes.find(bd.name); s != e->second.shapes.end()) shape = s->second;
  }
  const kpath::SymbolTable table = symbol_table(symbols, model);
  std::array<int64_t, 2> dims{};
  for (size_t i = 0; i < 2; ++i) {
    auto v = kpath::eval_expr(shape.at(i), table);
    if (!v.ok()) return make_error("{} binding '{}': {}", where_of(kernel, entry), bd.name, v.error().message);
    if (!v->is_integer || v->value < 1) {
      return make_error("{} binding '{}': dimension '{}' = {} (expected a positive integer)", where_of(kernel, entry),
                        bd.name, shape[i], v->value);
    }
    dims[i] = static_cast<int64_t>(v->value);
  }
  return std::pair<int64_t, int64_t>{dims[0], dims[1]};
}

Result<std::vector<std::vector<uint8_t>>> run_dispatch(Backend& backend, const OpDispatch& d,
                                                       const kpath::ModelValues& model) {
  if (d.kernel == nullptr) return make_error("run_dispatch: no kernel");
  const kpath::KernelDesc& k = *d.kernel;
  const std::string where = where_of(k, d.entry) + " on " + backend.info().backend;
  if (d.data.size() != k.bindings.size()) {
    return make_error("{}: {} binding contents for {} bindings", where, d.data.size(), k.bindings.size());
  }
  auto impl_it = k.impls.find(backend.info().backend);
  if (impl_it == k.impls.end()) return make_error("{}: the registry has no {} implementation", where, backend.info().backend);
  const kpath::KernelImpl& impl = impl_it->second;
  auto entry_it = impl.entries.find(d.entry);
  if (entry_it == impl.entries.end()) return make_error("{}: the implementation has no entry '{}'", where, d.entry);

  kpath::SymbolTable table = symbol_table(d.symbols, model);
  KP_TRY(kpath::ConstantValues constants, kpath::resolve_constants(k, &impl, d.constant_overrides, table, where));
  kpath::add_constants(constants, table);
  KP_TRY(const auto grid, kpath::eval_dims(entry_it->second.grid, table, where + " grid"));
  KP_TRY(const PipelineId pipeline, backend.create_pipeline(PipelineDesc{&k, &impl, d.entry, constants}));

  DispatchResources res{backend, {}, {}};
  std::vector<BufferId> ids(k.bindings.size());
  std::vector<uint64_t> sizes(k.bindings.size());
  auto find_binding = [&](const std::string& name) {
    for (size_t i = 0; i < k.bindings.size(); ++i) {
      if (k.bindings[i].name == name) return i;
    }
    return k.bindings.size();
  };
  for (size_t i = 0; i < k.bindings.size(); ++i) {
    const kpath::BindingDesc& b = k.bindings[i];
    if (d.in_place && !b.inplace_of.empty()) continue;  // bound below to its input's buffer
    const uint64_t bytes = std::max<uint64_t>(4, d.data[i].size());
    KP_TRY(ids[i], backend.create_buffer(bytes, BufferUsage::kDevice, b.name));
    res.buffers.push_back(ids[i]);
    sizes[i] = d.data[i].size();
    if (!d.data[i].empty()) KP_TRY_STATUS(backend.write_buffer(ids[i], 0, d.data[i].data(), d.data[i].size()));
  }
  for (size_t i = 0; i < k.bindings.size(); ++i) {
    const kpath::BindingDesc& b = k.bindings[i];
    if (!d.in_place || b.inplace_of.empty()) continue;
    const size_t src = find_binding(b.inplace_of);
    if (src == k.bindings.size()) return make_error("{}: '{}' is in place of unknown '{}'", where, b.name, b.inplace_of);
    ids[i] = ids[src];
    sizes[i] = d.data[i].empty() ? sizes[src] : std::min<uint64_t>(sizes[src], d.data[i].size());
  }

  DispatchDesc dispatch;
  dispatch.pipeline = pipeline;
  dispatch.step = d.step;
  dispatch.grid = grid;
  for (size_t i = 0; i < k.bindings.size(); ++i) {
    dispatch.bindings.push_back(Binding{ids[i], 0, std::max<uint64_t>(4, sizes[i]), access_of(k.bindings[i].kind)});
  }
  for (const auto& [name, value] : d.symbols) dispatch.symbols.emplace_back(name, value);
  KP_TRY(const CommandListId list, backend.record(std::span<const DispatchDesc>(&dispatch, 1)));
  res.lists.push_back(list);
  KP_TRY_STATUS(backend.submit(list, d.params, false));

  std::vector<std::vector<uint8_t>> out(k.bindings.size());
  for (size_t i = 0; i < k.bindings.size(); ++i) {
    out[i].resize(sizes[i]);
    if (sizes[i] > 0) KP_TRY_STATUS(backend.read_buffer(ids[i], 0, out[i].data(), sizes[i]));
  }
  return out;
}

Result<OpResult> run_op_case(Backend& target, Backend& cpu, const kpath::Registry& registry, const OpCase& c,
                             const kpath::ModelValues& model) {
  const kpath::KernelDesc* k = registry.find(c.kernel);
  if (k == nullptr) return make_error("op case {}: no kernel '{}' in the registry", describe(c), c.kernel);
  if (!k->entries.count(c.entry)) return make_error("op case {}: kernel has no entry '{}'", describe(c), c.entry);
  const std::string where = "op case " + describe(c);
  // T: the batch rows; kernels whose bindings have no T rows ([1, V]) run one.
  bool uses_t = false;
  for (const auto& b : k->bindings) uses_t = uses_t || b.shape.at(0) == "T";
  int64_t t_rows = 1;
  if (auto t_it = c.symbols.find("T"); t_it != c.symbols.end()) {
    t_rows = t_it->second;
  } else if (uses_t) {
    return make_error("{}: the symbol T must be given", where);
  }
  if (t_rows < 1) return make_error("{}: T = {} (expected >= 1)", where, t_rows);
  for (const auto& [name, type] : c.weight_types) {
    bool found = false;
    for (const auto& b : k->bindings) found = found || (b.name == name && b.kind == kpath::BindingKind::Weight);
    if (!found) return make_error("{}: '{}' is not a weight binding", where, name);
  }

  OpDispatch d;
  d.kernel = k;
  d.entry = c.entry;
  d.symbols = c.symbols;
  d.symbols["T"] = t_rows;  // as the executor passes it to every dispatch
  d.constant_overrides = c.constant_overrides;
  d.params = c.params;
  d.params.n_tokens = static_cast<uint32_t>(t_rows);
  d.params.kv_len = d.params.pos0 + d.params.n_tokens;
  d.step = c.step;
  d.in_place = c.in_place;
  std::mt19937_64 rng(c.seed);
  for (size_t i = 0; i < k->bindings.size(); ++i) {
    const kpath::BindingDesc& b = k->bindings[i];
    KP_TRY(const auto shape, binding_shape(*k, c.entry, i, c.symbols, model));
    const auto [rows, cols] = shape;
    const std::string bw = fmt::format("{} binding '{}'", where, b.name);
    if (b.kind == kpath::BindingKind::Weight) {
      format::GgmlType type = b.weight_types.at(0);
      if (auto it = c.weight_types.find(b.name); it != c.weight_types.end()) type = it->second;
      if (std::find(b.weight_types.begin(), b.weight_types.end(), type) == b.weight_types.end()) {
        return make_error("{}: the kernel does not accept {}", bw, format::type_name(type));
      }
      const bool norm_weight = b.shape.at(0) == "1";
      KP_TRY(auto bytes, make_weight(rng, type, rows, cols, norm_weight, bw));
      d.data.push_back(std::move(bytes));
    } else if (b.kind == kpath::BindingKind::Out) {
      d.data.push_back(poison(b.dtype, rows * cols));
    } else if (b.dtype == "i32") {
      KP_TRY(auto bytes, make_i32(rng, b.name, rows * cols, c.symbols, c.params.pos0, bw));
      if (b.name == "history") d.params.n_history = static_cast<uint32_t>(rows * cols);
      d.data.push_back(std::move(bytes));
    } else if (b.dtype == "f32" || b.dtype == "f16") {
      const std::vector<float> v = gaussian(rng, rows * cols, 0.0, input_scale(k->id, b.name));
      if (b.dtype == "f32") {
        d.data.push_back(f32_bytes(v));
      } else {
        std::vector<uint8_t> h(v.size() * 2);
        for (size_t j = 0; j < v.size(); ++j) {
          const uint16_t x = f32_to_f16(v[j]);
          std::memcpy(&h[2 * j], &x, 2);
        }
        d.data.push_back(std::move(h));
      }
    } else {
      return make_error("{}: cannot make inputs of dtype '{}'", bw, b.dtype);
    }
  }

  KP_TRY(const auto ref, run_dispatch(cpu, d, model));
  KP_TRY(const auto got, run_dispatch(target, d, model));
  OpResult result;
  for (size_t i = 0; i < k->bindings.size(); ++i) {
    const kpath::BindingDesc& b = k->bindings[i];
    if (b.kind != kpath::BindingKind::Out && b.kind != kpath::BindingKind::InOut) continue;
    result.outputs.push_back(compare(b.name, b.dtype, got[i], ref[i]));
  }
  return result;
}

}  // namespace kp::backend

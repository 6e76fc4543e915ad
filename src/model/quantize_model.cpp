// Quantization plan (llama-quantize's tensor order and type choices) and the
// model quantizer; see quantize_model.h.
#include "model/quantize_model.h"

#include <algorithm>
#include <array>
#include <cctype>
#include <filesystem>
#include <system_error>

#include "format/quant.h"
#include "format/quant_blocks.h"
#include "format/quant_stream.h"

namespace kp::model {
namespace {

using format::GgmlType;

struct MixEntry {
  QuantMix mix;
  std::string_view name;
  GgmlType base;
  uint32_t file_type;
};

constexpr std::array<MixEntry, 7> kMixes{{
    {QuantMix::Q4_K_M, "q4_k_m", GgmlType::Q4_K, 15},
    {QuantMix::Q4_K, "q4_k", GgmlType::Q4_K, 14},
    {QuantMix::Q6_K, "q6_k", GgmlType::Q6_K, 18},
    {QuantMix::Q8_0, "q8_0", GgmlType::Q8_0, 7},
    {QuantMix::F16, "f16", GgmlType::F16, 1},
    {QuantMix::BF16, "bf16", GgmlType::BF16, 32},
    {QuantMix::F32, "f32", GgmlType::F32, 0},
}};

const MixEntry& entry(QuantMix mix) {
  for (const MixEntry& e : kMixes) {
    if (e.mix == mix) return e;
  }
  return kMixes[0];  // unreachable: every enumerator has an entry
}

// Layer index of "blk.N.*", -1 for tensors outside the blocks.
int layer_of(const std::string& name) {
  if (name.rfind("blk.", 0) != 0) return -1;
  int layer = 0;
  size_t i = 4;
  if (i >= name.size() || !std::isdigit(static_cast<unsigned char>(name[i]))) return -1;
  for (; i < name.size() && std::isdigit(static_cast<unsigned char>(name[i])); ++i) {
    if (layer > 1'000'000) return -1;
    layer = layer * 10 + (name[i] - '0');
  }
  return i < name.size() && name[i] == '.' ? layer : -1;
}

bool contains(const std::string& s, std::string_view part) { return s.find(part) != std::string::npos; }
bool ends_with(const std::string& s, std::string_view tail) {
  return s.size() >= tail.size() && s.compare(s.size() - tail.size(), tail.size(), tail) == 0;
}

// Rows whose length is not a multiple of the chosen type's block fall back to
// a type with smaller blocks. llama.cpp maps Q6_K -> Q8_0 and Q4_K -> Q5_0;
// kpath neither reads nor writes Q5_0, so Q4_K also falls back to Q8_0 (more
// bits, never fewer). A length that is not a multiple of 32 either gets F16,
// as in llama.cpp.
GgmlType fallback_for_row(GgmlType type, uint64_t cols) {
  if (cols % format::traits(type).block_elems == 0) return type;
  if (cols % format::traits(GgmlType::Q8_0).block_elems == 0) return GgmlType::Q8_0;
  return GgmlType::F16;
}

}  // namespace

std::optional<QuantMix> parse_quant_mix(std::string_view name) {
  std::string lower(name);
  for (char& c : lower) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  for (const MixEntry& e : kMixes) {
    if (e.name == lower) return e.mix;
  }
  return std::nullopt;
}

std::string_view quant_mix_name(QuantMix mix) { return entry(mix).name; }

std::string quant_mix_names() {
  std::string out;
  for (const MixEntry& e : kMixes) {
    if (!out.empty()) out += '|';
    out += e.name;
  }
  return out;
}

uint32_t llama_file_type(QuantMix mix) { return entry(mix).file_type; }
GgmlType base_type(QuantMix mix) { return entry(mix).base; }

bool use_more_bits(int i_layer, int n_layers) {
  return i_layer < n_layers / 8 || i_layer >= 7 * n_layers / 8 || (i_layer - n_layers / 8) % 3 == 2;
}

Result<std::vector<PlannedTensor>> plan_quantization(const std::vector<TensorDesc>& tensors, QuantMix mix,
                                                     uint32_t n_layer) {
  // llama-quantize walks the tensors ordered by layer (non-block tensors
  // first), then by name, and counts attn_v / ffn_down in that order.
  std::vector<size_t> order(tensors.size());
  for (size_t i = 0; i < order.size(); ++i) order[i] = i;
  std::stable_sort(order.begin(), order.end(), [&](size_t a, size_t b) {
    const int la = layer_of(tensors[a].name), lb = layer_of(tensors[b].name);
    if (la != lb) return la < lb;
    return tensors[a].name < tensors[b].name;
  });

  bool has_output = false;
  int n_attention_wv = 0;
  for (const TensorDesc& t : tensors) {
    if (t.name == "output.weight") has_output = true;
    if (contains(t.name, "attn_v.weight") || contains(t.name, "attn_qkv.weight") ||
        contains(t.name, "attn_kv_b.weight")) {
      ++n_attention_wv;
    }
  }
  const int n_layers = static_cast<int>(n_layer);
  int i_attention_wv = 0, i_ffn_down = 0;

  std::vector<PlannedTensor> plan;
  plan.reserve(tensors.size());
  for (size_t idx : order) {
    const TensorDesc& t = tensors[idx];
    const bool is_matrix = t.dims.size() >= 2 && ends_with(t.name, "weight") && !contains(t.name, "_norm.weight");
    if (!is_matrix) {
      plan.push_back({idx, t.type});
      continue;
    }
    GgmlType type = base_type(mix);
    const uint64_t cols = t.dims[0];
    if (mix == QuantMix::Q4_K_M) {
      // llama.cpp's llama_tensor_get_type for LLAMA_FTYPE_MOSTLY_Q4_K_M. The
      // output projection (token_embd when tied) gets Q6_K, or Q8_0 when its
      // rows are not whole 256-blocks.
      if (t.name == "output.weight" || (!has_output && t.name == "token_embd.weight")) {
        type = cols % format::kQK_K == 0 ? GgmlType::Q6_K : GgmlType::Q8_0;
      } else if (t.name == "token_embd.weight") {
        // untied embeddings keep the base type
      } else if (contains(t.name, "attn_v.weight")) {
        if (use_more_bits(i_attention_wv, n_attention_wv)) type = GgmlType::Q6_K;
        ++i_attention_wv;
      } else if (contains(t.name, "ffn_down")) {
        if (use_more_bits(i_ffn_down, n_layers)) type = GgmlType::Q6_K;
        ++i_ffn_down;
      }
    }
    type = fallback_for_row(type, cols);
    if (type != t.type && !format::can_dequantize(t.type)) {
      return make_error("tensor '{}': cannot convert {} to {} (kpath reads F32, F16, BF16, Q8_0, Q4_K, Q5_K, Q6_K)",
                        t.name, format::type_name(t.type), format::type_name(type));
    }
    plan.push_back({idx, type});
  }
  return plan;
}

std::vector<std::pair<std::string, format::GgufValue>> quantized_metadata(
    const std::vector<std::pair<std::string, format::GgufValue>>& metadata, QuantMix mix) {
  std::vector<std::pair<std::string, format::GgufValue>> out;
  out.reserve(metadata.size() + 2);
  for (const auto& kv : metadata) {
    if (kv.first == "general.quantization_version" || kv.first == "general.file_type") continue;
    out.push_back(kv);
  }
  out.emplace_back("general.quantization_version", format::GgufValue::u32(2));  // ggml's GGML_QNT_VERSION
  out.emplace_back("general.file_type", format::GgufValue::u32(llama_file_type(mix)));
  return out;
}

Status quantize_model(const std::string& in_path, const std::string& out_path, const QuantizeOptions& options) {
  std::error_code ec;
  if (std::filesystem::exists(out_path, ec) && std::filesystem::equivalent(in_path, out_path, ec)) {
    return make_error("{}: the output would overwrite the input", out_path);
  }
  KP_TRY(format::GgufFile in, format::GgufFile::open(in_path));
  KP_TRY(std::string arch, in.get_string("general.architecture"));
  KP_TRY(uint64_t n_layer, in.get_u64(arch + ".block_count"));
  if (n_layer == 0 || n_layer > 100'000) {
    return make_error("{}: {}.block_count is {} (expected 1 to 100000)", in_path, arch, n_layer);
  }

  const std::vector<format::GgufTensorInfo>& infos = in.tensors();
  std::vector<TensorDesc> descs;
  descs.reserve(infos.size());
  for (const format::GgufTensorInfo& t : infos) descs.push_back({t.name, t.dims, t.type});
  Result<std::vector<PlannedTensor>> plan = plan_quantization(descs, options.mix, static_cast<uint32_t>(n_layer));
  if (!plan) return make_error("{}: {}", in_path, plan.error().message);

  std::vector<format::StreamedTensor> streamed;
  streamed.reserve(plan->size());
  for (const PlannedTensor& p : *plan) {
    const format::GgufTensorInfo& src = infos[p.source];
    format::StreamedTensor t;
    t.spec = {src.name, p.type, src.dims};
    if (p.type == src.type) {
      t.raw = std::span<const uint8_t>(src.data, static_cast<size_t>(src.n_bytes));
    } else {
      // Each row of the source is dequantized to f32 and quantized again.
      const size_t src_row = format::row_bytes(src.type, src.cols());
      t.rows = [info = &src, src_row](uint64_t row, std::span<float> out) {
        return format::dequantize(info->type, info->data + row * src_row, out.data(),
                                  static_cast<int64_t>(out.size()));
      };
    }
    streamed.push_back(std::move(t));
  }

  format::StreamOptions stream;
  stream.n_threads = options.n_threads;
  if (options.on_tensor) {
    stream.on_tensor = [&](size_t i, const format::StreamedTensor& t) {
      options.on_tensor(i, streamed.size(), t.spec.name, infos[(*plan)[i].source].type, t.spec.type);
    };
  }
  return format::write_gguf_streamed(out_path, quantized_metadata(in.metadata(), options.mix), streamed, stream);
}

}  // namespace kp::model

// Quantizing a GGUF model to one of llama.cpp's type mixes.
//
// The plan follows llama-quantize (llama.cpp src/llama-quant.cpp): tensors are
// written ordered by layer and then by name; 1-D tensors (norms) and
// "*_norm.weight" keep their type; 2-D weights get the mix's type, and
// q4_k_m raises the output projection (token_embd when it is tied) and, on the
// layers use_more_bits picks, attn_v and ffn_down to Q6_K. The metadata is
// copied with general.quantization_version and general.file_type (llama.cpp's
// numbering) moved to the end. tests/model/quantize_model_test.cpp checks the
// result tensor by tensor against the fixture llama.cpp made.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "core/result.h"
#include "format/ggml_type.h"
#include "format/gguf.h"

namespace kp::model {

enum class QuantMix { Q4_K_M, Q4_K, Q6_K, Q8_0, F16, BF16, F32 };

// "q4_k_m", "Q4_K_M", ... ; nullopt if unknown.
std::optional<QuantMix> parse_quant_mix(std::string_view name);
std::string_view quant_mix_name(QuantMix mix);   // "q4_k_m"
std::string quant_mix_names();                   // "q4_k_m|q4_k|q6_k|q8_0|f16|bf16|f32"
// llama.cpp's general.file_type (enum llama_ftype): Q4_K_M 15, Q4_K_S 14 (the
// closest llama.cpp number for every-matrix Q4_K), Q6_K 18, Q8_0 7, F16 1,
// BF16 32, F32 0.
uint32_t llama_file_type(QuantMix mix);
// The type of a plain 2-D weight under `mix`.
format::GgmlType base_type(QuantMix mix);

// llama.cpp's choice of layers that get more bits in the *_M mixes: the first
// and last eighth of the layers and every third one in between.
bool use_more_bits(int i_layer, int n_layers);

struct TensorDesc {
  std::string name;
  std::vector<uint64_t> dims;  // ne[0] first
  format::GgmlType type = format::GgmlType::F32;
};

struct PlannedTensor {
  size_t source = 0;              // index into the input tensors
  format::GgmlType type = format::GgmlType::F32;  // type to write
};

// Output order and type of every tensor. n_layer is the model's block count.
// Errors name a tensor whose type cannot be converted.
Result<std::vector<PlannedTensor>> plan_quantization(const std::vector<TensorDesc>& tensors, QuantMix mix,
                                                     uint32_t n_layer);

// The input metadata without general.quantization_version / general.file_type,
// followed by those two keys for `mix` (llama-quantize's key order).
std::vector<std::pair<std::string, format::GgufValue>> quantized_metadata(
    const std::vector<std::pair<std::string, format::GgufValue>>& metadata, QuantMix mix);

struct QuantizeOptions {
  QuantMix mix = QuantMix::Q4_K_M;
  int n_threads = 0;  // 0: all hardware threads
  // Called after each tensor is written: (index, count, name, source type, written type).
  std::function<void(size_t, size_t, const std::string&, format::GgmlType, format::GgmlType)> on_tensor;
};

// Reads `in_path`, writes the quantized model to `out_path` (streamed; the
// partial file is removed on error).
Status quantize_model(const std::string& in_path, const std::string& out_path, const QuantizeOptions& options);

}  // namespace kp::model

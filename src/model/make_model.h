// Synthetic Gemma 2 models with the real shapes, for benchmarks and tests at
// sizes the fixtures do not cover (`kpath make-model`).
//
// The file is what llama.cpp would write for such a model: every gemma2.* key
// its converter writes, a SentencePiece-style vocabulary, and the tensors in
// llama-quantize's order and type mix (plan_quantization). Weights are random
// but of realistic scale: Gaussian-like with std 1/sqrt(fan_in) for matrices,
// 1 +- a few percent for norms, never exactly zero. Each row is generated from
// (seed, tensor name, row) alone, so the same seed gives the same bytes on any
// thread count, and rows are quantized as they are generated and streamed to
// disk (memory stays bounded, gemma2-9b included).
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "core/result.h"
#include "format/gguf.h"
#include "model/quantize_model.h"

namespace kp::model {

// Hyper-parameters of a synthetic model (names as in the gemma2.* keys).
struct SyntheticShape {
  std::string_view like;  // "gemma2-2b"
  uint32_t n_vocab = 0;
  uint32_t n_embd = 0;
  uint32_t n_layer = 0;
  uint32_t n_head = 0;
  uint32_t n_head_kv = 0;
  uint32_t head_dim = 0;
  uint32_t n_ff = 0;
  uint32_t n_ctx = 0;
  uint32_t sliding_window = 0;
  float rms_eps = 1e-6f;
  float attn_softcap = 50.0f;
  float final_softcap = 30.0f;
};

// "gemma2-2b", "gemma2-9b" or "tiny" (the kjv fixture's shapes); nullopt otherwise.
std::optional<SyntheticShape> synthetic_shape(std::string_view like);
std::string synthetic_shape_names();  // "gemma2-2b|gemma2-9b|tiny"

// A SentencePiece-style vocabulary of n_vocab pieces (n_vocab >= 400):
// 0 <pad>, 1 <eos>, 2 <bos> (control), 3 <unk> (unknown), 4..259 the byte
// pieces <0x00>..<0xFF> (byte), then normal pieces with scores 0, -1, -2, ...:
// multi-character pieces such as "▁the", each the concatenation of two earlier
// pieces (as BPE merges build them), and last the single characters. All
// pieces are unique. Independent of the seed.
struct SyntheticVocab {
  std::vector<std::string> tokens;
  std::vector<float> scores;
  std::vector<int32_t> types;  // llama.cpp token types: 1 normal, 2 unknown, 3 control, 6 byte
};
SyntheticVocab synthetic_vocab(uint32_t n_vocab);

// The metadata llama.cpp writes for a Gemma 2 model of `shape` quantized as `mix`.
std::vector<std::pair<std::string, format::GgufValue>> synthetic_metadata(const SyntheticShape& shape,
                                                                           const SyntheticVocab& vocab,
                                                                           QuantMix mix);

// Gemma 2's tensors in the order llama.cpp's converter writes them, all F32.
std::vector<TensorDesc> gemma2_tensors(const SyntheticShape& shape);

struct MakeModelOptions {
  SyntheticShape shape;
  QuantMix mix = QuantMix::Q4_K_M;
  uint64_t seed = 0;
  int n_threads = 0;  // 0: all hardware threads
  // Called after each tensor is written: (index, count, name, written type).
  std::function<void(size_t, size_t, const std::string&, format::GgmlType)> on_tensor;
};

Status make_model(const MakeModelOptions& options, const std::string& out_path);

// Row `row` of tensor `name` (cols values) as make_model generates it before
// quantization; exposed so that tests can compare a file with its source.
void synthetic_row(uint64_t seed, const TensorDesc& tensor, uint64_t row, float* out);

}  // namespace kp::model

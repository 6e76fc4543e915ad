// The reference Gemma 2 forward pass: plain f32 on dequantized weights (f64
// accumulation in dot products and norms), with a KV cache, prefill and decode.
// It is the oracle every kernel path is checked against, so it is written to
// be obviously correct, not fast.
#pragma once

#include <cstdint>
#include <memory>
#include <vector>

#include "core/result.h"
#include "format/gguf.h"
#include "model/gemma2_config.h"

namespace kp::model {

// Every weight of the model dequantized to f32, row-major [rows, cols].
struct DenseWeights {
  struct Layer {
    std::vector<float> attn_norm, attn_q, attn_k, attn_v, attn_output, post_attention_norm;
    std::vector<float> ffn_norm, ffn_gate, ffn_up, ffn_down, post_ffw_norm;
  };
  std::vector<float> token_embd;   // [n_vocab, n_embd], also the tied lm_head
  std::vector<float> output_norm;  // [n_embd]
  std::vector<Layer> layers;
};

Result<DenseWeights> load_dense_weights(const format::GgufFile& file, const Gemma2Config& cfg);

class ReferenceModel {
 public:
  ReferenceModel(Gemma2Config cfg, std::shared_ptr<const DenseWeights> weights, uint32_t n_ctx);

  // Runs `tokens` at positions [pos(), pos()+n) and appends them to the KV cache.
  // Returns logits [n, n_vocab] when all_logits, else only the last row [n_vocab].
  // Error if the context would overflow.
  Result<std::vector<float>> forward(const std::vector<int32_t>& tokens, bool all_logits);

  uint32_t pos() const { return pos_; }
  uint32_t n_ctx() const { return n_ctx_; }
  void reset() { pos_ = 0; }
  const Gemma2Config& config() const { return cfg_; }

 private:
  Gemma2Config cfg_;
  std::shared_ptr<const DenseWeights> w_;
  uint32_t n_ctx_;
  uint32_t pos_ = 0;
  std::vector<std::vector<float>> k_cache_, v_cache_;  // per layer [n_ctx, n_head_kv*head_dim]
};

}  // namespace kp::model

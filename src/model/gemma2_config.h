// Gemma 2 hyper-parameters, read from GGUF metadata and validated against the
// tensors. Facts the file does not hold (RoPE theta, which layers slide,
// query_pre_attn_scalar) come from the architecture.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "core/result.h"
#include "format/gguf.h"

namespace kp::model {

struct Gemma2Config {
  uint32_t n_vocab = 0;
  uint32_t n_embd = 0;        // hidden size
  uint32_t n_layer = 0;
  uint32_t n_head = 0;        // query heads
  uint32_t n_head_kv = 0;     // key/value heads (GQA)
  uint32_t head_dim = 0;      // key_length == value_length
  uint32_t n_ff = 0;          // feed-forward size
  uint32_t n_ctx = 0;         // trained context length
  uint32_t sliding_window = 0;
  float attn_softcap = 50.0f;
  float final_softcap = 30.0f;
  float query_pre_attn_scalar = 0.0f;  // attention scale = 1/sqrt(this)
  float rms_eps = 1e-6f;
  float rope_theta = 10000.0f;

  // Even layers use the sliding window, odd layers attend to everything.
  bool layer_slides(uint32_t layer) const { return layer % 2 == 0; }
  uint32_t layer_window(uint32_t layer) const { return layer_slides(layer) ? sliding_window : 0; }
  float attn_scale() const;
};

// Reads `gemma2.*` keys and checks every required tensor against them. The error
// lists everything missing or wrong, one item per line.
Result<Gemma2Config> load_gemma2_config(const format::GgufFile& file);

// Resolves a weight name as a kernel path writes it to the GGUF tensor name:
//   "layer.{L}.self_attn.q_proj" (after {L} substitution) -> "blk.5.attn_q.weight";
//   GGUF names ("blk.5.attn_q", "blk.5.attn_q.weight", "token_embd") are accepted as is.
// Returns an error naming the weight if the name is neither form.
Result<std::string> resolve_weight_name(const std::string& name);

}  // namespace kp::model

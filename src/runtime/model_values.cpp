#include "runtime/model_values.h"

#include <cmath>

namespace kp::runtime {

kpath::ModelValues model_values(const model::Gemma2Config& c) {
  kpath::ModelValues v;
  v.n_embd = c.n_embd;
  v.n_ff = c.n_ff;
  v.n_head = c.n_head;
  v.n_head_kv = c.n_head_kv;
  v.head_dim = c.head_dim;
  v.n_vocab = c.n_vocab;
  v.n_layer = c.n_layer;
  v.rms_eps = c.rms_eps;
  v.rope_theta = c.rope_theta;
  v.attn_softcap = c.attn_softcap;
  v.final_softcap = c.final_softcap;
  v.attn_scale = c.attn_scale();
  v.embd_scale = std::sqrt(static_cast<float>(c.n_embd));
  return v;
}

}  // namespace kp::runtime

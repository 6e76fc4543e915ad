// The model.* values kernel constants may use (docs/kernels.md), from a
// Gemma 2 config: shared by the executor's session and `kpath paths validate`.
#pragma once

#include "kernel_path/expr.h"
#include "model/gemma2_config.h"

namespace kp::runtime {

// embd_scale = sqrt(n_embd) (Gemma scales the embeddings), attn_scale =
// 1/sqrt(query_pre_attn_scalar); the rest are copied.
kpath::ModelValues model_values(const model::Gemma2Config& config);

}  // namespace kp::runtime

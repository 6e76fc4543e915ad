// Perplexity over a text and divergence from a reference (kpath verify
// --text), computed as llama.cpp's perplexity tool does: the tokens are cut
// into chunks of `ctx`, each chunk starts with BOS (when the model adds one)
// and runs from an empty cache, and only the second half of each chunk is
// scored (the first half is context): with first = ctx / 2, the logits at
// positions first .. ctx-2 predict tokens first+1 .. ctx-1. Per scored token:
// -log p(token) under both models, KL(reference || tested) of the two
// softmax distributions, and whether their argmax agree.
#pragma once

#include <cstdint>
#include <functional>
#include <span>
#include <vector>

#include "core/result.h"
#include "model/reference_forward.h"
#include "runtime/executor.h"

namespace kp::runtime {

// Logits [rows, n_vocab] at positions first .. chunk.size()-2 of `chunk`, run from position 0.
using ChunkLogits = std::function<Result<std::vector<float>>(std::span<const int32_t> chunk, size_t first)>;

// An executor: the first first+1 tokens as one forward (prefill), then one token at a time.
ChunkLogits executor_chunk_logits(Executor& executor);
// The f32 reference forward: the whole chunk at once, every position's logits.
ChunkLogits reference_chunk_logits(model::ReferenceModel& model);

struct PerplexityOptions {
  uint32_t ctx = 512;        // tokens per chunk (>= 4)
  uint32_t max_chunks = 0;   // 0: every whole chunk of the text
  int32_t bos = -1;          // written over the first token of each chunk; -1: none
  uint32_t n_vocab = 0;
};

struct PerplexityStats {
  size_t chunks = 0, tokens = 0;         // chunks run, tokens scored
  double ppl = 0, ppl_err = 0;           // exp(mean nll) of the tested logits, and its standard error
  double ref_ppl = 0, ref_ppl_err = 0;   // the same for the reference
  double kld_mean = 0, kld_err = 0;      // mean KL(reference || tested) in nats, standard error
  double kld_p99 = 0, kld_max = 0;       // its 99th percentile and maximum
  double top1 = 0, top1_err = 0;         // fraction of tokens whose argmax agree, standard error
};

Result<PerplexityStats> perplexity(std::span<const int32_t> tokens, const ChunkLogits& tested,
                                   const ChunkLogits& reference, const PerplexityOptions& options);

}  // namespace kp::runtime

// kpath verify --text: perplexity of kernel paths over a text, and their KL
// divergence and top-1 agreement against a reference (runtime/perplexity.h).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "core/result.h"
#include "engine_options.h"

namespace kp::cli {

struct TextVerifyOptions {
  std::string model;
  EngineOptions engine;                   // its kernel_path is ignored: kernel_paths
  std::vector<std::string> kernel_paths;  // empty: the path the session chooses
  std::string reference_path;             // empty: the f32 reference forward
  std::string text_file;
  int64_t ctx_size = 512;                 // tokens per chunk
  int64_t chunks = 0;                     // 0: all
  bool json = false;
};

// Prints a markdown table (or JSON) with one row per path.
Status verify_text(const TextVerifyOptions& o);

}  // namespace kp::cli

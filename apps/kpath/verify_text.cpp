#include "verify_text.h"

#include <fmt/core.h>

#include <cstdio>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>

#include "commands.h"
#include "measure_flags.h"
#include "core/mapped_file.h"
#include "model/tokenizer.h"
#include "runtime/perplexity.h"
#include "runtime/reference_engine.h"

namespace kp::cli {
namespace {

struct PathRow {
  std::string path, backend, device;
  runtime::PerplexityStats stats;
};

std::string table(const std::vector<PathRow>& rows) {
  std::string out =
      "| path | backend | PPL | mean KLD | 99% KLD | max KLD | same top-1 |\n"
      "|---|---|---|---|---|---|---|\n";
  for (const auto& r : rows) {
    const auto& s = r.stats;
    out += fmt::format("| {} | {} | {:.4f} ± {:.4f} | {:.3e} ± {:.1e} | {:.3e} | {:.3e} | {:.2f} ± {:.2f} % |\n", r.path,
                       r.backend, s.ppl, s.ppl_err, s.kld_mean, s.kld_err, s.kld_p99, s.kld_max, 100 * s.top1,
                       100 * s.top1_err);
  }
  return out;
}

nlohmann::ordered_json stats_json(const runtime::PerplexityStats& s) {
  return {{"ppl", s.ppl},           {"ppl_err", s.ppl_err},   {"kld_mean", s.kld_mean}, {"kld_err", s.kld_err},
          {"kld_p99", s.kld_p99},   {"kld_max", s.kld_max},   {"top1", s.top1},         {"top1_err", s.top1_err},
          {"tokens", s.tokens},     {"chunks", s.chunks}};
}

}  // namespace

Status verify_text(const TextVerifyOptions& o) {
  if (o.ctx_size < 4 || o.ctx_size > 65536) return make_error("-c must be between 4 and 65536, got {}", o.ctx_size);
  if (o.chunks < 0 || o.chunks > 1000000) return make_error("--chunks must be >= 0, got {}", o.chunks);
  KP_TRY(std::string text, read_text_file(o.text_file));
  KP_TRY(format::GgufFile file, open_model(o.model));
  KP_TRY(model::Tokenizer tokenizer, model::Tokenizer::from_gguf(file));
  const std::vector<int32_t> tokens = tokenizer.encode(text, false);
  const auto ctx = static_cast<uint32_t>(o.ctx_size);

  runtime::PerplexityOptions po;
  po.ctx = ctx;
  po.max_chunks = static_cast<uint32_t>(o.chunks);
  po.bos = tokenizer.add_bos_token() ? tokenizer.bos_id() : -1;
  po.n_vocab = static_cast<uint32_t>(tokenizer.n_vocab());
  if (tokens.size() < ctx) {
    return make_error("{}: the text is {} tokens, less than one chunk of {} (lower -c)", o.text_file, tokens.size(),
                      ctx);
  }
  const auto batch = static_cast<int64_t>(ctx / 2 + 1);  // the first half of a chunk is one prefill batch

  // The reference: the f32 forward, or a path on the CPU backend.
  std::optional<model::ReferenceModel> ref_model;
  std::unique_ptr<runtime::Session> ref_session;
  runtime::ChunkLogits reference;
  std::string ref_name;
  if (o.reference_path.empty()) {
    KP_TRY(model::ReferenceModel m, runtime::load_reference_model(file, ctx));
    ref_model.emplace(std::move(m));
    reference = runtime::reference_chunk_logits(*ref_model);
    ref_name = "the f32 reference forward";
  } else {
    auto s = open_session(file, reference_engine(o.engine, o.reference_path, ctx, batch), true);
    if (!s.ok()) {
      return make_error("--reference-path {} (on the CPU backend): {}", o.reference_path, s.error().message);
    }
    ref_session = std::move(*s);
    reference = runtime::executor_chunk_logits(ref_session->executor());
    ref_name = "path " + ref_session->path().id + " on the CPU backend";
  }

  std::vector<std::string> paths = o.kernel_paths;
  if (paths.empty()) paths.emplace_back();  // the session's own choice
  std::vector<PathRow> rows;
  for (const std::string& p : paths) {
    auto session = open_session(file, engine_for(o.engine, o.engine.backend, p, ctx, batch), true);
    if (!session.ok()) {
      return make_error("{}{}", p.empty() ? "" : "--kernel-path " + p + ": ", session.error().message);
    }
    auto& s = **session;
    KP_TRY(runtime::PerplexityStats stats,
           runtime::perplexity(tokens, runtime::executor_chunk_logits(s.executor()), reference, po));
    rows.push_back(PathRow{s.path().id, s.backend().info().backend, s.backend().info().name, stats});
  }

  const runtime::PerplexityStats& first = rows.front().stats;
  if (o.json) {
    nlohmann::ordered_json paths_json = nlohmann::ordered_json::array();
    for (const auto& r : rows) {
      nlohmann::ordered_json j = {{"path", r.path}, {"backend", r.backend}, {"device", r.device}};
      j.update(stats_json(r.stats));
      paths_json.push_back(std::move(j));
    }
    const nlohmann::ordered_json doc = {
        {"model", o.model.empty() ? kEmbeddedModelName : o.model},
        {"text", o.text_file},
        {"text_tokens", tokens.size()},
        {"ctx", ctx},
        {"reference", {{"name", ref_name}, {"ppl", first.ref_ppl}, {"ppl_err", first.ref_ppl_err}}},
        {"paths", std::move(paths_json)}};
    const std::string out = doc.dump(1) + "\n";
    std::fwrite(out.data(), 1, out.size(), stdout);
  } else {
    fmt::print("text {}: {} tokens; {} chunks of {} tokens, {} tokens scored per path\n", o.text_file, tokens.size(),
               first.chunks, ctx, first.tokens);
    fmt::print("reference: {}, PPL {:.4f} ± {:.4f}\n\n", ref_name, first.ref_ppl, first.ref_ppl_err);
    fmt::print("{}", table(rows));
  }
  std::fflush(stdout);
  return {};
}

}  // namespace kp::cli

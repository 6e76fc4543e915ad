// kpath tokenize [-m MODEL] [--ids-only] [--no-bos] TEXT
//
// Prints the tokens of TEXT under the model's tokenizer (the embedded model
// when -m is not given): one `id<TAB>piece` line per token, or with
// --ids-only the ids on one line separated by spaces. BOS is added when the
// model asks for it (tokenizer.ggml.add_bos_token) unless --no-bos is given.
// Pieces are printed as stored ("▁" for space, <0xNN> for byte pieces), with
// control characters and backslashes escaped so that each token stays on its line.
#include <fmt/format.h>
#include <fmt/ranges.h>

#include <memory>
#include <string>

#include "commands.h"
#include "model/tokenizer.h"

namespace kp::cli {
namespace {

struct TokenizeOptions {
  std::string model;
  std::string text;
  bool ids_only = false;
  bool no_bos = false;
};

// "\n" -> "\\n", other bytes below 0x20 and 0x7F -> "\\xNN", "\\" -> "\\\\".
std::string escape_piece(const std::string& piece) {
  std::string out;
  for (const char ch : piece) {
    const auto c = static_cast<unsigned char>(ch);
    switch (c) {
      case '\n': out += "\\n"; break;
      case '\t': out += "\\t"; break;
      case '\r': out += "\\r"; break;
      case '\\': out += "\\\\"; break;
      default:
        if (c < 0x20 || c == 0x7F) out += fmt::format("\\x{:02X}", c);
        else out.push_back(ch);
    }
  }
  return out;
}

int run_tokenize(const TokenizeOptions& opt) {
  Result<format::GgufFile> file = open_model(opt.model);
  if (!file) return report_error(file.error());
  Result<model::Tokenizer> tok = model::Tokenizer::from_gguf(*file);
  if (!tok) return report_error(tok.error());

  const bool add_bos = tok->add_bos_token() && !opt.no_bos;
  const std::vector<int32_t> ids = tok->encode(opt.text, add_bos);
  if (opt.ids_only) {
    fmt::print("{}\n", fmt::join(ids, " "));
    return 0;
  }
  std::string out;
  for (const int32_t id : ids) out += fmt::format("{}\t{}\n", id, escape_piece(tok->piece(id)));
  fmt::print("{}", out);
  return 0;
}

}  // namespace

void add_tokenize_command(CLI::App& app, int* exit_code) {
  auto opt = std::make_shared<TokenizeOptions>();
  auto* sub = app.add_subcommand("tokenize", "Print the token ids and pieces of a text");
  sub->add_option("-m,--model", opt->model, "GGUF model file (default: the embedded kjv-tiny model)");
  sub->add_flag("--ids-only", opt->ids_only, "Print only the ids, space-separated on one line");
  sub->add_flag("--no-bos", opt->no_bos, "Do not add the BOS token");
  sub->add_option("text", opt->text, "Text to tokenize")->required();
  sub->callback([opt, exit_code] { *exit_code = run_tokenize(*opt); });
}

}  // namespace kp::cli

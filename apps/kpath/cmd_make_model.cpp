// Placeholder until the subcommand lands; replaced by its implementation.
#include "commands.h"

namespace kp::cli {
void add_make_model_command(CLI::App& app, int* exit_code) {
  auto* sub = app.add_subcommand("make-model", "(not yet available)");
  sub->callback([exit_code] { *exit_code = report_error(Error{"this subcommand is not yet available"}); });
}
}  // namespace kp::cli

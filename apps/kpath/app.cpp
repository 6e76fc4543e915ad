#include "app.h"

#include "commands.h"

namespace kp::cli {

std::unique_ptr<CLI::App> make_app(int* exit_code) {
  auto app = std::make_unique<CLI::App>("kpath: LLM inference where every GPU dispatch comes from a kernel path");
  app->require_subcommand(1);
  app->set_version_flag("--version", "kpath 0.1.0");
  add_run_command(*app, exit_code);
  add_eval_command(*app, exit_code);
  add_info_command(*app, exit_code);
  add_tokenize_command(*app, exit_code);
  add_quantize_command(*app, exit_code);
  add_make_model_command(*app, exit_code);
  add_paths_command(*app, exit_code);
  add_kernels_command(*app, exit_code);
  add_devices_command(*app, exit_code);
  add_verify_command(*app, exit_code);
  add_bench_command(*app, exit_code);
  return app;
}

namespace {
struct StopBeforeCommands {};
}  // namespace

void parse_only(CLI::App& app, int argc, const char* const* argv) {
  // The commands' callbacks own their options (shared_ptr captures), so they
  // are left in place and never reached: the root's parse-complete callback
  // runs first and leaves the parse by exception.
  app.parse_complete_callback([] { throw StopBeforeCommands{}; });
  try {
    app.parse(argc, argv);
  } catch (const StopBeforeCommands&) {
  }
}

}  // namespace kp::cli

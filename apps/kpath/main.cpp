// kpath: the command-line front end. Every subcommand lives in its own file.
#include <CLI/CLI.hpp>
#include <fmt/core.h>

#include <cstdio>
#include <exception>

#include "commands.h"

int main(int argc, char** argv) {
  CLI::App app{"kpath: LLM inference where every GPU dispatch comes from a kernel path"};
  app.require_subcommand(1);
  app.set_version_flag("--version", "kpath 0.1.0");
  int exit_code = 0;
  kp::cli::add_run_command(app, &exit_code);
  kp::cli::add_eval_command(app, &exit_code);
  kp::cli::add_info_command(app, &exit_code);
  kp::cli::add_tokenize_command(app, &exit_code);
  kp::cli::add_quantize_command(app, &exit_code);
  kp::cli::add_make_model_command(app, &exit_code);
  kp::cli::add_paths_command(app, &exit_code);
  kp::cli::add_kernels_command(app, &exit_code);
  kp::cli::add_devices_command(app, &exit_code);
  kp::cli::add_verify_command(app, &exit_code);
  kp::cli::add_bench_command(app, &exit_code);
  try {
    app.parse(argc, argv);
  } catch (const CLI::CallForHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForAllHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForVersion& e) {
    return app.exit(e);
  } catch (const CLI::ParseError& e) {
    fmt::print(stderr, "kpath: {}\n", e.what());
    return 2;
  } catch (const std::exception& e) {
    fmt::print(stderr, "kpath: {}\n", e.what());
    return 1;
  }
  return exit_code;
}

// kpath: the command-line front end. Every subcommand lives in its own file;
// app.cpp registers them.
#include <CLI/CLI.hpp>
#include <fmt/core.h>

#include <cstdio>
#include <exception>

#include "app.h"

int main(int argc, char** argv) {
  int exit_code = 0;
  const std::unique_ptr<CLI::App> app = kp::cli::make_app(&exit_code);
  try {
    app->parse(argc, argv);
  } catch (const CLI::CallForHelp& e) {
    return app->exit(e);
  } catch (const CLI::CallForAllHelp& e) {
    return app->exit(e);
  } catch (const CLI::CallForVersion& e) {
    return app->exit(e);
  } catch (const CLI::ParseError& e) {
    fmt::print(stderr, "kpath: {}\n", e.what());
    return 2;
  } catch (const std::exception& e) {
    fmt::print(stderr, "kpath: {}\n", e.what());
    return 1;
  }
  return exit_code;
}

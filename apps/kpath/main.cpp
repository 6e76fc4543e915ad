// kpath: the command-line front end. Every subcommand lives in its own file;
// app.cpp registers them.
#include <CLI/CLI.hpp>
#include <fmt/core.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <exception>
#include <string>
#include <vector>

#include "app.h"

namespace {

// What a command printed must have reached its destination: a full disk or a
// closed pipe behind standard output is an error, not a success.
int finish_stdout(int exit_code) {
  errno = 0;
  const bool flushed = std::fflush(stdout) == 0;
  const int e = errno;
  if (!flushed || std::ferror(stdout) != 0) {
    // A write that failed earlier leaves only the error flag (its errno is gone).
    if (!flushed && e != 0) {
      fmt::print(stderr, "kpath: cannot write to standard output: {}\n", std::strerror(e));
    } else {
      fmt::print(stderr, "kpath: cannot write to standard output (a write to it failed)\n");
    }
    return exit_code != 0 ? exit_code : 1;
  }
  return exit_code;
}

}  // namespace

int main(int argc, char** argv) {
  int exit_code = 0;
  const std::unique_ptr<CLI::App> app = kp::cli::make_app(&exit_code);
  // llama.cpp's spelling of the physical batch: "-ub N" is --ubatch-size N (CLI11 short names are one letter).
  std::vector<std::string> args(argv + 1, argv + argc);
  for (std::string& a : args) {
    if (a == "-ub") a = "--ubatch-size";
  }
  std::reverse(args.begin(), args.end());  // CLI11 takes the arguments last first
  if (argc > 0) app->name(argv[0]);        // as parse(argc, argv) names it, for the usage line
  try {
    app->parse(args);
    exit_code = finish_stdout(exit_code);
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

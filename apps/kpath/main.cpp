// kpath: the command-line front end. Every subcommand lives in its own file;
// app.cpp registers them.
#include <CLI/CLI.hpp>
#include <fmt/core.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <exception>

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
  try {
    app->parse(argc, argv);
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

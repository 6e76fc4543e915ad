// Fuzz target: the kpath command line. The input is an argument list, split
// at NUL bytes (at most kMaxArgs), parsed by the real app (apps/kpath/app.h:
// every subcommand and option as the binary has them) up to the point where a
// command would run (kp::cli::parse_only): option conversion (integers,
// floats, optionals), required options, subcommand rules and fallthrough, and
// help and error formatting all run; no command does. A parse either succeeds or throws
// CLI::ParseError, which main() reports with exit code 2 (or prints help);
// anything else escaping the parser is a crash here.
// Seeds: the command lines of README.md and the CLI tests (scripts/fuzz.sh);
// dictionary: the subcommand and option names (scripts/fuzz.sh makes it).
#include <CLI/CLI.hpp>

#include <cstdint>
#include <sstream>
#include <string>
#include <vector>

#include "kpath/app.h"
#include "fuzz_support.h"

namespace {

constexpr size_t kMaxArgs = 64;

std::vector<std::string> split_args(const uint8_t* data, size_t size) {
  std::vector<std::string> args = {"kpath"};
  std::string cur;
  for (size_t i = 0; i < size && args.size() <= kMaxArgs; ++i) {
    if (data[i] == 0) {
      args.push_back(cur);
      cur.clear();
    } else {
      cur.push_back(static_cast<char>(data[i]));
    }
  }
  if (args.size() <= kMaxArgs && (!cur.empty() || (size > 0 && data[size - 1] != 0))) args.push_back(cur);
  return args;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::vector<std::string> args = split_args(data, size);
  std::vector<const char*> argv;
  for (const std::string& a : args) argv.push_back(a.c_str());

  int exit_code = 0;
  const std::unique_ptr<CLI::App> app = kp::cli::make_app(&exit_code);
  std::ostringstream out, err;
  try {
    kp::cli::parse_only(*app, static_cast<int>(argv.size()), argv.data());
    // What the chosen subcommand's help would print, as `kpath <cmd> --help` does.
    for (const CLI::App* sub : app->get_subcommands()) (void)sub->help();
  } catch (const CLI::ParseError& e) {
    const int code = app->exit(e, out, err);
    KP_FUZZ_CHECK(code != 0 || dynamic_cast<const CLI::Success*>(&e) != nullptr,
                  "a parse error gives a nonzero exit code");
  }
  KP_FUZZ_CHECK(exit_code == 0, "no command ran");
  return 0;
}

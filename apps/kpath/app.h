// The kpath CLI11 application: every subcommand registered, nothing parsed.
// main() builds it and parses argv; the CLI fuzzer (fuzz/cli_fuzz.cpp) and the
// tests parse argument lists with parse_only(), so that option conversion,
// required options and subcommand rules are checked exactly as in the binary
// without running a command.
#pragma once

#include <CLI/CLI.hpp>

#include <memory>

namespace kp::cli {

// The app with every subcommand; a command's callback stores its exit code in
// *exit_code, which must outlive the app.
std::unique_ptr<CLI::App> make_app(int* exit_code);

// Parses argv as app.parse() does (every option converted and validated,
// requirements checked, CLI::ParseError thrown for bad arguments, help and
// version) but returns before any command's callback runs. Uses the root
// app's parse-complete callback, which CLI11 runs after all parsing and
// before the subcommands' callbacks. Once per app, as app.parse().
void parse_only(CLI::App& app, int argc, const char* const* argv);

}  // namespace kp::cli

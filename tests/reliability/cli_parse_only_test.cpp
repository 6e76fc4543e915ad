// kp::cli::parse_only (apps/kpath/app.h), which the CLI fuzzer is built on:
// arguments are converted and validated exactly as by the binary, and no
// command runs. Regression: the first fuzzer design replaced the commands'
// callbacks, which own the commands' option storage, so parsing wrote to freed
// memory (heap-use-after-free on `info model.gguf`).
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "kpath/app.h"

namespace kp::cli {
namespace {

// The kind of a CLI11 parse error (get_name() gives the app's name for some).
std::string kind(const CLI::ParseError& e) {
  if (dynamic_cast<const CLI::CallForHelp*>(&e)) return "CallForHelp";
  if (dynamic_cast<const CLI::RequiredError*>(&e)) return "RequiredError";
  if (dynamic_cast<const CLI::ConversionError*>(&e)) return "ConversionError";
  if (dynamic_cast<const CLI::ExtrasError*>(&e)) return "ExtrasError";
  return e.get_name();
}

// Parses `args` (after "kpath") with a fresh app; "" when it parses, else the
// kind of CLI11 error.
std::string parse(std::vector<std::string> args, int* exit_code) {
  args.insert(args.begin(), "kpath");
  std::vector<const char*> argv;
  for (const auto& a : args) argv.push_back(a.c_str());
  const auto app = make_app(exit_code);
  try {
    parse_only(*app, static_cast<int>(argv.size()), argv.data());
  } catch (const CLI::ParseError& e) {
    return kind(e);
  }
  return "";
}

TEST(CliParseOnly, ParsesWithoutRunningTheCommand) {
  int exit_code = 12345;
  // These would fail (and set the exit code) if their commands ran.
  EXPECT_EQ(parse({"info", "/nonexistent/model.gguf"}, &exit_code), "");
  EXPECT_EQ(parse({"tokenize", "-m", "/nonexistent/model.gguf", "text"}, &exit_code), "");
  EXPECT_EQ(parse({"paths", "show", "no-such-path", "--steps"}, &exit_code), "");
  EXPECT_EQ(parse({"run", "-m", "/nonexistent/model.gguf", "-p", "hi", "-n", "4", "--seed", "1"}, &exit_code), "");
  EXPECT_EQ(exit_code, 12345);
}

TEST(CliParseOnly, RejectsWhatTheBinaryRejects) {
  int exit_code = 0;
  EXPECT_EQ(parse({}, &exit_code), "RequiredError");                       // a subcommand is required
  EXPECT_EQ(parse({"bogus"}, &exit_code), "RequiredError");                // not a subcommand
  EXPECT_EQ(parse({"run", "-p", "hi", "-n", "many"}, &exit_code), "ConversionError");
  EXPECT_EQ(parse({"run", "-p", "hi", "--top-k", "1.5"}, &exit_code), "ConversionError");
  EXPECT_EQ(parse({"run", "-p", "hi", "--no-such-flag"}, &exit_code), "ExtrasError");
  EXPECT_EQ(parse({"paths", "validate"}, &exit_code), "RequiredError");   // the path is required
  EXPECT_EQ(parse({"run", "--help"}, &exit_code), "CallForHelp");
  EXPECT_EQ(exit_code, 0);
}

}  // namespace
}  // namespace kp::cli

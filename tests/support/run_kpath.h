// Running the built kpath binary from a test: exit code, stdout and stderr.
// Temporary files carry the process id and a per-file stem, since ctest runs
// the tests of one file in parallel processes.
#pragma once

#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <fstream>
#include <sstream>
#include <string>

namespace kp::test {

struct Output {
  int exit_code = -1;
  std::string out, err;
};

inline std::string slurp(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// A per-process path in the test temporary directory: <stem>_<pid>_<name>.
inline std::string temp_path(const std::string& stem, const std::string& name) {
  return ::testing::TempDir() + stem + "_" + std::to_string(getpid()) + "_" + name;
}

// Runs `kpath <args>` (args already shell-quoted where needed).
inline Output run_kpath(const std::string& stem, const std::string& args) {
  const std::string out = temp_path(stem, "stdout"), err = temp_path(stem, "stderr");
  const std::string cmd = std::string("'") + KP_BINARY + "' " + args + " >'" + out + "' 2>'" + err + "'";
  const int status = std::system(cmd.c_str());
  Output o;
  o.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  o.out = slurp(out);
  o.err = slurp(err);
  std::remove(out.c_str());
  std::remove(err.c_str());
  return o;
}

}  // namespace kp::test

// Hostile input at the command line: special files where files are expected
// (a FIFO must not block, a directory is named as one), integer flags outside
// their range, directories and features that do not exist, and output that
// cannot be written (a full device behind standard output). Each fails with
// a non-zero exit and one line naming the problem.
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>

#include "../support/run_kpath.h"

namespace {

using kp::test::Output;

// Runs kpath under `timeout`: a command that blocks (a FIFO opened for reading
// waits for a writer) ends with exit code 124 instead of hanging the test.
Output kpath_input(const std::string& args) {
  const std::string out = kp::test::temp_path("kp_cli_input", "stdout");
  const std::string err = kp::test::temp_path("kp_cli_input", "stderr");
  const std::string cmd =
      std::string("timeout 30 '") + KP_BINARY + "' " + args + " >'" + out + "' 2>'" + err + "'";
  const int status = std::system(cmd.c_str());
  Output o;
  o.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  o.out = kp::test::slurp(out);
  o.err = kp::test::slurp(err);
  std::remove(out.c_str());
  std::remove(err.c_str());
  return o;
}

void expect_input_error(const std::string& args, const std::string& needle) {
  const Output o = kpath_input(args);
  EXPECT_NE(o.exit_code, 0) << args;
  EXPECT_NE(o.exit_code, 124) << args << ": timed out";
  EXPECT_EQ(o.out, "") << args;
  ASSERT_FALSE(o.err.empty()) << args;
  EXPECT_EQ(o.err.find('\n'), o.err.size() - 1) << args << "\n" << o.err;
  EXPECT_EQ(o.err.rfind("kpath: ", 0), 0u) << o.err;
  EXPECT_NE(o.err.find(needle), std::string::npos) << args << "\n" << o.err;
}

TEST(CliInput, AFifoIsRefusedWithoutBlocking) {
  const std::string fifo = kp::test::temp_path("kp_cli_input", "fifo");
  ::unlink(fifo.c_str());
  ASSERT_EQ(::mkfifo(fifo.c_str(), 0600), 0);
  expect_input_error("info '" + fifo + "'", fifo + ": not a regular file");
  expect_input_error("run -m '" + fifo + "' -p hi", "not a regular file");
  expect_input_error("run -p hi --kernel-path '" + fifo + "'", "not a regular file");
  expect_input_error("eval --prompt-tokens '" + fifo + "'", "not a regular file");
  ::unlink(fifo.c_str());
}

TEST(CliInput, DirectoriesAndDevicesAreNamedAsSuch) {
  const std::string dir = ::testing::TempDir();
  expect_input_error("info '" + dir + "'", "is a directory, not a file");
  expect_input_error("run -p hi --kernel-path '" + dir + "'", "is a directory, not a file");
  expect_input_error("eval --prompt-tokens '" + dir + "'", "is a directory, not a file");
  expect_input_error("info /dev/zero", "/dev/zero: not a regular file");
}

TEST(CliInput, SeedsOutsideSixtyFourBitsAreRefused) {
  for (const char* seed : {"18446744073709551616", "-1", "1e3", "0x10", "99999999999999999999999"}) {
    expect_input_error(std::string("run -p hi -n 1 --seed ") + seed, "is not a seed (expected an integer from 0 to "
                                                               "18446744073709551615)");
  }
  const Output top = kpath_input("run -p hi -n 1 --temp 0 --seed 18446744073709551615");
  EXPECT_EQ(top.exit_code, 0) << top.err;
  EXPECT_NE(top.err.find("seed: 18446744073709551615"), std::string::npos) << top.err;
  const Output zeros = kpath_input("run -p hi -n 1 --temp 0 --seed 000");
  EXPECT_EQ(zeros.exit_code, 0) << zeros.err;
  EXPECT_NE(zeros.err.find("seed: 0\n"), std::string::npos) << zeros.err;
  expect_input_error("make-model --like tiny --type f32 --seed -3 /tmp/never.gguf", "is not a seed");
}

TEST(CliInput, MissingDirectoriesAndUnknownFeaturesAreErrors) {
  expect_input_error("run -p hi --kernel-path-dir /nonexistent/paths", "--kernel-path-dir: '/nonexistent/paths' is not a "
                                                                 "directory");
  expect_input_error("run -p hi --kernel-dir /nonexistent/kernels", "--kernel-dir: '/nonexistent/kernels' is not a "
                                                              "directory");
  expect_input_error("paths list --kernel-path-dir /nonexistent/paths", "is not a directory");
  expect_input_error("paths validate gemma2-q4k-fused --features f16,warp9",
               "--features: unknown feature 'warp9' (known: f16, int_dot, mma_f16, subgroups)");
}

// -b is the logical batch and -ub (llama.cpp's spelling of --ubatch-size) the
// rows per prefill dispatch: each dispatch takes min(-b, -ub); 0 is the device's default.
TEST(CliInput, BatchAndMicroBatchSizes) {
  const Output ub = kpath_input("bench --backend cpu -p 40 -n 0 -r 1 --bandwidth-mib 0 -ub 16");
  ASSERT_EQ(ub.exit_code, 0) << ub.err;
  EXPECT_NE(ub.out.find("-b 2048 -ub 16"), std::string::npos) << ub.out;
  EXPECT_NE(ub.out.find("40 prompt tokens in batches of 16"), std::string::npos) << ub.out;
  const Output both = kpath_input("bench --backend cpu -p 40 -n 0 -r 1 --bandwidth-mib 0 -b 8 --ubatch-size 16");
  ASSERT_EQ(both.exit_code, 0) << both.err;
  EXPECT_NE(both.out.find("40 prompt tokens in batches of 8"), std::string::npos) << both.out;
  // The CPU's default (the context, -p + -n, bounds it too).
  const Output dflt = kpath_input("bench --backend cpu -p 300 -n 0 -r 1 --bandwidth-mib 0");
  ASSERT_EQ(dflt.exit_code, 0) << dflt.err;
  EXPECT_NE(dflt.out.find("300 prompt tokens in batches of 256"), std::string::npos) << dflt.out;
  expect_input_error("run -p hi -ub -1", "--ubatch-size must be between 0 and 65536, got -1");
  expect_input_error("run -p hi -b 0", "--batch-size must be between 1 and 65536, got 0");
}

TEST(CliInput, AFullDeviceBehindStandardOutputIsAnError) {
  const std::string err = kp::test::temp_path("kp_cli_input", "full_stderr");
  for (const std::string args : {"info", "paths show gemma2-q4k-fused", "paths list", "run -p hi -n 4 --temp 0"}) {
    const std::string cmd = std::string("'") + KP_BINARY + "' " + args + " >/dev/full 2>'" + err + "'";
    const int status = std::system(cmd.c_str());
    ASSERT_TRUE(WIFEXITED(status)) << args;
    EXPECT_NE(WEXITSTATUS(status), 0) << args;
    const std::string e = kp::test::slurp(err);
    // fmt names the failed write's error; a failure found at the final flush names the stream.
    EXPECT_TRUE(e.find("No space left on device") != std::string::npos ||
                e.find("cannot write to standard output") != std::string::npos)
        << args << ": " << e;
    // The error is the last line (run reports its statistics before it).
    const size_t last = e.rfind('\n', e.size() - 2);
    EXPECT_EQ(e.compare(last == std::string::npos ? 0 : last + 1, 7, "kpath: "), 0) << args << ": " << e;
  }
}

// Output files: a write that fails (here the file size limit, EFBIG) is an
// error naming the file and the reason, and the target keeps what it held:
// nothing partial appears at its name, and no temporary file stays beside it.
TEST(CliInput, AFailedWriteLeavesTheTargetAsItWas) {
  const std::string dir = ::testing::TempDir();
  const std::string target = kp::test::temp_path("kp_cli_input", "target");
  const std::string err = kp::test::temp_path("kp_cli_input", "limit_stderr");
  struct Case {
    std::string args;
    std::string limit_kib;  // ulimit -f, in 1 KiB blocks: below what the command writes
  };
  const Case cases[] = {
      {"run -p 'In the beginning' -n 8 --temp 0 --trace '" + target + "'", "16"},
      {"make-model --like tiny --type q4_k_m '" + target + "'", "64"},
      {"bench -p 8 -n 4 -r 1 --bandwidth-mib 1 --save '" + target + "'", "1"},
  };
  for (const Case& c : cases) {
    std::remove(target.c_str());
    const bool is_dir = c.args.find("--save") != std::string::npos;
    if (is_dir) {
      ::mkdir(target.c_str(), 0700);
    } else {
      std::ofstream(target) << "what was there";
    }
    const std::string cmd = "bash -c \"trap '' XFSZ; ulimit -f " + c.limit_kib + "; '" + KP_BINARY + "' " +
                            c.args + "\" >/dev/null 2>'" + err + "'";
    const int status = std::system(cmd.c_str());
    ASSERT_TRUE(WIFEXITED(status)) << c.args;
    EXPECT_NE(WEXITSTATUS(status), 0) << c.args;
    const std::string e = kp::test::slurp(err);
    EXPECT_NE(e.find("File too large"), std::string::npos) << c.args << ": " << e;
    if (!is_dir) {
      EXPECT_EQ(kp::test::slurp(target), "what was there") << c.args;
      std::remove(target.c_str());
    } else {
      std::filesystem::remove_all(target);
    }
    // (Other tests' outputs may be in flight in the same directory: only this target's count.)
    const std::string temp_prefix = std::filesystem::path(target).filename().string() + ".kpath-tmp-";
    for (const auto& entry : std::filesystem::directory_iterator(dir)) {
      EXPECT_NE(entry.path().filename().string().rfind(temp_prefix, 0), 0u) << c.args << " left " << entry.path();
    }
  }
}

}  // namespace

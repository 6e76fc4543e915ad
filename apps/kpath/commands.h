// kpath subcommands. Each add_*_command registers one subcommand on the app;
// its callback stores the process exit code in *exit_code. Errors are printed
// as one line on stderr ("kpath: <message>") by report_error.
#pragma once

#include <CLI/CLI.hpp>

#include <memory>
#include <string>

#include "core/mapped_file.h"
#include "core/result.h"
#include "format/gguf.h"

namespace kp::cli {

void add_run_command(CLI::App& app, int* exit_code);
void add_eval_command(CLI::App& app, int* exit_code);
void add_info_command(CLI::App& app, int* exit_code);
void add_tokenize_command(CLI::App& app, int* exit_code);
void add_quantize_command(CLI::App& app, int* exit_code);
void add_make_model_command(CLI::App& app, int* exit_code);
void add_paths_command(CLI::App& app, int* exit_code);
void add_kernels_command(CLI::App& app, int* exit_code);
void add_devices_command(CLI::App& app, int* exit_code);
void add_verify_command(CLI::App& app, int* exit_code);
void add_bench_command(CLI::App& app, int* exit_code);

// Prints "kpath: <message>" on stderr and returns the exit code 1.
int report_error(const Error& error);

// Opens `path`, or the embedded default model when `path` is empty.
Result<format::GgufFile> open_model(const std::string& path);
// CLI11 validators shared by the subcommands. A seed is a decimal integer in
// [0, 2^64 - 1] (CLI11 alone wraps -1 and clamps 2^64 to 2^64 - 1); a
// directory option names an existing directory.
CLI::Validator seed_range();
CLI::Validator existing_dir();

// Name shown for the embedded model.
inline constexpr const char* kEmbeddedModelName = "<embedded kjv-tiny-q4_k_m.gguf>";

}  // namespace kp::cli

// GPU-free compilation of CUDA kernels with NVRTC (loaded at run time): a
// kernel file and the headers it includes, the constants as `#define` lines,
// one entry function, one architecture ("sm_90") -> a cubin plus the compiler's
// log and the register / spill figures ptxas reports. Used by the CUDA backend
// at pipeline creation and by tests/cuda/nvrtc_compile_test.cpp, which compiles
// every kernel in CI without a GPU.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "core/result.h"
#include "kernel_path/registry.h"

namespace kp::backend {

struct SourceFile {
  std::string name;  // include name ("common.cuh", "kp_params.h") or file name of the main source
  std::string text;
};

// A kernel file with every header it includes (transitively), read from disk so
// that the pipeline cache key covers the includes too.
struct KernelSource {
  std::string path;               // the main file on disk (for error messages)
  SourceFile main;
  std::vector<SourceFile> headers;
  uint64_t hash = 0;              // over the main file and every header, names included
};

// Reads `path` and resolves its `#include "name"` lines, searching the including
// file's directory, then `include_dirs` in order. Errors name the file and the
// include that could not be found. Angle-bracket includes are left to NVRTC
// (nvrtc_compile provides <stdint.h>).
Result<KernelSource> load_kernel_source(const std::string& path, const std::vector<std::string>& include_dirs);

// The include directories of a CUDA implementation: its own directory, the
// include/ beside it, then the built-in kernels/cuda (common.cuh and the other
// headers) and kernels/include (kp_params.h), so custom kernels can use them.
std::vector<std::string> cuda_include_dirs(const kpath::KernelImpl& impl);

// `#define NAME value` for every constant, in order: unsigned as `2304u`,
// signed as `-3`, floats with an `f` suffix (`1e-06f`, `16.0f`), bools as 0/1.
std::string constant_defines(const kpath::ConstantValues& constants);

struct CompiledKernel {
  std::vector<uint8_t> cubin;
  std::string log;          // NVRTC's log, ptxas's -v report included
  std::string function;
  std::string arch;         // "sm_90"
  int registers = -1;       // per thread, from the ptxas report for `function`; -1: no report
  int stack_bytes = 0;
  int spill_stores = 0;     // bytes
  int spill_loads = 0;      // bytes
};

// Figures ptxas -v printed for `function` ("Used 40 registers", "... bytes spill
// stores, ... bytes spill loads"). Returns false if the log has no report for it.
bool parse_ptxas_report(const std::string& log, const std::string& function, CompiledKernel* out);

// True if the ELF image defines a symbol named exactly `name`.
bool cubin_has_symbol(const std::vector<uint8_t>& cubin, const std::string& name);

// Compiles `source` with `defines` prepended for `arch` ("sm_80", "sm_90") and
// checks that the cubin holds `function`. The error holds the compiler's log
// and names the file. The ptxas figures are those of `function`, or -1
// registers when NVRTC printed no report: NVRTC 13 answers a module whose PTX
// it has compiled before in the process from a cache, without a report.
Result<CompiledKernel> nvrtc_compile(const KernelSource& source, const std::string& defines,
                                     const std::string& function, const std::string& arch);

// 64-bit FNV-1a over `text`, continuing from `seed` (pipeline cache keys).
inline constexpr uint64_t kHashSeed = 14695981039346656037ull;
uint64_t hash_text(std::string_view text, uint64_t seed = kHashSeed);

// Empty when NVRTC loads, else why not (for tests that skip without it).
std::string nvrtc_unavailable_reason();
// "13.0", or "" when NVRTC is unavailable.
std::string nvrtc_version();

}  // namespace kp::backend

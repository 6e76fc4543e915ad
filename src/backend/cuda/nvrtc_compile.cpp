#include "backend/cuda/nvrtc_compile.h"

#include <algorithm>
#include <cctype>
#include <filesystem>
#include <set>
#include <string_view>

#include "backend/cuda/cuda_loader.h"
#include "core/mapped_file.h"

namespace kp::backend {
namespace {

namespace fs = std::filesystem;
using cuda::load_nvrtc;
using cuda::Nvrtc;
using cuda::nvrtc_error_text;

// NVRTC has no C library headers; kp_params.h includes <stdint.h>.
constexpr const char* kStdintShim =
    "#pragma once\n"
    "typedef signed char int8_t;\ntypedef unsigned char uint8_t;\n"
    "typedef short int16_t;\ntypedef unsigned short uint16_t;\n"
    "typedef int int32_t;\ntypedef unsigned int uint32_t;\n"
    "typedef long long int64_t;\ntypedef unsigned long long uint64_t;\n"
    "typedef unsigned long long uintptr_t;\n";

// `#include "name"` lines (spaces and tabs allowed around '#' and 'include').
std::vector<std::string> quoted_includes(const std::string& text) {
  std::vector<std::string> out;
  size_t pos = 0;
  auto skip_blank = [](std::string_view s, size_t i) {
    while (i < s.size() && (s[i] == ' ' || s[i] == '\t')) ++i;
    return i;
  };
  while (pos < text.size()) {
    size_t end = text.find('\n', pos);
    if (end == std::string::npos) end = text.size();
    const std::string_view line(text.data() + pos, end - pos);
    pos = end + 1;
    size_t i = skip_blank(line, 0);
    if (i >= line.size() || line[i] != '#') continue;
    i = skip_blank(line, i + 1);
    if (line.substr(i, 7) != "include") continue;
    i = skip_blank(line, i + 7);
    if (i >= line.size() || line[i] != '"') continue;
    const size_t close = line.find('"', i + 1);
    if (close == std::string_view::npos || close == i + 1) continue;
    out.emplace_back(line.substr(i + 1, close - i - 1));
  }
  return out;
}

// Reads the headers `text` (from `dir`) includes, depth first, once each.
Status collect_headers(const std::string& text, const fs::path& dir, const std::string& including,
                       const std::vector<std::string>& include_dirs, std::set<std::string>* seen,
                       std::vector<SourceFile>* out) {
  for (const std::string& name : quoted_includes(text)) {
    if (!seen->insert(name).second) continue;
    std::vector<fs::path> candidates = {dir / name};
    for (const auto& d : include_dirs) candidates.push_back(fs::path(d) / name);
    fs::path found;
    for (const auto& c : candidates) {
      if (fs::is_regular_file(c)) {
        found = c;
        break;
      }
    }
    if (found.empty()) {
      std::string searched;
      for (const auto& c : candidates) searched += (searched.empty() ? "" : ", ") + c.parent_path().string();
      return make_error("{}: #include \"{}\" not found (searched {})", including, name, searched);
    }
    KP_TRY(std::string header, read_text_file(found.string()));
    KP_TRY_STATUS(collect_headers(header, found.parent_path(), found.string(), include_dirs, seen, out));
    out->push_back(SourceFile{name, std::move(header)});
  }
  return {};
}

// The decimal number that ends `line` just before `suffix` ("... 24 bytes spill" -> 24).
int parse_int_before(const std::string& line, const std::string& suffix) {
  const size_t at = line.find(suffix);
  if (at == std::string::npos) return -1;
  size_t end = at;
  while (end > 0 && std::isspace(static_cast<unsigned char>(line[end - 1]))) --end;
  size_t begin = end;
  while (begin > 0 && std::isdigit(static_cast<unsigned char>(line[begin - 1]))) --begin;
  if (begin == end || end - begin > 9) return -1;
  return std::stoi(line.substr(begin, end - begin));
}

}  // namespace

bool cubin_has_symbol(const std::vector<uint8_t>& cubin, const std::string& name) {
  // ELF string tables hold NUL-terminated names, each preceded by a NUL.
  std::string needle(1, '\0');
  needle += name;
  needle += '\0';
  return std::search(cubin.begin(), cubin.end(), needle.begin(), needle.end()) != cubin.end();
}

uint64_t hash_text(std::string_view text, uint64_t seed) {
  uint64_t h = seed;
  for (unsigned char c : text) {
    h ^= c;
    h *= 1099511628211ull;
  }
  return h;
}

std::vector<std::string> cuda_include_dirs(const kpath::KernelImpl& impl) {
  // The kernel's own directory first, then the built-in headers (common.cuh,
  // kp_params.h), which custom kernels may include too.
  const fs::path dir(impl.source_dir);
  const fs::path builtin(kpath::default_kernels_dir());
  std::vector<std::string> dirs;
  for (const fs::path& d : {dir, dir.parent_path() / "include", builtin / "cuda", builtin / "include"}) {
    const std::string s = d.lexically_normal().string();
    if (std::find(dirs.begin(), dirs.end(), s) == dirs.end()) dirs.push_back(s);
  }
  return dirs;
}

Result<KernelSource> load_kernel_source(const std::string& path, const std::vector<std::string>& include_dirs) {
  KernelSource src;
  src.path = path;
  KP_TRY(src.main.text, read_text_file(path));
  src.main.name = fs::path(path).filename().string();
  std::set<std::string> seen;
  KP_TRY_STATUS(collect_headers(src.main.text, fs::path(path).parent_path(), path, include_dirs, &seen,
                                &src.headers));
  uint64_t h = hash_text(src.main.name);
  h = hash_text(src.main.text, h);
  for (const auto& hd : src.headers) {
    h = hash_text(hd.name, h);
    h = hash_text(hd.text, h);
  }
  src.hash = h;
  return src;
}

std::string constant_defines(const kpath::ConstantValues& constants) {
  std::string out;
  for (const auto& [name, value] : constants) {
    std::string text = std::visit(
        [](auto x) -> std::string {
          using X = decltype(x);
          if constexpr (std::is_same_v<X, bool>) {
            return x ? "1" : "0";
          } else if constexpr (std::is_same_v<X, float>) {
            std::string s = fmt::format("{}", x);  // shortest text that reads back as the same float
            if (s.find_first_of(".e") == std::string::npos) s += ".0";
            s += "f";
            return x < 0 ? "(" + s + ")" : s;
          } else if constexpr (std::is_same_v<X, uint32_t>) {
            return fmt::format("{}u", x);
          } else {
            return x < 0 ? fmt::format("({})", x) : fmt::format("{}", x);
          }
        },
        value);
    out += fmt::format("#define {} {}\n", name, text);
  }
  return out;
}

bool parse_ptxas_report(const std::string& log, const std::string& function, CompiledKernel* out) {
  // ptxas info    : Compiling entry function 'rmsnorm_main' for 'sm_90'
  // ptxas info    : Function properties for rmsnorm_main
  // ptxas         .     0 bytes stack frame, 0 bytes spill stores, 0 bytes spill loads
  // ptxas info    : Used 16 registers, used 1 barriers, ...
  const std::string start = "Compiling entry function '" + function + "'";
  const size_t at = log.find(start);
  if (at == std::string::npos) return false;
  size_t pos = log.find('\n', at);
  bool found_registers = false;
  while (pos != std::string::npos && pos + 1 < log.size()) {
    const size_t begin = pos + 1;
    size_t end = log.find('\n', begin);
    const std::string line = log.substr(begin, end == std::string::npos ? std::string::npos : end - begin);
    if (line.find("Compiling entry function") != std::string::npos) break;  // the next function's report
    if (line.find("spill stores") != std::string::npos) {
      out->stack_bytes = parse_int_before(line, "bytes stack frame");
      out->spill_stores = parse_int_before(line, "bytes spill stores");
      out->spill_loads = parse_int_before(line, "bytes spill loads");
    }
    if (const int r = parse_int_before(line, "registers"); r >= 0 && line.find("Used ") != std::string::npos) {
      out->registers = r;
      found_registers = true;
    }
    pos = end;
  }
  return found_registers;
}

Result<CompiledKernel> nvrtc_compile(const KernelSource& source, const std::string& defines,
                                     const std::string& function, const std::string& arch) {
  KP_TRY(const Nvrtc* nv, load_nvrtc());
  // Constants first, then the file with its own line numbers for the log.
  const std::string text = defines + fmt::format("#line 1 \"{}\"\n", source.main.name) + source.main.text;
  std::vector<const char*> header_texts = {kStdintShim};
  std::vector<const char*> header_names = {"stdint.h"};
  for (const auto& h : source.headers) {
    header_texts.push_back(h.text.c_str());
    header_names.push_back(h.name.c_str());
  }
  nvrtcProgram prog = nullptr;
  if (nvrtcResult r = nv->nvrtcCreateProgram(&prog, text.c_str(), source.main.name.c_str(),
                                             static_cast<int>(header_texts.size()), header_texts.data(),
                                             header_names.data());
      r != NVRTC_SUCCESS) {
    return make_error("{}: nvrtcCreateProgram failed: {}", source.path, nvrtc_error_text(*nv, r));
  }
  struct ProgramGuard {
    const Nvrtc* nv;
    nvrtcProgram* prog;
    ~ProgramGuard() { nv->nvrtcDestroyProgram(prog); }
  } guard{nv, &prog};

  const std::string arch_option = "--gpu-architecture=" + arch;
  const char* options[] = {arch_option.c_str(), "--std=c++17", "--ptxas-options=-v", "-lineinfo"};
  const nvrtcResult compiled = nv->nvrtcCompileProgram(prog, static_cast<int>(std::size(options)), options);

  CompiledKernel out;
  out.function = function;
  out.arch = arch;
  size_t log_size = 0;
  if (nv->nvrtcGetProgramLogSize(prog, &log_size) == NVRTC_SUCCESS && log_size > 1) {
    out.log.resize(log_size);
    if (nv->nvrtcGetProgramLog(prog, out.log.data()) != NVRTC_SUCCESS) out.log.clear();
    while (!out.log.empty() && out.log.back() == '\0') out.log.pop_back();
  }
  if (compiled != NVRTC_SUCCESS) {
    return make_error("{} ({}, {}): NVRTC compilation failed: {}\n{}", source.path, function, arch,
                      nvrtc_error_text(*nv, compiled), out.log);
  }
  size_t cubin_size = 0;
  if (nvrtcResult r = nv->nvrtcGetCUBINSize(prog, &cubin_size); r != NVRTC_SUCCESS || cubin_size == 0) {
    return make_error("{} ({}, {}): NVRTC produced no cubin: {}", source.path, function, arch,
                      nvrtc_error_text(*nv, r));
  }
  out.cubin.resize(cubin_size);
  if (nvrtcResult r = nv->nvrtcGetCUBIN(prog, reinterpret_cast<char*>(out.cubin.data())); r != NVRTC_SUCCESS) {
    return make_error("{} ({}, {}): nvrtcGetCUBIN failed: {}", source.path, function, arch,
                      nvrtc_error_text(*nv, r));
  }
  if (!cubin_has_symbol(out.cubin, function)) {
    return make_error("{}: no entry function '{}' was compiled for {} (is it declared extern \"C\" __global__?)",
                      source.path, function, arch);
  }
  // NVRTC 13 serves a module whose PTX it compiled before in this process from
  // a cache and then prints no ptxas report: the figures stay unknown (-1).
  if (!parse_ptxas_report(out.log, function, &out)) out.registers = -1;
  return out;
}

std::string nvrtc_unavailable_reason() {
  auto nv = load_nvrtc();
  return nv.ok() ? std::string() : nv.error().message;
}

std::string nvrtc_version() {
  auto nv = load_nvrtc();
  return nv.ok() ? fmt::format("{}.{}", (*nv)->major, (*nv)->minor) : std::string();
}

}  // namespace kp::backend

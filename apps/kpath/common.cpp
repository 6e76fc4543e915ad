#include <fmt/core.h>

#include <cstdio>

#include "commands.h"

extern "C" const uint8_t kp_embedded_model_begin[];
extern "C" const uint8_t kp_embedded_model_end[];

namespace kp::cli {

int report_error(const Error& error) {
  fmt::print(stderr, "kpath: {}\n", error.message);
  return 1;
}

Result<format::GgufFile> open_model(const std::string& path) {
  if (!path.empty()) return format::GgufFile::open(path);
  const std::span<const uint8_t> bytes(kp_embedded_model_begin,
                                       static_cast<size_t>(kp_embedded_model_end - kp_embedded_model_begin));
  return format::GgufFile::parse(MappedFile::from_static(bytes, kEmbeddedModelName));
}

}  // namespace kp::cli

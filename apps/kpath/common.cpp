#include <fmt/core.h>

#include <cstdio>
#include <filesystem>
#include <string>

#include "commands.h"

extern "C" const uint8_t kp_embedded_model_begin[];
extern "C" const uint8_t kp_embedded_model_end[];

namespace kp::cli {

int report_error(const Error& error) {
  fmt::print(stderr, "kpath: {}\n", error.message);
  return 1;
}

CLI::Validator seed_range() {
  return CLI::Validator(
      [](std::string& v) -> std::string {
        static const std::string kMax = "18446744073709551615";
        const std::string bad = fmt::format("'{}' is not a seed (expected an integer from 0 to {})", v, kMax);
        if (v.empty() || v.find_first_not_of("0123456789") != std::string::npos) return bad;
        const size_t first = v.find_first_not_of('0');
        const std::string digits = first == std::string::npos ? "0" : v.substr(first);
        if (digits.size() > kMax.size() || (digits.size() == kMax.size() && digits > kMax)) return bad;
        return "";
      },
      "UINT64");
}

CLI::Validator existing_dir() {
  return CLI::Validator(
      [](std::string& v) -> std::string {
        std::error_code ec;
        if (!std::filesystem::is_directory(v, ec)) return fmt::format("'{}' is not a directory", v);
        return "";
      },
      "DIR");
}

Result<format::GgufFile> open_model(const std::string& path) {
  if (!path.empty()) return format::GgufFile::open(path);
  const std::span<const uint8_t> bytes(kp_embedded_model_begin,
                                       static_cast<size_t>(kp_embedded_model_end - kp_embedded_model_begin));
  return format::GgufFile::parse(MappedFile::from_static(bytes, kEmbeddedModelName));
}

}  // namespace kp::cli

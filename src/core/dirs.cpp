#include "core/dirs.h"

#include <cstdlib>

namespace kp {
namespace {

std::string from_env(const char* xdg, const char* home_suffix) {
  if (const char* x = std::getenv(xdg); x != nullptr && *x != '\0') return std::string(x) + "/kpath";
  if (const char* h = std::getenv("HOME"); h != nullptr && *h != '\0') return std::string(h) + home_suffix;
  return "/tmp/kpath";
}

}  // namespace

std::string user_cache_dir() { return from_env("XDG_CACHE_HOME", "/.cache/kpath"); }
std::string user_config_dir() { return from_env("XDG_CONFIG_HOME", "/.config/kpath"); }

}  // namespace kp

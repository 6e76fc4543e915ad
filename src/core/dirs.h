// Per-user directories: caches for compiled kernels, configuration for user
// kernel paths. XDG variables first, then $HOME, then /tmp.
#pragma once

#include <string>

namespace kp {

std::string user_cache_dir();   // $XDG_CACHE_HOME/kpath or ~/.cache/kpath
std::string user_config_dir();  // $XDG_CONFIG_HOME/kpath or ~/.config/kpath

}  // namespace kp

// Shared by the libFuzzer targets: fixture paths, and the check that turns a
// broken property into a crash libFuzzer records (abort, with the reason).
#pragma once

#include <cstdio>
#include <cstdlib>
#include <string>

#include "core/check.h"

namespace kp::fuzz {

inline std::string source_path(const std::string& rel) { return std::string(KP_SOURCE_DIR) + "/" + rel; }
inline std::string data_path(const std::string& rel) { return std::string(KP_TEST_DATA) + "/" + rel; }

}  // namespace kp::fuzz

// A property of the code under test that the input broke: a bug, so abort.
#define KP_FUZZ_CHECK(cond, msg) KP_CHECK(cond, msg)

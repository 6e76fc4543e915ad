// A fixture model opened once per test process and shared by its tests
// (the GGUF is memory-mapped; opening it per test only costs time).
#pragma once

#include <gtest/gtest.h>

#include <map>
#include <string>

#include "format/gguf.h"

namespace kp::test {

// The model at `path`, opened on first use; a failure to open fails the
// calling test and leaves an empty model behind.
inline const format::GgufFile& shared_model(const std::string& path) {
  static std::map<std::string, format::GgufFile> files;
  auto it = files.find(path);
  if (it == files.end()) {
    auto f = format::GgufFile::open(path);
    EXPECT_TRUE(f.ok()) << path << ": " << f.error().message;
    it = files.emplace(path, f.ok() ? std::move(*f) : format::GgufFile{}).first;
  }
  return it->second;
}

}  // namespace kp::test

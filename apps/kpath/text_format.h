// Plain-text layout for the kpath commands that print tables and prose.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace kp::cli {

// Rows as left-aligned columns two spaces apart (widths in UTF-8 characters),
// one line per row; trailing spaces trimmed.
std::string format_table(const std::vector<std::vector<std::string>>& rows);

// Words of `text` on lines of at most `width` characters, each ending in '\n'.
std::string wrap(std::string_view text, size_t width);

// Every non-empty line of `text` prefixed with `prefix`; the result ends in a newline.
std::string indent(std::string_view text, std::string_view prefix);

std::string join(const std::vector<std::string>& items, std::string_view sep);
std::vector<std::string> split(std::string_view text, char sep);

// "1.50 GiB", "3.62 MiB", "12 B".
std::string human_bytes(uint64_t n);

}  // namespace kp::cli

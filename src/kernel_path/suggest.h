// "Did you mean" suggestions for names in error messages: the closest known
// name by edit distance (case-insensitive; a swap of two neighbours counts as
// one edit), when it is close enough to be a likely typo.
#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace kp::kpath {

// Optimal-string-alignment distance between a and b, ignoring ASCII case.
size_t edit_distance(std::string_view a, std::string_view b);

// The candidate closest to `name`, or "" when none is within the typo
// threshold (1 edit for short names, up to 3 for names of 9+ characters).
std::string closest_name(std::string_view name, const std::vector<std::string>& candidates);

// " (did you mean 'x'?)" for the closest candidate, or "".
std::string did_you_mean(std::string_view name, const std::vector<std::string>& candidates);

// "a, b, c": candidates joined for "(expected one of: ...)" lists.
std::string join_names(const std::vector<std::string>& names, std::string_view sep = ", ");

}  // namespace kp::kpath

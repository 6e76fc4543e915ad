// Kernel paths as text for people: the chain of a section's ops as the seed
// documents draw it, one-line labels of a step's kernel and constants, and
// the differences between two paths (`kpath paths show` / `kpath paths diff`).
#pragma once

#include <string>
#include <vector>

#include "kernel_path/schema.h"

namespace kp::kpath {

// "input_norm → q_proj → k_proj →\nattention → ...": the ops joined by " → ",
// wrapped before `width` columns with the arrow at the end of the broken line.
std::string chain(const std::vector<Step>& steps, size_t width = 60);

// "rmsnorm", "{Q4_K: matmul_q4k, Q6_K: matmul_q6k}", "rmsnorm.comp (vulkan)".
std::string kernel_label(const Step& step);

// "EPS=1e-06, vulkan: {ROWS_PER_WG=4}", or "" without constants.
std::string constants_label(const Step& step);

// The differences from `a` to `b`: changed settings, then per section the
// steps removed ("- "), added ("+ ") and changed ("~ ", field by field), steps
// being matched by op in order. "" when the paths do the same thing.
std::string diff_paths(const KernelPath& a, const KernelPath& b);

}  // namespace kp::kpath

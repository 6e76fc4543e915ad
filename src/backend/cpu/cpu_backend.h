// The CPU backend: every logical kernel of kernels/registry.json implemented
// plainly in C++ (f32 storage, double accumulation), in host memory. It is the
// reference the Vulkan and CUDA kernels are compared against (op_harness.h)
// and the fallback when no GPU is present.
#pragma once

#include <memory>

#include "backend/backend.h"
#include "kernel_path/registry.h"

namespace kp::backend {

std::unique_ptr<Backend> make_cpu_backend();

// Adds the CPU implementation (KernelImpl{backend = "cpu"}) of every kernel of
// `registry` the CPU backend implements: the built-in kernels, and kernels
// whose `reference` names one of them (they run the reference's code).
void register_cpu_kernels(kpath::Registry& registry);

}  // namespace kp::backend

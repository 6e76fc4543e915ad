// The CPU backend: every logical kernel of kernels/registry.json implemented
// plainly in C++ (f32 storage, double accumulation), in host memory: the
// reference the Vulkan and CUDA kernels and the CPU's own fast kernels are
// compared against (op_harness.h, kpath verify). The matrix kernels also have
// SIMD implementations (cpu_kernels_matmul_fast.cpp), which the backend runs
// when the device is used for inference: with no GPU, it is the device
// auto-selection picks.
#pragma once

#include <memory>

#include "backend/backend.h"
#include "kernel_path/registry.h"

namespace kp::backend {

enum class CpuKernelSet {
  kReference,  // the plain reference loops only
  kFast,       // the SIMD entries where a kernel has one, else the reference
};

struct CpuOptions {
  CpuKernelSet kernels = CpuKernelSet::kFast;
  unsigned threads = 0;  // 0: one per physical core
};

// The reference: CpuKernelSet::kReference on every hardware thread.
std::unique_ptr<Backend> make_cpu_backend();
std::unique_ptr<Backend> make_cpu_backend(const CpuOptions& options);

// Physical cores of this machine (hardware threads when the topology is not
// readable): the default thread count of the fast kernels.
unsigned physical_cores();

// Adds the CPU implementation (KernelImpl{backend = "cpu"}) of every kernel of
// `registry` the CPU backend implements: the built-in kernels, and kernels
// whose `reference` names one of them (they run the reference's code).
void register_cpu_kernels(kpath::Registry& registry);

}  // namespace kp::backend

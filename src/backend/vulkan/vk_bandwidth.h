// The device's copy bandwidth (Backend::measure_copy_bandwidth, for kpath
// bench): vkCmdCopyBuffer between two device-local buffers, timed on the
// device with timestamps around the copy (by the host clock around the submit
// when the queue has no timestamps).
#pragma once

#include <cstdint>

#include "backend/vulkan/vk_device.h"
#include "backend/vulkan/vk_memory.h"
#include "core/result.h"

namespace kp::backend::vk {

// Best of `repeats` copies of `bytes`, in bytes per second read + written (2 * bytes per copy).
Result<double> measure_copy_bandwidth(const Context& ctx, Memory& memory, uint64_t bytes, int repeats);

}  // namespace kp::backend::vk

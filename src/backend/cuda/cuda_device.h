// Internal: reading one device's DeviceInfo through the loaded driver.
#pragma once

#include "backend/backend.h"
#include "backend/cuda/cuda_loader.h"

namespace kp::backend::cuda {

// Checks `ordinal` against the device count; fills *out_device when given.
Result<DeviceInfo> query_device(const CudaDriver& drv, int ordinal, CUdevice* out_device);

}  // namespace kp::backend::cuda

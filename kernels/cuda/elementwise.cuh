// elementwise.cuh: the row-wise loop of add, gelu_mul and softcap: grid
// (cdiv(cols, 4 * threads), T), four consecutive values per thread.
#pragma once

#include "common.cuh"

// Calls op(i) for the flat indices of this thread's (up to) four values of row
// blockIdx.y of a [T, kCols] tensor.
template <int kCols, class Op>
__device__ __forceinline__ void kp_rowwise4(Op op) {
  const int c = (blockIdx.x * blockDim.x + threadIdx.x) * 4;
  const size_t base = size_t(blockIdx.y) * kCols;
#pragma unroll
  for (int i = 0; i < 4; ++i) {
    if (c + i < kCols) op(base + c + i);
  }
}

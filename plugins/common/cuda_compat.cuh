// Thin layer between the kernels and CUDA, so that the very same kernel source also compiles with a plain
// C++ compiler against the host emulator (cuda_emulator.h, selected by defining SWIN_TRT_EMULATION).
// The emulator runs every CUDA thread of a block as a cooperative fiber; it lets CI without a GPU execute the
// real kernel code (index math, tiling, reductions, barriers) against host references.
//
// Kernels use: SWIN_LAUNCH, SWIN_SYNCTHREADS, SWIN_SYNCWARP, SWIN_DYNAMIC_SMEM and the swin_trt::dev helpers.
#ifndef SWIN_TRT_CUDA_COMPAT_CUH
#define SWIN_TRT_CUDA_COMPAT_CUH

#include <stdint.h>

#if defined(SWIN_TRT_EMULATION)
#include "cuda_emulator.h"
#include "wmma_emulation.h" // nvcuda::wmma on the emulator (tensor-core kernels; the GPU build includes <mma.h>)
#else
#include <cuda_runtime.h>
#endif
#include <cuda_fp16.h>

#include "swin_index.h"

#if defined(SWIN_TRT_EMULATION)
// Kernel launch: SWIN_LAUNCH(grid, block, smemBytes, stream, kernel)(args...)
#define SWIN_LAUNCH(grid, block, smem, stream, ...)                                                              \
    (static_cast<void>(stream), ::swin_emu::makeLaunch((grid), (block), (smem), __VA_ARGS__))
#define SWIN_SYNCTHREADS() ::swin_emu::syncThreads()
#define SWIN_SYNCWARP() ::swin_emu::syncWarp()
#define SWIN_DYNAMIC_SMEM(T, name) T* name = static_cast<T*>(::swin_emu::dynamicSmem())
#define SWIN_DEVICE inline
#else
#define SWIN_LAUNCH(grid, block, smem, stream, ...) __VA_ARGS__<<<(grid), (block), (smem), (stream)>>>
#define SWIN_SYNCTHREADS() __syncthreads()
#define SWIN_SYNCWARP() __syncwarp()
#define SWIN_DYNAMIC_SMEM(T, name)                                                                               \
    extern __shared__ __align__(16) unsigned char swinDynamicSmem_[];                                            \
    T* name = reinterpret_cast<T*>(swinDynamicSmem_)
#define SWIN_DEVICE __device__ __forceinline__
#endif

namespace swin_trt
{
namespace dev
{

//! Read-only (non-coherent cache) load.
template <typename V>
SWIN_DEVICE V ldg(V const* p)
{
#if defined(SWIN_TRT_EMULATION)
    return *p;
#else
    return __ldg(p);
#endif
}

//! Maximum over the 32 lanes of a warp, returned to every lane. All 32 lanes must call it.
SWIN_DEVICE float warpAllMax(float v)
{
#if defined(SWIN_TRT_EMULATION)
    return ::swin_emu::warpAllReduce(v, true);
#else
#pragma unroll
    for (int32_t offset = 16; offset > 0; offset >>= 1)
    {
        v = fmaxf(v, __shfl_xor_sync(0xffffffffU, v, offset));
    }
    return v;
#endif
}

//! Sum over the 32 lanes of a warp, returned to every lane. All 32 lanes must call it.
SWIN_DEVICE float warpAllSum(float v)
{
#if defined(SWIN_TRT_EMULATION)
    return ::swin_emu::warpAllReduce(v, false);
#else
#pragma unroll
    for (int32_t offset = 16; offset > 0; offset >>= 1)
    {
        v += __shfl_xor_sync(0xffffffffU, v, offset);
    }
    return v;
#endif
}

//! The value of lane (lane ^ laneMask) of this warp (butterfly exchange). All 32 lanes must call it.
SWIN_DEVICE float warpShflXor(float v, int32_t laneMask)
{
#if defined(SWIN_TRT_EMULATION)
    return ::swin_emu::warpShuffleXor(v, laneMask);
#else
    return __shfl_xor_sync(0xffffffffU, v, laneMask);
#endif
}

//! exp(x) for softmax arguments x <= 0 (fast hardware exp2 on the GPU; ~2 ulp).
SWIN_DEVICE float fastExp(float x)
{
#if defined(SWIN_TRT_EMULATION)
    return expf(x);
#else
    return __expf(x);
#endif
}

} // namespace dev

//! Error of the last kernel launch (does not synchronize).
inline cudaError_t lastLaunchError()
{
#if defined(SWIN_TRT_EMULATION)
    return cudaSuccess;
#else
    return cudaGetLastError();
#endif
}

} // namespace swin_trt

#endif // SWIN_TRT_CUDA_COMPAT_CUH

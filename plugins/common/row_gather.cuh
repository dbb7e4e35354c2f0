// Row gather: out[row, :] = in[map(row), :] (or zeros when map(row) < 0), rows of `rowBytes` bytes.
// SwinWindowPartition and SwinWindowReverse are both this kernel with a different index map
// (swin_index.h), so the data movement is written, tuned and tested once.
//
// Design: a block owns `rowsPerBlock` consecutive output rows. It first resolves their source rows into
// shared memory (the index math runs once per row, not once per element), then streams the rows as
// vectors of V (16 bytes when the row size and both pointers allow, else 8/4/2/1), coalesced on both the
// read and the write side, with 4 independent loads in flight per thread.
//
// Int8 between two quantization scales (a weakly typed TensorRT 10 build may give partition/reverse's input
// and output different scales): the same gather with `Requantize` applied to each loaded vector,
// out = saturate(round_half_even(in * (in_scale / out_scale))) per byte; padding rows stay code 0.
#ifndef SWIN_TRT_ROW_GATHER_CUH
#define SWIN_TRT_ROW_GATHER_CUH

#include "cuda_compat.cuh"

#include <math.h>
#include <stdint.h>

namespace swin_trt
{

constexpr int32_t kGatherThreads = 256;
constexpr int32_t kGatherMaxRowsPerBlock = 256;
constexpr int32_t kGatherTargetVectorsPerBlock = 2048; // 8 vectors per thread: enough blocks to overlap index setup
constexpr int64_t kGatherMinBlocks = 256;

//! The gather's element op: the codes unchanged (every type; equal or unknown int8 scales).
struct CopyCodes
{
    template <typename V>
    SWIN_HD V operator()(V v) const
    {
        return v;
    }
};

//! int8 codes from one scale to another: saturate(round_half_even(code * ratio)), ratio = in_scale / out_scale
//! (finite, > 0). Code 0 stays 0, so padding rows need no special case.
struct Requantize
{
    float ratio;

    template <typename V>
    SWIN_HD V operator()(V v) const
    {
        int8_t* const codes = reinterpret_cast<int8_t*>(&v);
        for (int32_t k = 0; k < static_cast<int32_t>(sizeof(V)); ++k)
        {
            float const q = rintf(static_cast<float>(codes[k]) * ratio); // ties to even, as QuantizeLinear
            codes[k] = static_cast<int8_t>(fminf(fmaxf(q, -128.0F), 127.0F));
        }
        return v;
    }
};

template <typename V, typename Map, typename Op>
__global__ void __launch_bounds__(kGatherThreads)
    rowGatherKernel(V const* __restrict__ in, V* __restrict__ out, int64_t numRows, int32_t vectorsPerRow,
        int32_t rowsPerBlock, Map map, Op op)
{
    __shared__ int64_t sSource[kGatherMaxRowsPerBlock];

    int64_t const row0 = static_cast<int64_t>(blockIdx.x) * rowsPerBlock;
    int64_t const left = numRows - row0;
    int32_t const nRows = left < rowsPerBlock ? static_cast<int32_t>(left) : rowsPerBlock;
    int32_t const tid = static_cast<int32_t>(threadIdx.x);
    int32_t const stride = static_cast<int32_t>(blockDim.x);

    for (int32_t r = tid; r < nRows; r += stride)
    {
        sSource[r] = map(row0 + r);
    }
    SWIN_SYNCTHREADS();

    int32_t const total = nRows * vectorsPerRow;
    V* const dst = out + row0 * vectorsPerRow;
    int32_t i = tid;
    for (; i + 3 * stride < total; i += 4 * stride)
    {
        V value[4];
#pragma unroll
        for (int32_t k = 0; k < 4; ++k)
        {
            int32_t const idx = i + k * stride;
            int32_t const localRow = idx / vectorsPerRow;
            int32_t const v = idx - localRow * vectorsPerRow;
            int64_t const src = sSource[localRow];
            value[k] = src >= 0 ? op(dev::ldg(in + src * vectorsPerRow + v)) : V{};
        }
#pragma unroll
        for (int32_t k = 0; k < 4; ++k)
        {
            dst[i + k * stride] = value[k];
        }
    }
    for (; i < total; i += stride)
    {
        int32_t const localRow = i / vectorsPerRow;
        int32_t const v = i - localRow * vectorsPerRow;
        int64_t const src = sSource[localRow];
        dst[i] = src >= 0 ? op(dev::ldg(in + src * vectorsPerRow + v)) : V{};
    }
}

template <typename V, typename Map, typename Op>
cudaError_t launchRowGatherTyped(
    void const* in, void* out, int64_t numRows, int64_t rowBytes, Map const& map, Op const& op, cudaStream_t stream)
{
    int64_t const vectorsPerRow = rowBytes / static_cast<int64_t>(sizeof(V));
    if (vectorsPerRow * kGatherMaxRowsPerBlock > INT32_MAX)
    {
        return cudaErrorInvalidValue;
    }
    int64_t rowsPerBlock = kGatherTargetVectorsPerBlock / vectorsPerRow;
    int64_t const forEnoughBlocks = (numRows + kGatherMinBlocks - 1) / kGatherMinBlocks;
    rowsPerBlock = rowsPerBlock < forEnoughBlocks ? rowsPerBlock : forEnoughBlocks;
    rowsPerBlock = rowsPerBlock < 1 ? 1 : (rowsPerBlock > kGatherMaxRowsPerBlock ? kGatherMaxRowsPerBlock : rowsPerBlock);
    int64_t const blocks = (numRows + rowsPerBlock - 1) / rowsPerBlock;
    if (blocks > INT32_MAX)
    {
        return cudaErrorInvalidValue;
    }
    SWIN_LAUNCH(dim3(static_cast<uint32_t>(blocks)), dim3(kGatherThreads), 0, stream, rowGatherKernel<V, Map, Op>)
    (static_cast<V const*>(in), static_cast<V*>(out), numRows, static_cast<int32_t>(vectorsPerRow),
        static_cast<int32_t>(rowsPerBlock), map, op);
    return lastLaunchError();
}

//! Picks the widest vector (16, 8, 4, 2 or 1 bytes) that divides the row size and aligns both pointers.
//! `op`: CopyCodes, or Requantize for int8 rows (one byte per element).
template <typename Map, typename Op = CopyCodes>
cudaError_t launchRowGather(void const* in, void* out, int64_t numRows, int64_t rowBytes, Map const& map,
    cudaStream_t stream, Op const& op = Op{})
{
    if (numRows <= 0 || rowBytes <= 0)
    {
        return numRows < 0 || rowBytes < 0 ? cudaErrorInvalidValue : cudaSuccess;
    }
    if (in == nullptr || out == nullptr)
    {
        return cudaErrorInvalidValue;
    }
    uint64_t const bits = reinterpret_cast<uintptr_t>(in) | reinterpret_cast<uintptr_t>(out)
        | static_cast<uint64_t>(rowBytes);
    if (bits % 16 == 0)
    {
        return launchRowGatherTyped<uint4>(in, out, numRows, rowBytes, map, op, stream);
    }
    if (bits % 8 == 0)
    {
        return launchRowGatherTyped<uint2>(in, out, numRows, rowBytes, map, op, stream);
    }
    if (bits % 4 == 0)
    {
        return launchRowGatherTyped<uint32_t>(in, out, numRows, rowBytes, map, op, stream);
    }
    if (bits % 2 == 0)
    {
        return launchRowGatherTyped<uint16_t>(in, out, numRows, rowBytes, map, op, stream);
    }
    return launchRowGatherTyped<uint8_t>(in, out, numRows, rowBytes, map, op, stream);
}

} // namespace swin_trt

#endif // SWIN_TRT_ROW_GATHER_CUH

// SwinWindowPartition kernel: (B, [T,] H, W, C) -> (B * nW, N, C) with cyclic shift and zero padding.
// The index map is partitionSourceRow (swin_index.h); the data movement is the shared row gather.
#include "row_gather.cuh"
#include "swin_kernels.h"

namespace swin_trt
{
namespace
{

struct PartitionMap
{
    WindowGeometry g;

    SWIN_HD int64_t operator()(int64_t outRow) const
    {
        return partitionSourceRow(g, outRow);
    }
};

} // namespace

cudaError_t windowPartition(void const* x, void* windows, DType type, int32_t B, int32_t T, int32_t H, int32_t W,
    int32_t C, int32_t wt, int32_t wh, int32_t ww, int32_t st, int32_t sh, int32_t sw, int32_t padFirst,
    cudaStream_t stream, float int8Ratio)
{
    if (B < 0 || C < 0 || checkWindowGeometry3d(T, H, W, wt, wh, ww) != nullptr
        || checkWindowShift3d(wt, wh, ww, st, sh, sw) != nullptr || !isValidDType(static_cast<int32_t>(type))
        || !isValidInt8Ratio(type, int8Ratio))
    {
        return cudaErrorInvalidValue;
    }
    PartitionMap const map{makeWindowGeometry3d(T, H, W, wt, wh, ww, st, sh, sw, padFirst)};
    int64_t const numRows = static_cast<int64_t>(B) * map.g.nW * map.g.N;
    int64_t const rowBytes = static_cast<int64_t>(C) * static_cast<int64_t>(dtypeSize(type));
    return int8Ratio == 1.0F ? launchRowGather(x, windows, numRows, rowBytes, map, stream)
                             : launchRowGather(x, windows, numRows, rowBytes, map, stream, Requantize{int8Ratio});
}

} // namespace swin_trt

// Host API of the swin_trt CUDA kernels (library swin_trt_kernels). Used by the TensorRT plugins and by the
// C ABI (swin_capi.cpp). Every function only enqueues work on `stream`: no allocation, no synchronization.
// Pointers are device pointers; tensors are dense row-major (TensorRT kLINEAR).
#ifndef SWIN_TRT_SWIN_KERNELS_H
#define SWIN_TRT_SWIN_KERNELS_H

#include <cuda_runtime_api.h>

#include <stddef.h>
#include <stdint.h>

namespace swin_trt
{

//! Element types of the kernels' I/O. The values are part of the C ABI (swin_capi.cpp): do not renumber.
enum class DType : int32_t
{
    kFLOAT32 = 0,
    kFLOAT16 = 1,
    kINT8 = 2,
};

inline size_t dtypeSize(DType t)
{
    return t == DType::kFLOAT32 ? 4 : (t == DType::kFLOAT16 ? 2 : 1);
}

inline bool isValidDType(int32_t t)
{
    return t >= 0 && t <= 2;
}

//! Limits of SwinWindowAttention (tokens per window, head_dim; heads in cosine mode, whose per-head scales
//! travel in the kernel's parameters).
constexpr int32_t kMaxAttentionTokens = 256;
constexpr int32_t kMaxHeadDim = 128;
constexpr int32_t kMaxCosineHeads = 256;

//! Cosine mode: q and k are divided by max(||.||_2, kCosineNormEpsilon), as torch.nn.functional.normalize does;
//! each head's scale is the folded exp(min(logit_scale, log 100)), so in (0, kMaxHeadScale].
constexpr float kCosineNormEpsilon = 1e-12F;
constexpr float kMaxHeadScale = 100.0F;

//! SwinWindowPartition: x (B, H, W, C) -> windows (B * nW, N, C). Any DType (pure data movement).
cudaError_t windowPartition(void const* x, void* windows, DType type, int32_t B, int32_t H, int32_t W, int32_t C,
    int32_t wh, int32_t ww, int32_t sh, int32_t sw, int32_t padFirst, cudaStream_t stream);

//! SwinWindowReverse: windows (B * nW, N, C) -> y (B, H, W, C). Any DType (pure data movement).
cudaError_t windowReverse(void const* windows, void* y, DType type, int32_t B, int32_t H, int32_t W, int32_t C,
    int32_t wh, int32_t ww, int32_t sh, int32_t sw, int32_t padFirst, cudaStream_t stream);

//! Checks the SwinWindowAttention limits; nullptr when supported, else a static message.
char const* checkWindowAttentionSupport(int32_t numTokens, int32_t headDim);

//! Checks cosine mode's per-head scales (host memory, numHeads values): nullptr when valid, else a static
//! message (at most kMaxCosineHeads heads; each finite, > 0 and <= kMaxHeadScale).
char const* checkCosineHeadScale(int32_t numHeads, float const* headScale);

//! SwinWindowAttention: qkv (rows, N, 3C) + bias_table ((2wh-1)(2ww-1), numHeads) -> context (rows, N, C),
//! C = numHeads * headDim. qkvType in {FLOAT32, FLOAT16} (context has the same type), biasType likewise.
//! height/width: the padded grid (multiples of the window). Softmax is computed in float32.
//! headScale: nullptr for Swin V1 (logits = scale * q.k); for cosine mode (Swin V2) the numHeads per-head
//! scales in host memory (copied into the launch): logits = headScale[h] * q.k / (max(|q|, eps) max(|k|, eps)),
//! and `scale` is not used.
cudaError_t windowAttention(void const* qkv, DType qkvType, void const* biasTable, DType biasType, void* context,
    int32_t rows, int32_t numHeads, int32_t headDim, int32_t wh, int32_t ww, int32_t sh, int32_t sw, int32_t height,
    int32_t width, float scale, float const* headScale, cudaStream_t stream);

} // namespace swin_trt

#endif // SWIN_TRT_SWIN_KERNELS_H

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
//! travel in the kernel's parameters). 512 tokens covers Video Swin's 8x7x7 window (392); equal to
//! swin_trt/ops/schema.py's MAX_TOKENS.
constexpr int32_t kMaxAttentionTokens = 512;
constexpr int32_t kMaxHeadDim = 128;
constexpr int32_t kMaxCosineHeads = 256;

//! The attention kernel's shared memory: at most the 48 KiB every GPU gives a block without opt-in (sm_70 and
//! later, Jetson Xavier and Orin included), for every supported shape (plan: swinWindowAttentionKernel.cu).
constexpr size_t kAttentionSmemBudget = 48 * 1024;

//! Cosine mode: q and k are divided by max(||.||_2, kCosineNormEpsilon), as torch.nn.functional.normalize does;
//! each head's scale is the folded exp(min(logit_scale, log 100)), so in (0, kMaxHeadScale].
constexpr float kCosineNormEpsilon = 1e-12F;
constexpr float kMaxHeadScale = 100.0F;

//! SwinWindowPartition: x (B, T, H, W, C) -> windows (B * nW, N, C), window (wt, wh, ww), shift (st, sh, sw),
//! N = wt * wh * ww. Any DType (pure data movement). A 2D map (B, H, W, C) is T = wt = 1, st = 0.
//! int8Ratio (int8 only): in_scale / out_scale, finite and > 0. 1 moves the codes unchanged; another value
//! requantizes inside the gather: out = saturate(round_half_even(in * int8Ratio)), padding stays 0.
cudaError_t windowPartition(void const* x, void* windows, DType type, int32_t B, int32_t T, int32_t H, int32_t W,
    int32_t C, int32_t wt, int32_t wh, int32_t ww, int32_t st, int32_t sh, int32_t sw, int32_t padFirst,
    cudaStream_t stream, float int8Ratio = 1.0F);

//! SwinWindowPartition of a 2D map: x (B, H, W, C) -> windows (B * nW, N, C).
inline cudaError_t windowPartition(void const* x, void* windows, DType type, int32_t B, int32_t H, int32_t W,
    int32_t C, int32_t wh, int32_t ww, int32_t sh, int32_t sw, int32_t padFirst, cudaStream_t stream,
    float int8Ratio = 1.0F)
{
    return windowPartition(x, windows, type, B, 1, H, W, C, 1, wh, ww, 0, sh, sw, padFirst, stream, int8Ratio);
}

//! SwinWindowReverse: windows (B * nW, N, C) -> y (B, T, H, W, C). Any DType (pure data movement); 2D: T = 1.
//! int8Ratio: as windowPartition's.
cudaError_t windowReverse(void const* windows, void* y, DType type, int32_t B, int32_t T, int32_t H, int32_t W,
    int32_t C, int32_t wt, int32_t wh, int32_t ww, int32_t st, int32_t sh, int32_t sw, int32_t padFirst,
    cudaStream_t stream, float int8Ratio = 1.0F);

//! Whether `int8Ratio` is usable with `type`: for int8 finite and > 0, for every other type exactly 1.
inline bool isValidInt8Ratio(DType type, float int8Ratio)
{
    return type == DType::kINT8 ? (int8Ratio > 0.0F && int8Ratio <= 3.0e38F) : int8Ratio == 1.0F;
}

//! SwinWindowReverse of a 2D map: windows (B * nW, N, C) -> y (B, H, W, C).
inline cudaError_t windowReverse(void const* windows, void* y, DType type, int32_t B, int32_t H, int32_t W, int32_t C,
    int32_t wh, int32_t ww, int32_t sh, int32_t sw, int32_t padFirst, cudaStream_t stream, float int8Ratio = 1.0F)
{
    return windowReverse(windows, y, type, B, 1, H, W, C, 1, wh, ww, 0, sh, sw, padFirst, stream, int8Ratio);
}

//! Checks the SwinWindowAttention limits; nullptr when supported, else a static message.
char const* checkWindowAttentionSupport(int32_t numTokens, int32_t headDim);

//! Bytes of shared memory the attention kernel takes for this shape (biasRows: the table's rows, 0 for a dense
//! bias), or 0 when no launch plan fits kAttentionSmemBudget (never for supported shapes; tested).
size_t windowAttentionSmemBytes(int32_t numTokens, int32_t headDim, int32_t biasRows);

//! Checks cosine mode's per-head scales (host memory, numHeads values): nullptr when valid, else a static
//! message (at most kMaxCosineHeads heads; each finite, > 0 and <= kMaxHeadScale).
char const* checkCosineHeadScale(int32_t numHeads, float const* headScale);

//! The two forms of attention's input 1, told apart by its rank.
enum class BiasForm : int32_t
{
    kTABLE = 0, //!< (R, numHeads), R = (2wt-1)(2wh-1)(2ww-1): bias[h, i, j] = table[rpi(i, j), h]
    kDENSE = 1, //!< (numHeads, N, N): bias[h, i, j] added as is (the same for every window)
};

//! The argument checks every attention entry point shares (pointers, dtypes, bias form, window geometry and
//! shift, padded grid, the kernel's limits, scale, cosine head scales); each entry adds its own on top.
bool validWindowAttentionArgs(void const* qkv, DType qkvType, void const* bias, DType biasType, BiasForm biasForm,
    void const* context, int32_t rows, int32_t numHeads, int32_t headDim, int32_t wt, int32_t wh, int32_t ww,
    int32_t st, int32_t sh, int32_t sw, int32_t frames, int32_t height, int32_t width, float scale,
    float const* headScale);

//! SwinWindowAttention: qkv (rows, N, 3C) + bias -> context (rows, N, C), C = numHeads * headDim, window
//! (wt, wh, ww), shift (st, sh, sw), N = wt * wh * ww; frames/height/width: the padded grid (multiples of the
//! window; frames = wt = 1, st = 0 for a 2D node). qkvType in {FLOAT32, FLOAT16} (context has the same type),
//! biasType likewise. Softmax is computed in float32.
//! headScale: nullptr for Swin V1 (logits = scale * q.k); for cosine mode (Swin V2) the numHeads per-head
//! scales in host memory (copied into the launch): logits = headScale[h] * q.k / (max(|q|, eps) max(|k|, eps)),
//! and `scale` is not used.
cudaError_t windowAttention(void const* qkv, DType qkvType, void const* bias, DType biasType, BiasForm biasForm,
    void* context, int32_t rows, int32_t numHeads, int32_t headDim, int32_t wt, int32_t wh, int32_t ww, int32_t st,
    int32_t sh, int32_t sw, int32_t frames, int32_t height, int32_t width, float scale, float const* headScale,
    cudaStream_t stream);

//! SwinFusedWindowAttention: qkvMap (B, T, H, W, 3C) (a 2D map is T = 1, wt = 1, st = 0) -> contextMap (B, T,
//! H, W, C), the attention of windowAttention over the windows that SwinWindowPartition (padFirst) would cut from
//! the map, with padRow (3C elements, qkvType) as a padded token's qkv; every map row is written once, padded
//! query rows nowhere. The padded grid is the map's, rounded up to the window.
cudaError_t fusedWindowAttention(void const* qkvMap, DType qkvType, void const* bias, DType biasType,
    BiasForm biasForm, void const* padRow, void* contextMap, int32_t B, int32_t T, int32_t H, int32_t W,
    int32_t numHeads, int32_t headDim, int32_t wt, int32_t wh, int32_t ww, int32_t st, int32_t sh, int32_t sw,
    int32_t padFirst, float scale, float const* headScale, cudaStream_t stream);

//! SwinWindowAttention of 2D windows with a bias table ((2wh-1)(2ww-1), numHeads).
inline cudaError_t windowAttention(void const* qkv, DType qkvType, void const* biasTable, DType biasType,
    void* context, int32_t rows, int32_t numHeads, int32_t headDim, int32_t wh, int32_t ww, int32_t sh, int32_t sw,
    int32_t height, int32_t width, float scale, float const* headScale, cudaStream_t stream)
{
    return windowAttention(qkv, qkvType, biasTable, biasType, BiasForm::kTABLE, context, rows, numHeads, headDim, 1,
        wh, ww, 0, sh, sw, 1, height, width, scale, headScale, stream);
}

//! SwinWindowAttention on tensor cores (swinWindowAttentionTensorCoreKernel.cu, nvcuda::wmma, sm_70 and later):
//! the arguments, checks and contract of windowAttention, for float16 qkv and context only (qkvType must be
//! kFLOAT16, else cudaErrorInvalidValue); q k^T and p v on tensor cores with float32 accumulation, softmax in
//! float32, p rounded to float16 for p v. The plugins take it for float16 I/O, windowAttention for float32.
cudaError_t windowAttentionTensorCore(void const* qkv, DType qkvType, void const* bias, DType biasType,
    BiasForm biasForm, void* context, int32_t rows, int32_t numHeads, int32_t headDim, int32_t wt, int32_t wh,
    int32_t ww, int32_t st, int32_t sh, int32_t sw, int32_t frames, int32_t height, int32_t width, float scale,
    float const* headScale, cudaStream_t stream);

//! Bytes of shared memory the tensor-core kernel takes for this shape (biasRows: the table's rows, 0 for a
//! dense bias; cosine: cosine mode), or 0 for an unsupported shape. At most kAttentionSmemBudget for every
//! supported shape (tests/test_tensor_core_attention.py checks them all).
size_t windowAttentionTensorCoreSmemBytes(int32_t numTokens, int32_t headDim, int32_t biasRows, bool cosine);

} // namespace swin_trt

#endif // SWIN_TRT_SWIN_KERNELS_H

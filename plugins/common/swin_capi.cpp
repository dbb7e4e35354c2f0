// swin_trt_capi: a small C ABI over the kernels, for tests and benchmarks through ctypes
// (swin_trt/plugin_library.py). Every function enqueues on `stream` (a cudaStream_t, NULL = legacy default
// stream) and returns 0 on success, -1 for invalid arguments, or a positive cudaError_t value; the message of
// the last failure on the calling thread is returned by swin_trt_capi_last_error().
//
// Built with SWIN_TRT_EMULATION the same ABI runs the kernels on the CPU emulator with *host* pointers
// (library swin_trt_capi_emu; swin_trt_capi_is_emulated() returns 1).
#include "swin_kernels.h"

#include "swin_index.h"

#include <stdint.h>
#include <stdio.h>

#include <string>

#if defined(_WIN32)
#define SWIN_CAPI_EXPORT __declspec(dllexport)
#else
#define SWIN_CAPI_EXPORT __attribute__((visibility("default")))
#endif

namespace
{

thread_local std::string tLastError;

int32_t fail(std::string message)
{
    tLastError = std::move(message);
    return -1;
}

int32_t result(cudaError_t status, char const* op)
{
    if (status == cudaSuccess)
    {
        tLastError.clear();
        return 0;
    }
#if defined(SWIN_TRT_EMULATION)
    tLastError = std::string(op) + ": kernel launch refused (cudaError " + std::to_string(static_cast<int>(status))
        + ")";
#else
    tLastError = std::string(op) + ": " + cudaGetErrorName(status) + ": " + cudaGetErrorString(status);
#endif
    return static_cast<int32_t>(status);
}

std::string pair(int32_t a, int32_t b)
{
    return "[" + std::to_string(a) + ", " + std::to_string(b) + "]";
}

//! "[b, c]" for a 2D call (rank 2), "[a, b, c]" for a 3D one.
std::string dims(int32_t rank, int32_t a, int32_t b, int32_t c)
{
    return rank == 3 ? "[" + std::to_string(a) + ", " + std::to_string(b) + ", " + std::to_string(c) + "]" : pair(b, c);
}

//! Partition/reverse arguments over (T, H, W); a 2D call (rank 2) is T = wt = 1, st = 0.
bool checkWindowArgs(char const* op, int32_t rank, int32_t dtype, int32_t B, int32_t T, int32_t H, int32_t W,
    int32_t C, int32_t wt, int32_t wh, int32_t ww, int32_t st, int32_t sh, int32_t sw, int32_t padFirst,
    int32_t& status)
{
    if (!swin_trt::isValidDType(dtype))
    {
        status = fail(std::string(op) + ": dtype " + std::to_string(dtype) + " is not 0 (float32), 1 (float16) or 2 (int8)");
        return false;
    }
    if (B < 0 || T < 1 || H < 1 || W < 1 || C < 0)
    {
        status = fail(std::string(op) + ": need B >= 0, " + (rank == 3 ? "T >= 1, " : "")
            + "H >= 1, W >= 1, C >= 0; got B=" + std::to_string(B) + (rank == 3 ? " T=" + std::to_string(T) : std::string()) + " H=" + std::to_string(H)
            + " W=" + std::to_string(W) + " C=" + std::to_string(C));
        return false;
    }
    if (char const* why = swin_trt::checkWindowGeometry3d(T, H, W, wt, wh, ww))
    {
        status = fail(std::string(op) + ": " + why + "; got map " + dims(rank, T, H, W) + ", window "
            + dims(rank, wt, wh, ww));
        return false;
    }
    if (char const* why = swin_trt::checkWindowShift3d(wt, wh, ww, st, sh, sw))
    {
        status = fail(std::string(op) + ": " + why + "; got window " + dims(rank, wt, wh, ww) + ", shift "
            + dims(rank, st, sh, sw));
        return false;
    }
    if (padFirst != 0 && padFirst != 1)
    {
        status = fail(std::string(op) + ": pad_first must be 0 or 1, got " + std::to_string(padFirst));
        return false;
    }
    if (rank == 3 && padFirst != 1)
    {
        status = fail(std::string(op) + ": pad_first must be 1 for a 3D window (Video Swin pads, then shifts)");
        return false;
    }
    return true;
}

//! Every attention entry point: arguments checked with a message, then the kernel (headScale: null for V1).
//! A 2D call (rank 2) is wt = frames = 1, st = 0; bias_dense: 0 for the table, 1 for a (heads, N, N) bias.
int32_t attention(char const* op, int32_t rank, void const* qkv, int32_t qkv_dtype, void const* bias_table,
    int32_t bias_dtype, int32_t bias_dense, void* context, int32_t rows, int32_t num_heads, int32_t head_dim,
    int32_t wt, int32_t wh, int32_t ww, int32_t st, int32_t sh, int32_t sw, int32_t frames, int32_t height,
    int32_t width, float scale, float const* headScale, void* stream)
{
    if ((qkv_dtype != 0 && qkv_dtype != 1) || (bias_dtype != 0 && bias_dtype != 1))
    {
        return fail(std::string(op) + ": qkv and bias_table must be float32 (0) or float16 (1), got "
            + std::to_string(qkv_dtype) + " and " + std::to_string(bias_dtype));
    }
    if (rows < 0 || num_heads < 1)
    {
        return fail(std::string(op) + ": need rows >= 0 and num_heads >= 1");
    }
    if (bias_dense != 0 && bias_dense != 1)
    {
        return fail(std::string(op) + ": bias_dense must be 0 (table) or 1 (dense (num_heads, N, N) bias), got "
            + std::to_string(bias_dense));
    }
    if (char const* why = swin_trt::checkWindowGeometry3d(frames, height, width, wt, wh, ww))
    {
        return fail(std::string(op) + ": " + why + "; got grid " + dims(rank, frames, height, width) + ", window "
            + dims(rank, wt, wh, ww));
    }
    if (char const* why = swin_trt::checkWindowShift3d(wt, wh, ww, st, sh, sw))
    {
        return fail(std::string(op) + ": " + why + "; got window " + dims(rank, wt, wh, ww) + ", shift "
            + dims(rank, st, sh, sw));
    }
    int32_t const tokens = wt * wh * ww; // bounded by the padded grid: fits
    if (char const* why = swin_trt::checkWindowAttentionSupport(tokens, head_dim))
    {
        return fail(std::string(op) + ": " + why + "; got N=" + std::to_string(tokens)
            + ", head_dim=" + std::to_string(head_dim));
    }
    if (frames % wt != 0 || height % wh != 0 || width % ww != 0)
    {
        return fail(std::string(op) + ": " + (rank == 3 ? "frames/" : "")
            + "height/width must be the padded grid, positive multiples of the window " + dims(rank, wt, wh, ww)
            + "; got " + dims(rank, frames, height, width));
    }
    int32_t const windows = (frames / wt) * (height / wh) * (width / ww);
    if (rows % windows != 0)
    {
        return fail(std::string(op) + ": rows (" + std::to_string(rows) + ") must be a multiple of the "
            + std::to_string(windows) + " windows of the " + dims(rank, frames, height, width)
            + " grid (whole images)");
    }
    if (!(scale > 0.0F))
    {
        return fail(std::string(op) + ": scale must be > 0");
    }
    if (headScale != nullptr)
    {
        if (char const* why = swin_trt::checkCosineHeadScale(num_heads, headScale))
        {
            return fail(std::string(op) + ": " + why);
        }
    }
    if (qkv == nullptr || bias_table == nullptr || context == nullptr)
    {
        return fail(std::string(op) + ": null pointer");
    }
    swin_trt::BiasForm const form = bias_dense != 0 ? swin_trt::BiasForm::kDENSE : swin_trt::BiasForm::kTABLE;
    return result(swin_trt::windowAttention(qkv, static_cast<swin_trt::DType>(qkv_dtype), bias_table,
                      static_cast<swin_trt::DType>(bias_dtype), form, context, rows, num_heads, head_dim, wt, wh, ww,
                      st, sh, sw, frames, height, width, scale, headScale, static_cast<cudaStream_t>(stream)),
        op);
}

} // namespace

extern "C"
{

//! 4: swin_trt_window_attention_tc, swin_trt_window_attention_tc_smem (the tensor-core kernel) and
//! swin_trt_fused_window_attention were added; 3: the (T, H, W) entry points swin_trt_window_partition_3d,
//! swin_trt_window_reverse_3d and swin_trt_window_attention_3d (3D windows, dense bias); 2:
//! swin_trt_window_attention_cosine (version 1 had the other four).
SWIN_CAPI_EXPORT int32_t swin_trt_capi_version(void)
{
    return 4;
}

SWIN_CAPI_EXPORT int32_t swin_trt_capi_is_emulated(void)
{
#if defined(SWIN_TRT_EMULATION)
    return 1;
#else
    return 0;
#endif
}

SWIN_CAPI_EXPORT char const* swin_trt_capi_last_error(void)
{
    return tLastError.c_str();
}

SWIN_CAPI_EXPORT int32_t swin_trt_window_partition(void const* x, void* windows, int32_t dtype, int32_t B, int32_t H,
    int32_t W, int32_t C, int32_t wh, int32_t ww, int32_t sh, int32_t sw, int32_t pad_first, void* stream)
{
    int32_t status = 0;
    if (!checkWindowArgs("swin_trt_window_partition", 2, dtype, B, 1, H, W, C, 1, wh, ww, 0, sh, sw, pad_first, status))
    {
        return status;
    }
    return result(swin_trt::windowPartition(x, windows, static_cast<swin_trt::DType>(dtype), B, H, W, C, wh, ww, sh,
                      sw, pad_first, static_cast<cudaStream_t>(stream)),
        "swin_trt_window_partition");
}

SWIN_CAPI_EXPORT int32_t swin_trt_window_reverse(void const* windows, void* y, int32_t dtype, int32_t B, int32_t H,
    int32_t W, int32_t C, int32_t wh, int32_t ww, int32_t sh, int32_t sw, int32_t pad_first, void* stream)
{
    int32_t status = 0;
    if (!checkWindowArgs("swin_trt_window_reverse", 2, dtype, B, 1, H, W, C, 1, wh, ww, 0, sh, sw, pad_first, status))
    {
        return status;
    }
    return result(swin_trt::windowReverse(windows, y, static_cast<swin_trt::DType>(dtype), B, H, W, C, wh, ww, sh, sw,
                      pad_first, static_cast<cudaStream_t>(stream)),
        "swin_trt_window_reverse");
}

SWIN_CAPI_EXPORT int32_t swin_trt_window_attention(void const* qkv, int32_t qkv_dtype, void const* bias_table,
    int32_t bias_dtype, void* context, int32_t rows, int32_t num_heads, int32_t head_dim, int32_t wh, int32_t ww,
    int32_t sh, int32_t sw, int32_t height, int32_t width, float scale, void* stream)
{
    return attention("swin_trt_window_attention", 2, qkv, qkv_dtype, bias_table, bias_dtype, 0, context, rows,
        num_heads, head_dim, 1, wh, ww, 0, sh, sw, 1, height, width, scale, nullptr, stream);
}

//! Cosine mode (Swin V2): head_scale points to num_heads floats in host memory (each in (0, 100]).
SWIN_CAPI_EXPORT int32_t swin_trt_window_attention_cosine(void const* qkv, int32_t qkv_dtype, void const* bias_table,
    int32_t bias_dtype, void* context, int32_t rows, int32_t num_heads, int32_t head_dim, int32_t wh, int32_t ww,
    int32_t sh, int32_t sw, int32_t height, int32_t width, float const* head_scale, void* stream)
{
    char const* op = "swin_trt_window_attention_cosine";
    if (head_scale == nullptr)
    {
        return fail(std::string(op) + ": head_scale is null (need num_heads floats in host memory)");
    }
    return attention(op, 2, qkv, qkv_dtype, bias_table, bias_dtype, 0, context, rows, num_heads, head_dim, 1, wh, ww,
        0, sh, sw, 1, height, width, 1.0F, head_scale, stream);
}

//! SwinWindowPartition over (T, H, W): x (B, T, H, W, C) -> (B * nW, N, C); pad_first must be 1 (3D windows).
SWIN_CAPI_EXPORT int32_t swin_trt_window_partition_3d(void const* x, void* windows, int32_t dtype, int32_t B,
    int32_t T, int32_t H, int32_t W, int32_t C, int32_t wt, int32_t wh, int32_t ww, int32_t st, int32_t sh, int32_t sw,
    int32_t pad_first, void* stream)
{
    int32_t status = 0;
    char const* op = "swin_trt_window_partition_3d";
    if (!checkWindowArgs(op, 3, dtype, B, T, H, W, C, wt, wh, ww, st, sh, sw, pad_first, status))
    {
        return status;
    }
    return result(swin_trt::windowPartition(x, windows, static_cast<swin_trt::DType>(dtype), B, T, H, W, C, wt, wh, ww,
                      st, sh, sw, pad_first, static_cast<cudaStream_t>(stream)),
        op);
}

//! SwinWindowReverse over (T, H, W): (B * nW, N, C) -> y (B, T, H, W, C); pad_first must be 1 (3D windows).
SWIN_CAPI_EXPORT int32_t swin_trt_window_reverse_3d(void const* windows, void* y, int32_t dtype, int32_t B, int32_t T,
    int32_t H, int32_t W, int32_t C, int32_t wt, int32_t wh, int32_t ww, int32_t st, int32_t sh, int32_t sw,
    int32_t pad_first, void* stream)
{
    int32_t status = 0;
    char const* op = "swin_trt_window_reverse_3d";
    if (!checkWindowArgs(op, 3, dtype, B, T, H, W, C, wt, wh, ww, st, sh, sw, pad_first, status))
    {
        return status;
    }
    return result(swin_trt::windowReverse(windows, y, static_cast<swin_trt::DType>(dtype), B, T, H, W, C, wt, wh, ww,
                      st, sh, sw, pad_first, static_cast<cudaStream_t>(stream)),
        op);
}

//! SwinWindowAttention over (T, H, W): frames/height/width the padded grid; bias_dense 0: bias is the table
//! ((2wt-1)(2wh-1)(2ww-1), num_heads), 1: a dense (num_heads, N, N) bias; head_scale null (V1, `scale`) or
//! num_heads floats in host memory (cosine mode, `scale` unused).
SWIN_CAPI_EXPORT int32_t swin_trt_window_attention_3d(void const* qkv, int32_t qkv_dtype, void const* bias,
    int32_t bias_dtype, int32_t bias_dense, void* context, int32_t rows, int32_t num_heads, int32_t head_dim,
    int32_t wt, int32_t wh, int32_t ww, int32_t st, int32_t sh, int32_t sw, int32_t frames, int32_t height,
    int32_t width, float scale, float const* head_scale, void* stream)
{
    return attention("swin_trt_window_attention_3d", 3, qkv, qkv_dtype, bias, bias_dtype, bias_dense, context, rows,
        num_heads, head_dim, wt, wh, ww, st, sh, sw, frames, height, width, head_scale != nullptr ? 1.0F : scale,
        head_scale, stream);
}

//! Tensor-core attention (swinWindowAttentionTensorCoreKernel.cu): qkv and context float16 (qkv_dtype 1),
//! bias float32/float16, bias_form 0 = table ((2wt-1)(2wh-1)(2ww-1), num_heads), 1 = dense (num_heads, N, N);
//! window (wt, wh, ww), shift (st, sh, sw), padded grid (frames, height, width); head_scale null for V1, else
//! num_heads floats in host memory (cosine mode; scale must then be 1). Present from the library that has the
//! tensor-core kernel on (look it up by name); arguments are checked by windowAttentionTensorCore.
SWIN_CAPI_EXPORT int32_t swin_trt_window_attention_tc(void const* qkv, int32_t qkv_dtype, void const* bias,
    int32_t bias_dtype, int32_t bias_form, void* context, int32_t rows, int32_t num_heads, int32_t head_dim,
    int32_t wt, int32_t wh, int32_t ww, int32_t st, int32_t sh, int32_t sw, int32_t frames, int32_t height,
    int32_t width, float scale, float const* head_scale, void* stream)
{
    char const* op = "swin_trt_window_attention_tc";
    if (qkv_dtype != 1 || (bias_dtype != 0 && bias_dtype != 1) || (bias_form != 0 && bias_form != 1))
    {
        return fail(std::string(op) + ": qkv must be float16 (1), bias float32 (0) or float16 (1), bias_form 0 "
            "(table) or 1 (dense); got " + std::to_string(qkv_dtype) + ", " + std::to_string(bias_dtype) + ", "
            + std::to_string(bias_form));
    }
    return result(swin_trt::windowAttentionTensorCore(qkv, swin_trt::DType::kFLOAT16, bias,
                      static_cast<swin_trt::DType>(bias_dtype), static_cast<swin_trt::BiasForm>(bias_form), context,
                      rows, num_heads, head_dim, wt, wh, ww, st, sh, sw, frames, height, width, scale, head_scale,
                      static_cast<cudaStream_t>(stream)),
        op);
}

//! SwinFusedWindowAttention (fusedWindowAttention): qkv_map (B, T, H, W, 3C) (2D: T = 1, wt = 1, st = 0) ->
//! context_map (B, T, H, W, C); pad_row: the 3C-element qkv of a padded token (qkv_dtype); bias_form 0 = table,
//! 1 = dense; head_scale null for V1, else num_heads floats in host memory. Present from the library that has
//! the fused form (look it up by name); arguments are checked by fusedWindowAttention.
SWIN_CAPI_EXPORT int32_t swin_trt_fused_window_attention(void const* qkv_map, int32_t qkv_dtype, void const* bias,
    int32_t bias_dtype, int32_t bias_form, void const* pad_row, void* context_map, int32_t B, int32_t T, int32_t H,
    int32_t W, int32_t num_heads, int32_t head_dim, int32_t wt, int32_t wh, int32_t ww, int32_t st, int32_t sh,
    int32_t sw, int32_t pad_first, float scale, float const* head_scale, void* stream)
{
    char const* op = "swin_trt_fused_window_attention";
    if ((qkv_dtype != 0 && qkv_dtype != 1) || (bias_dtype != 0 && bias_dtype != 1)
        || (bias_form != 0 && bias_form != 1))
    {
        return fail(std::string(op) + ": qkv and bias must be float32 (0) or float16 (1), bias_form 0 (table) or 1 "
            "(dense); got " + std::to_string(qkv_dtype) + ", " + std::to_string(bias_dtype) + ", "
            + std::to_string(bias_form));
    }
    return result(swin_trt::fusedWindowAttention(qkv_map, static_cast<swin_trt::DType>(qkv_dtype), bias,
                      static_cast<swin_trt::DType>(bias_dtype), static_cast<swin_trt::BiasForm>(bias_form), pad_row,
                      context_map, B, T, H, W, num_heads, head_dim, wt, wh, ww, st, sh, sw, pad_first,
                      head_scale != nullptr ? 1.0F : scale, head_scale, static_cast<cudaStream_t>(stream)),
        op);
}

//! Shared memory per block of the tensor-core kernel for a shape (0: unsupported shape).
SWIN_CAPI_EXPORT uint64_t swin_trt_window_attention_tc_smem(
    int32_t tokens, int32_t head_dim, int32_t bias_rows, int32_t cosine)
{
    return swin_trt::windowAttentionTensorCoreSmemBytes(tokens, head_dim, bias_rows, cosine != 0);
}

} // extern "C"

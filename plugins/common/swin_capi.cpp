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

bool checkWindowArgs(char const* op, int32_t dtype, int32_t B, int32_t H, int32_t W, int32_t C, int32_t wh,
    int32_t ww, int32_t sh, int32_t sw, int32_t padFirst, int32_t& status)
{
    if (!swin_trt::isValidDType(dtype))
    {
        status = fail(std::string(op) + ": dtype " + std::to_string(dtype) + " is not 0 (float32), 1 (float16) or 2 (int8)");
        return false;
    }
    if (B < 0 || H < 1 || W < 1 || C < 0)
    {
        status = fail(std::string(op) + ": need B >= 0, H >= 1, W >= 1, C >= 0; got B=" + std::to_string(B)
            + " H=" + std::to_string(H) + " W=" + std::to_string(W) + " C=" + std::to_string(C));
        return false;
    }
    if (char const* why = swin_trt::checkWindowGeometry(H, W, wh, ww))
    {
        status = fail(std::string(op) + ": " + why + "; got map " + pair(H, W) + ", window " + pair(wh, ww));
        return false;
    }
    if (char const* why = swin_trt::checkWindowShift(wh, ww, sh, sw))
    {
        status = fail(std::string(op) + ": " + why + "; got window " + pair(wh, ww) + ", shift " + pair(sh, sw));
        return false;
    }
    if (padFirst != 0 && padFirst != 1)
    {
        status = fail(std::string(op) + ": pad_first must be 0 or 1, got " + std::to_string(padFirst));
        return false;
    }
    return true;
}

//! Both attention entry points: arguments checked with a message, then the kernel (headScale: null for V1).
int32_t attention(char const* op, void const* qkv, int32_t qkv_dtype, void const* bias_table, int32_t bias_dtype,
    void* context, int32_t rows, int32_t num_heads, int32_t head_dim, int32_t wh, int32_t ww, int32_t sh, int32_t sw,
    int32_t height, int32_t width, float scale, float const* headScale, void* stream)
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
    if (char const* why = swin_trt::checkWindowGeometry(height, width, wh, ww))
    {
        return fail(std::string(op) + ": " + why + "; got grid " + pair(height, width) + ", window " + pair(wh, ww));
    }
    if (char const* why = swin_trt::checkWindowShift(wh, ww, sh, sw))
    {
        return fail(std::string(op) + ": " + why + "; got window " + pair(wh, ww) + ", shift " + pair(sh, sw));
    }
    if (char const* why = swin_trt::checkWindowAttentionSupport(wh * ww, head_dim))
    {
        return fail(std::string(op) + ": " + why + "; got N=" + std::to_string(wh * ww)
            + ", head_dim=" + std::to_string(head_dim));
    }
    if (height % wh != 0 || width % ww != 0)
    {
        return fail(std::string(op) + ": height/width must be the padded grid, positive multiples of the window "
            + pair(wh, ww) + "; got " + pair(height, width));
    }
    int32_t const windows = (height / wh) * (width / ww);
    if (rows % windows != 0)
    {
        return fail(std::string(op) + ": rows (" + std::to_string(rows) + ") must be a multiple of the "
            + std::to_string(windows) + " windows of the " + pair(height, width) + " grid (whole images)");
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
    return result(swin_trt::windowAttention(qkv, static_cast<swin_trt::DType>(qkv_dtype), bias_table,
                      static_cast<swin_trt::DType>(bias_dtype), context, rows, num_heads, head_dim, wh, ww, sh, sw,
                      height, width, scale, headScale, static_cast<cudaStream_t>(stream)),
        op);
}

} // namespace

extern "C"
{

//! 2: swin_trt_window_attention_cosine was added (version 1 had the other four).
SWIN_CAPI_EXPORT int32_t swin_trt_capi_version(void)
{
    return 2;
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
    if (!checkWindowArgs("swin_trt_window_partition", dtype, B, H, W, C, wh, ww, sh, sw, pad_first, status))
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
    if (!checkWindowArgs("swin_trt_window_reverse", dtype, B, H, W, C, wh, ww, sh, sw, pad_first, status))
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
    return attention("swin_trt_window_attention", qkv, qkv_dtype, bias_table, bias_dtype, context, rows, num_heads,
        head_dim, wh, ww, sh, sw, height, width, scale, nullptr, stream);
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
    return attention(op, qkv, qkv_dtype, bias_table, bias_dtype, context, rows, num_heads, head_dim, wh, ww, sh, sw,
        height, width, 1.0F, head_scale, stream);
}

} // extern "C"

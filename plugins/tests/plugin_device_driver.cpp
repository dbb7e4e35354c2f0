// swin_trt_plugin_device_driver: every plugin object's enqueue on a GPU, without libnvinfer.
//
// It drives libswin_trt_plugins.so (the library TensorRT loads, kernels compiled by nvcc) the way TensorRT
// does: creators from getCreators(), plugins from their fields, supportsFormatCombination and configurePlugin
// with the run's descriptors, then enqueue on cudaMalloc'd device buffers and a CUDA stream. Each result is
// copied back and compared with the brute-force model of the op contract (brute_force.h, the reference of the
// host tests): partition and reverse code by code (float32, float16, int8; int8 with two different scales
// requantized, out = saturate(round_half_even(in * in_scale / out_scale))), padded and shifted maps, both pad
// orders, one object across several sizes (the feature-map form); attention (float32, float16; V1 and cosine)
// against the double-precision model; the fused attention (float32, float16; both pad orders) against the unfused
// chain of those models on the same data. No TensorRT library is loaded: only its headers are used.
//
// Usage: swin_trt_plugin_device_driver [--json PATH]. Exit status 0 (all passed), 1 (a check failed) or 77
// (no CUDA device: ctest counts that as skipped). scripts/gpu_check.sh runs it as its step plugin_device.
//
// swin_trt_plugin_device_driver_emu is this same source over the emulated plugin library (SWIN_TRT_EMULATION:
// host memory stands for device memory), so that the driver's own cases and comparisons are checked by ctest
// on machines without a GPU.
#include "NvInferRuntime.h"

#include "brute_force.h"
#include "plugin_test_support.h"

#include <cuda_fp16.h>
#include <cuda_runtime_api.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <random>
#include <string>
#include <vector>

using namespace nvinfer1;
using namespace swin_test;

namespace
{

constexpr int32_t kWindow = 7;
constexpr int32_t kShift = 3;

//! Maps one engine might see: multiples of the window, padded ones, one smaller than a window.
int32_t const kSizes[][2] = {{14, 21}, {10, 13}, {56, 56}, {5, 3}};

struct Record
{
    std::string name;
    bool ok;
    double error; // attention: relative error; moves: wrong elements
    float ms;     // one enqueue, CUDA events (first run: includes nothing but the kernel)
};

std::vector<Record> gRecords;

#if defined(SWIN_TRT_EMULATION)
// The emulated kernels run on the CPU, synchronously, on host memory: the runtime calls of this driver map to
// their host equivalents (the plugin library itself calls none).
cudaError_t devMalloc(void** p, size_t bytes)
{
    *p = malloc(bytes);
    return *p != nullptr ? cudaSuccess : cudaErrorMemoryAllocation;
}
void devFree(void* p)
{
    free(p);
}
cudaError_t devCopy(void* dst, void const* src, size_t bytes, cudaMemcpyKind)
{
    memcpy(dst, src, bytes);
    return cudaSuccess;
}
cudaError_t devSync(cudaStream_t)
{
    return cudaSuccess;
}
char const* devErrorText(cudaError_t status)
{
    return status == cudaSuccess ? "no error" : "error";
}
#else
cudaError_t devMalloc(void** p, size_t bytes)
{
    return cudaMalloc(p, bytes);
}
void devFree(void* p)
{
    cudaFree(p);
}
cudaError_t devCopy(void* dst, void const* src, size_t bytes, cudaMemcpyKind kind)
{
    return cudaMemcpy(dst, src, bytes, kind);
}
cudaError_t devSync(cudaStream_t stream)
{
    return cudaStreamSynchronize(stream);
}
char const* devErrorText(cudaError_t status)
{
    return cudaGetErrorString(status);
}
#endif

bool cudaOk(cudaError_t status, std::string const& what)
{
    if (status == cudaSuccess)
    {
        return true;
    }
    check(false, what + ": " + devErrorText(status));
    return false;
}

//! A device buffer of `bytes` (at least 1), freed on scope exit.
class DeviceBuffer
{
public:
    explicit DeviceBuffer(size_t bytes)
        : mBytes(bytes)
    {
        cudaOk(devMalloc(&mPtr, bytes > 0 ? bytes : 1), "cudaMalloc");
    }

    DeviceBuffer(DeviceBuffer const&) = delete;
    DeviceBuffer& operator=(DeviceBuffer const&) = delete;

    ~DeviceBuffer()
    {
        devFree(mPtr);
    }

    void* get() const
    {
        return mPtr;
    }

    bool upload(void const* host)
    {
        return cudaOk(devCopy(mPtr, host, mBytes, cudaMemcpyHostToDevice), "cudaMemcpy to device");
    }

    bool download(void* host) const
    {
        return cudaOk(devCopy(host, mPtr, mBytes, cudaMemcpyDeviceToHost), "cudaMemcpy to host");
    }

private:
    void* mPtr = nullptr;
    size_t mBytes;
};

//! enqueue on `stream`, synchronized; returns its status (and the time between two events around it).
int32_t enqueueTimed(IPluginV3* plugin, PluginTensorDesc const* in, PluginTensorDesc const* out,
    void const* const* inputs, void* const* outputs, cudaStream_t stream, float& ms)
{
    ms = 0.0F;
#if defined(SWIN_TRT_EMULATION)
    int32_t const status = runtime(plugin)->enqueue(in, out, inputs, outputs, nullptr, stream);
#else
    cudaEvent_t start = nullptr;
    cudaEvent_t stop = nullptr;
    cudaEventCreate(&start);
    cudaEventCreate(&stop);
    cudaEventRecord(start, stream);
    int32_t const status = runtime(plugin)->enqueue(in, out, inputs, outputs, nullptr, stream);
    cudaEventRecord(stop, stream);
    cudaEventSynchronize(stop);
    cudaEventElapsedTime(&ms, start, stop);
    cudaEventDestroy(start);
    cudaEventDestroy(stop);
#endif
    cudaOk(devSync(stream), "cudaStreamSynchronize after enqueue");
    return status;
}

size_t elementSize(DataType type)
{
    return type == DataType::kFLOAT ? 4 : (type == DataType::kHALF ? 2 : 1);
}

char const* name(DataType type)
{
    return type == DataType::kFLOAT ? "float32" : (type == DataType::kHALF ? "float16" : "int8");
}

int32_t windowsOf(int32_t H, int32_t W)
{
    return brute::ceilTo(H, kWindow) / kWindow * (brute::ceilTo(W, kWindow) / kWindow);
}

IPluginV3* create(char const* op, Fields& fields, char const* nodeName)
{
    IPluginCreatorV3One* c = creator(op);
    IPluginV3* p = c != nullptr ? c->createPlugin(nodeName, fields.get(), TensorRTPhase::kRUNTIME) : nullptr;
    check(p != nullptr, std::string(nodeName) + ": created through getCreators");
    return p;
}

//! The contract's int8 requantization in double (ties to even); `tie` when within 1e-4 of a rounding tie.
int32_t requantized(int8_t code, double inScale, double outScale, bool& tie)
{
    double const v = static_cast<double>(code) * inScale / outScale;
    tie = fabs(fabs(v - floor(v)) - 0.5) < 1e-4;
    double const q = nearbyint(v);
    return static_cast<int32_t>(q < -128.0 ? -128.0 : (q > 127.0 ? 127.0 : q));
}

//! Expected bytes of one moved row: the source row (or zeros), requantized for int8 with two scales.
//! Returns the number of elements that differ (ties of an inexact ratio may round either way).
size_t compareRow(DataType type, uint8_t const* got, uint8_t const* source, size_t C, float inScale, float outScale)
{
    size_t const bytes = C * elementSize(type);
    bool const requantize = type == DataType::kINT8 && inScale > 0.0F && outScale > 0.0F && inScale != outScale;
    if (!requantize)
    {
        if (source == nullptr)
        {
            size_t wrong = 0;
            for (size_t i = 0; i < bytes; ++i)
            {
                wrong += got[i] != 0 ? 1 : 0;
            }
            return wrong;
        }
        return memcmp(got, source, bytes) == 0 ? 0 : 1;
    }
    size_t wrong = 0;
    for (size_t c = 0; c < C; ++c)
    {
        bool tie = false;
        int32_t const expect
            = source == nullptr ? 0 : requantized(static_cast<int8_t>(source[c]), inScale, outScale, tie);
        int32_t const value = static_cast<int8_t>(got[c]);
        wrong += value == expect || (tie && abs(value - expect) == 1) ? 0 : 1;
    }
    return wrong;
}

//! Partition, then reverse, by two plugin objects (reverse sized by the feature-map input), at one size.
void runMoves(IPluginV3* partition, IPluginV3* reverse, int32_t padFirst, DataType type, int32_t B, int32_t H,
    int32_t W, int32_t C, float inScale, float outScale, cudaStream_t stream)
{
    char where[200];
    snprintf(where, sizeof(where), "moves %s pad_first=%d B=%d H=%d W=%d C=%d scales %g -> %g", name(type), padFirst,
        B, H, W, C, inScale, outScale);
    size_t const rowBytes = static_cast<size_t>(C) * elementSize(type);
    int32_t const nW = windowsOf(H, W);
    int32_t const N = kWindow * kWindow;
    size_t const pixels = static_cast<size_t>(B) * H * W;
    size_t const tokens = static_cast<size_t>(B) * nW * N;
    std::vector<uint8_t> x(pixels * rowBytes), windows(tokens * rowBytes), back(pixels * rowBytes);
    for (size_t i = 0; i < x.size(); ++i)
    {
        x[i] = static_cast<uint8_t>((i * 131 + 7) % 251 + 1); // never 0: padding rows are told apart
    }
    if (type == DataType::kHALF) // finite float16 values (a move does not care, a NaN compare would)
    {
        for (size_t i = 1; i < x.size(); i += 2)
        {
            x[i] &= 0x3B;
        }
    }
    DeviceBuffer dx(x.size()), dWindows(windows.size()), dBack(back.size()), dMap(pixels * 4);
    if (!dx.upload(x.data()))
    {
        return;
    }
    // Build time, as TensorRT does it: the format offered, then configured with this run's dims and scales.
    DynamicPluginTensorDesc pio[2] = {desc(type, {B, H, W, C}), desc(type, {B * nW, N, C})};
    pio[0].desc.scale = inScale;
    pio[1].desc.scale = outScale;
    bool offered = build(partition)->supportsFormatCombination(0, pio, 1, 1)
        && build(partition)->supportsFormatCombination(1, pio, 1, 1);
    check(offered && build(partition)->configurePlugin(&pio[0], 1, &pio[1], 1) == 0,
        std::string(where) + ": partition offered and configured");
    float ms = 0.0F;
    void const* pin[] = {dx.get()};
    void* pout[] = {dWindows.get()};
    int32_t const status = enqueueTimed(partition, &pio[0].desc, &pio[1].desc, pin, pout, stream, ms);
    check(status == 0, std::string(where) + ": partition enqueue");
    dWindows.download(windows.data());
    std::vector<int64_t> const sources = brute::partitionSources(H, W, kWindow, kWindow, kShift, kShift, padFirst != 0);
    size_t wrong = 0;
    for (size_t row = 0; row < tokens; ++row)
    {
        size_t const b = row / sources.size();
        int64_t const s = sources[row % sources.size()];
        wrong += compareRow(type, windows.data() + row * rowBytes,
            s < 0 ? nullptr : x.data() + (b * H * W + static_cast<size_t>(s)) * rowBytes, static_cast<size_t>(C),
            inScale, outScale);
    }
    check(status == 0 && wrong == 0, std::string(where) + ": partition = brute-force model");
    gRecords.push_back({std::string(where) + " partition", status == 0 && wrong == 0, static_cast<double>(wrong), ms});

    // Reverse of those windows, sized by the feature map (dims only; a real buffer, as TensorRT gives one).
    DynamicPluginTensorDesc rio[3] = {pio[1], desc(DataType::kFLOAT, {B, H, W, 1}), pio[0]};
    rio[0].desc.scale = inScale;
    rio[2].desc.scale = outScale;
    offered = build(reverse)->supportsFormatCombination(0, rio, 2, 1)
        && build(reverse)->supportsFormatCombination(1, rio, 2, 1) && build(reverse)->supportsFormatCombination(2, rio, 2, 1);
    check(offered && build(reverse)->configurePlugin(rio, 2, &rio[2], 1) == 0,
        std::string(where) + ": reverse offered and configured");
    PluginTensorDesc const rin[2] = {rio[0].desc, rio[1].desc};
    void const* rinputs[] = {dWindows.get(), dMap.get()};
    void* routputs[] = {dBack.get()};
    int32_t const rstatus = enqueueTimed(reverse, rin, &rio[2].desc, rinputs, routputs, stream, ms);
    check(rstatus == 0, std::string(where) + ": reverse enqueue");
    dBack.download(back.data());
    std::vector<int64_t> const tokenOf = brute::reverseSources(H, W, kWindow, kWindow, kShift, kShift, padFirst != 0);
    wrong = 0;
    for (size_t pixel = 0; pixel < pixels; ++pixel)
    {
        size_t const b = pixel / tokenOf.size();
        size_t const token = b * static_cast<size_t>(nW) * N + static_cast<size_t>(tokenOf[pixel % tokenOf.size()]);
        wrong += compareRow(type, back.data() + pixel * rowBytes, windows.data() + token * rowBytes,
            static_cast<size_t>(C), inScale, outScale);
    }
    check(rstatus == 0 && wrong == 0, std::string(where) + ": reverse = brute-force model");
    if (!(type == DataType::kINT8 && inScale > 0.0F && outScale > 0.0F && inScale != outScale))
    {
        check(back == x, std::string(where) + ": reverse(partition(x)) == x");
    }
    gRecords.push_back({std::string(where) + " reverse", rstatus == 0 && wrong == 0, static_cast<double>(wrong), ms});
}

void testMoves(cudaStream_t stream)
{
    for (int32_t padFirst : {0, 1})
    {
        Fields pf;
        pf.i("window_size", {kWindow, kWindow}).i("shift_size", {kShift, kShift}).i("pad_first", {padFirst});
        Fields rf;
        rf.i("window_size", {kWindow, kWindow}).i("shift_size", {kShift, kShift}).i("pad_first", {padFirst});
        IPluginV3* partition = create("SwinWindowPartition", pf, "partition");
        IPluginV3* reverse = create("SwinWindowReverse", rf, "reverse (feature map)");
        if (partition != nullptr && reverse != nullptr)
        {
            for (auto const& size : kSizes) // one pair of objects for every size
            {
                for (DataType type : {DataType::kFLOAT, DataType::kHALF, DataType::kINT8})
                {
                    runMoves(partition, reverse, padFirst, type, 2, size[0], size[1], 24, -1.0F, -1.0F, stream);
                }
                // int8 between two scales (weakly typed TensorRT 10): requantized in the gather.
                runMoves(partition, reverse, padFirst, DataType::kINT8, 2, size[0], size[1], 24, 0.0625F, 0.125F, stream);
                runMoves(partition, reverse, padFirst, DataType::kINT8, 2, size[0], size[1], 20, 0.047F, 0.013F, stream);
            }
        }
        delete partition;
        delete reverse;
    }
}

//! One attention node at one size, on the device, against the double-precision model.
void runAttention(IPluginV3* attention, DataType type, int32_t B, int32_t H, int32_t W, int32_t heads,
    int32_t headDim, int32_t shift, float scale, std::vector<float> const* headScale, cudaStream_t stream)
{
    char where[200];
    snprintf(where, sizeof(where), "attention%s %s B=%d map %dx%d heads=%d head_dim=%d shift=%d",
        headScale != nullptr ? " cosine" : " v1", name(type), B, H, W, heads, headDim, shift);
    int32_t const N = kWindow * kWindow;
    int32_t const Hp = brute::ceilTo(H, kWindow), Wp = brute::ceilTo(W, kWindow);
    int32_t const rows = B * windowsOf(H, W);
    int32_t const C = heads * headDim;
    int32_t const L = (2 * kWindow - 1) * (2 * kWindow - 1);
    std::mt19937 rng(static_cast<uint32_t>(H * 100 + W + headDim));
    std::normal_distribution<float> normal(0.0F, 1.0F);
    bool const half = type == DataType::kHALF;
    std::vector<float> qkv(static_cast<size_t>(rows) * N * 3 * C), table(static_cast<size_t>(L) * heads);
    for (float& v : qkv)
    {
        v = half ? __half2float(__float2half_rn(normal(rng))) : normal(rng);
    }
    std::uniform_real_distribution<float> cpb(0.0F, 16.0F);
    for (float& v : table)
    {
        v = headScale != nullptr ? cpb(rng) : normal(rng);
    }
    std::vector<__half> qkvH(qkv.size()), outH(static_cast<size_t>(rows) * N * C);
    for (size_t i = 0; i < qkv.size(); ++i)
    {
        qkvH[i] = __float2half_rn(qkv[i]);
    }
    std::vector<float> outF(outH.size(), NAN);
    size_t const e = elementSize(type);
    DeviceBuffer dQkv(qkv.size() * e), dTable(table.size() * 4), dOut(outF.size() * e),
        dMap(static_cast<size_t>(B) * H * W * C);
    if (!dQkv.upload(half ? static_cast<void const*>(qkvH.data()) : qkv.data()) || !dTable.upload(table.data()))
    {
        return;
    }
    int32_t const nbInputs = shift > 0 ? 3 : 2;
    DynamicPluginTensorDesc io[4] = {desc(type, {rows, N, 3 * C}), desc(DataType::kFLOAT, {L, heads}),
        desc(DataType::kINT8, {B, H, W, C}), desc(type, {rows, N, C})};
    if (nbInputs == 2)
    {
        io[2] = io[3];
    }
    bool offered = true;
    for (int32_t pos = 0; pos <= nbInputs; ++pos)
    {
        offered = offered && build(attention)->supportsFormatCombination(pos, io, nbInputs, 1);
    }
    check(offered && build(attention)->configurePlugin(io, nbInputs, &io[nbInputs], 1) == 0,
        std::string(where) + ": offered and configured");
    PluginTensorDesc const in[3] = {io[0].desc, io[1].desc, io[2].desc};
    void const* inputs[] = {dQkv.get(), dTable.get(), dMap.get()};
    void* outputs[] = {dOut.get()};
    float ms = 0.0F;
    int32_t const status = enqueueTimed(attention, in, &io[nbInputs].desc, inputs, outputs, stream, ms);
    check(status == 0, std::string(where) + ": enqueue");
    if (half)
    {
        dOut.download(outH.data());
        for (size_t i = 0; i < outH.size(); ++i)
        {
            outF[i] = __half2float(outH[i]);
        }
    }
    else
    {
        dOut.download(outF.data());
    }
    std::vector<double> const expect = brute::attention(
        qkv, table, rows, heads, headDim, kWindow, kWindow, shift, shift, Hp, Wp, scale, headScale);
    double const rel = brute::relativeError(outF, expect);
    double const tol = half ? 2e-3 : 1e-4; // the GPU's exp is the fast hardware one (~2 ulp)
    char msg[64];
    snprintf(msg, sizeof(msg), ": relative error %.3g (limit %.1g)", rel, tol);
    check(status == 0 && rel <= tol, std::string(where) + msg);
    gRecords.push_back({where, status == 0 && rel <= tol, rel, ms});
}

void testAttention(cudaStream_t stream)
{
    struct
    {
        int32_t heads, headDim;
    } const shapes[] = {{3, 32}, {2, 8}, {4, 64}};
#if defined(SWIN_TRT_EMULATION)
    // The emulator runs each CUDA thread as a fiber: a subset (padded, and smaller than a window) keeps ctest short.
    size_t const nbShapes = 2;
    int32_t const sizes[][2] = {{10, 13}, {5, 3}};
#else
    size_t const nbShapes = sizeof(shapes) / sizeof(shapes[0]);
    int32_t const(&sizes)[4][2] = kSizes;
#endif
    for (size_t shape = 0; shape < nbShapes; ++shape)
    {
        auto const& s = shapes[shape];
        float const scale = 1.0F / sqrtf(static_cast<float>(s.headDim));
        Fields shifted;
        shifted.i("num_heads", {s.heads}).i("window_size", {kWindow, kWindow}).i("shift_size", {kShift, kShift});
        shifted.f("scale", scale);
        Fields plain;
        plain.i("num_heads", {s.heads}).i("window_size", {kWindow, kWindow}).i("shift_size", {0, 0}).f("scale", scale);
        std::vector<float> headScale;
        for (int32_t h = 0; h < s.heads; ++h)
        {
            headScale.push_back(1.5F + 98.5F * static_cast<float>(h) / static_cast<float>(s.heads));
        }
        Fields cosine;
        cosine.i("num_heads", {s.heads}).i("window_size", {kWindow, kWindow}).i("shift_size", {kShift, kShift});
        cosine.f("scale", 1.0F).i("cosine", {1}).fs("head_scale", headScale);
        IPluginV3* a = create("SwinWindowAttention", shifted, "attention (shifted, feature map)");
        IPluginV3* u = create("SwinWindowAttention", plain, "attention (no shift)");
        IPluginV3* v2 = create("SwinWindowAttention", cosine, "attention (cosine, shifted)");
        for (auto const& size : sizes)
        {
            for (DataType type : {DataType::kFLOAT, DataType::kHALF})
            {
                if (a != nullptr)
                {
                    runAttention(a, type, 2, size[0], size[1], s.heads, s.headDim, kShift, scale, nullptr, stream);
                }
                if (v2 != nullptr)
                {
                    runAttention(v2, type, 2, size[0], size[1], s.heads, s.headDim, kShift, 1.0F, &headScale, stream);
                }
            }
            if (u != nullptr)
            {
                runAttention(u, DataType::kHALF, 2, size[0], size[1], s.heads, s.headDim, 0, scale, nullptr, stream);
            }
        }
        delete a;
        delete u;
        delete v2;
    }
}

//! SwinFusedWindowAttention on a (B, H, W, 3C) qkv map: the model is the unfused chain built from the brute-force
//! pieces (windows cut by brute::partitionSources with the pad row for padding, brute::attention, each context
//! row put back at its token's map position), so fused and unfused agree on the same data.
void runFused(IPluginV3* fused, DataType type, int32_t B, int32_t H, int32_t W, int32_t heads, int32_t headDim,
    int32_t shift, int32_t padFirst, float scale, cudaStream_t stream)
{
    char where[200];
    snprintf(where, sizeof(where), "fused attention %s B=%d map %dx%d heads=%d head_dim=%d shift=%d pad_first=%d",
        name(type), B, H, W, heads, headDim, shift, padFirst);
    int32_t const N = kWindow * kWindow;
    int32_t const Hp = brute::ceilTo(H, kWindow), Wp = brute::ceilTo(W, kWindow);
    int32_t const nW = windowsOf(H, W), rows = B * nW;
    int32_t const C = heads * headDim;
    int32_t const L = (2 * kWindow - 1) * (2 * kWindow - 1);
    std::mt19937 rng(static_cast<uint32_t>(H * 100 + W + headDim + 17 * padFirst));
    std::normal_distribution<float> normal(0.0F, 1.0F);
    bool const half = type == DataType::kHALF;
    size_t const positions = static_cast<size_t>(B) * H * W;
    std::vector<float> qkv(positions * 3 * C), padRow(static_cast<size_t>(3) * C), table(static_cast<size_t>(L) * heads);
    for (float& v : qkv)
    {
        v = half ? __half2float(__float2half_rn(normal(rng))) : normal(rng);
    }
    for (float& v : padRow)
    {
        v = half ? __half2float(__float2half_rn(normal(rng))) : normal(rng);
    }
    for (float& v : table)
    {
        v = normal(rng);
    }
    // The unfused chain's windows and where each window token lives on the map.
    std::vector<int64_t> const sources = brute::partitionSources(H, W, kWindow, kWindow, shift, shift, padFirst != 0);
    std::vector<float> windows(static_cast<size_t>(rows) * N * 3 * C);
    for (int32_t r = 0; r < rows; ++r)
    {
        for (int32_t t = 0; t < N; ++t)
        {
            int64_t const src = sources[static_cast<size_t>(r % nW) * N + t];
            float const* row = src < 0 ? padRow.data() : &qkv[(static_cast<size_t>(r / nW) * H * W + src) * 3 * C];
            memcpy(&windows[(static_cast<size_t>(r) * N + t) * 3 * C], row, sizeof(float) * 3 * C);
        }
    }
    std::vector<double> const ctx
        = brute::attention(windows, table, rows, heads, headDim, kWindow, kWindow, shift, shift, Hp, Wp, scale);
    std::vector<double> expect(positions * C, NAN);
    for (int32_t r = 0; r < rows; ++r)
    {
        for (int32_t t = 0; t < N; ++t)
        {
            int64_t const src = sources[static_cast<size_t>(r % nW) * N + t];
            if (src >= 0)
            {
                memcpy(&expect[(static_cast<size_t>(r / nW) * H * W + src) * C], &ctx[(static_cast<size_t>(r) * N + t) * C],
                    sizeof(double) * C);
            }
        }
    }
    std::vector<__half> qkvH(qkv.size()), padH(padRow.size()), outH(positions * C);
    for (size_t i = 0; i < qkv.size(); ++i)
    {
        qkvH[i] = __float2half_rn(qkv[i]);
    }
    for (size_t i = 0; i < padRow.size(); ++i)
    {
        padH[i] = __float2half_rn(padRow[i]);
    }
    std::vector<float> outF(outH.size(), NAN);
    size_t const e = elementSize(type);
    DeviceBuffer dQkv(qkv.size() * e), dTable(table.size() * 4), dPad(padRow.size() * e), dOut(outF.size() * e);
    if (!dQkv.upload(half ? static_cast<void const*>(qkvH.data()) : qkv.data()) || !dTable.upload(table.data())
        || !dPad.upload(half ? static_cast<void const*>(padH.data()) : padRow.data())
        || !dOut.upload(outF.data()) /* NaN (float32) or garbage bits (float16): every row must be written */)
    {
        return;
    }
    DynamicPluginTensorDesc io[4] = {desc(type, {B, H, W, 3 * C}), desc(DataType::kFLOAT, {L, heads}),
        desc(type, {3 * C}), desc(type, {B, H, W, C})};
    bool offered = true;
    for (int32_t pos = 0; pos <= 3; ++pos)
    {
        offered = offered && build(fused)->supportsFormatCombination(pos, io, 3, 1);
    }
    check(offered && build(fused)->configurePlugin(io, 3, &io[3], 1) == 0, std::string(where) + ": offered and configured");
    PluginTensorDesc const in[3] = {io[0].desc, io[1].desc, io[2].desc};
    void const* inputs[] = {dQkv.get(), dTable.get(), dPad.get()};
    void* outputs[] = {dOut.get()};
    float ms = 0.0F;
    int32_t const status = enqueueTimed(fused, in, &io[3].desc, inputs, outputs, stream, ms);
    check(status == 0, std::string(where) + ": enqueue");
    if (half)
    {
        dOut.download(outH.data());
        for (size_t i = 0; i < outH.size(); ++i)
        {
            outF[i] = __half2float(outH[i]);
        }
    }
    else
    {
        dOut.download(outF.data());
    }
    double const rel = brute::relativeError(outF, expect);
    double const tol = half ? 2e-3 : 1e-4; // the GPU's exp is the fast hardware one (~2 ulp)
    char msg[64];
    snprintf(msg, sizeof(msg), ": relative error %.3g (limit %.1g)", rel, tol);
    check(status == 0 && rel <= tol, std::string(where) + msg);
    gRecords.push_back({where, status == 0 && rel <= tol, rel, ms});
}

void testFused(cudaStream_t stream)
{
#if defined(SWIN_TRT_EMULATION)
    int32_t const heads = 2, headDim = 8;
    int32_t const sizes[][2] = {{10, 13}, {5, 3}};
#else
    int32_t const heads = 3, headDim = 32;
    int32_t const(&sizes)[4][2] = kSizes;
#endif
    float const scale = 1.0F / sqrtf(static_cast<float>(headDim));
    for (int32_t padFirst : {1, 0})
    {
        for (int32_t shift : {kShift, 0})
        {
            Fields f;
            f.i("num_heads", {heads}).i("window_size", {kWindow, kWindow}).i("shift_size", {shift, shift});
            f.i("pad_first", {padFirst}).f("scale", scale);
            IPluginV3* fused = create("SwinFusedWindowAttention", f, "fused attention");
            for (auto const& size : sizes)
            {
                for (DataType type : {DataType::kFLOAT, DataType::kHALF})
                {
                    if (fused != nullptr && (shift != 0 || type == DataType::kHALF))
                    {
                        runFused(fused, type, 2, size[0], size[1], heads, headDim, shift, padFirst, scale, stream);
                    }
                }
            }
            delete fused;
        }
    }
}

void writeJson(char const* path, std::string const& device)
{
    FILE* f = fopen(path, "w");
    if (f == nullptr)
    {
        fprintf(stderr, "cannot write %s\n", path);
        return;
    }
    fprintf(f, "{\n  \"device\": \"%s\",\n  \"tensorrt_headers\": \"%d.%d\",\n  \"checks\": %d,\n  \"failures\": %d,\n",
        device.c_str(), NV_TENSORRT_MAJOR, NV_TENSORRT_MINOR, gChecks, gFailures);
    fprintf(f, "  \"cases\": [\n");
    for (size_t i = 0; i < gRecords.size(); ++i)
    {
        Record const& r = gRecords[i];
        fprintf(f, "    {\"case\": \"%s\", \"ok\": %s, \"error\": %.6g, \"ms\": %.4f}%s\n", r.name.c_str(),
            r.ok ? "true" : "false", isfinite(r.error) ? r.error : 1e300, r.ms, i + 1 < gRecords.size() ? "," : "");
    }
    fprintf(f, "  ]\n}\n");
    fclose(f);
}

} // namespace

int main(int argc, char** argv)
{
    char const* jsonPath = nullptr;
    for (int i = 1; i < argc; ++i)
    {
        if (strcmp(argv[i], "--json") == 0 && i + 1 < argc)
        {
            jsonPath = argv[++i];
        }
        else
        {
            fprintf(stderr, "usage: %s [--json PATH]\n", argv[0]);
            return 2;
        }
    }
#if defined(SWIN_TRT_EMULATION)
    std::string const device = "host emulator (no GPU)";
    cudaStream_t stream = nullptr;
#else
    int count = 0;
    cudaError_t const found = cudaGetDeviceCount(&count);
    if (found != cudaSuccess || count == 0)
    {
        printf("swin_trt_plugin_device_driver: no CUDA device (%s): skipped\n",
            found != cudaSuccess ? cudaGetErrorString(found) : "none");
        return 77;
    }
    cudaDeviceProp prop{};
    cudaGetDeviceProperties(&prop, 0);
    std::string const device = std::string(prop.name) + " (sm_" + std::to_string(prop.major) + std::to_string(prop.minor) + ")";
    cudaStream_t stream = nullptr;
    if (!cudaOk(cudaStreamCreate(&stream), "cudaStreamCreate"))
    {
        return 1;
    }
#endif
    setLoggerFinder(&gFinder);
    testMoves(stream);
    testAttention(stream);
    testFused(stream);
#if !defined(SWIN_TRT_EMULATION)
    cudaStreamDestroy(stream);
#endif
    for (auto const& m : gLogger.messages)
    {
        fprintf(stderr, "log: %s\n", m.c_str());
    }
    if (jsonPath != nullptr)
    {
        writeJson(jsonPath, device);
    }
    printf("swin_trt_plugin_device_driver (TensorRT %d.%d headers) on %s: %zu cases, %d checks, %d failures\n",
        NV_TENSORRT_MAJOR, NV_TENSORRT_MINOR, device.c_str(), gRecords.size(), gChecks, gFailures);
    return gFailures == 0 ? 0 : 1;
}

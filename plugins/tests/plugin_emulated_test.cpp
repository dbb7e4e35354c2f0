// swin_trt_plugin_emulated_test: the plugin library built with its kernels on the host emulator
// (swin_trt_plugins_emu: the same plugin sources, the kernel source compiled for cuda_emulator.h), driven
// through getCreators and IPluginV3 like TensorRT drives it, enqueue included, with host buffers.
//
// What it adds to swin_trt_plugin_host_test (which cannot launch a kernel without a GPU): one plugin object
// runs at several sizes, as one engine does across its optimization profile. Partition reads H and W from
// its input, reverse and attention from the feature-map input (dims only; its buffer is null here, so a read
// would crash), and every result is compared with the brute-force model of the contract (brute_force.h):
// padded and unpadded maps, shifted and not, both pad orders, float32/float16/int8 moves, float32/float16
// attention in V1 and cosine mode (Swin V2). The nodes of a graph of one size (height/width attributes) are
// run too. Int8 partition/reverse with two different scales (a weakly typed TensorRT 10 build): configured
// without error and requantized in the gather, out = saturate(round_half_even(in * in_scale / out_scale)),
// compared code by code with that formula evaluated in double.
#include "NvInferRuntime.h"

#include "brute_force.h"
#include "plugin_common.h"
#include "plugin_test_support.h"

#include <cuda_fp16.h>

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

//! (H, W) maps one engine might see: multiples of the window and padded ones, smaller than one window too.
int32_t const kSizes[][2] = {{14, 21}, {10, 13}, {7, 7}, {16, 9}, {5, 3}};

int32_t ceilTo(int32_t v, int32_t m)
{
    return (v + m - 1) / m * m;
}

int32_t windowsOf(int32_t H, int32_t W)
{
    return (ceilTo(H, kWindow) / kWindow) * (ceilTo(W, kWindow) / kWindow);
}

IPluginV3* create(char const* op, Fields& fields, char const* name)
{
    IPluginV3* p = creator(op)->createPlugin(name, fields.get(), TensorRTPhase::kRUNTIME);
    check(p != nullptr, std::string(name) + ": created");
    return p;
}

//! The partition and reverse nodes of one block (window 7, shift 3). The reverse has no height/width (its size
//! from input 1) unless `size` gives them.
struct Block
{
    IPluginV3* partition = nullptr;
    IPluginV3* reverse = nullptr;

    Block(int32_t padFirst, std::vector<int32_t> const& size = {})
    {
        Fields pf;
        pf.i("window_size", {kWindow, kWindow}).i("shift_size", {kShift, kShift}).i("pad_first", {padFirst});
        Fields rf;
        rf.i("window_size", {kWindow, kWindow}).i("shift_size", {kShift, kShift}).i("pad_first", {padFirst});
        if (!size.empty())
        {
            rf.i("height", {size[0]}).i("width", {size[1]});
        }
        partition = create("SwinWindowPartition", pf, "partition");
        reverse = create("SwinWindowReverse", rf, size.empty() ? "reverse (feature map)" : "reverse (height/width)");
    }

    Block(Block const&) = delete;
    Block& operator=(Block const&) = delete;

    ~Block()
    {
        delete partition;
        delete reverse;
    }

    bool ok() const
    {
        return partition != nullptr && reverse != nullptr;
    }
};

size_t elementSize(DataType type)
{
    return type == DataType::kFLOAT ? 4 : (type == DataType::kHALF ? 2 : 1);
}

char const* name(DataType type)
{
    return type == DataType::kFLOAT ? "float32" : (type == DataType::kHALF ? "float16" : "int8");
}

//! Partition, then reverse, of one (B, H, W, C) map by the same two plugin objects; compared row by row.
void runPartitionReverse(IPluginV3* partition, IPluginV3* reverse, int32_t padFirst, DataType type, int32_t B, int32_t H, int32_t W, int32_t C)
{
    char where[160];
    snprintf(where, sizeof(where), "%s pad_first=%d B=%d H=%d W=%d C=%d", name(type), padFirst, B, H, W, C);
    size_t const rowBytes = static_cast<size_t>(C) * elementSize(type);
    int32_t const nW = windowsOf(H, W);
    int32_t const N = kWindow * kWindow;
    size_t const pixels = static_cast<size_t>(B) * H * W;
    size_t const tokens = static_cast<size_t>(B) * nW * N;
    std::vector<uint8_t> x(pixels * rowBytes), windows(tokens * rowBytes, 0xAB), back(pixels * rowBytes, 0xCD);
    for (size_t i = 0; i < x.size(); ++i)
    {
        x[i] = static_cast<uint8_t>((i * 131 + 7) % 251 + 1); // never 0: padding rows are told apart
    }
    PluginTensorDesc xDesc = plainDesc(type, {B, H, W, C});
    PluginTensorDesc windowsDesc = plainDesc(type, {B * nW, N, C});
    void const* partitionIn[] = {x.data()};
    void* partitionOut[] = {windows.data()};
    check(runtime(partition)->enqueue(&xDesc, &windowsDesc, partitionIn, partitionOut, nullptr, nullptr) == 0,
        std::string(where) + ": partition enqueue");
    std::vector<int64_t> const sources = brute::partitionSources(H, W, kWindow, kWindow, kShift, kShift, padFirst != 0);
    std::vector<uint8_t> const zeros(rowBytes, 0);
    bool same = true;
    for (size_t row = 0; same && row < tokens; ++row)
    {
        size_t const b = row / sources.size();
        int64_t const s = sources[row % sources.size()];
        uint8_t const* expect = s < 0 ? zeros.data() : x.data() + (b * H * W + static_cast<size_t>(s)) * rowBytes;
        same = memcmp(windows.data() + row * rowBytes, expect, rowBytes) == 0;
    }
    check(same, std::string(where) + ": partition = brute-force model");

    // Reverse: its feature map is the map the block partitioned (here: x's shape); null data, dims only.
    PluginTensorDesc reverseIn[2] = {windowsDesc, plainDesc(DataType::kFLOAT, {B, H, W, 2 * C})};
    void const* reverseInputs[] = {windows.data(), nullptr};
    void* reverseOutputs[] = {back.data()};
    check(runtime(reverse)->enqueue(reverseIn, &xDesc, reverseInputs, reverseOutputs, nullptr, nullptr) == 0,
        std::string(where) + ": reverse enqueue");
    check(back == x, std::string(where) + ": reverse(partition(x)) == x");

    // Reverse of arbitrary windows: every output pixel from the token the contract names.
    std::vector<uint8_t> other(tokens * rowBytes);
    for (size_t i = 0; i < other.size(); ++i)
    {
        other[i] = static_cast<uint8_t>((i * 97 + 3) % 253);
    }
    reverseInputs[0] = other.data();
    check(runtime(reverse)->enqueue(reverseIn, &xDesc, reverseInputs, reverseOutputs, nullptr, nullptr) == 0,
        std::string(where) + ": reverse enqueue (random windows)");
    std::vector<int64_t> const tokenOf = brute::reverseSources(H, W, kWindow, kWindow, kShift, kShift, padFirst != 0);
    same = true;
    for (size_t pixel = 0; same && pixel < pixels; ++pixel)
    {
        size_t const b = pixel / tokenOf.size();
        size_t const token = b * static_cast<size_t>(nW) * N + static_cast<size_t>(tokenOf[pixel % tokenOf.size()]);
        same = memcmp(back.data() + pixel * rowBytes, other.data() + token * rowBytes, rowBytes) == 0;
    }
    check(same, std::string(where) + ": reverse = brute-force model");
}

void testPartitionReverseAtEverySize()
{
    for (int32_t padFirst : {0, 1})
    {
        Block const block(padFirst); // one pair of plugin objects for every size
        for (auto const& size : kSizes)
        {
            for (DataType type : {DataType::kFLOAT, DataType::kHALF, DataType::kINT8})
            {
                if (block.ok())
                {
                    runPartitionReverse(block.partition, block.reverse, padFirst, type, 2, size[0], size[1], 12);
                }
            }
        }
    }
}

//! The contract's requantization of one code, in double: saturate(round_half_even(code * in / out)).
//! `tie`: set when code * in / out is within 1e-4 of a rounding tie (float and double may round apart there).
int32_t requantized(int8_t code, double inScale, double outScale, bool& tie)
{
    double const v = static_cast<double>(code) * inScale / outScale;
    tie = fabs(fabs(v - floor(v)) - 0.5) < 1e-4;
    double const q = nearbyint(v); // the default rounding mode: to nearest, ties to even
    return static_cast<int32_t>(q < -128.0 ? -128.0 : (q > 127.0 ? 127.0 : q));
}

//! Finding: with int8 input and output of different scales, configurePlugin returned -1 after
//! supportsFormatCombination had offered int8 (a failed build). Now configurePlugin accepts it and enqueue
//! requantizes inside the gather: partition and reverse, both pad orders, padded maps (padding stays code 0),
//! scales that halve (ties: round half to even), triple (saturation) or change by an irregular factor.
void testInt8Requantize()
{
    struct
    {
        float inScale, outScale;
    } const scales[] = {{0.0625F, 0.125F}, {0.1875F, 0.0625F}, {0.013F, 0.047F}, {0.047F, 0.013F}};
    int32_t const B = 2, C = 12, N = kWindow * kWindow;
    for (int32_t padFirst : {0, 1})
    {
        Block const block(padFirst);
        if (!block.ok())
        {
            return;
        }
        for (auto const& size : {kSizes[0], kSizes[1], kSizes[4]})
        {
            int32_t const H = size[0], W = size[1];
            int32_t const nW = windowsOf(H, W);
            size_t const pixels = static_cast<size_t>(B) * H * W;
            size_t const tokens = static_cast<size_t>(B) * nW * N;
            std::vector<int8_t> x(pixels * C), windows(tokens * C, 99), back(pixels * C, 99);
            for (size_t i = 0; i < x.size(); ++i)
            {
                x[i] = static_cast<int8_t>(static_cast<int32_t>((i * 131 + 7) % 256) - 128); // every code
            }
            std::vector<int64_t> const sources
                = brute::partitionSources(H, W, kWindow, kWindow, kShift, kShift, padFirst != 0);
            std::vector<int64_t> const tokenOf
                = brute::reverseSources(H, W, kWindow, kWindow, kShift, kShift, padFirst != 0);
            for (auto const& s : scales)
            {
                char where[160];
                snprintf(where, sizeof(where), "int8 requantize %g -> %g pad_first=%d map %dx%d", s.inScale,
                    s.outScale, padFirst, H, W);
                // Build time: partition (x -> windows) and reverse (windows + feature map -> y), scales differing.
                DynamicPluginTensorDesc pio[2] = {desc(DataType::kINT8, {B, H, W, C}), desc(DataType::kINT8, {B * nW, N, C})};
                pio[0].desc.scale = s.inScale;
                pio[1].desc.scale = s.outScale;
                DynamicPluginTensorDesc rin[2] = {pio[1], desc(DataType::kFLOAT, {B, H, W, 2 * C})};
                rin[0].desc.scale = s.inScale;
                DynamicPluginTensorDesc rout = pio[0];
                rout.desc.scale = s.outScale;
                gLogger.messages.clear();
                check(build(block.partition)->configurePlugin(&pio[0], 1, &pio[1], 1) == 0
                        && build(block.reverse)->configurePlugin(rin, 2, &rout, 1) == 0 && gLogger.messages.empty(),
                    std::string(where) + ": configurePlugin accepts two scales, no error logged");
                float const ratio = swin_trt::plugin::SwinDataMovementPlugin::int8Ratio(pio[0].desc, pio[1].desc);
                check(ratio == s.inScale / s.outScale, std::string(where) + ": ratio in_scale / out_scale");

                // Run time: partition.
                void const* pin[] = {x.data()};
                void* pout[] = {windows.data()};
                check(runtime(block.partition)->enqueue(&pio[0].desc, &pio[1].desc, pin, pout, nullptr, nullptr) == 0,
                    std::string(where) + ": partition enqueue");
                bool const exact = s.inScale == 0.0625F || s.inScale == 0.1875F; // ratios 0.5 and 3: no float slack
                size_t wrong = 0, ties = 0;
                for (size_t row = 0; row < tokens; ++row)
                {
                    size_t const b = row / sources.size();
                    int64_t const src = sources[row % sources.size()];
                    for (int32_t c = 0; c < C; ++c)
                    {
                        bool tie = false;
                        int32_t const expect = src < 0 ? 0
                                                       : requantized(x[(b * H * W + static_cast<size_t>(src)) * C + c],
                                                           s.inScale, s.outScale, tie);
                        int32_t const got = windows[row * C + c];
                        ties += tie ? 1 : 0;
                        wrong += got == expect || (tie && !exact && abs(got - expect) == 1) ? 0 : 1;
                    }
                }
                check(wrong == 0, std::string(where) + ": partition codes = saturate(round(in * in_scale / out_scale)) ("
                        + std::to_string(wrong) + " wrong)");

                // Run time: reverse of those windows (its input scale s.inScale, output s.outScale).
                void const* rinputs[] = {windows.data(), nullptr};
                void* routputs[] = {back.data()};
                PluginTensorDesc const rinDesc[2] = {rin[0].desc, rin[1].desc};
                check(runtime(block.reverse)->enqueue(rinDesc, &rout.desc, rinputs, routputs, nullptr, nullptr) == 0,
                    std::string(where) + ": reverse enqueue");
                wrong = 0;
                for (size_t pixel = 0; pixel < pixels; ++pixel)
                {
                    size_t const b = pixel / tokenOf.size();
                    size_t const token = b * static_cast<size_t>(nW) * N + static_cast<size_t>(tokenOf[pixel % tokenOf.size()]);
                    for (int32_t c = 0; c < C; ++c)
                    {
                        bool tie = false;
                        int32_t const expect = requantized(windows[token * C + c], s.inScale, s.outScale, tie);
                        int32_t const got = back[pixel * C + c];
                        wrong += got == expect || (tie && !exact && abs(got - expect) == 1) ? 0 : 1;
                    }
                }
                check(wrong == 0, std::string(where) + ": reverse codes = saturate(round(in * in_scale / out_scale)) ("
                        + std::to_string(wrong) + " wrong)");
                if (s.inScale == 0.0625F) // the ratio 0.5 is exact: its ties must round to even, never apart
                {
                    check(ties > 0, std::string(where) + ": ties exercised");
                }
            }
        }
    }
}

//! A graph of one size still runs as before: reverse with height/width and one input.
void testSizedReverse()
{
    for (int32_t padFirst : {0, 1})
    {
        Block const block(padFirst, {10, 13});
        if (!block.ok())
        {
            return;
        }
        // Same data path; the reverse node reads only input 0 (its descriptor array has one entry).
        int32_t const B = 3, H = 10, W = 13, C = 8;
        int32_t const nW = windowsOf(H, W);
        std::vector<float> x(static_cast<size_t>(B) * H * W * C), windows(static_cast<size_t>(B) * nW * 49 * C),
            back(x.size(), -1.0F);
        for (size_t i = 0; i < x.size(); ++i)
        {
            x[i] = static_cast<float>(i) * 0.5F + 1.0F;
        }
        PluginTensorDesc xDesc = plainDesc(DataType::kFLOAT, {B, H, W, C});
        PluginTensorDesc wDesc = plainDesc(DataType::kFLOAT, {B * nW, 49, C});
        void const* in[] = {x.data()};
        void* out[] = {windows.data()};
        check(runtime(block.partition)->enqueue(&xDesc, &wDesc, in, out, nullptr, nullptr) == 0, "sized: partition");
        void const* rin[] = {windows.data()};
        void* rout[] = {back.data()};
        check(runtime(block.reverse)->enqueue(&wDesc, &xDesc, rin, rout, nullptr, nullptr) == 0 && back == x,
            "sized: reverse(partition(x)) == x with height/width attributes");
    }
}

float roundHalf(float v)
{
    return __half2float(__float2half_rn(v));
}

//! One attention node at one size: a shifted node without height/width takes the grid from the feature map
//! (input 2, dims only); an unshifted one reads no input 2 at all.
void runAttention(IPluginV3* attention, DataType type, int32_t B, int32_t H, int32_t W,
    int32_t heads, int32_t headDim, int32_t shift, float scale, std::vector<float> const* headScale = nullptr)
{
    char where[160];
    snprintf(where, sizeof(where), "attention%s %s B=%d map %dx%d heads=%d hd=%d shift=%d",
        headScale != nullptr ? " (cosine)" : "", name(type), B, H, W, heads, headDim, shift);
    int32_t const N = kWindow * kWindow;
    int32_t const Hp = ceilTo(H, kWindow), Wp = ceilTo(W, kWindow);
    int32_t const rows = B * windowsOf(H, W);
    int32_t const C = heads * headDim;
    int32_t const L = (2 * kWindow - 1) * (2 * kWindow - 1);
    std::mt19937 rng(static_cast<uint32_t>(H * 100 + W));
    std::normal_distribution<float> normal(0.0F, 1.0F);
    bool const half = type == DataType::kHALF;
    std::vector<float> qkv(static_cast<size_t>(rows) * N * 3 * C), table(static_cast<size_t>(L) * heads);
    for (float& v : qkv)
    {
        v = half ? roundHalf(normal(rng)) : normal(rng);
    }
    std::uniform_real_distribution<float> cpb(0.0F, 16.0F); // V2's folded continuous position bias
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
    PluginTensorDesc in[3] = {plainDesc(type, {rows, N, 3 * C}), plainDesc(DataType::kFLOAT, {L, heads}),
        plainDesc(DataType::kINT8, {B, H, W, C})};
    PluginTensorDesc out = plainDesc(type, {rows, N, C});
    void const* inputs[] = {half ? static_cast<void const*>(qkvH.data()) : qkv.data(), table.data(), nullptr};
    void* outputs[] = {half ? static_cast<void*>(outH.data()) : outF.data()};
    check(runtime(attention)->enqueue(in, &out, inputs, outputs, nullptr, nullptr) == 0, std::string(where) + ": enqueue");
    if (half)
    {
        for (size_t i = 0; i < outH.size(); ++i)
        {
            outF[i] = __half2float(outH[i]);
        }
    }
    std::vector<double> const expect = brute::attention(
        qkv, table, rows, heads, headDim, kWindow, kWindow, shift, shift, Hp, Wp, scale, headScale);
    double const rel = brute::relativeError(outF, expect);
    double const tol = half ? 2e-3 : 1e-5;
    char msg[64];
    snprintf(msg, sizeof(msg), ": relative error %.3g > %.1g", rel, tol);
    check(rel <= tol, std::string(where) + msg);
}

void testAttentionAtEverySize()
{
    int32_t const heads = 2, headDim = 8;
    float const scale = 1.0F / sqrtf(static_cast<float>(headDim));
    Fields shifted;
    shifted.i("num_heads", {heads}).i("window_size", {kWindow, kWindow}).i("shift_size", {kShift, kShift});
    shifted.f("scale", scale);
    Fields plain;
    plain.i("num_heads", {heads}).i("window_size", {kWindow, kWindow}).i("shift_size", {0, 0}).f("scale", scale);
    IPluginV3* attention = create("SwinWindowAttention", shifted, "attention (feature map)");
    IPluginV3* unshifted = create("SwinWindowAttention", plain, "attention (no shift, no size)");
    if (attention != nullptr && unshifted != nullptr)
    {
        for (auto const& size : kSizes)
        {
            for (DataType type : {DataType::kFLOAT, DataType::kHALF})
            {
                runAttention(attention, type, 2, size[0], size[1], heads, headDim, kShift, scale);
            }
        }
        runAttention(unshifted, DataType::kFLOAT, 2, 14, 21, heads, headDim, 0, scale);
    }
    delete attention;
    delete unshifted;

    // Cosine mode (Swin V2): scale 1, per-head scales up to the clamp (100), any size and one size.
    std::vector<float> const headScale = {3.5F, 100.0F};
    Fields cosine;
    cosine.i("num_heads", {heads}).i("window_size", {kWindow, kWindow}).i("shift_size", {kShift, kShift});
    cosine.f("scale", 1.0F).i("cosine", {1}).fs("head_scale", headScale);
    Fields sized;
    sized.i("num_heads", {heads}).i("window_size", {kWindow, kWindow}).i("shift_size", {kShift, kShift});
    sized.i("height", {14}).i("width", {21}).f("scale", 1.0F).i("cosine", {1}).fs("head_scale", headScale);
    IPluginV3* anySize = create("SwinWindowAttention", cosine, "cosine attention (feature map)");
    IPluginV3* oneSize = create("SwinWindowAttention", sized, "cosine attention (height/width)");
    if (anySize != nullptr && oneSize != nullptr)
    {
        for (auto const& size : kSizes)
        {
            for (DataType type : {DataType::kFLOAT, DataType::kHALF})
            {
                runAttention(anySize, type, 2, size[0], size[1], heads, headDim, kShift, 1.0F, &headScale);
            }
        }
        runAttention(oneSize, DataType::kHALF, 3, 14, 21, heads, headDim, kShift, 1.0F, &headScale);
    }
    delete anySize;
    delete oneSize;
}

} // namespace

void testWindows3dEmulated(); // plugin_emulated_test_3d.cpp
void testFusedAttentionEmulated(); // plugin_emulated_test_fused.cpp

int main()
{
    setLoggerFinder(&gFinder);
    testPartitionReverseAtEverySize();
    testSizedReverse();
    testInt8Requantize();
    testAttentionAtEverySize();
    testWindows3dEmulated();
    testFusedAttentionEmulated();
    for (auto const& m : gLogger.messages)
    {
        fprintf(stderr, "log: %s\n", m.c_str());
    }
    printf("swin_trt_plugin_emulated_test (TensorRT %d.%d headers): %d checks, %d failures\n", NV_TENSORRT_MAJOR,
        NV_TENSORRT_MINOR, gChecks, gFailures);
    return gFailures == 0 ? 0 : 1;
}

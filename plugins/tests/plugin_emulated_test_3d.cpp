// 3D windows (Video Swin) through the plugin objects on the emulated kernels, enqueue included, part of
// swin_trt_plugin_emulated_test: one partition/reverse pair and one attention node of a graph of any size run at
// several clip sizes (T, H, W), padded and not, smaller than the window in T, float32/float16/int8 moves and
// float32/float16 attention with the bias table and with a dense (heads, N, N) bias. The models here build the
// padded, rolled clip and the relative offsets from coordinates, step by step (not swin_index.h).
#include "NvInferRuntime.h"

#include "plugin_test_support.h"

#include <cuda_fp16.h>

#include <math.h>
#include <stdio.h>
#include <string.h>

#include <random>
#include <string>
#include <vector>

using namespace nvinfer1;
using namespace swin_test;

namespace
{

constexpr int32_t kWt = 2, kWh = 3, kWw = 3; // window (T, H, W)
constexpr int32_t kSt = 1, kSh = 1, kSw = 2; // shift
constexpr int32_t kN = kWt * kWh * kWw;

//! (T, H, W) clips one engine might see: multiples of the window, padded ones, shorter than the window in T.
int32_t const kClips[][3] = {{4, 6, 6}, {5, 7, 4}, {1, 3, 3}, {3, 2, 8}};

int32_t ceilTo(int32_t v, int32_t m)
{
    return (v + m - 1) / m * m;
}

int32_t mod(int32_t a, int32_t m)
{
    return ((a % m) + m) % m;
}

IPluginV3* create(char const* op, Fields& fields, char const* name)
{
    IPluginV3* p = creator(op)->createPlugin(name, fields.get(), TensorRTPhase::kRUNTIME);
    check(p != nullptr, std::string(name) + ": created");
    return p;
}

size_t elementSize(DataType type)
{
    return type == DataType::kFLOAT ? 4 : (type == DataType::kHALF ? 2 : 1);
}

//! For one clip: the flat source position ((t * H + y) * W + x) of every window token, -1 for padding. Video
//! Swin's order: pad to the window, roll the padded clip by (-st, -sh, -sw), split into windows.
std::vector<int64_t> partitionSources(int32_t T, int32_t H, int32_t W)
{
    int32_t const Tp = ceilTo(T, kWt), Hp = ceilTo(H, kWh), Wp = ceilTo(W, kWw);
    std::vector<int64_t> padded(static_cast<size_t>(Tp) * Hp * Wp, -1);
    for (int32_t t = 0; t < T; ++t)
    {
        for (int32_t y = 0; y < H; ++y)
        {
            for (int32_t x = 0; x < W; ++x)
            {
                padded[(static_cast<size_t>(t) * Hp + y) * Wp + x] = (static_cast<int64_t>(t) * H + y) * W + x;
            }
        }
    }
    std::vector<int64_t> out;
    for (int32_t wt = 0; wt < Tp / kWt; ++wt)
    {
        for (int32_t wy = 0; wy < Hp / kWh; ++wy)
        {
            for (int32_t wx = 0; wx < Wp / kWw; ++wx)
            {
                for (int32_t it = 0; it < kWt; ++it)
                {
                    for (int32_t iy = 0; iy < kWh; ++iy)
                    {
                        for (int32_t ix = 0; ix < kWw; ++ix)
                        {
                            // torch.roll by -shift: out[p] = in[(p + shift) mod P]
                            int32_t const t = mod(wt * kWt + it + kSt, Tp);
                            int32_t const y = mod(wy * kWh + iy + kSh, Hp);
                            int32_t const x = mod(wx * kWw + ix + kSw, Wp);
                            out.push_back(padded[(static_cast<size_t>(t) * Hp + y) * Wp + x]);
                        }
                    }
                }
            }
        }
    }
    return out;
}

void runPartitionReverse(IPluginV3* partition, IPluginV3* reverse, DataType type, int32_t B, int32_t T, int32_t H,
    int32_t W, int32_t C)
{
    char where[160];
    snprintf(where, sizeof(where), "3D type %d B=%d clip %dx%dx%d C=%d", static_cast<int32_t>(type), B, T, H, W, C);
    size_t const rowBytes = static_cast<size_t>(C) * elementSize(type);
    std::vector<int64_t> const sources = partitionSources(T, H, W);
    size_t const perClip = sources.size();
    size_t const positions = static_cast<size_t>(B) * T * H * W;
    size_t const tokens = static_cast<size_t>(B) * perClip;
    std::vector<uint8_t> x(positions * rowBytes), windows(tokens * rowBytes, 0xAB), back(positions * rowBytes, 0xCD);
    for (size_t i = 0; i < x.size(); ++i)
    {
        x[i] = static_cast<uint8_t>((i * 131 + 7) % 251 + 1); // never 0: padding rows are told apart
    }
    PluginTensorDesc xDesc = plainDesc(type, {B, T, H, W, C});
    PluginTensorDesc windowsDesc = plainDesc(type, {static_cast<int64_t>(tokens / kN), kN, C});
    void const* partitionIn[] = {x.data()};
    void* partitionOut[] = {windows.data()};
    check(runtime(partition)->enqueue(&xDesc, &windowsDesc, partitionIn, partitionOut, nullptr, nullptr) == 0,
        std::string(where) + ": partition enqueue");
    std::vector<uint8_t> const zeros(rowBytes, 0);
    bool same = true;
    for (size_t row = 0; same && row < tokens; ++row)
    {
        size_t const b = row / perClip;
        int64_t const s = sources[row % perClip];
        uint8_t const* expect
            = s < 0 ? zeros.data() : x.data() + (b * T * H * W + static_cast<size_t>(s)) * rowBytes;
        same = memcmp(windows.data() + row * rowBytes, expect, rowBytes) == 0;
    }
    check(same, std::string(where) + ": partition = the pad, roll, split model");

    PluginTensorDesc reverseIn[2] = {windowsDesc, plainDesc(DataType::kHALF, {B, T, H, W, 1})};
    void const* reverseInputs[] = {windows.data(), nullptr}; // the feature map: dims only
    void* reverseOutputs[] = {back.data()};
    check(runtime(reverse)->enqueue(reverseIn, &xDesc, reverseInputs, reverseOutputs, nullptr, nullptr) == 0,
        std::string(where) + ": reverse enqueue");
    check(back == x, std::string(where) + ": reverse(partition(x)) == x");
}

void testPartitionReverse3d()
{
    Fields pf;
    pf.i("window_size", {kWt, kWh, kWw}).i("shift_size", {kSt, kSh, kSw}).i("pad_first", {1});
    Fields rf;
    rf.i("window_size", {kWt, kWh, kWw}).i("shift_size", {kSt, kSh, kSw}).i("pad_first", {1});
    IPluginV3* partition = create("SwinWindowPartition", pf, "partition 3D");
    IPluginV3* reverse = create("SwinWindowReverse", rf, "reverse 3D (feature map)");
    if (partition != nullptr && reverse != nullptr)
    {
        for (auto const& clip : kClips)
        {
            for (DataType type : {DataType::kFLOAT, DataType::kHALF, DataType::kINT8})
            {
                runPartitionReverse(partition, reverse, type, 2, clip[0], clip[1], clip[2], 3);
            }
        }
    }
    delete partition;
    delete reverse;
}

//! Region of padded position p along an axis (the original Swin's three slices), 0 without a shift.
int32_t region(int32_t p, int32_t P, int32_t w, int32_t s)
{
    return s == 0 ? 0 : (p < P - w ? 0 : (p < P - s ? 1 : 2));
}

//! Window attention over (Tp, Hp, Wp) in double precision: bias (heads, N, N) as added to every window.
std::vector<double> attentionModel(std::vector<float> const& qkv, std::vector<double> const& bias, int32_t rows,
    int32_t heads, int32_t headDim, int32_t Tp, int32_t Hp, int32_t Wp, double scale)
{
    int32_t const C = heads * headDim;
    int32_t const nWh = Hp / kWh, nWw = Wp / kWw, nW = (Tp / kWt) * nWh * nWw;
    std::vector<double> out(static_cast<size_t>(rows) * kN * C);
    std::vector<double> p(kN);
    auto at = [&](int32_t r, int32_t t, int32_t part, int32_t h, int32_t d) {
        return static_cast<double>(qkv[(static_cast<size_t>(r) * kN + t) * 3 * C + part * C + h * headDim + d]);
    };
    auto regionOf = [&](int32_t w, int32_t t) {
        int32_t const wt = w / (nWh * nWw), wy = (w / nWw) % nWh, wx = w % nWw;
        return 9 * region(wt * kWt + t / (kWh * kWw), Tp, kWt, kSt)
            + 3 * region(wy * kWh + (t / kWw) % kWh, Hp, kWh, kSh) + region(wx * kWw + t % kWw, Wp, kWw, kSw);
    };
    for (int32_t r = 0; r < rows; ++r)
    {
        for (int32_t h = 0; h < heads; ++h)
        {
            for (int32_t i = 0; i < kN; ++i)
            {
                double mx = -1e300;
                for (int32_t j = 0; j < kN; ++j)
                {
                    double dot = 0.0;
                    for (int32_t d = 0; d < headDim; ++d)
                    {
                        dot += at(r, i, 0, h, d) * at(r, j, 1, h, d);
                    }
                    double v = scale * dot + bias[(static_cast<size_t>(h) * kN + i) * kN + j];
                    v += regionOf(r % nW, i) != regionOf(r % nW, j) ? -100.0 : 0.0;
                    p[j] = v;
                    mx = v > mx ? v : mx;
                }
                double sum = 0.0;
                for (double& v : p)
                {
                    v = exp(v - mx);
                    sum += v;
                }
                for (int32_t d = 0; d < headDim; ++d)
                {
                    double o = 0.0;
                    for (int32_t j = 0; j < kN; ++j)
                    {
                        o += p[j] * at(r, j, 2, h, d);
                    }
                    out[(static_cast<size_t>(r) * kN + i) * C + h * headDim + d] = o / sum;
                }
            }
        }
    }
    return out;
}

void runAttention(IPluginV3* attention, DataType type, bool dense, int32_t B, int32_t T, int32_t H, int32_t W,
    int32_t heads, int32_t headDim, float scale)
{
    char where[160];
    snprintf(where, sizeof(where), "attention 3D %s bias %s B=%d clip %dx%dx%d",
        type == DataType::kHALF ? "fp16" : "fp32", dense ? "dense" : "table", B, T, H, W);
    int32_t const Tp = ceilTo(T, kWt), Hp = ceilTo(H, kWh), Wp = ceilTo(W, kWw);
    int32_t const rows = B * (Tp / kWt) * (Hp / kWh) * (Wp / kWw);
    int32_t const C = heads * headDim;
    int32_t const R = (2 * kWt - 1) * (2 * kWh - 1) * (2 * kWw - 1);
    std::mt19937 rng(static_cast<uint32_t>(T * 10000 + H * 100 + W));
    std::normal_distribution<float> normal(0.0F, 1.0F);
    bool const half = type == DataType::kHALF;
    std::vector<float> qkv(static_cast<size_t>(rows) * kN * 3 * C), table(static_cast<size_t>(R) * heads);
    for (float& v : qkv)
    {
        v = half ? __half2float(__float2half_rn(normal(rng))) : normal(rng);
    }
    for (float& v : table)
    {
        v = normal(rng);
    }
    // The bias every window gets: gathered from the table with offsets from coordinates, or given dense.
    std::vector<double> bias(static_cast<size_t>(heads) * kN * kN);
    std::vector<float> denseBias(bias.size());
    for (int32_t h = 0; h < heads; ++h)
    {
        for (int32_t i = 0; i < kN; ++i)
        {
            for (int32_t j = 0; j < kN; ++j)
            {
                size_t const k = (static_cast<size_t>(h) * kN + i) * kN + j;
                int32_t const dt = i / (kWh * kWw) - j / (kWh * kWw) + kWt - 1;
                int32_t const dy = (i / kWw) % kWh - (j / kWw) % kWh + kWh - 1;
                int32_t const dx = i % kWw - j % kWw + kWw - 1;
                int32_t const rpi = (dt * (2 * kWh - 1) + dy) * (2 * kWw - 1) + dx;
                float const gathered = table[static_cast<size_t>(rpi) * heads + h];
                denseBias[k] = dense ? normal(rng) : gathered;
                bias[k] = denseBias[k];
            }
        }
    }
    std::vector<__half> qkvH(qkv.size()), outH(static_cast<size_t>(rows) * kN * C);
    for (size_t i = 0; i < qkv.size(); ++i)
    {
        qkvH[i] = __float2half_rn(qkv[i]);
    }
    std::vector<float> outF(outH.size(), NAN);
    PluginTensorDesc in[3] = {plainDesc(type, {rows, kN, 3 * C}),
        dense ? plainDesc(DataType::kFLOAT, {heads, kN, kN}) : plainDesc(DataType::kFLOAT, {R, heads}),
        plainDesc(DataType::kINT8, {B, T, H, W, C})};
    PluginTensorDesc out = plainDesc(type, {rows, kN, C});
    void const* inputs[] = {half ? static_cast<void const*>(qkvH.data()) : qkv.data(),
        dense ? denseBias.data() : table.data(), nullptr};
    void* outputs[] = {half ? static_cast<void*>(outH.data()) : outF.data()};
    check(runtime(attention)->enqueue(in, &out, inputs, outputs, nullptr, nullptr) == 0,
        std::string(where) + ": enqueue");
    for (size_t i = 0; half && i < outH.size(); ++i)
    {
        outF[i] = __half2float(outH[i]);
    }
    std::vector<double> const expect = attentionModel(qkv, bias, rows, heads, headDim, Tp, Hp, Wp, scale);
    double maxErr = 0.0, maxRef = 0.0;
    for (size_t i = 0; i < expect.size(); ++i)
    {
        double const err = fabs(static_cast<double>(outF[i]) - expect[i]);
        maxErr = err > maxErr || err != err ? (err != err ? INFINITY : err) : maxErr;
        maxRef = fabs(expect[i]) > maxRef ? fabs(expect[i]) : maxRef;
    }
    // float32: a few ulps of the float32 accumulations over N = 18 tokens and head_dim 8; float16 output: half
    // an ulp of float16 (2^-11) on top.
    double const tol = half ? 1e-3 : 1e-5;
    char msg[64];
    snprintf(msg, sizeof(msg), ": relative error %.3g > %.1g", maxErr / maxRef, tol);
    check(maxErr <= tol * maxRef, std::string(where) + msg);
}

void testAttention3d()
{
    int32_t const heads = 2, headDim = 8;
    float const scale = 1.0F / sqrtf(static_cast<float>(headDim));
    Fields fields;
    fields.i("num_heads", {heads}).i("window_size", {kWt, kWh, kWw}).i("shift_size", {kSt, kSh, kSw});
    fields.f("scale", scale);
    IPluginV3* attention = create("SwinWindowAttention", fields, "attention 3D (feature map)");
    if (attention != nullptr)
    {
        for (auto const& clip : kClips)
        {
            for (DataType type : {DataType::kFLOAT, DataType::kHALF})
            {
                for (bool dense : {false, true})
                {
                    runAttention(attention, type, dense, 2, clip[0], clip[1], clip[2], heads, headDim, scale);
                }
            }
        }
    }
    delete attention;
}

} // namespace

//! Called by swin_trt_plugin_emulated_test's main.
void testWindows3dEmulated()
{
    testPartitionReverse3d();
    testAttention3d();
}

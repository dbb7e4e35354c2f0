// SwinFusedWindowAttention through its plugin object on the emulated kernels, enqueue included, part of
// swin_trt_plugin_emulated_test: one node of a graph of any size runs at several map sizes (padded and not,
// smaller than the window), 2D windows in both pad orders and 3D windows, shifted and not, with the bias table and
// a dense (heads, N, N) bias, float32 and float16 I/O (float32 or float16 bias), V1 and cosine attention. The
// model here is brute force in double: it cuts the windows from the map with coordinates (pad, roll, split, per
// axis, not swin_index.h), uses the given pad row for padded tokens, runs window attention with the original
// Swin's region mask and puts each context row back at its token's map position. Every map row must be written
// (the output starts as NaN) and no padded row anywhere.
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

int32_t ceilTo(int32_t v, int32_t m)
{
    return (v + m - 1) / m * m;
}

int32_t mod(int32_t a, int32_t m)
{
    return ((a % m) + m) % m;
}

//! One node's window, shift and pad order: (T, H, W) axes, a 2D node being wt = 1, st = 0.
struct Node
{
    int32_t window[3];
    int32_t shift[3];
    int32_t rank; // 2 or 3
    int32_t padFirst;
    int32_t heads;
    int32_t headDim;
    std::vector<float> headScale; // empty: V1

    int32_t tokens() const
    {
        return window[0] * window[1] * window[2];
    }
};

//! Along one axis (map length `size`, padded `padded`): the map index of padded-grid position p, or -1 for padding.
//! padFirst: pad, then roll the padded axis by -shift; else roll the map by -shift, then pad.
int32_t source1d(int32_t p, int32_t size, int32_t padded, int32_t shift, int32_t padFirst)
{
    if (padFirst != 0)
    {
        int32_t const q = mod(p + shift, padded);
        return q < size ? q : -1;
    }
    return p < size ? mod(p + shift, size) : -1;
}

//! Region of padded position p along an axis (the original Swin's three slices), 0 without a shift.
int32_t region(int32_t p, int32_t P, int32_t w, int32_t s)
{
    return s == 0 ? 0 : (p < P - w ? 0 : (p < P - s ? 1 : 2));
}

//! The fused op in double: qkv (B, T, H, W, 3C) -> context (B, T, H, W, C); bias (heads, N, N) per window.
std::vector<double> fusedModel(Node const& n, std::vector<float> const& qkv, std::vector<float> const& padRow,
    std::vector<double> const& bias, double scale, int32_t B, int32_t T, int32_t H, int32_t W)
{
    int32_t const size[3] = {T, H, W};
    int32_t P[3], nWin[3];
    for (int32_t a = 0; a < 3; ++a)
    {
        P[a] = ceilTo(size[a], n.window[a]);
        nWin[a] = P[a] / n.window[a];
    }
    int32_t const N = n.tokens(), hd = n.headDim, C = n.heads * hd;
    std::vector<double> out(static_cast<size_t>(B) * T * H * W * C, NAN);
    std::vector<int64_t> src(N);
    std::vector<int32_t> reg(N);
    std::vector<double> p(N);
    for (int32_t b = 0; b < B; ++b)
    {
        for (int32_t wz = 0; wz < nWin[0]; ++wz)
        for (int32_t wy = 0; wy < nWin[1]; ++wy)
        for (int32_t wx = 0; wx < nWin[2]; ++wx)
        {
            // The window's tokens: map position (or -1) and shift-mask region.
            for (int32_t t = 0; t < N; ++t)
            {
                int32_t const g[3] = {wz * n.window[0] + t / (n.window[1] * n.window[2]),
                    wy * n.window[1] + (t / n.window[2]) % n.window[1], wx * n.window[2] + t % n.window[2]};
                int64_t pos = 0;
                int32_t r = 0;
                for (int32_t a = 0; a < 3; ++a)
                {
                    int32_t const s = source1d(g[a], size[a], P[a], n.shift[a], n.padFirst);
                    pos = (pos < 0 || s < 0) ? -1 : pos * size[a] + s;
                    r = 3 * r + region(g[a], P[a], n.window[a], n.shift[a]);
                }
                src[t] = pos < 0 ? -1 : static_cast<int64_t>(b) * T * H * W + pos;
                reg[t] = r;
            }
            auto at = [&](int32_t t, int32_t part, int32_t h, int32_t d) {
                size_t const k = static_cast<size_t>(part * C + h * hd + d);
                return static_cast<double>(src[t] < 0 ? padRow[k] : qkv[static_cast<size_t>(src[t]) * 3 * C + k]);
            };
            for (int32_t h = 0; h < n.heads; ++h)
            {
                for (int32_t i = 0; i < N; ++i)
                {
                    if (src[i] < 0)
                    {
                        continue; // a padded query row is written nowhere
                    }
                    double mx = -1e300;
                    for (int32_t j = 0; j < N; ++j)
                    {
                        double dot = 0.0, qq = 0.0, kk = 0.0;
                        for (int32_t d = 0; d < hd; ++d)
                        {
                            dot += at(i, 0, h, d) * at(j, 1, h, d);
                            qq += at(i, 0, h, d) * at(i, 0, h, d);
                            kk += at(j, 1, h, d) * at(j, 1, h, d);
                        }
                        double v = n.headScale.empty()
                            ? scale * dot
                            : n.headScale[static_cast<size_t>(h)] * dot / (fmax(sqrt(qq), 1e-12) * fmax(sqrt(kk), 1e-12));
                        v += bias[(static_cast<size_t>(h) * N + i) * N + j] + (reg[i] != reg[j] ? -100.0 : 0.0);
                        p[j] = v;
                        mx = v > mx ? v : mx;
                    }
                    double sum = 0.0;
                    for (double& v : p)
                    {
                        v = exp(v - mx);
                        sum += v;
                    }
                    for (int32_t d = 0; d < hd; ++d)
                    {
                        double o = 0.0;
                        for (int32_t j = 0; j < N; ++j)
                        {
                            o += p[j] * at(j, 2, h, d);
                        }
                        out[static_cast<size_t>(src[i]) * C + h * hd + d] = o / sum;
                    }
                }
            }
        }
    }
    return out;
}

IPluginV3* createNode(Node const& n, float scale, char const* name)
{
    Fields f;
    f.i("num_heads", {n.heads});
    if (n.rank == 3)
    {
        f.i("window_size", {n.window[0], n.window[1], n.window[2]}).i("shift_size", {n.shift[0], n.shift[1], n.shift[2]});
    }
    else
    {
        f.i("window_size", {n.window[1], n.window[2]}).i("shift_size", {n.shift[1], n.shift[2]});
    }
    f.i("pad_first", {n.padFirst}).f("scale", scale);
    if (!n.headScale.empty())
    {
        f.i("cosine", {1}).fs("head_scale", n.headScale);
    }
    IPluginV3* p = creator("SwinFusedWindowAttention")->createPlugin(name, f.get(), TensorRTPhase::kRUNTIME);
    check(p != nullptr, std::string(name) + ": created");
    return p;
}

float roundTo(float v, bool half)
{
    return half ? __half2float(__float2half_rn(v)) : v;
}

void runFused(IPluginV3* node, Node const& n, float scale, DataType type, DataType biasType, bool dense, int32_t B,
    int32_t T, int32_t H, int32_t W, std::string const& what)
{
    char where[200];
    snprintf(where, sizeof(where), "%s %s bias %s %s B=%d map %dx%dx%d", what.c_str(),
        type == DataType::kHALF ? "fp16" : "fp32", dense ? "dense" : "table",
        biasType == DataType::kHALF ? "fp16" : "fp32", B, T, H, W);
    int32_t const N = n.tokens(), C = n.heads * n.headDim;
    int32_t const wt = n.window[0], wh = n.window[1], ww = n.window[2];
    int32_t const R = (2 * wt - 1) * (2 * wh - 1) * (2 * ww - 1);
    std::mt19937 rng(static_cast<uint32_t>(T * 10000 + H * 100 + W + (dense ? 7 : 0)));
    std::normal_distribution<float> normal(0.0F, 1.0F);
    bool const half = type == DataType::kHALF;
    bool const halfBias = biasType == DataType::kHALF;
    size_t const positions = static_cast<size_t>(B) * T * H * W;
    std::vector<float> qkv(positions * 3 * C), padRow(static_cast<size_t>(3) * C), table(static_cast<size_t>(R) * n.heads);
    for (float& v : qkv)
    {
        v = roundTo(normal(rng), half);
    }
    for (float& v : padRow)
    {
        v = roundTo(normal(rng), half); // a qkv Linear's bias: padded tokens are not zero
    }
    for (float& v : table)
    {
        v = roundTo(normal(rng), halfBias);
    }
    std::vector<double> bias(static_cast<size_t>(n.heads) * N * N);
    std::vector<float> denseBias(bias.size());
    for (int32_t h = 0; h < n.heads; ++h)
    {
        for (int32_t i = 0; i < N; ++i)
        {
            for (int32_t j = 0; j < N; ++j)
            {
                size_t const k = (static_cast<size_t>(h) * N + i) * N + j;
                int32_t const dt = i / (wh * ww) - j / (wh * ww) + wt - 1;
                int32_t const dy = (i / ww) % wh - (j / ww) % wh + wh - 1;
                int32_t const dx = i % ww - j % ww + ww - 1;
                int32_t const rpi = (dt * (2 * wh - 1) + dy) * (2 * ww - 1) + dx;
                denseBias[k] = dense ? roundTo(normal(rng), halfBias) : table[static_cast<size_t>(rpi) * n.heads + h];
                bias[k] = denseBias[k];
            }
        }
    }
    std::vector<float> const& biasF = dense ? denseBias : table;
    std::vector<__half> qkvH(qkv.size()), padH(padRow.size()), biasH(biasF.size()), outH(positions * C);
    for (size_t i = 0; i < qkv.size(); ++i)
    {
        qkvH[i] = __float2half_rn(qkv[i]);
    }
    for (size_t i = 0; i < padRow.size(); ++i)
    {
        padH[i] = __float2half_rn(padRow[i]);
    }
    for (size_t i = 0; i < biasF.size(); ++i)
    {
        biasH[i] = __float2half_rn(biasF[i]);
    }
    std::vector<float> outF(outH.size(), NAN);
    for (__half& v : outH)
    {
        v = __float2half_rn(NAN);
    }
    std::vector<int64_t> map = n.rank == 3 ? std::vector<int64_t>{B, T, H, W} : std::vector<int64_t>{B, H, W};
    std::vector<int64_t> qkvDims = map, outDims = map;
    qkvDims.push_back(3 * C);
    outDims.push_back(C);
    PluginTensorDesc in[3] = {plainDesc(type, qkvDims),
        dense ? plainDesc(biasType, {n.heads, N, N}) : plainDesc(biasType, {R, n.heads}), plainDesc(type, {3 * C})};
    PluginTensorDesc out = plainDesc(type, outDims);
    void const* inputs[] = {half ? static_cast<void const*>(qkvH.data()) : qkv.data(),
        halfBias ? static_cast<void const*>(biasH.data()) : biasF.data(),
        half ? static_cast<void const*>(padH.data()) : padRow.data()};
    void* outputs[] = {half ? static_cast<void*>(outH.data()) : outF.data()};
    check(runtime(node)->enqueue(in, &out, inputs, outputs, nullptr, nullptr) == 0, std::string(where) + ": enqueue");
    for (size_t i = 0; half && i < outH.size(); ++i)
    {
        outF[i] = __half2float(outH[i]);
    }
    std::vector<double> const expect = fusedModel(n, qkv, padRow, bias, scale, B, T, H, W);
    double maxErr = 0.0, maxRef = 0.0;
    bool unwritten = false;
    for (size_t i = 0; i < expect.size(); ++i)
    {
        unwritten = unwritten || expect[i] != expect[i]; // the model writes every map row
        double const err = fabs(static_cast<double>(outF[i]) - expect[i]);
        maxErr = err > maxErr || err != err ? (err != err ? INFINITY : err) : maxErr;
        maxRef = fabs(expect[i]) > maxRef ? fabs(expect[i]) : maxRef;
    }
    check(!unwritten, std::string(where) + ": the model covers every map row");
    // float32: a few ulps of the float32 accumulations; float16 output: half an ulp of float16 on top.
    double const tol = half ? 1e-3 : 1e-5;
    char msg[80];
    snprintf(msg, sizeof(msg), ": relative error %.3g > %.1g (inf: a map row left unwritten)", maxErr / maxRef, tol);
    check(maxErr <= tol * maxRef, std::string(where) + msg);
}

//! (T, H, W) maps of one engine: multiples of the window, padded, smaller than the window.
void runNode(Node const& n, float scale, std::vector<std::vector<int32_t>> const& maps, std::string const& what)
{
    IPluginV3* node = createNode(n, scale, what.c_str());
    if (node == nullptr)
    {
        return;
    }
    for (auto const& m : maps)
    {
        for (DataType type : {DataType::kFLOAT, DataType::kHALF})
        {
            for (bool dense : {false, true})
            {
                DataType const biasType = dense == (type == DataType::kHALF) ? DataType::kFLOAT : DataType::kHALF;
                runFused(node, n, scale, type, biasType, dense, 2, m[0], m[1], m[2], what);
            }
        }
    }
    delete node;
}

} // namespace

//! Called by swin_trt_plugin_emulated_test's main.
void testFusedAttentionEmulated()
{
    float const scale = 1.0F / sqrtf(8.0F);
    std::vector<std::vector<int32_t>> const maps2d = {{1, 8, 8}, {1, 7, 10}, {1, 3, 5}, {1, 9, 4}};
    for (int32_t padFirst : {1, 0})
    {
        Node shifted{{1, 4, 4}, {0, 2, 1}, 2, padFirst, 2, 8, {}};
        runNode(shifted, scale, maps2d, std::string("fused 2D shifted pad_first=") + std::to_string(padFirst));
    }
    Node plain{{1, 4, 4}, {0, 0, 0}, 2, 1, 2, 8, {}};
    runNode(plain, scale, maps2d, "fused 2D unshifted");
    Node headDim6{{1, 3, 4}, {0, 1, 2}, 2, 0, 3, 6, {}}; // scalar loads (head_dim % 4 != 0)
    runNode(headDim6, scale, {{1, 7, 9}}, "fused 2D head_dim 6");
    Node cosine{{1, 4, 4}, {0, 2, 2}, 2, 1, 2, 8, {12.5F, 30.0F}};
    runNode(cosine, 1.0F, {{1, 6, 9}, {1, 8, 8}}, "fused 2D cosine");
    Node video{{2, 3, 3}, {1, 1, 2}, 3, 1, 2, 8, {}};
    runNode(video, scale, {{4, 6, 6}, {5, 7, 4}, {1, 3, 3}, {3, 2, 8}}, "fused 3D shifted");
    Node video0{{2, 3, 3}, {0, 0, 0}, 3, 1, 2, 8, {}};
    runNode(video0, scale, {{3, 5, 4}}, "fused 3D unshifted");
}

// swin_trt_emulated_kernels_test: runs the real kernel source on the host emulator (cuda_emulator.h) and
// compares with the brute-force model of the contract (brute_force.h): every vector width of the row
// gather, padded and non-square maps, shifts, both pad orders; attention for float32/float16, every head_dim
// class, N up to 256, masks, in V1 mode and in cosine mode (Swin V2). Needs the CUDA headers (cuda_fp16.h),
// not a GPU. Exit status 0 = pass.
#include "swin_kernels.h"

#include "brute_force.h"
#include "swin_index.h"

#include <cuda_fp16.h>

#include <math.h>
#include <stdio.h>
#include <string.h>

#include <random>
#include <string>
#include <vector>

namespace
{

int gFailures = 0;
int gChecks = 0;

void check(bool ok, std::string const& what)
{
    ++gChecks;
    if (!ok && ++gFailures <= 20)
    {
        fprintf(stderr, "FAIL: %s\n", what.c_str());
    }
}

void testGather(int32_t B, int32_t H, int32_t W, int32_t C, swin_trt::DType type, int32_t wh, int32_t ww, int32_t sh,
    int32_t sw, int32_t padFirst, size_t misalign)
{
    using namespace swin_trt;
    char where[200];
    snprintf(where, sizeof(where), "gather B=%d H=%d W=%d C=%d elem=%zu window=(%d,%d) shift=(%d,%d) pad_first=%d "
        "misalign=%zu", B, H, W, C, dtypeSize(type), wh, ww, sh, sw, padFirst, misalign);
    WindowGeometry const g = makeWindowGeometry(H, W, wh, ww, sh, sw, padFirst);
    size_t const rowBytes = static_cast<size_t>(C) * dtypeSize(type);
    size_t const inRows = static_cast<size_t>(B) * H * W;
    size_t const winRows = static_cast<size_t>(B) * g.nW * g.N;
    std::vector<uint8_t> inBuf(inRows * rowBytes + 64), winBuf(winRows * rowBytes + 64, 0xAB),
        outBuf(inRows * rowBytes + 64, 0xCD);
    uint8_t* in = inBuf.data() + misalign;
    uint8_t* win = winBuf.data() + misalign;
    uint8_t* out = outBuf.data() + misalign;
    for (size_t i = 0; i < inRows * rowBytes; ++i)
    {
        in[i] = static_cast<uint8_t>((i * 131 + 7) % 251 + 1); // never 0, so padding is distinguishable
    }
    check(windowPartition(in, win, type, B, H, W, C, wh, ww, sh, sw, padFirst, nullptr) == cudaSuccess,
        std::string(where) + ": partition launch");
    std::vector<int64_t> const src = brute::partitionSources(H, W, wh, ww, sh, sw, padFirst != 0);
    std::vector<uint8_t> const zeros(rowBytes, 0);
    for (size_t row = 0; row < winRows; ++row)
    {
        size_t const b = row / src.size();
        int64_t const s = src[row % src.size()];
        uint8_t const* expect = s < 0 ? zeros.data() : in + (b * H * W + static_cast<size_t>(s)) * rowBytes;
        if (memcmp(win + row * rowBytes, expect, rowBytes) != 0)
        {
            check(false, std::string(where) + ": partition row " + std::to_string(row));
            return;
        }
    }
    check(winBuf.back() == 0xAB, std::string(where) + ": partition wrote past the end");
    check(windowReverse(win, out, type, B, H, W, C, wh, ww, sh, sw, padFirst, nullptr) == cudaSuccess,
        std::string(where) + ": reverse launch");
    check(memcmp(out, in, inRows * rowBytes) == 0, std::string(where) + ": reverse(partition(x)) != x");
    check(outBuf.back() == 0xCD, std::string(where) + ": reverse wrote past the end");
}

struct AttnCase
{
    int32_t B, numHeads, headDim, wh, ww, sh, sw, Hp, Wp;
    bool half, biasHalf;
    bool cosine = false; // Swin V2: per-head scales in (0, 100], bias in (0, 16) as the folded CPB gives
};

float roundHalf(float v)
{
    return __half2float(__float2half_rn(v));
}

void testAttention(AttnCase const& c)
{
    using namespace swin_trt;
    char where[200];
    snprintf(where, sizeof(where), "attention%s B=%d heads=%d hd=%d window=(%d,%d) shift=(%d,%d) grid=%dx%d %s bias %s",
        c.cosine ? " (cosine)" : "", c.B, c.numHeads, c.headDim, c.wh, c.ww, c.sh, c.sw, c.Hp, c.Wp,
        c.half ? "fp16" : "fp32", c.biasHalf ? "fp16" : "fp32");
    int32_t const N = c.wh * c.ww;
    int32_t const nW = (c.Hp / c.wh) * (c.Wp / c.ww);
    int32_t const rows = c.B * nW;
    int32_t const C = c.numHeads * c.headDim;
    int32_t const L = (2 * c.wh - 1) * (2 * c.ww - 1);
    float const scale = 1.0F / sqrtf(static_cast<float>(c.headDim));

    std::mt19937 rng(1234 + N + C);
    std::normal_distribution<float> normal(0.0F, 1.0F);
    std::vector<float> qkv(static_cast<size_t>(rows) * N * 3 * C), bias(static_cast<size_t>(L) * c.numHeads);
    for (float& v : qkv)
    {
        v = c.half ? roundHalf(normal(rng)) : normal(rng);
    }
    std::uniform_real_distribution<float> cpb(0.0F, 16.0F);
    for (float& v : bias)
    {
        float const value = c.cosine ? cpb(rng) : normal(rng);
        v = c.biasHalf ? roundHalf(value) : value;
    }
    // Per-head scales from small to the clamp (exp(log 100)), so the logits span up to +-100.
    std::vector<float> headScale(static_cast<size_t>(c.numHeads));
    for (int32_t h = 0; h < c.numHeads; ++h)
    {
        headScale[static_cast<size_t>(h)] = c.numHeads == 1 ? 100.0F : 1.5F + 98.5F * h / (c.numHeads - 1);
    }
    std::vector<__half> qkvH(qkv.size()), biasH(bias.size()), outH(static_cast<size_t>(rows) * N * C);
    for (size_t i = 0; i < qkv.size(); ++i)
    {
        qkvH[i] = __float2half_rn(qkv[i]);
    }
    for (size_t i = 0; i < bias.size(); ++i)
    {
        biasH[i] = __float2half_rn(bias[i]);
    }
    std::vector<float> outF(static_cast<size_t>(rows) * N * C, NAN);
    cudaError_t const status = windowAttention(c.half ? static_cast<void const*>(qkvH.data()) : qkv.data(),
        c.half ? DType::kFLOAT16 : DType::kFLOAT32,
        c.biasHalf ? static_cast<void const*>(biasH.data()) : bias.data(), c.biasHalf ? DType::kFLOAT16 : DType::kFLOAT32,
        c.half ? static_cast<void*>(outH.data()) : outF.data(), rows, c.numHeads, c.headDim, c.wh, c.ww, c.sh, c.sw,
        c.Hp, c.Wp, scale, c.cosine ? headScale.data() : nullptr, nullptr);
    check(status == cudaSuccess, std::string(where) + ": launch");
    if (c.half)
    {
        for (size_t i = 0; i < outH.size(); ++i)
        {
            outF[i] = __half2float(outH[i]);
        }
    }

    std::vector<double> const expect = brute::attention(qkv, bias, rows, c.numHeads, c.headDim, c.wh, c.ww, c.sh,
        c.sw, c.Hp, c.Wp, scale, c.cosine ? &headScale : nullptr);
    double const rel = brute::relativeError(outF, expect);
    double const tol = c.half ? 2e-3 : 1e-5;
    char msg[96];
    snprintf(msg, sizeof(msg), ": relative error %.3g > %.1g", rel, tol);
    check(rel <= tol, std::string(where) + msg);
}

//! Every supported shape has a launch plan within the 48 KiB every GPU gives a block without opt-in: each
//! N <= kMaxAttentionTokens, each head_dim <= kMaxHeadDim (the plan does not depend on the I/O type: tiles are
//! float32 in shared memory), with a dense bias and with the largest table of any window of N tokens.
void testAttentionPlans()
{
    using namespace swin_trt;
    int32_t failures = 0;
    size_t largest = 0;
    for (int32_t N = 1; N <= kMaxAttentionTokens; ++N)
    {
        int32_t tableRows = 0; // the largest (2a-1)(2b-1)(2c-1) over windows a x b x c = N
        for (int32_t a = 1; a <= N; ++a)
        {
            for (int32_t b = 1; N % a == 0 && b <= N / a; ++b)
            {
                if ((N / a) % b == 0)
                {
                    int32_t const rows = biasTableSize3d(a, b, N / a / b);
                    tableRows = rows > tableRows ? rows : tableRows;
                }
            }
        }
        for (int32_t headDim = 1; headDim <= kMaxHeadDim; ++headDim)
        {
            bool ok = checkWindowAttentionSupport(N, headDim) == nullptr;
            for (int32_t rows : {0, tableRows})
            {
                size_t const smem = windowAttentionSmemBytes(N, headDim, rows);
                ok = ok && smem > 0 && smem <= kAttentionSmemBudget;
                largest = smem > largest ? smem : largest;
            }
            if (!ok && ++failures <= 5)
            {
                check(false, "attention plan for N = " + std::to_string(N) + ", head_dim " + std::to_string(headDim));
            }
        }
    }
    check(failures == 0, "a launch plan within 48 KiB for every N <= 512 and head_dim <= 128");
    check(largest <= 48 * 1024, "largest plan " + std::to_string(largest) + " bytes <= 48 KiB");
    check(checkWindowAttentionSupport(kMaxAttentionTokens + 1, 32) != nullptr, "N = 513 refused");
    check(kMaxAttentionTokens == 512, "kMaxAttentionTokens equals swin_trt/ops/schema.py's MAX_TOKENS (512)");
}

//! The dense bias form against the table form of the same bias, on 3D windows (Video Swin's 8x7x7, shifted):
//! the dense (heads, N, N) bias built from the table with the relative offsets computed from coordinates here
//! must give the same logits, so the same output bit for bit. head_dim 32 stages the table in shared memory,
//! head_dim 96 reads it from global memory (staging it would cost query tiles): both paths are checked.
void testAttentionBiasForms3d()
{
    using namespace swin_trt;
    int32_t const wt = 8, wh = 7, ww = 7, N = wt * wh * ww, heads = 2;
    int32_t const Tp = 8, Hp = 7, Wp = 14, rows = 2; // one clip of 2 windows
    int32_t const R = biasTableSize3d(wt, wh, ww);
    for (int32_t headDim : {32, 96})
    {
        // The plan's shared memory tells the path: the staged table adds its column.
        bool const staged = windowAttentionSmemBytes(N, headDim, R) > windowAttentionSmemBytes(N, headDim, 0);
        check(staged == (headDim == 32), "attention 8x7x7, head_dim " + std::to_string(headDim) + ": the table is "
                + (headDim == 32 ? "staged" : "read from global memory"));
        int32_t const C = heads * headDim;
        std::mt19937 rng(77 + headDim);
        std::normal_distribution<float> normal(0.0F, 1.0F);
        std::vector<float> qkv(static_cast<size_t>(rows) * N * 3 * C), table(static_cast<size_t>(R) * heads);
        for (float& v : qkv)
        {
            v = normal(rng);
        }
        for (float& v : table)
        {
            v = normal(rng);
        }
        std::vector<float> dense(static_cast<size_t>(heads) * N * N);
        for (int32_t h = 0; h < heads; ++h)
        {
            for (int32_t i = 0; i < N; ++i)
            {
                for (int32_t j = 0; j < N; ++j)
                {
                    int32_t const dt = i / (wh * ww) - j / (wh * ww) + wt - 1;
                    int32_t const dy = (i / ww) % wh - (j / ww) % wh + wh - 1;
                    int32_t const dx = i % ww - j % ww + ww - 1;
                    int32_t const rpi = (dt * (2 * wh - 1) + dy) * (2 * ww - 1) + dx;
                    dense[(static_cast<size_t>(h) * N + i) * N + j] = table[static_cast<size_t>(rpi) * heads + h];
                }
            }
        }
        std::vector<float> fromTable(static_cast<size_t>(rows) * N * C, NAN), fromDense(fromTable.size(), NAN);
        float const scale = 1.0F / sqrtf(static_cast<float>(headDim));
        cudaError_t const a = windowAttention(qkv.data(), DType::kFLOAT32, table.data(), DType::kFLOAT32,
            BiasForm::kTABLE, fromTable.data(), rows, heads, headDim, wt, wh, ww, 4, 3, 3, Tp, Hp, Wp, scale, nullptr,
            nullptr);
        cudaError_t const b = windowAttention(qkv.data(), DType::kFLOAT32, dense.data(), DType::kFLOAT32,
            BiasForm::kDENSE, fromDense.data(), rows, heads, headDim, wt, wh, ww, 4, 3, 3, Tp, Hp, Wp, scale, nullptr,
            nullptr);
        bool same = a == cudaSuccess && b == cudaSuccess;
        for (size_t k = 0; same && k < fromTable.size(); ++k)
        {
            same = fromTable[k] == fromDense[k];
        }
        check(same, "attention 8x7x7 (392 tokens), head_dim " + std::to_string(headDim)
                + ": a dense bias gathered from the table gives the table's output");
    }
}

} // namespace

int main()
{
    using swin_trt::DType;
    // Row gather: C * elem hits every vector width (16, 8, 4, 2, 1 bytes); misalignment forces narrower ones.
    struct
    {
        int32_t C;
        DType type;
        size_t misalign;
    } const rowCases[] = {{8, DType::kFLOAT32, 0}, {6, DType::kFLOAT32, 0}, {3, DType::kFLOAT32, 0},
        {8, DType::kFLOAT16, 0}, {2, DType::kFLOAT16, 0}, {3, DType::kFLOAT16, 0}, {16, DType::kINT8, 0},
        {5, DType::kINT8, 0}, {1, DType::kINT8, 0}, {8, DType::kFLOAT32, 4}, {8, DType::kFLOAT16, 2},
        {32, DType::kINT8, 1}};
    for (auto const& rc : rowCases)
    {
        testGather(2, 9, 13, rc.C, rc.type, 4, 5, 2, 3, 1, rc.misalign);
        testGather(2, 9, 13, rc.C, rc.type, 4, 5, 2, 3, 0, rc.misalign);
    }
    int32_t const maps[][7] = {{14, 14, 7, 7, 3, 3, 1}, {14, 14, 7, 7, 0, 0, 0}, {3, 5, 7, 7, 6, 2, 0},
        {3, 5, 7, 7, 6, 2, 1}, {12, 8, 4, 4, 2, 0, 0}, {1, 1, 1, 1, 0, 0, 1}, {20, 12, 12, 12, 6, 6, 1}};
    for (auto const& m : maps)
    {
        for (int32_t B : {1, 3})
        {
            testGather(B, m[0], m[1], 12, DType::kFLOAT16, m[2], m[3], m[4], m[5], m[6], 0);
        }
    }
    testGather(0, 7, 7, 8, DType::kFLOAT32, 7, 7, 3, 3, 1, 0); // empty batch

    AttnCase const attnCases[] = {
        {1, 2, 32, 7, 7, 3, 3, 14, 14, false, false},  // Swin 7x7 shifted, 2 key tiles
        {2, 3, 32, 7, 7, 0, 0, 14, 7, true, true},     // no shift, fp16
        {2, 3, 5, 4, 3, 1, 2, 8, 9, true, false},      // head_dim 5 (scalar loads), non-square window
        {1, 1, 40, 12, 12, 6, 6, 24, 24, true, false}, // N = 144, 3 query tiles, HDC 2
        {1, 2, 96, 3, 3, 1, 0, 6, 9, false, true},     // HDC 3, shift along H only
        {1, 1, 128, 16, 16, 0, 0, 16, 16, false, false}, // N = 256, head_dim 128: the largest supported
        {1, 1, 128, 16, 16, 8, 8, 32, 16, true, true},
        {2, 4, 8, 1, 1, 0, 0, 3, 2, false, false},     // N = 1
        {1, 2, 33, 2, 6, 0, 5, 4, 12, true, true},     // head_dim 33 (HDC 2, scalar), shift along W only
        // Cosine mode (Swin V2): window 8 (N = 64, two key tiles), shifted and not, fp32 and fp16, every
        // head_dim class, scalar loads, N = 256.
        {1, 3, 32, 8, 8, 4, 4, 16, 24, false, false, true},
        {2, 3, 32, 8, 8, 0, 0, 8, 16, true, true, true},
        {1, 4, 16, 4, 4, 2, 2, 8, 12, true, false, true},
        {1, 2, 5, 3, 3, 1, 0, 6, 9, false, true, true},
        {1, 2, 96, 8, 8, 4, 4, 16, 16, true, false, true},
        {1, 1, 128, 16, 16, 8, 8, 32, 16, false, false, true},
    };
    for (AttnCase const& c : attnCases)
    {
        testAttention(c);
    }
    testAttentionPlans();
    testAttentionBiasForms3d();
    check(swin_trt::windowAttention(nullptr, DType::kFLOAT32, nullptr, DType::kFLOAT32, nullptr, 1, 1, 32, 7, 7, 0, 0,
              7, 7, 1.0F, nullptr, nullptr)
            == cudaErrorInvalidValue,
        "attention rejects null pointers");
    {
        std::vector<float> qkv(49 * 3 * 32, 0.0F), table(169, 0.0F), out(49 * 32, 0.0F);
        for (float bad : {0.0F, -1.0F, 100.5F, NAN, INFINITY})
        {
            float const scales[1] = {bad};
            check(swin_trt::windowAttention(qkv.data(), DType::kFLOAT32, table.data(), DType::kFLOAT32, out.data(), 1,
                      1, 32, 7, 7, 0, 0, 7, 7, 1.0F, scales, nullptr)
                    == cudaErrorInvalidValue,
                "cosine attention rejects head_scale " + std::to_string(bad));
        }
        check(swin_trt::checkCosineHeadScale(257, qkv.data()) != nullptr, "cosine attention: at most 256 heads");
        // Zero q and k rows: max(|x|, eps) keeps the logits finite (uniform attention, no NaN).
        float const one[1] = {100.0F};
        check(swin_trt::windowAttention(qkv.data(), DType::kFLOAT32, table.data(), DType::kFLOAT32, out.data(), 1, 1,
                  32, 7, 7, 0, 0, 7, 7, 1.0F, one, nullptr)
                == cudaSuccess,
            "cosine attention of zero vectors runs");
        bool finite = true;
        for (float v : out)
        {
            finite = finite && v == 0.0F;
        }
        check(finite, "cosine attention of zero vectors gives zeros, not NaN");
    }
    printf("swin_trt_emulated_kernels_test: %d checks, %d failures\n", gChecks, gFailures);
    return gFailures == 0 ? 0 : 1;
}

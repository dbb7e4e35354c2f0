// SwinWindowAttention kernel: softmax(scale * q k^T + relative position bias + shifted-window mask) v for
// every (window row, head), float32 or float16 I/O, float32 accumulation and softmax.
//
// Design (memory-bound op with tiny matrices: N = 49 or 144 tokens, head_dim 32):
// * one block per (row r, head h, query tile); the query tile is chosen per shape so that the padded rows are
//   minimal (N = 49 -> one tile of 52 rows, 13 warps; N = 144 -> 3 tiles of 48 rows);
// * every warp owns kRowsPerWarp query rows; keys are streamed in tiles of 32 (lane = key) through shared
//   memory; softmax is online (flash-attention style), so shared memory stays bounded for any N <= 256 and
//   head_dim <= 128 (<= 48 KiB, no opt-in needed on any GPU);
// * q k^T: float4 shared loads (q broadcast, k with a conflict-free padded stride); p v: lane = channel;
// * the bias column of head h is staged in shared memory and indexed with the separable form
//   rpi(i, j) = key(i) - key(j) + offset; mask regions are computed from the token position (swin_index.h);
// * cosine mode (Swin V2): each warp divides its staged query rows by their norm and multiplies them by the
//   head's scale (lanes over channels, one warp sum); each lane sums its key's squares from the registers the
//   q k^T loop loads anyway and scales its logits by 1 / |k|. A template flag: V1 launches run the V1 code.
#include "cuda_compat.cuh"
#include "swin_kernels.h"

#include <string.h>

namespace swin_trt
{
namespace
{

constexpr int32_t kRowsPerWarp = 4;
constexpr int32_t kKeyTile = 32;
constexpr int32_t kMaxWarps = 16;
constexpr size_t kSmemBudget = 48 * 1024;
constexpr float kNegativeLarge = -1.0e30F;

struct AttentionParams
{
    void const* qkv;
    void const* biasTable;
    void* context;
    AttentionGeometry geo;
    int32_t numHeads;
    int32_t headDim;
    int32_t channels;   // C = numHeads * headDim
    int32_t queryTile;  // query rows per block = warps * kRowsPerWarp
    int32_t hd4;        // ceil(headDim / 4)
    int32_t qkStride;   // shared-memory row stride of Q and K tiles (floats; 4 * odd)
    int32_t vStride;    // shared-memory row stride of V tiles (floats; 32 * HDC)
    int32_t biasRows;   // (2wh - 1) * (2ww - 1)
    int32_t biasOffset; // rpiOffset(wh, ww)
    int32_t biasIsHalf;
    int32_t vectorLoads; // headDim % 4 == 0 and qkv aligned to 4 elements
    float scale;
    float headScale[kMaxCosineHeads]; // cosine mode: one per head (a copy: host memory is not device memory)
};

SWIN_HD int32_t roundUp4(int32_t v)
{
    return (v + 3) & ~3;
}

SWIN_DEVICE float toFloat(float v)
{
    return v;
}

SWIN_DEVICE float toFloat(__half v)
{
    return __half2float(v);
}

template <typename T>
SWIN_DEVICE T fromFloat(float v);

template <>
SWIN_DEVICE float fromFloat<float>(float v)
{
    return v;
}

template <>
SWIN_DEVICE __half fromFloat<__half>(float v)
{
    return __float2half_rn(v);
}

SWIN_DEVICE float4 load4(float const* p)
{
    return dev::ldg(reinterpret_cast<float4 const*>(p));
}

SWIN_DEVICE float4 load4(__half const* p)
{
    uint2 const raw = dev::ldg(reinterpret_cast<uint2 const*>(p));
    __half2_raw lo, hi;
    memcpy(&lo, &raw.x, sizeof(lo));
    memcpy(&hi, &raw.y, sizeof(hi));
    float2 const a = __half22float2(__half2(lo));
    float2 const b = __half22float2(__half2(hi));
    return make_float4(a.x, a.y, b.x, b.y);
}

//! Stages rows [row0, row0 + nValid) of one head's q, k or v (headDim contiguous elements per token, token
//! stride `srcStride`) as float into dst[row * dstStride + d], d < fillCols; rows >= nValid (up to nTotal)
//! and channels >= headDim are zero.
template <typename T>
SWIN_DEVICE void stageTile(float* dst, int32_t dstStride, T const* src, int64_t srcStride, int32_t row0,
    int32_t nValid, int32_t nTotal, int32_t fillCols, AttentionParams const& p, float scale)
{
    int32_t const chunksPerRow = fillCols >> 2;
    int32_t const total = nTotal * chunksPerRow;
    int32_t const hd = p.headDim;
    for (int32_t idx = static_cast<int32_t>(threadIdx.x); idx < total; idx += static_cast<int32_t>(blockDim.x))
    {
        int32_t const row = idx / chunksPerRow;
        int32_t const d = (idx - row * chunksPerRow) * 4;
        float4 v = make_float4(0.0F, 0.0F, 0.0F, 0.0F);
        if (row < nValid && d < hd)
        {
            T const* s = src + (row0 + row) * srcStride + d;
            if (p.vectorLoads)
            {
                v = load4(s);
            }
            else
            {
                v.x = toFloat(dev::ldg(s));
                v.y = d + 1 < hd ? toFloat(dev::ldg(s + 1)) : 0.0F;
                v.z = d + 2 < hd ? toFloat(dev::ldg(s + 2)) : 0.0F;
                v.w = d + 3 < hd ? toFloat(dev::ldg(s + 3)) : 0.0F;
            }
            v.x *= scale;
            v.y *= scale;
            v.z *= scale;
            v.w *= scale;
        }
        *reinterpret_cast<float4*>(dst + row * dstStride + d) = v;
    }
}

//! Cosine mode: scales this warp's kRowsPerWarp staged query rows (`cols` floats each) to
//! headScale * q / max(|q|, eps). Lanes split the channels; every lane of the warp must call it.
SWIN_DEVICE void normalizeQueryRows(float* rows, int32_t stride, int32_t cols, int32_t lane, float headScale)
{
    for (int32_t rr = 0; rr < kRowsPerWarp; ++rr)
    {
        float* const row = rows + rr * stride;
        float squares = 0.0F;
        for (int32_t d = lane; d < cols; d += 32)
        {
            squares += row[d] * row[d];
        }
        float const factor = headScale / fmaxf(sqrtf(dev::warpAllSum(squares)), kCosineNormEpsilon);
        for (int32_t d = lane; d < cols; d += 32) // each lane rescales what it summed: no race
        {
            row[d] *= factor;
        }
    }
    SWIN_SYNCWARP(); // the q k^T loop reads every lane's channels
}

//! HDC = ceil(headDim / 32): output channels per lane. kCosine: Swin V2's scaled cosine attention.
template <typename T, int32_t HDC, bool kCosine>
__global__ void __launch_bounds__(kMaxWarps * 32) windowAttentionKernel(AttentionParams const p)
{
    SWIN_DYNAMIC_SMEM(float, smem);

    int32_t const r = static_cast<int32_t>(blockIdx.x);
    int32_t const h = static_cast<int32_t>(blockIdx.y);
    int32_t const q0 = static_cast<int32_t>(blockIdx.z) * p.queryTile;
    int32_t const tid = static_cast<int32_t>(threadIdx.x);
    int32_t const warp = tid >> 5;
    int32_t const lane = tid & 31;
    int32_t const N = p.geo.N;
    int32_t const hd = p.headDim;
    int32_t const C = p.channels;
    int64_t const tokenStride = 3 * static_cast<int64_t>(C);

    float* const sBias = smem;
    float* const sQ = sBias + roundUp4(p.biasRows);
    float* const sK = sQ + p.queryTile * p.qkStride;
    float* const sV = sK + kKeyTile * p.qkStride;
    float* const sP = sV + kKeyTile * p.vStride;

    T const* const qkv = static_cast<T const*>(p.qkv) + static_cast<int64_t>(r) * N * tokenStride;

    // Bias column of head h (the table is tiny and shared by all blocks: it stays in L2).
    for (int32_t i = tid; i < p.biasRows; i += static_cast<int32_t>(blockDim.x))
    {
        int64_t const at = static_cast<int64_t>(i) * p.numHeads + h;
        sBias[i] = p.biasIsHalf ? __half2float(dev::ldg(static_cast<__half const*>(p.biasTable) + at))
                                : dev::ldg(static_cast<float const*>(p.biasTable) + at);
    }
    int32_t const nQuery = N - q0 < p.queryTile ? N - q0 : p.queryTile;
    stageTile<T>(sQ, p.qkStride, qkv + h * hd, tokenStride, q0, nQuery, p.queryTile, p.hd4 * 4, p, p.scale);

    bool const masked = hasShiftMask(p.geo);
    int32_t const window = r % p.geo.nW;

    float m[kRowsPerWarp];
    float l[kRowsPerWarp]; // per-lane partial sums (m is warp-uniform), reduced once at the end
    float acc[kRowsPerWarp][HDC];
    int32_t keyI[kRowsPerWarp];
    int32_t regionI[kRowsPerWarp];
#pragma unroll
    for (int32_t rr = 0; rr < kRowsPerWarp; ++rr)
    {
        int32_t i = q0 + warp * kRowsPerWarp + rr;
        i = i < N ? i : N - 1; // padding rows compute a valid row and are not stored
        keyI[rr] = rpiKey(i, p.geo.ww) + p.biasOffset;
        regionI[rr] = masked ? maskRegion(p.geo, window, i) : 0;
        m[rr] = kNegativeLarge;
        l[rr] = 0.0F;
#pragma unroll
        for (int32_t c = 0; c < HDC; ++c)
        {
            acc[rr][c] = 0.0F;
        }
    }
    float* const sQw = sQ + warp * kRowsPerWarp * p.qkStride;
    float* const sPw = sP + warp * kRowsPerWarp * kKeyTile;
    if (kCosine)
    {
        SWIN_SYNCTHREADS(); // the whole block staged Q; from here each warp touches its own rows only
        normalizeQueryRows(sQw, p.qkStride, p.hd4 * 4, lane, p.headScale[h]);
    }

    for (int32_t k0 = 0; k0 < N; k0 += kKeyTile)
    {
        int32_t const nKey = N - k0 < kKeyTile ? N - k0 : kKeyTile;
        SWIN_SYNCTHREADS(); // the previous key tile is consumed (first pass: bias and Q are staged)
        stageTile<T>(sK, p.qkStride, qkv + C + h * hd, tokenStride, k0, nKey, kKeyTile, p.hd4 * 4, p, 1.0F);
        stageTile<T>(sV, p.vStride, qkv + 2 * C + h * hd, tokenStride, k0, nKey, kKeyTile, p.vStride, p, 1.0F);
        SWIN_SYNCTHREADS();

        // Scores of this warp's rows against key j = k0 + lane.
        bool const valid = lane < nKey;
        int32_t const j = valid ? k0 + lane : 0;
        int32_t const keyJ = rpiKey(j, p.geo.ww);
        int32_t const regionJ = masked ? maskRegion(p.geo, window, j) : 0;
        float s[kRowsPerWarp];
#pragma unroll
        for (int32_t rr = 0; rr < kRowsPerWarp; ++rr)
        {
            s[rr] = 0.0F;
        }
        float4 const* const kRow = reinterpret_cast<float4 const*>(sK + lane * p.qkStride);
        float keySquares = 0.0F; // cosine mode: |k_j|^2, from the registers loaded for q k^T
        for (int32_t d4 = 0; d4 < p.hd4; ++d4)
        {
            float4 const kv = kRow[d4];
            if (kCosine)
            {
                keySquares += kv.x * kv.x + kv.y * kv.y + kv.z * kv.z + kv.w * kv.w;
            }
#pragma unroll
            for (int32_t rr = 0; rr < kRowsPerWarp; ++rr)
            {
                float4 const qv = reinterpret_cast<float4 const*>(sQw + rr * p.qkStride)[d4];
                s[rr] += qv.x * kv.x + qv.y * kv.y + qv.z * kv.z + qv.w * kv.w;
            }
        }
        if (kCosine)
        {
            // Beyond nKey the key row is zero: 0 * (1 / eps) = 0, and those logits are dropped below.
            float const keyFactor = 1.0F / fmaxf(sqrtf(keySquares), kCosineNormEpsilon);
#pragma unroll
            for (int32_t rr = 0; rr < kRowsPerWarp; ++rr)
            {
                s[rr] *= keyFactor;
            }
        }

        // Online softmax update.
#pragma unroll
        for (int32_t rr = 0; rr < kRowsPerWarp; ++rr)
        {
            float logit = kNegativeLarge;
            if (valid)
            {
                logit = s[rr] + sBias[keyI[rr] - keyJ];
                if (masked && regionI[rr] != regionJ)
                {
                    logit += kMaskValue;
                }
            }
            float const mNew = fmaxf(m[rr], dev::warpAllMax(logit));
            float const correction = dev::fastExp(m[rr] - mNew);
            float const pj = valid ? dev::fastExp(logit - mNew) : 0.0F;
            l[rr] = l[rr] * correction + pj;
#pragma unroll
            for (int32_t c = 0; c < HDC; ++c)
            {
                acc[rr][c] *= correction;
            }
            m[rr] = mNew;
            sPw[rr * kKeyTile + lane] = pj;
        }
        SWIN_SYNCWARP();

        // acc += p v; lane = output channel (lane + 32 c). P and V are zero beyond nKey.
        for (int32_t jj = 0; jj < nKey; jj += 4)
        {
            float4 pv[kRowsPerWarp];
#pragma unroll
            for (int32_t rr = 0; rr < kRowsPerWarp; ++rr)
            {
                pv[rr] = reinterpret_cast<float4 const*>(sPw + rr * kKeyTile)[jj >> 2];
            }
#pragma unroll
            for (int32_t c = 0; c < HDC; ++c)
            {
                float const* const vCol = sV + jj * p.vStride + lane + 32 * c;
                float const v0 = vCol[0];
                float const v1 = vCol[p.vStride];
                float const v2 = vCol[2 * p.vStride];
                float const v3 = vCol[3 * p.vStride];
#pragma unroll
                for (int32_t rr = 0; rr < kRowsPerWarp; ++rr)
                {
                    acc[rr][c] += pv[rr].x * v0 + pv[rr].y * v1 + pv[rr].z * v2 + pv[rr].w * v3;
                }
            }
        }
        SWIN_SYNCWARP(); // sPw is rewritten by the next tile
    }

    T* const out = static_cast<T*>(p.context);
#pragma unroll
    for (int32_t rr = 0; rr < kRowsPerWarp; ++rr)
    {
        float const inv = 1.0F / dev::warpAllSum(l[rr]);
        int32_t const i = q0 + warp * kRowsPerWarp + rr;
        if (i < N)
        {
            T* const o = out + (static_cast<int64_t>(r) * N + i) * C + h * hd;
#pragma unroll
            for (int32_t c = 0; c < HDC; ++c)
            {
                int32_t const d = lane + 32 * c;
                if (d < hd)
                {
                    o[d] = fromFloat<T>(acc[rr][c] * inv);
                }
            }
        }
    }
}

size_t attentionSmemBytes(int32_t warps, int32_t qkStride, int32_t vStride, int32_t biasRows)
{
    size_t const floats = static_cast<size_t>(roundUp4(biasRows)) + static_cast<size_t>(warps) * kRowsPerWarp * qkStride
        + static_cast<size_t>(kKeyTile) * qkStride + static_cast<size_t>(kKeyTile) * vStride
        + static_cast<size_t>(warps) * kRowsPerWarp * kKeyTile;
    return floats * sizeof(float);
}

template <typename T, int32_t HDC, bool kCosine>
cudaError_t launchAttention(AttentionParams const& p, int32_t rows, int32_t warps, int32_t queryTiles, size_t smem,
    cudaStream_t stream)
{
    dim3 const grid(static_cast<uint32_t>(rows), static_cast<uint32_t>(p.numHeads), static_cast<uint32_t>(queryTiles));
    SWIN_LAUNCH(grid, dim3(static_cast<uint32_t>(warps * 32)), smem, stream, windowAttentionKernel<T, HDC, kCosine>)(p);
    return lastLaunchError();
}

template <typename T, bool kCosine>
cudaError_t dispatchHeadDim(AttentionParams const& p, int32_t rows, int32_t warps, int32_t queryTiles, size_t smem,
    cudaStream_t stream)
{
    switch ((p.headDim + 31) / 32)
    {
    case 1: return launchAttention<T, 1, kCosine>(p, rows, warps, queryTiles, smem, stream);
    case 2: return launchAttention<T, 2, kCosine>(p, rows, warps, queryTiles, smem, stream);
    case 3: return launchAttention<T, 3, kCosine>(p, rows, warps, queryTiles, smem, stream);
    case 4: return launchAttention<T, 4, kCosine>(p, rows, warps, queryTiles, smem, stream);
    default: return cudaErrorInvalidValue;
    }
}

template <typename T>
cudaError_t dispatchMode(AttentionParams const& p, bool cosine, int32_t rows, int32_t warps, int32_t queryTiles,
    size_t smem, cudaStream_t stream)
{
    return cosine ? dispatchHeadDim<T, true>(p, rows, warps, queryTiles, smem, stream)
                  : dispatchHeadDim<T, false>(p, rows, warps, queryTiles, smem, stream);
}

} // namespace

char const* checkCosineHeadScale(int32_t numHeads, float const* headScale)
{
    if (numHeads < 1 || numHeads > kMaxCosineHeads)
    {
        return "cosine attention runs 1 to 256 heads";
    }
    if (headScale == nullptr)
    {
        return "cosine attention needs one head_scale per head";
    }
    for (int32_t h = 0; h < numHeads; ++h)
    {
        // Written so that NaN fails too.
        if (!(headScale[h] > 0.0F && headScale[h] <= kMaxHeadScale))
        {
            return "each head_scale must be finite, > 0 and <= 100 (the folded exp(min(logit_scale, log 100)))";
        }
    }
    return nullptr;
}

char const* checkWindowAttentionSupport(int32_t numTokens, int32_t headDim)
{
    if (numTokens < 1 || numTokens > kMaxAttentionTokens)
    {
        return "tokens per window (window_size[0] * window_size[1]) must be in [1, 256]";
    }
    if (headDim < 1 || headDim > kMaxHeadDim)
    {
        return "head_dim (C / num_heads) must be in [1, 128]";
    }
    return nullptr;
}

cudaError_t windowAttention(void const* qkv, DType qkvType, void const* biasTable, DType biasType, void* context,
    int32_t rows, int32_t numHeads, int32_t headDim, int32_t wh, int32_t ww, int32_t sh, int32_t sw, int32_t height,
    int32_t width, float scale, float const* headScale, cudaStream_t stream)
{
    bool const cosine = headScale != nullptr;
    if (cosine && checkCosineHeadScale(numHeads, headScale) != nullptr)
    {
        return cudaErrorInvalidValue;
    }
    if (qkv == nullptr || biasTable == nullptr || context == nullptr || rows < 0 || numHeads < 1
        || (qkvType != DType::kFLOAT32 && qkvType != DType::kFLOAT16)
        || (biasType != DType::kFLOAT32 && biasType != DType::kFLOAT16)
        || checkWindowGeometry(height, width, wh, ww) != nullptr || checkWindowShift(wh, ww, sh, sw) != nullptr
        || height % wh != 0 || width % ww != 0 || checkWindowAttentionSupport(wh * ww, headDim) != nullptr
        || !(scale > 0.0F))
    {
        return cudaErrorInvalidValue;
    }
    if (rows % ((height / wh) * (width / ww)) != 0)
    {
        return cudaErrorInvalidValue; // the mask of row r is window r % nW: rows must be whole images
    }
    if (rows == 0)
    {
        return cudaSuccess;
    }
    if (numHeads > 65535)
    {
        return cudaErrorInvalidValue;
    }

    AttentionParams p{};
    p.qkv = qkv;
    p.biasTable = biasTable;
    p.context = context;
    p.geo = makeAttentionGeometry(height, width, wh, ww, sh, sw);
    p.numHeads = numHeads;
    p.headDim = headDim;
    p.channels = numHeads * headDim;
    p.hd4 = (headDim + 3) / 4;
    p.qkStride = 4 * (p.hd4 % 2 == 1 ? p.hd4 : p.hd4 + 1); // 4 * odd: conflict-free float4 rows
    p.vStride = 32 * ((headDim + 31) / 32);
    p.biasRows = biasTableSize(wh, ww);
    p.biasOffset = rpiOffset(wh, ww);
    p.biasIsHalf = biasType == DType::kFLOAT16 ? 1 : 0;
    size_t const elem = dtypeSize(qkvType);
    p.vectorLoads = (headDim % 4 == 0 && reinterpret_cast<uintptr_t>(qkv) % (4 * elem) == 0) ? 1 : 0;
    p.scale = cosine ? 1.0F : scale; // cosine mode: q is normalized after staging, its scale is headScale[h]
    for (int32_t h = 0; cosine && h < numHeads; ++h)
    {
        p.headScale[h] = headScale[h];
    }

    // Query tiling: fewest padded query rows, then fewest tiles (each tile re-reads K and V), within budget.
    int32_t const N = p.geo.N;
    int32_t bestWarps = 0;
    int32_t bestTiles = 0;
    int64_t bestPadded = 0;
    for (int32_t warps = 1; warps <= kMaxWarps; ++warps)
    {
        int32_t const tile = warps * kRowsPerWarp;
        int32_t const tiles = (N + tile - 1) / tile;
        int64_t const padded = static_cast<int64_t>(tiles) * tile;
        if (attentionSmemBytes(warps, p.qkStride, p.vStride, p.biasRows) > kSmemBudget)
        {
            break;
        }
        if (bestWarps == 0 || padded < bestPadded || (padded == bestPadded && tiles < bestTiles))
        {
            bestWarps = warps;
            bestTiles = tiles;
            bestPadded = padded;
        }
    }
    if (bestWarps == 0 || bestTiles > 65535)
    {
        return cudaErrorInvalidValue;
    }
    p.queryTile = bestWarps * kRowsPerWarp;
    size_t const smem = attentionSmemBytes(bestWarps, p.qkStride, p.vStride, p.biasRows);
    if (qkvType == DType::kFLOAT32)
    {
        return dispatchMode<float>(p, cosine, rows, bestWarps, bestTiles, smem, stream);
    }
    return dispatchMode<__half>(p, cosine, rows, bestWarps, bestTiles, smem, stream);
}

} // namespace swin_trt

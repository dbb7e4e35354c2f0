// SwinWindowAttention kernel: softmax(scale * q k^T + relative position bias + shifted-window mask) v for
// every (window row, head), float32 or float16 I/O, float32 accumulation and softmax.
//
// Design (memory-bound op with tiny matrices: N = 49 or 144 tokens (2D), 392 (Video Swin 8x7x7), head_dim 32):
// * one block per (row r, head h, query tile); the query tile is chosen per shape so that the padded rows are
//   minimal (N = 49 -> one tile of 52 rows, 13 warps; N = 144 -> 3 tiles of 48 rows);
// * every warp owns kRowsPerWarp query rows; keys are streamed in tiles of 32 (lane = key) through shared
//   memory; softmax is online (flash-attention style), so shared memory does not grow with N;
// * shared-memory plan (kAttentionSmemBudget = 48 KiB, no opt-in, so the same plan runs on sm_70 and later,
//   Xavier and Orin included): K and V tiles of 32 keys, the block's query rows and probabilities, and the bias
//   column of head h when it fits without costing query tiles. For head_dim 128 the K and V tiles alone take
//   33 KiB, and a 3D table of up to (2wt-1)(2wh-1)(2ww-1) < 8 N rows (16 KiB at N = 512) may not fit beside
//   them: the kernel then reads the table through the read-only cache instead (L1/L2: the column is shared by
//   every block). One warp without a staged table takes 35 KiB at head_dim 128, so every supported shape has a
//   plan (windowAttentionSmemBytes; emulated_kernels_test checks every N <= 512 and head_dim <= 128);
// * q k^T: float4 shared loads (q broadcast, k with a conflict-free padded stride); p v: lane = channel;
// * the table is indexed with the separable form rpi(i, j) = key(i) - key(j) + offset; a dense bias
//   (numHeads, N, N) is read as is, coalesced along the keys (lane = key); mask regions are computed from the
//   token position (swin_index.h). Tokens are row-major (t, y, x); a 2D window is wt = 1;
// * cosine mode (Swin V2): each warp divides its staged query rows by their norm and multiplies them by the
//   head's scale (lanes over channels, one warp sum); each lane sums its key's squares from the registers the
//   q k^T loop loads anyway and scales its logits by 1 / |k|. A template flag: V1 launches run the V1 code.
// * fused form (SwinFusedWindowAttention, fusedWindowAttention): qkv is the token-major map (B, [T,] H, W, 3C);
//   token t of window row r is loaded from map row partitionSourceRow(r * N + t) (swin_index.h), or from the pad
//   row where that is padding, and its context row is stored to the same map row (padded query rows nowhere):
//   the partition and reverse gathers happen in the loads and stores.
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
constexpr float kNegativeLarge = -1.0e30F;

//! Where the logits' bias comes from (warp-uniform branch in the kernel).
enum BiasMode : int32_t
{
    kBiasStaged = 0, //!< table column of the head, staged in shared memory
    kBiasTable = 1,  //!< table column read from global memory (did not fit beside the tiles)
    kBiasDense = 2,  //!< dense (numHeads, N, N) bias from global memory
};

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
    int32_t biasRows;   // (2wt - 1) * (2wh - 1) * (2ww - 1): the table's rows
    int32_t biasOffset; // rpiOffset3d(wt, wh, ww)
    int32_t biasMode;   // BiasMode
    int32_t biasIsHalf;
    int32_t vectorLoads; // headDim % 4 == 0 and qkv aligned to 4 elements
    float scale;
    float headScale[kMaxCosineHeads]; // cosine mode: one per head (a copy: host memory is not device memory)
    int32_t fused;       // 1: qkv and context are token-major maps (SwinFusedWindowAttention)
    WindowGeometry map;  // fused: the unpadded map (T, H, W) and the partition's shift and pad order
    void const* padRow;  // fused: the qkv row (3C elements) of a padded token
};

//! The map row of token t of window row r (fused form), or -1 where it is padding.
SWIN_DEVICE int64_t fusedMapRow(AttentionParams const& p, int32_t r, int32_t t)
{
    return partitionSourceRow(p.map, static_cast<int64_t>(r) * p.geo.N + t);
}

//! Fused form: token t of window row r's qkv row, the map row or (padding) the pad row.
template <typename T>
SWIN_DEVICE T const* fusedTokenRow(AttentionParams const& p, int32_t r, int32_t t)
{
    int64_t const row = fusedMapRow(p, r, t);
    return row < 0 ? static_cast<T const*>(p.padRow)
                   : static_cast<T const*>(p.qkv) + row * (3 * static_cast<int64_t>(p.channels));
}

SWIN_HD int32_t roundUp4(int32_t v)
{
    return (v + 3) & ~3;
}

SWIN_DEVICE float toFloat(float v)
{
    return v;
}

//! Element `at` of the bias input (table or dense), as float.
SWIN_DEVICE float loadBias(AttentionParams const& p, int64_t at)
{
    return p.biasIsHalf ? __half2float(dev::ldg(static_cast<__half const*>(p.biasTable) + at))
                        : dev::ldg(static_cast<float const*>(p.biasTable) + at);
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
//! and channels >= headDim are zero. kFused: token t's elements start at `column` of fusedTokenRow(p, r, t)
//! instead (src and srcStride unused).
template <typename T, bool kFused>
SWIN_DEVICE void stageTile(float* dst, int32_t dstStride, T const* src, int64_t srcStride, int32_t row0,
    int32_t nValid, int32_t nTotal, int32_t fillCols, AttentionParams const& p, float scale, int32_t r, int32_t column)
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
            T const* s = kFused ? fusedTokenRow<T>(p, r, row0 + row) + column + d : src + (row0 + row) * srcStride + d;
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

//! HDC = ceil(headDim / 32): output channels per lane. kCosine: Swin V2's scaled cosine attention. kFused: the
//! fused form (token-major map in and out; a template flag, so the windowed launches run the windowed code).
template <typename T, int32_t HDC, bool kCosine, bool kFused>
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
    float* const sQ = sBias + (p.biasMode == kBiasStaged ? roundUp4(p.biasRows) : 0);
    float* const sK = sQ + p.queryTile * p.qkStride;
    float* const sV = sK + kKeyTile * p.qkStride;
    float* const sP = sV + kKeyTile * p.vStride;

    T const* const qkv = static_cast<T const*>(p.qkv) + (kFused ? 0 : static_cast<int64_t>(r) * N * tokenStride);

    // Bias column of head h (the table is tiny and shared by all blocks: it stays in L2).
    for (int32_t i = tid; p.biasMode == kBiasStaged && i < p.biasRows; i += static_cast<int32_t>(blockDim.x))
    {
        sBias[i] = loadBias(p, static_cast<int64_t>(i) * p.numHeads + h);
    }
    int32_t const nQuery = N - q0 < p.queryTile ? N - q0 : p.queryTile;
    stageTile<T, kFused>(
        sQ, p.qkStride, qkv + h * hd, tokenStride, q0, nQuery, p.queryTile, p.hd4 * 4, p, p.scale, r, h * hd);

    bool const masked = hasShiftMask(p.geo);
    int32_t const window = r % p.geo.nW;

    float m[kRowsPerWarp];
    float l[kRowsPerWarp]; // per-lane partial sums (m is warp-uniform), reduced once at the end
    float acc[kRowsPerWarp][HDC];
    int32_t keyI[kRowsPerWarp]; // table: rpiKey3d(i) + offset; dense: the row (h, i) of the bias
    int32_t regionI[kRowsPerWarp];
#pragma unroll
    for (int32_t rr = 0; rr < kRowsPerWarp; ++rr)
    {
        int32_t i = q0 + warp * kRowsPerWarp + rr;
        i = i < N ? i : N - 1; // padding rows compute a valid row and are not stored
        keyI[rr] = p.biasMode == kBiasDense ? i : rpiKey3d(i, p.geo.wh, p.geo.ww) + p.biasOffset;
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
        stageTile<T, kFused>(sK, p.qkStride, qkv + C + h * hd, tokenStride, k0, nKey, kKeyTile, p.hd4 * 4, p, 1.0F,
            r, C + h * hd);
        stageTile<T, kFused>(sV, p.vStride, qkv + 2 * C + h * hd, tokenStride, k0, nKey, kKeyTile, p.vStride, p,
            1.0F, r, 2 * C + h * hd);
        SWIN_SYNCTHREADS();

        // Scores of this warp's rows against key j = k0 + lane.
        bool const valid = lane < nKey;
        int32_t const j = valid ? k0 + lane : 0;
        int32_t const keyJ = p.biasMode == kBiasDense ? j : rpiKey3d(j, p.geo.wh, p.geo.ww);
        int64_t const denseRow = static_cast<int64_t>(h) * N; // dense bias: element ((h * N + i) * N + j)
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
                float bias;
                if (p.biasMode == kBiasStaged)
                {
                    bias = sBias[keyI[rr] - keyJ];
                }
                else if (p.biasMode == kBiasTable)
                {
                    bias = loadBias(p, static_cast<int64_t>(keyI[rr] - keyJ) * p.numHeads + h);
                }
                else
                {
                    bias = loadBias(p, (denseRow + keyI[rr]) * N + keyJ);
                }
                logit = s[rr] + bias;
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
        // fused form: back to the token's map row; a padded query row is written nowhere
        int64_t const outRow = kFused ? (i < N ? fusedMapRow(p, r, i) : -1) : static_cast<int64_t>(r) * N + i;
        if (kFused ? outRow >= 0 : i < N)
        {
            T* const o = out + outRow * C + h * hd;
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

//! Shared memory of a block of `warps` warps; stagedBiasRows: the table rows staged (0: none).
size_t attentionSmemBytes(int32_t warps, int32_t qkStride, int32_t vStride, int32_t stagedBiasRows)
{
    size_t const floats = static_cast<size_t>(roundUp4(stagedBiasRows))
        + static_cast<size_t>(warps) * kRowsPerWarp * qkStride
        + static_cast<size_t>(kKeyTile) * qkStride + static_cast<size_t>(kKeyTile) * vStride
        + static_cast<size_t>(warps) * kRowsPerWarp * kKeyTile;
    return floats * sizeof(float);
}

int32_t qkStrideOf(int32_t headDim)
{
    int32_t const hd4 = (headDim + 3) / 4;
    return 4 * (hd4 % 2 == 1 ? hd4 : hd4 + 1); // 4 * odd: conflict-free float4 rows
}

int32_t vStrideOf(int32_t headDim)
{
    return 32 * ((headDim + 31) / 32);
}

//! Launch plan: warps per block, query tiles per (row, head), bias mode and shared memory.
struct AttentionPlan
{
    int32_t warps;
    int32_t tiles;
    int32_t biasMode;
    size_t smem;
};

//! Query tiling within the budget: fewest padded query rows, then fewest tiles (each tile re-reads K and V).
//! warps == 0 when not even one warp fits.
AttentionPlan tileQueries(int32_t N, int32_t qkStride, int32_t vStride, int32_t stagedBiasRows)
{
    AttentionPlan best{0, 0, 0, 0};
    int64_t bestPadded = 0;
    for (int32_t warps = 1; warps <= kMaxWarps; ++warps)
    {
        int32_t const tile = warps * kRowsPerWarp;
        int32_t const tiles = (N + tile - 1) / tile;
        int64_t const padded = static_cast<int64_t>(tiles) * tile;
        size_t const smem = attentionSmemBytes(warps, qkStride, vStride, stagedBiasRows);
        if (smem > kAttentionSmemBudget)
        {
            break;
        }
        if (best.warps == 0 || padded < bestPadded || (padded == bestPadded && tiles < best.tiles))
        {
            best = AttentionPlan{warps, tiles, 0, smem};
            bestPadded = padded;
        }
    }
    return best;
}

//! The plan of a shape (biasRows: the table's rows, 0 for a dense bias). The table is staged when that costs
//! no query tile compared with reading it from global memory; warps == 0 when nothing fits.
AttentionPlan planAttention(int32_t N, int32_t headDim, int32_t biasRows)
{
    int32_t const qkStride = qkStrideOf(headDim);
    int32_t const vStride = vStrideOf(headDim);
    AttentionPlan plan = tileQueries(N, qkStride, vStride, 0);
    plan.biasMode = biasRows > 0 ? kBiasTable : kBiasDense;
    if (biasRows > 0)
    {
        AttentionPlan const staged = tileQueries(N, qkStride, vStride, biasRows);
        if (staged.warps > 0 && staged.tiles <= plan.tiles && staged.warps * staged.tiles <= plan.warps * plan.tiles)
        {
            plan = staged;
            plan.biasMode = kBiasStaged;
        }
    }
    return plan;
}

template <typename T, int32_t HDC, bool kCosine, bool kFused>
cudaError_t launchAttention(AttentionParams const& p, int32_t rows, int32_t warps, int32_t queryTiles, size_t smem,
    cudaStream_t stream)
{
    dim3 const grid(static_cast<uint32_t>(rows), static_cast<uint32_t>(p.numHeads), static_cast<uint32_t>(queryTiles));
    SWIN_LAUNCH(grid, dim3(static_cast<uint32_t>(warps * 32)), smem, stream,
        windowAttentionKernel<T, HDC, kCosine, kFused>)(p);
    return lastLaunchError();
}

template <typename T, bool kCosine, bool kFused>
cudaError_t dispatchHeadDim(AttentionParams const& p, int32_t rows, int32_t warps, int32_t queryTiles, size_t smem,
    cudaStream_t stream)
{
    switch ((p.headDim + 31) / 32)
    {
    case 1: return launchAttention<T, 1, kCosine, kFused>(p, rows, warps, queryTiles, smem, stream);
    case 2: return launchAttention<T, 2, kCosine, kFused>(p, rows, warps, queryTiles, smem, stream);
    case 3: return launchAttention<T, 3, kCosine, kFused>(p, rows, warps, queryTiles, smem, stream);
    case 4: return launchAttention<T, 4, kCosine, kFused>(p, rows, warps, queryTiles, smem, stream);
    default: return cudaErrorInvalidValue;
    }
}

template <typename T, bool kFused>
cudaError_t dispatchCosine(AttentionParams const& p, bool cosine, int32_t rows, int32_t warps, int32_t queryTiles,
    size_t smem, cudaStream_t stream)
{
    return cosine ? dispatchHeadDim<T, true, kFused>(p, rows, warps, queryTiles, smem, stream)
                  : dispatchHeadDim<T, false, kFused>(p, rows, warps, queryTiles, smem, stream);
}

template <typename T>
cudaError_t dispatchMode(AttentionParams const& p, bool cosine, int32_t rows, int32_t warps, int32_t queryTiles,
    size_t smem, cudaStream_t stream)
{
    return p.fused ? dispatchCosine<T, true>(p, cosine, rows, warps, queryTiles, smem, stream)
                   : dispatchCosine<T, false>(p, cosine, rows, warps, queryTiles, smem, stream);
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
        return "tokens per window (the product of window_size) must be in [1, 512]";
    }
    if (headDim < 1 || headDim > kMaxHeadDim)
    {
        return "head_dim (C / num_heads) must be in [1, 128]";
    }
    // With the table read from global memory (the smallest plan) one warp must fit: true for every shape
    // above (emulated_kernels_test checks them all), kept as a check so that a change of the tiles fails here,
    // at configurePlugin, and never at enqueue.
    if (planAttention(numTokens, headDim, 0).warps == 0)
    {
        return "no launch plan of the attention kernel fits 48 KiB of shared memory for this shape";
    }
    return nullptr;
}

size_t windowAttentionSmemBytes(int32_t numTokens, int32_t headDim, int32_t biasRows)
{
    if (checkWindowAttentionSupport(numTokens, headDim) != nullptr || biasRows < 0)
    {
        return 0;
    }
    return planAttention(numTokens, headDim, biasRows).smem;
}

bool validWindowAttentionArgs(void const* qkv, DType qkvType, void const* bias, DType biasType, BiasForm biasForm,
    void const* context, int32_t rows, int32_t numHeads, int32_t headDim, int32_t wt, int32_t wh, int32_t ww,
    int32_t st, int32_t sh, int32_t sw, int32_t frames, int32_t height, int32_t width, float scale,
    float const* headScale)
{
    bool const cosine = headScale != nullptr;
    if (cosine && checkCosineHeadScale(numHeads, headScale) != nullptr)
    {
        return false;
    }
    return !(qkv == nullptr || bias == nullptr || context == nullptr || rows < 0 || numHeads < 1
        || (qkvType != DType::kFLOAT32 && qkvType != DType::kFLOAT16)
        || (biasType != DType::kFLOAT32 && biasType != DType::kFLOAT16)
        || (biasForm != BiasForm::kTABLE && biasForm != BiasForm::kDENSE)
        || checkWindowGeometry3d(frames, height, width, wt, wh, ww) != nullptr
        || checkWindowShift3d(wt, wh, ww, st, sh, sw) != nullptr || frames % wt != 0 || height % wh != 0
        || width % ww != 0 || checkWindowAttentionSupport(wt * wh * ww, headDim) != nullptr || !(scale > 0.0F));
}

namespace
{

//! The checks both forms share (types, window, shift, padded grid, head dim, scale); true when valid.
//! Fills the parameters both forms share, plans and launches `rows` window rows (rows > 0).
cudaError_t launchWindowAttention(AttentionParams& p, void const* qkv, DType qkvType, void const* bias,
    DType biasType, BiasForm biasForm, void* context, int32_t rows, int32_t numHeads, int32_t headDim, int32_t wt,
    int32_t wh, int32_t ww, int32_t st, int32_t sh, int32_t sw, int32_t frames, int32_t height, int32_t width,
    float scale, float const* headScale, bool aligned, cudaStream_t stream)
{
    bool const cosine = headScale != nullptr;
    p.qkv = qkv;
    p.biasTable = bias;
    p.context = context;
    p.geo = makeAttentionGeometry3d(frames, height, width, wt, wh, ww, st, sh, sw);
    p.numHeads = numHeads;
    p.headDim = headDim;
    p.channels = numHeads * headDim;
    p.hd4 = (headDim + 3) / 4;
    p.qkStride = qkStrideOf(headDim);
    p.vStride = vStrideOf(headDim);
    p.biasRows = biasForm == BiasForm::kTABLE ? biasTableSize3d(wt, wh, ww) : 0;
    p.biasOffset = rpiOffset3d(wt, wh, ww);
    p.biasIsHalf = biasType == DType::kFLOAT16 ? 1 : 0;
    p.vectorLoads = (headDim % 4 == 0 && aligned) ? 1 : 0;
    p.scale = cosine ? 1.0F : scale; // cosine mode: q is normalized after staging, its scale is headScale[h]
    for (int32_t h = 0; cosine && h < numHeads; ++h)
    {
        p.headScale[h] = headScale[h];
    }

    AttentionPlan const plan = planAttention(p.geo.N, headDim, p.biasRows);
    if (plan.warps == 0 || plan.tiles > 65535)
    {
        return cudaErrorInvalidValue;
    }
    p.biasMode = plan.biasMode;
    p.queryTile = plan.warps * kRowsPerWarp;
    if (qkvType == DType::kFLOAT32)
    {
        return dispatchMode<float>(p, cosine, rows, plan.warps, plan.tiles, plan.smem, stream);
    }
    return dispatchMode<__half>(p, cosine, rows, plan.warps, plan.tiles, plan.smem, stream);
}

bool aligned4(void const* pointer, DType type)
{
    return reinterpret_cast<uintptr_t>(pointer) % (4 * dtypeSize(type)) == 0;
}

} // namespace

cudaError_t windowAttention(void const* qkv, DType qkvType, void const* bias, DType biasType, BiasForm biasForm,
    void* context, int32_t rows, int32_t numHeads, int32_t headDim, int32_t wt, int32_t wh, int32_t ww, int32_t st,
    int32_t sh, int32_t sw, int32_t frames, int32_t height, int32_t width, float scale, float const* headScale,
    cudaStream_t stream)
{
    if (!validWindowAttentionArgs(qkv, qkvType, bias, biasType, biasForm, context, rows, numHeads, headDim, wt, wh, ww,
            st, sh, sw, frames, height, width, scale, headScale))
    {
        return cudaErrorInvalidValue;
    }
    if (rows % ((frames / wt) * (height / wh) * (width / ww)) != 0)
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
    return launchWindowAttention(p, qkv, qkvType, bias, biasType, biasForm, context, rows, numHeads, headDim, wt, wh,
        ww, st, sh, sw, frames, height, width, scale, headScale, aligned4(qkv, qkvType), stream);
}

cudaError_t fusedWindowAttention(void const* qkvMap, DType qkvType, void const* bias, DType biasType,
    BiasForm biasForm, void const* padRow, void* contextMap, int32_t B, int32_t T, int32_t H, int32_t W,
    int32_t numHeads, int32_t headDim, int32_t wt, int32_t wh, int32_t ww, int32_t st, int32_t sh, int32_t sw,
    int32_t padFirst, float scale, float const* headScale, cudaStream_t stream)
{
    if (B < 0 || padRow == nullptr || (padFirst != 0 && padFirst != 1) || (wt > 1 && padFirst != 1)
        || checkWindowGeometry3d(T, H, W, wt, wh, ww) != nullptr)
    {
        return cudaErrorInvalidValue;
    }
    WindowGeometry const map = makeWindowGeometry3d(T, H, W, wt, wh, ww, st, sh, sw, padFirst);
    int64_t const rows = static_cast<int64_t>(B) * map.nW;
    if (rows > INT32_MAX
        || !validWindowAttentionArgs(qkvMap, qkvType, bias, biasType, biasForm, contextMap,
            static_cast<int32_t>(rows), numHeads, headDim, wt, wh, ww, st, sh, sw, map.Tp, map.Hp, map.Wp, scale,
            headScale))
    {
        return cudaErrorInvalidValue;
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
    p.fused = 1;
    p.map = map;
    p.padRow = padRow;
    return launchWindowAttention(p, qkvMap, qkvType, bias, biasType, biasForm, contextMap, static_cast<int32_t>(rows),
        numHeads, headDim, wt, wh, ww, st, sh, sw, map.Tp, map.Hp, map.Wp, scale, headScale,
        aligned4(qkvMap, qkvType) && aligned4(padRow, qkvType), stream);
}

} // namespace swin_trt

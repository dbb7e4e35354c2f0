// SwinWindowAttention on tensor cores: float16 qkv and context, float32 accumulation and softmax, through
// nvcuda::wmma (m16n16k16, sm_70 and later: Xavier, Orin, Thor, V100 and every later server GPU). The same
// contract as the CUDA-core kernel (swinWindowAttentionKernel.cu, which keeps float32 I/O): V1 and cosine (V2)
// modes, 2D and 3D windows, shift mask, bias table or dense bias, any N <= kMaxAttentionTokens and head_dim <=
// kMaxHeadDim. The window geometry, relative position keys, mask regions and all argument checks come from
// swin_index.h and the shared helpers of swin_kernels.h, so both kernels read one definition of the op.
//
// Why wmma and not mma.sync (PTX): one source compiles for every architecture from sm_70 to sm_90 (and sm_110),
// the compiler picks the HMMA form of each (CUDA 13 SASS: sm_75 HMMA.1688.F32, sm_87 and sm_90 HMMA.16816.F32),
// while mma.sync's m16n8k16 needs sm_80 (Volta only has m8n8k4) and hard-codes the per-lane fragment layout;
// and the fragment-level API has an exact host model (plugins/common/wmma_emulation.h), so the real kernel
// source runs on the CPU emulator in tests. The price: wmma's register layout is unspecified, so row-wise
// softmax work goes through shared memory instead of registers.
//
// Design (per block: one window row r, one head h, a query tile of 16 * warps rows):
// * each warp owns 16 query rows (one m-tile); its q fragments (HDT = ceil(head_dim / 16) k-steps) are loaded
//   once, through the warp's scratch, and stay in registers. Channels past head_dim and rows past N are zero;
// * keys stream through shared memory in tiles of 32 (K, and V in the second pass, float16, row stride
//   16 * HDT + 8 halves against bank conflicts);
// * two passes over the keys, so that the accumulators never need a per-row rescale (wmma does not say which
//   lane holds which row): pass 1 computes S = q k^T (mma), adds scale, bias and mask in float32 and keeps each
//   row's running max; pass 2 recomputes S, writes p = exp(s - max) rounded to float16 into the warp's scratch
//   (its row sum in float32 from the rounded values: P V is divided by the sum of the weights it used), and
//   accumulates O += P V (mma, float32 accumulators in registers). The output is O / sum, rounded once to float16;
// * softmax lanes: two per query row (lane / 2 = row, lane % 2 = half of the 32 keys), one butterfly shuffle per
//   reduction; keys at or past N get probability 0 (padding to the 16 x 16 tiles is never visible), and padded
//   query rows (>= N) compute with the last row's bias and mask and are never stored;
// * the q k^T products are those of the float16 inputs, exact in float32: V1 multiplies S by `scale` afterwards,
//   cosine mode by head_scale[h] / max(|q_i|, eps) / max(|k_j|, eps), the norms summed in float32 from the
//   float16 inputs (never a rounded normalised q or k);
// * shared memory per block (bytes, <= kAttentionSmemBudget = 48 KiB, no opt-in: every GPU from sm_70 on):
//     K and V tiles     2 * 32 * (16 * HDT + 8) * 2
//     per warp          16 * 36 * 4 (S, float) + 16 * 40 * 2 (P, float16) = 3584
//     per key           4 (relative-position key and mask region, packed) + 4 in cosine mode (1 / |k|)
//     bias column       4 * biasRows when staged (else read through the read-only cache; dense bias: always)
//   warps and query tiles are planned per shape (tcPlan): fewest padded m-tiles plus twice the tiles
//   (each tile re-reads K and V), the table staged when that costs nothing.
#include "cuda_compat.cuh"
#include "swin_kernels.h"

#if !defined(SWIN_TRT_EMULATION)
#include <mma.h>
#endif

#include <string.h>

namespace swin_trt
{
namespace
{

namespace wmma = nvcuda::wmma;

constexpr int32_t kTcTile = 16;                   // wmma m16n16k16
constexpr int32_t kTcKeyTile = 32;                // keys per shared-memory tile
constexpr int32_t kTcMaxWarps = 16;               // HDT <= 4
constexpr int32_t kTcMaxWarpsWide = 8;            // HDT > 4: 2 * HDT fragments per lane need the registers
constexpr int32_t kTcLdS = kTcKeyTile + 4;        // floats per row of a warp's S scratch
constexpr int32_t kTcLdP = kTcKeyTile + 8;        // halves per row of a warp's P scratch
constexpr int32_t kTcWarpBytes = kTcTile * kTcLdS * 4 + kTcTile * kTcLdP * 2;
constexpr int32_t kTcRegionBits = 5;              // mask regions 0..26
constexpr float kTcNegativeLarge = -1.0e30F;

static_assert(kTcWarpBytes % 32 == 0, "per-warp scratch keeps 32-byte alignment");
static_assert(kTcKeyTile == 32, "two softmax lanes per row cover 16 keys each");

enum TcBiasMode : int32_t
{
    kTcBiasStaged = 0, //!< table column of the head in shared memory
    kTcBiasTable = 1,  //!< table column read from global memory (did not fit)
    kTcBiasDense = 2,  //!< dense (numHeads, N, N) bias from global memory
};

//! Launch parameters: the geometry and operands of the op (as the CUDA-core kernel's AttentionParams: the same
//! AttentionGeometry, bias rows and offset, scale and head scales) plus this kernel's tiling.
struct TensorCoreAttentionParams
{
    void const* qkv; // __half
    void const* biasTable;
    void* context;   // __half
    AttentionGeometry geo;
    int32_t numHeads;
    int32_t headDim;
    int32_t channels;  // C = numHeads * headDim
    int32_t queryTile; // query rows per block = 16 * warps
    int32_t ldh;       // halves per row of the K and V tiles: 16 * HDT + 8
    int32_t keyTiles;  // ceil(N / kTcKeyTile)
    int32_t biasRows;  // (2wt - 1) * (2wh - 1) * (2ww - 1): the table's rows
    int32_t biasOffset; // rpiOffset3d(wt, wh, ww)
    int32_t biasMode;   // TcBiasMode
    int32_t biasIsHalf;
    int32_t vectorIo; // headDim % 8 == 0 and qkv, context 16-byte aligned: 8 halves per access
    float scale;
    float headScale[kMaxCosineHeads]; // cosine mode: one per head (a copy: host memory is not device memory)
};

//! Byte offsets of the shared-memory regions (every one 32-byte aligned, as wmma needs).
struct TcSmemLayout
{
    size_t k;
    size_t v;
    size_t warps;
    size_t keyInfo;
    size_t keyFactor;
    size_t bias;
    size_t total;
};

SWIN_HD size_t tcRoundUp32(size_t bytes)
{
    return (bytes + 31) & ~static_cast<size_t>(31);
}

SWIN_HD TcSmemLayout tcSmemLayout(int32_t warps, int32_t ldh, int32_t keyTiles, int32_t stagedBiasRows, bool cosine)
{
    TcSmemLayout s;
    size_t const tileBytes = static_cast<size_t>(kTcKeyTile) * ldh * 2;
    size_t const keys = static_cast<size_t>(keyTiles) * kTcKeyTile;
    s.k = 0;
    s.v = s.k + tileBytes;
    s.warps = s.v + tileBytes;
    s.keyInfo = s.warps + static_cast<size_t>(warps) * kTcWarpBytes;
    s.keyFactor = s.keyInfo + tcRoundUp32(keys * 4);
    s.bias = s.keyFactor + (cosine ? tcRoundUp32(keys * 4) : 0);
    s.total = s.bias + tcRoundUp32(static_cast<size_t>(stagedBiasRows) * 4);
    return s;
}

SWIN_DEVICE float tcLoadBias(TensorCoreAttentionParams const& p, int64_t at)
{
    return p.biasIsHalf ? __half2float(dev::ldg(static_cast<__half const*>(p.biasTable) + at))
                        : dev::ldg(static_cast<float const*>(p.biasTable) + at);
}

//! Copies halves [d0, d0 + 8) of one token's head slice (`src` = its channel 0; channels >= headDim and
//! invalid rows read as 0) to 16-byte aligned `dst`; returns the sum of their squares in float32.
SWIN_DEVICE float tcStage8(__half* dst, __half const* src, int32_t d0, bool valid, TensorCoreAttentionParams const& p)
{
    __half v[8];
    if (valid && p.vectorIo && d0 + 8 <= p.headDim)
    {
        uint4 const raw = dev::ldg(reinterpret_cast<uint4 const*>(src + d0));
        memcpy(static_cast<void*>(v), &raw, sizeof(raw));
    }
    else
    {
#pragma unroll
        for (int32_t e = 0; e < 8; ++e)
        {
            v[e] = (valid && d0 + e < p.headDim) ? dev::ldg(src + d0 + e) : __float2half_rn(0.0F);
        }
    }
    float squares = 0.0F;
#pragma unroll
    for (int32_t e = 0; e < 8; ++e)
    {
        float const f = __half2float(v[e]);
        squares += f * f;
    }
    uint4 packed;
    memcpy(&packed, v, sizeof(packed));
    *reinterpret_cast<uint4*>(dst) = packed;
    return squares;
}

//! Stages keys [k0, k0 + 32) of one head's k or v slice (`src` = token 0's channel 0 of that slice) into a
//! (32, ldh) float16 tile; keys >= N and channels >= headDim are zero (never NaN: 0 * NaN would leak).
template <int32_t HDT>
SWIN_DEVICE void tcStageKeyTile(__half* tile, __half const* src, int32_t k0, TensorCoreAttentionParams const& p)
{
    constexpr int32_t kChunks = HDT * 2; // 8 halves each
    int64_t const tokenStride = 3 * static_cast<int64_t>(p.channels);
    for (int32_t idx = static_cast<int32_t>(threadIdx.x); idx < kTcKeyTile * kChunks;
         idx += static_cast<int32_t>(blockDim.x))
    {
        int32_t const key = idx / kChunks;
        int32_t const chunk = idx - key * kChunks;
        int32_t const j = k0 + key;
        bool const valid = j < p.geo.N;
        tcStage8(tile + key * p.ldh + chunk * 8, src + (valid ? j : 0) * tokenStride, chunk * 8, valid, p);
    }
    // The 8 skew halves of each row are never read by the fragments (they cover columns [0, 16 * HDT)).
}

//! S (16 x 32, float, the warp's scratch) = this warp's q rows times the 32 staged keys.
template <int32_t HDT>
SWIN_DEVICE void tcScoreTile(wmma::fragment<wmma::matrix_a, 16, 16, 16, __half, wmma::row_major> const (&qf)[HDT],
    __half const* sK, float* sS, int32_t ldh)
{
#pragma unroll
    for (int32_t n = 0; n < kTcKeyTile / kTcTile; ++n)
    {
        wmma::fragment<wmma::accumulator, 16, 16, 16, float> acc;
        wmma::fill_fragment(acc, 0.0F);
#pragma unroll
        for (int32_t kk = 0; kk < HDT; ++kk)
        {
            // B = K^T: the (key, channel) tile read column-major.
            wmma::fragment<wmma::matrix_b, 16, 16, 16, __half, wmma::col_major> kf;
            wmma::load_matrix_sync(kf, sK + n * kTcTile * ldh + kk * kTcTile, static_cast<unsigned>(ldh));
            wmma::mma_sync(acc, qf[kk], kf, acc);
        }
        wmma::store_matrix_sync(sS + n * kTcTile, acc, kTcLdS, wmma::mem_row_major);
    }
}

//! The per-row constants of one softmax lane: its query row's bias key and region, and the factor of q.k.
struct TcRow
{
    int32_t keyI;   // table: rpiKey3d(i) + offset; dense: i
    int32_t region; // mask region of i
    float factor;   // V1: scale; cosine: head_scale / max(|q_i|, eps)
};

//! Logit of this lane's row against key j (< N) from the raw dot product `dot`.
template <bool kCosine>
SWIN_DEVICE float tcLogit(TensorCoreAttentionParams const& p, TcRow const& row, float dot, int32_t j,
    int32_t const* sKeyInfo, float const* sKeyFactor, float const* sBias, int32_t h, bool masked)
{
    float s = dot * row.factor;
    if (kCosine)
    {
        s *= sKeyFactor[j];
    }
    int32_t const info = sKeyInfo[j];
    int32_t const keyJ = info >> kTcRegionBits;
    float bias;
    if (p.biasMode == kTcBiasStaged)
    {
        bias = sBias[row.keyI - keyJ];
    }
    else if (p.biasMode == kTcBiasTable)
    {
        bias = tcLoadBias(p, static_cast<int64_t>(row.keyI - keyJ) * p.numHeads + h);
    }
    else
    {
        bias = tcLoadBias(p, (static_cast<int64_t>(h) * p.geo.N + row.keyI) * p.geo.N + keyJ);
    }
    s += bias;
    if (masked && row.region != (info & ((1 << kTcRegionBits) - 1)))
    {
        s += kMaskValue;
    }
    return s;
}

//! HDT = ceil(headDim / 16): k-steps of q k^T and output column tiles of p v. kCosine: Swin V2's attention.
template <int32_t HDT, bool kCosine>
__global__ void __launch_bounds__((HDT <= 4 ? kTcMaxWarps : kTcMaxWarpsWide) * 32)
    windowAttentionTensorCoreKernel(TensorCoreAttentionParams const p)
{
#if defined(SWIN_TRT_EMULATION) || (defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 700)
#if defined(SWIN_TRT_EMULATION)
    SWIN_DYNAMIC_SMEM(unsigned char, smem);
#else
    extern __shared__ __align__(128) unsigned char swinTensorCoreSmem_[];
    unsigned char* const smem = swinTensorCoreSmem_;
#endif
    int32_t const r = static_cast<int32_t>(blockIdx.x);
    int32_t const h = static_cast<int32_t>(blockIdx.y);
    int32_t const tid = static_cast<int32_t>(threadIdx.x);
    int32_t const warp = tid >> 5;
    int32_t const lane = tid & 31;
    int32_t const warps = static_cast<int32_t>(blockDim.x) >> 5;
    int32_t const N = p.geo.N;
    int32_t const C = p.channels;
    int64_t const tokenStride = 3 * static_cast<int64_t>(C);
    int32_t const keyCount = p.keyTiles * kTcKeyTile;

    TcSmemLayout const lay
        = tcSmemLayout(warps, p.ldh, p.keyTiles, p.biasMode == kTcBiasStaged ? p.biasRows : 0, kCosine);
    __half* const sK = reinterpret_cast<__half*>(smem + lay.k);
    __half* const sV = reinterpret_cast<__half*>(smem + lay.v);
    float* const sS = reinterpret_cast<float*>(smem + lay.warps + static_cast<size_t>(warp) * kTcWarpBytes);
    __half* const sP = reinterpret_cast<__half*>(reinterpret_cast<unsigned char*>(sS) + kTcTile * kTcLdS * 4);
    int32_t* const sKeyInfo = reinterpret_cast<int32_t*>(smem + lay.keyInfo);
    float* const sKeyFactor = reinterpret_cast<float*>(smem + lay.keyFactor);
    float* const sBias = reinterpret_cast<float*>(smem + lay.bias);

    __half const* const qkv
        = static_cast<__half const*>(p.qkv) + static_cast<int64_t>(r) * N * tokenStride + h * p.headDim;
    bool const masked = hasShiftMask(p.geo);
    int32_t const window = r % p.geo.nW;

    // Prologue: the bias column of head h, and per key its bias key, mask region (and 1 / |k|).
    for (int32_t i = tid; p.biasMode == kTcBiasStaged && i < p.biasRows; i += static_cast<int32_t>(blockDim.x))
    {
        sBias[i] = tcLoadBias(p, static_cast<int64_t>(i) * p.numHeads + h);
    }
    for (int32_t j = tid; j < keyCount; j += static_cast<int32_t>(blockDim.x))
    {
        int32_t const jj = j < N ? j : N - 1;
        int32_t const key = p.biasMode == kTcBiasDense ? jj : rpiKey3d(jj, p.geo.wh, p.geo.ww);
        int32_t const region = masked ? maskRegion(p.geo, window, jj) : 0;
        sKeyInfo[j] = (key << kTcRegionBits) | region;
        if (kCosine)
        {
            float squares = 0.0F;
            __half const* const k = qkv + C + static_cast<int64_t>(jj) * tokenStride;
            for (int32_t d = 0; j < N && d < p.headDim; ++d)
            {
                float const f = __half2float(dev::ldg(k + d));
                squares += f * f;
            }
            sKeyFactor[j] = 1.0F / fmaxf(sqrtf(squares), kCosineNormEpsilon);
        }
    }

    // This warp's q fragments, staged 16 channels at a time through its P scratch. Lane -> (row, 8 channels).
    int32_t const myRow = lane >> 1;
    int32_t const myHalf = lane & 1;
    int32_t const i = static_cast<int32_t>(blockIdx.z) * p.queryTile + warp * kTcTile + myRow;
    int32_t const iv = i < N ? i : N - 1; // padded rows compute a valid row and are never stored
    wmma::fragment<wmma::matrix_a, 16, 16, 16, __half, wmma::row_major> qf[HDT];
    float qSquares = 0.0F;
#pragma unroll
    for (int32_t kk = 0; kk < HDT; ++kk)
    {
        qSquares += tcStage8(sP + myRow * kTcLdP + myHalf * 8, qkv + static_cast<int64_t>(iv) * tokenStride,
            kk * kTcTile + myHalf * 8, i < N, p);
        SWIN_SYNCWARP();
        wmma::load_matrix_sync(qf[kk], sP, kTcLdP);
        SWIN_SYNCWARP();
    }
    TcRow row;
    row.keyI = p.biasMode == kTcBiasDense ? iv : rpiKey3d(iv, p.geo.wh, p.geo.ww) + p.biasOffset;
    row.region = masked ? maskRegion(p.geo, window, iv) : 0;
    if (kCosine)
    {
        float const rowSquares = qSquares + dev::warpShflXor(qSquares, 1);
        row.factor = p.headScale[h] / fmaxf(sqrtf(rowSquares), kCosineNormEpsilon);
    }
    else
    {
        row.factor = p.scale;
    }

    float const* const sSrow = sS + myRow * kTcLdS + myHalf * (kTcKeyTile / 2);
    __half* const sProw = sP + myRow * kTcLdP + myHalf * (kTcKeyTile / 2);

    // Pass 1: each row's maximum logit.
    float rowMax = kTcNegativeLarge;
    for (int32_t t = 0; t < p.keyTiles; ++t)
    {
        int32_t const k0 = t * kTcKeyTile;
        SWIN_SYNCTHREADS(); // the previous tile is consumed (first pass: the prologue is done)
        tcStageKeyTile<HDT>(sK, qkv + C, k0, p);
        SWIN_SYNCTHREADS();
        tcScoreTile<HDT>(qf, sK, sS, p.ldh);
        SWIN_SYNCWARP();
        int32_t const jBase = k0 + myHalf * (kTcKeyTile / 2);
#pragma unroll 4
        for (int32_t c = 0; c < kTcKeyTile / 2; ++c)
        {
            int32_t const j = jBase + c;
            if (j < N)
            {
                rowMax = fmaxf(rowMax,
                    tcLogit<kCosine>(p, row, sSrow[c], j, sKeyInfo, sKeyFactor, sBias, h, masked));
            }
        }
        SWIN_SYNCWARP(); // S is rewritten by the next tile
    }
    rowMax = fmaxf(rowMax, dev::warpShflXor(rowMax, 1));

    // Pass 2: p = exp(s - max) rounded to float16, O += P V.
    wmma::fragment<wmma::accumulator, 16, 16, 16, float> of[HDT];
#pragma unroll
    for (int32_t c = 0; c < HDT; ++c)
    {
        wmma::fill_fragment(of[c], 0.0F);
    }
    float rowSum = 0.0F;
    for (int32_t t = 0; t < p.keyTiles; ++t)
    {
        int32_t const k0 = t * kTcKeyTile;
        SWIN_SYNCTHREADS();
        tcStageKeyTile<HDT>(sK, qkv + C, k0, p);
        tcStageKeyTile<HDT>(sV, qkv + 2 * C, k0, p);
        SWIN_SYNCTHREADS();
        tcScoreTile<HDT>(qf, sK, sS, p.ldh);
        SWIN_SYNCWARP();
        int32_t const jBase = k0 + myHalf * (kTcKeyTile / 2);
#pragma unroll 4
        for (int32_t c = 0; c < kTcKeyTile / 2; ++c)
        {
            int32_t const j = jBase + c;
            __half ph = __float2half_rn(0.0F); // keys past N: probability 0, the padding stays invisible
            if (j < N)
            {
                float const logit = tcLogit<kCosine>(p, row, sSrow[c], j, sKeyInfo, sKeyFactor, sBias, h, masked);
                ph = __float2half_rn(dev::fastExp(logit - rowMax));
                rowSum += __half2float(ph);
            }
            sProw[c] = ph;
        }
        SWIN_SYNCWARP();
#pragma unroll
        for (int32_t kk = 0; kk < kTcKeyTile / kTcTile; ++kk)
        {
            wmma::fragment<wmma::matrix_a, 16, 16, 16, __half, wmma::row_major> pf;
            wmma::load_matrix_sync(pf, sP + kk * kTcTile, kTcLdP);
#pragma unroll
            for (int32_t c = 0; c < HDT; ++c)
            {
                wmma::fragment<wmma::matrix_b, 16, 16, 16, __half, wmma::row_major> vf;
                wmma::load_matrix_sync(vf, sV + kk * kTcTile * p.ldh + c * kTcTile, static_cast<unsigned>(p.ldh));
                wmma::mma_sync(of[c], pf, vf, of[c]);
            }
        }
        // P is rewritten after the next tile's block barrier.
    }
    rowSum += dev::warpShflXor(rowSum, 1);
    float const inv = 1.0F / rowSum; // >= 1: the row's maximum contributes exp(0) = 1

    // O / sum to float16, 16 columns at a time through the S scratch; lane -> (row, 8 columns).
    __half* const out = static_cast<__half*>(p.context) + (static_cast<int64_t>(r) * N + iv) * C + h * p.headDim;
#pragma unroll
    for (int32_t c = 0; c < HDT; ++c)
    {
        wmma::store_matrix_sync(sS, of[c], kTcLdS, wmma::mem_row_major);
        SWIN_SYNCWARP();
        int32_t const d0 = c * kTcTile + myHalf * 8;
        if (i < N && d0 < p.headDim)
        {
            float const* const o = sS + myRow * kTcLdS + myHalf * 8;
            __half v[8];
#pragma unroll
            for (int32_t e = 0; e < 8; ++e)
            {
                v[e] = __float2half_rn(o[e] * inv);
            }
            if (p.vectorIo && d0 + 8 <= p.headDim)
            {
                uint4 packed;
                memcpy(&packed, v, sizeof(packed));
                *reinterpret_cast<uint4*>(out + d0) = packed;
            }
            else
            {
                for (int32_t e = 0; e < 8 && d0 + e < p.headDim; ++e)
                {
                    out[d0 + e] = v[e];
                }
            }
        }
        SWIN_SYNCWARP(); // the scratch is rewritten by the next column tile
    }
#else
    // Built for an architecture without tensor cores (< sm_70): never launched there (see windowAttentionTensorCore).
    static_cast<void>(p);
    __trap();
#endif
}

//! Launch plan of a shape: warps per block, query tiles, bias mode and shared memory (warps == 0: none fits).
struct TcPlan
{
    int32_t warps;
    int32_t tiles;
    int32_t biasMode;
    size_t smem;
};

int32_t tcHeadTiles(int32_t headDim)
{
    return (headDim + kTcTile - 1) / kTcTile;
}

//! Fewest (padded m-tiles + 2 * query tiles): padded rows cost mma work, each query tile re-reads K and V;
//! then the staged table, then fewer tiles.
TcPlan tcPlan(int32_t N, int32_t headDim, int32_t biasRows, bool cosine)
{
    int32_t const hdt = tcHeadTiles(headDim);
    int32_t const ldh = kTcTile * hdt + 8;
    int32_t const keyTiles = (N + kTcKeyTile - 1) / kTcKeyTile;
    int32_t const mTiles = (N + kTcTile - 1) / kTcTile;
    int32_t const maxWarps = hdt <= 4 ? kTcMaxWarps : kTcMaxWarpsWide;
    TcPlan best{0, 0, kTcBiasDense, 0};
    int64_t bestKey = 0;
    for (int32_t staged = 0; staged <= (biasRows > 0 ? 1 : 0); ++staged)
    {
        for (int32_t warps = 1; warps <= maxWarps; ++warps)
        {
            size_t const smem = tcSmemLayout(warps, ldh, keyTiles, staged ? biasRows : 0, cosine).total;
            if (smem > kAttentionSmemBudget)
            {
                break;
            }
            int32_t const tiles = (mTiles + warps - 1) / warps;
            // Lexicographic (cost, table not staged, tiles).
            int64_t const key = (static_cast<int64_t>(tiles * warps + 2 * tiles) * 2 + (1 - staged)) * 65536 + tiles;
            if (best.warps == 0 || key < bestKey)
            {
                int32_t const mode = biasRows == 0 ? kTcBiasDense : (staged ? kTcBiasStaged : kTcBiasTable);
                best = TcPlan{warps, tiles, mode, smem};
                bestKey = key;
            }
        }
    }
    return best;
}

template <int32_t HDT, bool kCosine>
cudaError_t tcLaunch(TensorCoreAttentionParams const& p, int32_t rows, TcPlan const& plan, cudaStream_t stream)
{
    dim3 const grid(static_cast<uint32_t>(rows), static_cast<uint32_t>(p.numHeads), static_cast<uint32_t>(plan.tiles));
    SWIN_LAUNCH(grid, dim3(static_cast<uint32_t>(plan.warps * 32)), plan.smem, stream,
        windowAttentionTensorCoreKernel<HDT, kCosine>)(p);
    return lastLaunchError();
}

template <bool kCosine>
cudaError_t tcDispatch(TensorCoreAttentionParams const& p, int32_t rows, TcPlan const& plan, cudaStream_t stream)
{
    switch (tcHeadTiles(p.headDim))
    {
    case 1: return tcLaunch<1, kCosine>(p, rows, plan, stream);
    case 2: return tcLaunch<2, kCosine>(p, rows, plan, stream);
    case 3: return tcLaunch<3, kCosine>(p, rows, plan, stream);
    case 4: return tcLaunch<4, kCosine>(p, rows, plan, stream);
    case 5: return tcLaunch<5, kCosine>(p, rows, plan, stream);
    case 6: return tcLaunch<6, kCosine>(p, rows, plan, stream);
    case 7: return tcLaunch<7, kCosine>(p, rows, plan, stream);
    case 8: return tcLaunch<8, kCosine>(p, rows, plan, stream);
    default: return cudaErrorInvalidValue;
    }
}

} // namespace

size_t windowAttentionTensorCoreSmemBytes(int32_t numTokens, int32_t headDim, int32_t biasRows, bool cosine)
{
    if (checkWindowAttentionSupport(numTokens, headDim) != nullptr || biasRows < 0)
    {
        return 0;
    }
    return tcPlan(numTokens, headDim, biasRows, cosine).smem;
}

cudaError_t windowAttentionTensorCore(void const* qkv, DType qkvType, void const* bias, DType biasType,
    BiasForm biasForm, void* context, int32_t rows, int32_t numHeads, int32_t headDim, int32_t wt, int32_t wh,
    int32_t ww, int32_t st, int32_t sh, int32_t sw, int32_t frames, int32_t height, int32_t width, float scale,
    float const* headScale, cudaStream_t stream)
{
    // The checks of windowAttention, and float16 qkv.
    if (qkvType != DType::kFLOAT16
        || !validWindowAttentionArgs(qkv, qkvType, bias, biasType, biasForm, context, rows, numHeads, headDim, wt, wh,
            ww, st, sh, sw, frames, height, width, scale, headScale))
    {
        return cudaErrorInvalidValue;
    }
    bool const cosine = headScale != nullptr;
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

    TensorCoreAttentionParams p{};
    p.qkv = qkv;
    p.biasTable = bias;
    p.context = context;
    p.geo = makeAttentionGeometry3d(frames, height, width, wt, wh, ww, st, sh, sw);
    p.numHeads = numHeads;
    p.headDim = headDim;
    p.channels = numHeads * headDim;
    p.ldh = kTcTile * tcHeadTiles(headDim) + 8;
    p.keyTiles = (p.geo.N + kTcKeyTile - 1) / kTcKeyTile;
    p.biasRows = biasForm == BiasForm::kTABLE ? biasTableSize3d(wt, wh, ww) : 0;
    p.biasOffset = rpiOffset3d(wt, wh, ww);
    p.biasIsHalf = biasType == DType::kFLOAT16 ? 1 : 0;
    p.vectorIo = (headDim % 8 == 0 && reinterpret_cast<uintptr_t>(qkv) % 16 == 0
                     && reinterpret_cast<uintptr_t>(context) % 16 == 0)
        ? 1
        : 0;
    p.scale = cosine ? 1.0F : scale;
    for (int32_t h = 0; cosine && h < numHeads; ++h)
    {
        p.headScale[h] = headScale[h];
    }

    TcPlan const plan = tcPlan(p.geo.N, headDim, p.biasRows, cosine);
    if (plan.warps == 0 || plan.tiles > 65535)
    {
        return cudaErrorInvalidValue;
    }
    p.biasMode = plan.biasMode;
    p.queryTile = plan.warps * kTcTile;
    return cosine ? tcDispatch<true>(p, rows, plan, stream) : tcDispatch<false>(p, rows, plan, stream);
}

} // namespace swin_trt

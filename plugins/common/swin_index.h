// Index math of the three Swin window ops: window partition/reverse with cyclic shift and padding, relative
// position index, shifted-window mask regions.
//
// This is the single source of truth for the kernels (device) and for the host-side checks (plugins,
// C ABI, host tests). Every function is `__host__ __device__` under nvcc and plain `inline` under any other
// C++ compiler, so the header compiles with g++ alone (no CUDA headers needed).
//
// Notation (see plugins/<OpName>/README.md): window (wh, ww), shift (sh, sw), N = wh * ww,
// Hp = ceil(H / wh) * wh, Wp = ceil(W / ww) * ww, nWh = Hp / wh, nWw = Wp / ww, nW = nWh * nWw.
// 3D windows (Video Swin) add the frame axis in front: map (T, H, W), window (wt, wh, ww), shift (st, sh, sw),
// N = wt * wh * ww, nW = nWt * nWh * nWw; the 2D functions are the T = wt = 1, st = 0 case of the same math.
#ifndef SWIN_TRT_SWIN_INDEX_H
#define SWIN_TRT_SWIN_INDEX_H

#include <stdint.h>

#if defined(__CUDACC__)
#define SWIN_HD __host__ __device__ __forceinline__
#else
#define SWIN_HD inline
#endif

namespace swin_trt
{

//! Mask value added between tokens of different shifted-window regions (as in the original Swin).
constexpr float kMaskValue = -100.0F;

//! ceil(a / b) for a >= 0, b > 0, without the overflow of (a + b - 1) / b near INT32_MAX.
SWIN_HD int32_t ceilDiv(int32_t a, int32_t b)
{
    return a / b + (a % b != 0 ? 1 : 0);
}

//! Mathematical modulo: result in [0, m) for any a (m > 0).
SWIN_HD int32_t posMod(int32_t a, int32_t m)
{
    int32_t const r = a % m;
    return r < 0 ? r + m : r;
}

//! Geometry shared by SwinWindowPartition and SwinWindowReverse, over (T, H, W): a 2D op is T = 1, wt = 1,
//! st = 0 (one frame, windows of one frame), so both ranks run the same index math. T, H, W: the unpadded map.
struct WindowGeometry
{
    int32_t T, H, W;       // unpadded map
    int32_t wt, wh, ww;    // window
    int32_t st, sh, sw;    // shift
    int32_t padFirst;      // 1: pad, then roll the padded grid (torchvision, Video Swin); 0: roll, then pad (timm)
    int32_t Tp, Hp, Wp;    // padded grid
    int32_t nWt, nWh, nWw; // windows along each axis
    int32_t nW;            // windows per image (clip)
    int32_t N;             // tokens per window
};

SWIN_HD WindowGeometry makeWindowGeometry3d(int32_t T, int32_t H, int32_t W, int32_t wt, int32_t wh, int32_t ww,
    int32_t st, int32_t sh, int32_t sw, int32_t padFirst)
{
    WindowGeometry g;
    g.T = T;
    g.H = H;
    g.W = W;
    g.wt = wt;
    g.wh = wh;
    g.ww = ww;
    g.st = st;
    g.sh = sh;
    g.sw = sw;
    g.padFirst = padFirst != 0 ? 1 : 0;
    g.nWt = ceilDiv(T, wt);
    g.nWh = ceilDiv(H, wh);
    g.nWw = ceilDiv(W, ww);
    g.Tp = g.nWt * wt;
    g.Hp = g.nWh * wh;
    g.Wp = g.nWw * ww;
    g.nW = g.nWt * g.nWh * g.nWw;
    g.N = wt * wh * ww;
    return g;
}

//! The 2D geometry: one frame.
SWIN_HD WindowGeometry makeWindowGeometry(
    int32_t H, int32_t W, int32_t wh, int32_t ww, int32_t sh, int32_t sw, int32_t padFirst)
{
    return makeWindowGeometry3d(1, H, W, 1, wh, ww, 0, sh, sw, padFirst);
}

//! Attribute ranges of the contract. Returns nullptr when valid, else a static description of the problem.
SWIN_HD char const* checkWindowShift(int32_t wh, int32_t ww, int32_t sh, int32_t sw)
{
    if (wh < 1 || ww < 1)
    {
        return "window_size must be >= 1 in both dimensions";
    }
    if (sh < 0 || sh >= wh || sw < 0 || sw >= ww)
    {
        return "shift_size must satisfy 0 <= shift < window in both dimensions";
    }
    return nullptr;
}

//! checkWindowShift with the frame axis (wt, st); a 2D window passes wt = 1, st = 0.
SWIN_HD char const* checkWindowShift3d(int32_t wt, int32_t wh, int32_t ww, int32_t st, int32_t sh, int32_t sw)
{
    if (wt < 1)
    {
        return "window_size must be >= 1 in every dimension";
    }
    if (st < 0 || st >= wt)
    {
        return "shift_size must satisfy 0 <= shift < window in every dimension";
    }
    return checkWindowShift(wh, ww, sh, sw);
}

//! Largest map side, window side and padded side the ops accept (attributes come from untrusted files).
constexpr int64_t kMaxSide = int64_t{1} << 24;

//! Bounds that keep every count of the geometry in int32: returns nullptr when H x W (unpadded map, or
//! the padded grid for attention) with window (wh, ww) is valid, else a static description. Computed in
//! int64, so hostile attributes cannot overflow here: with Hp >= wh and Wp >= ww, N = wh * ww,
//! nW = nWh * nWw and the positions per image (nW * N = Hp * Wp) are all <= Hp * Wp <= INT32_MAX.
SWIN_HD char const* checkWindowGeometry(int64_t H, int64_t W, int64_t wh, int64_t ww)
{
    if (H < 1 || W < 1 || wh < 1 || ww < 1)
    {
        return "the map (H, W) and the window must be >= 1 in both dimensions";
    }
    if (H > kMaxSide || W > kMaxSide || wh > kMaxSide || ww > kMaxSide)
    {
        return "the map (H, W) and the window must be <= 2^24 in both dimensions";
    }
    int64_t const Hp = (H + wh - 1) / wh * wh;
    int64_t const Wp = (W + ww - 1) / ww * ww;
    if (Hp * Wp > INT32_MAX)
    {
        return "the padded map (Hp * Wp positions) must hold at most 2^31 - 1 positions";
    }
    return nullptr;
}

//! checkWindowGeometry over (T, H, W): the positions per clip, Tp * Hp * Wp (>= N, nW), fit in int32. A 2D map
//! is T = 1 with wt = 1 and gets exactly checkWindowGeometry's answer.
SWIN_HD char const* checkWindowGeometry3d(int64_t T, int64_t H, int64_t W, int64_t wt, int64_t wh, int64_t ww)
{
    if (T < 1 || wt < 1)
    {
        return "the map (T, H, W) and the window must be >= 1 in every dimension";
    }
    if (T > kMaxSide || wt > kMaxSide)
    {
        return "the map (T, H, W) and the window must be <= 2^24 in every dimension";
    }
    if (char const* why = checkWindowGeometry(H, W, wh, ww))
    {
        return why;
    }
    int64_t const Tp = (T + wt - 1) / wt * wt;
    int64_t const Hp = (H + wh - 1) / wh * wh;
    int64_t const Wp = (W + ww - 1) / ww * ww;
    if (Tp * Hp * Wp > INT32_MAX) // Tp * (Hp * Wp): the second factor is <= INT32_MAX, Tp <= 2^25: no overflow
    {
        return "the padded map (Tp * Hp * Wp positions) must hold at most 2^31 - 1 positions";
    }
    return nullptr;
}

//! Padded-grid position (z, y, x) of token t of window wi (both within one clip); z = 0 for a 2D op. Geometry:
//! WindowGeometry or AttentionGeometry (their window counts nWh, nWw and window dims wt, wh, ww).
template <typename Geometry>
SWIN_HD void windowTokenToGrid3d(Geometry const& g, int32_t wi, int32_t t, int32_t& z, int32_t& y, int32_t& x)
{
    int32_t const perFrame = g.nWh * g.nWw;
    int32_t const wz = wi / perFrame;
    int32_t const wr = wi - wz * perFrame;
    int32_t const wy = wr / g.nWw;
    int32_t const wx = wr - wy * g.nWw;
    int32_t const area = g.wh * g.ww;
    int32_t const iz = t / area;
    int32_t const ir = t - iz * area;
    int32_t const iy = ir / g.ww;
    int32_t const ix = ir - iy * g.ww;
    z = wz * g.wt + iz;
    y = wy * g.wh + iy;
    x = wx * g.ww + ix;
}

//! Padded-grid position (y, x) of token t of window wi of a 2D op.
SWIN_HD void windowTokenToGrid(WindowGeometry const& g, int32_t wi, int32_t t, int32_t& y, int32_t& x)
{
    int32_t z;
    windowTokenToGrid3d(g, wi, t, z, y, x);
}

//! Partition along one axis: source index `s` of padded position p (map length `size`, padded `padded`).
//! Returns false when the position is padding (value 0).
SWIN_HD bool partitionSource1d(int32_t p, int32_t size, int32_t padded, int32_t shift, int32_t padFirst, int32_t& s)
{
    if (padFirst)
    {
        // Pad to the padded grid, then roll it by -shift.
        s = p + shift;
        s = s >= padded ? s - padded : s;
        return s < size;
    }
    // Roll the unpadded map by -shift, then pad. The shift can exceed the map (H < wh): full modulo.
    if (p >= size)
    {
        return false;
    }
    s = (p + shift) % size;
    return true;
}

//! Partition: source pixel (ys, xs) of the unpadded image for padded-grid position (y, x) of a 2D op.
//! Returns false when the position is padding (value 0).
SWIN_HD bool partitionSourcePixel(WindowGeometry const& g, int32_t y, int32_t x, int32_t& ys, int32_t& xs)
{
    bool const inY = partitionSource1d(y, g.H, g.Hp, g.sh, g.padFirst, ys);
    bool const inX = partitionSource1d(x, g.W, g.Wp, g.sw, g.padFirst, xs);
    return inY && inX;
}

//! Partition: flat source row (((b * T + ts) * H + ys) * W + xs) of output row `outRow` of the (B * nW * N, C)
//! output, or -1 when that row is padding (zeros).
SWIN_HD int64_t partitionSourceRow(WindowGeometry const& g, int64_t outRow)
{
    int64_t const perImage = static_cast<int64_t>(g.nW) * g.N;
    int64_t const b = outRow / perImage;
    int32_t const rem = static_cast<int32_t>(outRow - b * perImage);
    int32_t const wi = rem / g.N;
    int32_t const t = rem - wi * g.N;
    int32_t z, y, x, zs, ys, xs;
    windowTokenToGrid3d(g, wi, t, z, y, x);
    if (!partitionSource1d(z, g.T, g.Tp, g.st, g.padFirst, zs) || !partitionSource1d(y, g.H, g.Hp, g.sh, g.padFirst, ys)
        || !partitionSource1d(x, g.W, g.Wp, g.sw, g.padFirst, xs))
    {
        return -1;
    }
    return ((b * g.T + zs) * g.H + ys) * static_cast<int64_t>(g.W) + xs;
}

//! Reverse along one axis: padded position of output index y (map length `size`, padded `padded`).
SWIN_HD int32_t reverseGrid1d(int32_t y, int32_t size, int32_t padded, int32_t shift, int32_t padFirst)
{
    if (padFirst)
    {
        // Window reverse to the padded grid, roll by +shift over the padded grid, crop to the map.
        int32_t const p = y - shift;
        return p < 0 ? p + padded : p;
    }
    // Window reverse to the padded grid, crop to the map, roll by +shift over the map (the shift can exceed
    // the map when it is smaller than the window: full modulo, not a single wrap).
    return posMod(y - shift, size);
}

//! Reverse: padded-grid position (py, px) whose window token lands on output pixel (y, x), y < H, x < W (2D).
SWIN_HD void reverseGridPosition(WindowGeometry const& g, int32_t y, int32_t x, int32_t& py, int32_t& px)
{
    py = reverseGrid1d(y, g.H, g.Hp, g.sh, g.padFirst);
    px = reverseGrid1d(x, g.W, g.Wp, g.sw, g.padFirst);
}

//! Reverse: flat row ((b * nW + wi) * N + t) of the windows input read by output row `outRow`
//! (= ((b * T + z) * H + y) * W + x) of the (B, [T,] H, W, C) output. Never padding.
SWIN_HD int64_t reverseSourceRow(WindowGeometry const& g, int64_t outRow)
{
    int64_t const perImage = static_cast<int64_t>(g.T) * g.H * g.W;
    int64_t const b = outRow / perImage;
    int32_t const rem = static_cast<int32_t>(outRow - b * perImage);
    int32_t const area = g.H * g.W;
    int32_t const z = rem / area;
    int32_t const rz = rem - z * area;
    int32_t const y = rz / g.W;
    int32_t const x = rz - y * g.W;
    int32_t const pz = reverseGrid1d(z, g.T, g.Tp, g.st, g.padFirst);
    int32_t const py = reverseGrid1d(y, g.H, g.Hp, g.sh, g.padFirst);
    int32_t const px = reverseGrid1d(x, g.W, g.Wp, g.sw, g.padFirst);
    int32_t const wz = pz / g.wt;
    int32_t const wy = py / g.wh;
    int32_t const wx = px / g.ww;
    int32_t const wi = (wz * g.nWh + wy) * g.nWw + wx;
    int32_t const t = ((pz - wz * g.wt) * g.wh + (py - wy * g.wh)) * g.ww + (px - wx * g.ww);
    return (b * g.nW + wi) * static_cast<int64_t>(g.N) + t;
}

// ---------------------------------------------------------------------------------------------------------
// Window attention: relative position index and shifted-window mask. Tokens of a (wt, wh, ww) window are
// row-major (t, y, x); a 2D window is wt = 1.

//! Number of rows of the relative position bias table: (2wt - 1) * (2wh - 1) * (2ww - 1).
SWIN_HD int32_t biasTableSize3d(int32_t wt, int32_t wh, int32_t ww)
{
    return (2 * wt - 1) * (2 * wh - 1) * (2 * ww - 1);
}

//! Number of rows of a 2D table: (2wh - 1) * (2ww - 1).
SWIN_HD int32_t biasTableSize(int32_t wh, int32_t ww)
{
    return biasTableSize3d(1, wh, ww);
}

//! Separable form used by the kernel: rpi(i, j) = rpiKey(i) - rpiKey(j) + rpiOffset, with
//! rpiKey(t) = (tz * (2wh - 1) + ty) * (2ww - 1) + tx (tz = 0 for a 2D window).
SWIN_HD int32_t rpiKey3d(int32_t t, int32_t wh, int32_t ww)
{
    int32_t const area = wh * ww;
    int32_t const z = t / area;
    int32_t const r = t - z * area;
    int32_t const y = r / ww;
    return (z * (2 * wh - 1) + y) * (2 * ww - 1) + (r - y * ww);
}

SWIN_HD int32_t rpiOffset3d(int32_t wt, int32_t wh, int32_t ww)
{
    return ((wt - 1) * (2 * wh - 1) + (wh - 1)) * (2 * ww - 1) + (ww - 1);
}

//! rpi(i, j) = ((zi - zj + wt - 1) * (2wh - 1) + (yi - yj + wh - 1)) * (2ww - 1) + (xi - xj + ww - 1).
SWIN_HD int32_t relativePositionIndex3d(int32_t i, int32_t j, int32_t wt, int32_t wh, int32_t ww)
{
    return rpiKey3d(i, wh, ww) - rpiKey3d(j, wh, ww) + rpiOffset3d(wt, wh, ww);
}

//! rpi(i, j) = (yi - yj + wh - 1) * (2ww - 1) + (xi - xj + ww - 1), with (y, x) = (t / ww, t % ww).
SWIN_HD int32_t relativePositionIndex(int32_t i, int32_t j, int32_t wh, int32_t ww)
{
    int32_t const yi = i / ww, xi = i - (i / ww) * ww;
    int32_t const yj = j / ww, xj = j - (j / ww) * ww;
    return (yi - yj + wh - 1) * (2 * ww - 1) + (xi - xj + ww - 1);
}

//! 2D forms of rpiKey3d / rpiOffset3d.
SWIN_HD int32_t rpiKey(int32_t t, int32_t ww)
{
    int32_t const y = t / ww;
    return y * (2 * ww - 1) + (t - y * ww);
}

SWIN_HD int32_t rpiOffset(int32_t wh, int32_t ww)
{
    return rpiOffset3d(1, wh, ww);
}

//! Region (0, 1, 2) of padded position p along an axis of padded length P, window `win`, shift `shift`.
SWIN_HD int32_t maskRegion1d(int32_t p, int32_t P, int32_t win, int32_t shift)
{
    if (shift == 0)
    {
        return 0;
    }
    return p < P - win ? 0 : (p < P - shift ? 1 : 2);
}

//! Attention geometry: the padded grid (Tp, Hp, Wp) is given directly (attributes frames/height/width, or
//! the feature map rounded up to the window). A 2D node is Tp = wt = 1, st = 0.
struct AttentionGeometry
{
    int32_t Tp, Hp, Wp;
    int32_t wt, wh, ww;
    int32_t st, sh, sw;
    int32_t nWh; // windows along the height
    int32_t nWw; // windows along the width
    int32_t nW;  // windows per image (clip)
    int32_t N;   // tokens per window
};

SWIN_HD AttentionGeometry makeAttentionGeometry3d(int32_t Tp, int32_t Hp, int32_t Wp, int32_t wt, int32_t wh,
    int32_t ww, int32_t st, int32_t sh, int32_t sw)
{
    AttentionGeometry g;
    g.Tp = Tp;
    g.Hp = Hp;
    g.Wp = Wp;
    g.wt = wt;
    g.wh = wh;
    g.ww = ww;
    g.st = st;
    g.sh = sh;
    g.sw = sw;
    g.nWh = Hp / wh;
    g.nWw = Wp / ww;
    g.nW = (Tp / wt) * g.nWh * g.nWw;
    g.N = wt * wh * ww;
    return g;
}

SWIN_HD AttentionGeometry makeAttentionGeometry(
    int32_t Hp, int32_t Wp, int32_t wh, int32_t ww, int32_t sh, int32_t sw)
{
    return makeAttentionGeometry3d(1, Hp, Wp, 1, wh, ww, 0, sh, sw);
}

//! True when the attention uses a shifted-window mask.
SWIN_HD bool hasShiftMask(AttentionGeometry const& g)
{
    return g.st != 0 || g.sh != 0 || g.sw != 0;
}

//! Mask region 9 * rt + 3 * rh + rw of token t of window w (w in [0, nW)); rt = 0 for a 2D node.
SWIN_HD int32_t maskRegion(AttentionGeometry const& g, int32_t w, int32_t t)
{
    int32_t z = 0, y = 0, x = 0;
    windowTokenToGrid3d(g, w, t, z, y, x);
    return 9 * maskRegion1d(z, g.Tp, g.wt, g.st) + 3 * maskRegion1d(y, g.Hp, g.wh, g.sh)
        + maskRegion1d(x, g.Wp, g.ww, g.sw);
}

//! Additive mask between tokens i and j of window w: 0 or kMaskValue.
SWIN_HD float maskValue(AttentionGeometry const& g, int32_t w, int32_t i, int32_t j)
{
    if (!hasShiftMask(g))
    {
        return 0.0F;
    }
    return maskRegion(g, w, i) == maskRegion(g, w, j) ? 0.0F : kMaskValue;
}

} // namespace swin_trt

#endif // SWIN_TRT_SWIN_INDEX_H

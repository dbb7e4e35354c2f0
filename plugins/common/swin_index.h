// Index math of the three Swin window ops: window partition/reverse with cyclic shift and padding, relative
// position index, shifted-window mask regions.
//
// This is the single source of truth for the kernels (device) and for the host-side checks (plugins,
// C ABI, host tests). Every function is `__host__ __device__` under nvcc and plain `inline` under any other
// C++ compiler, so the header compiles with g++ alone (no CUDA headers needed).
//
// Notation (see plugins/<OpName>/README.md): window (wh, ww), shift (sh, sw), N = wh * ww,
// Hp = ceil(H / wh) * wh, Wp = ceil(W / ww) * ww, nWh = Hp / wh, nWw = Wp / ww, nW = nWh * nWw.
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

//! Geometry shared by SwinWindowPartition and SwinWindowReverse. H, W are the unpadded map size.
struct WindowGeometry
{
    int32_t H, W;     // unpadded map
    int32_t wh, ww;   // window
    int32_t sh, sw;   // shift
    int32_t padFirst; // 1: pad, then roll the padded grid (torchvision); 0: roll, then pad (timm)
    int32_t Hp, Wp;   // padded grid
    int32_t nWh, nWw; // windows along each axis
    int32_t nW;       // windows per image
    int32_t N;        // tokens per window
};

SWIN_HD WindowGeometry makeWindowGeometry(
    int32_t H, int32_t W, int32_t wh, int32_t ww, int32_t sh, int32_t sw, int32_t padFirst)
{
    WindowGeometry g;
    g.H = H;
    g.W = W;
    g.wh = wh;
    g.ww = ww;
    g.sh = sh;
    g.sw = sw;
    g.padFirst = padFirst != 0 ? 1 : 0;
    g.nWh = ceilDiv(H, wh);
    g.nWw = ceilDiv(W, ww);
    g.Hp = g.nWh * wh;
    g.Wp = g.nWw * ww;
    g.nW = g.nWh * g.nWw;
    g.N = wh * ww;
    return g;
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

//! Padded-grid position (y, x) of token t of window wi (both within one image).
SWIN_HD void windowTokenToGrid(WindowGeometry const& g, int32_t wi, int32_t t, int32_t& y, int32_t& x)
{
    int32_t const wy = wi / g.nWw;
    int32_t const wx = wi - wy * g.nWw;
    int32_t const iy = t / g.ww;
    int32_t const ix = t - iy * g.ww;
    y = wy * g.wh + iy;
    x = wx * g.ww + ix;
}

//! Partition: source pixel (ys, xs) of the unpadded image for padded-grid position (y, x).
//! Returns false when the position is padding (value 0).
SWIN_HD bool partitionSourcePixel(WindowGeometry const& g, int32_t y, int32_t x, int32_t& ys, int32_t& xs)
{
    if (g.padFirst)
    {
        // Pad to Hp x Wp, then roll the padded grid by (-sh, -sw).
        ys = y + g.sh;
        ys = ys >= g.Hp ? ys - g.Hp : ys;
        xs = x + g.sw;
        xs = xs >= g.Wp ? xs - g.Wp : xs;
        return ys < g.H && xs < g.W;
    }
    // Roll the unpadded image by (-sh, -sw), then pad.
    if (y >= g.H || x >= g.W)
    {
        return false;
    }
    // The shift can exceed the map (H < wh): full modulo, not a single wrap.
    ys = (y + g.sh) % g.H;
    xs = (x + g.sw) % g.W;
    return true;
}

//! Partition: flat source row (b * H * W + ys * W + xs) of output row `outRow` of the (B * nW * N, C) output,
//! or -1 when that row is padding (zeros).
SWIN_HD int64_t partitionSourceRow(WindowGeometry const& g, int64_t outRow)
{
    int64_t const perImage = static_cast<int64_t>(g.nW) * g.N;
    int64_t const b = outRow / perImage;
    int32_t const rem = static_cast<int32_t>(outRow - b * perImage);
    int32_t const wi = rem / g.N;
    int32_t const t = rem - wi * g.N;
    int32_t y, x, ys, xs;
    windowTokenToGrid(g, wi, t, y, x);
    if (!partitionSourcePixel(g, y, x, ys, xs))
    {
        return -1;
    }
    return (b * g.H + ys) * static_cast<int64_t>(g.W) + xs;
}

//! Reverse: padded-grid position (py, px) whose window token lands on output pixel (y, x), y < H, x < W.
SWIN_HD void reverseGridPosition(WindowGeometry const& g, int32_t y, int32_t x, int32_t& py, int32_t& px)
{
    if (g.padFirst)
    {
        // Window reverse to the padded grid, roll by (+sh, +sw) over the padded grid, crop to H x W.
        py = y - g.sh;
        py = py < 0 ? py + g.Hp : py;
        px = x - g.sw;
        px = px < 0 ? px + g.Wp : px;
    }
    else
    {
        // Window reverse to the padded grid, crop to H x W, roll by (+sh, +sw) over H x W.
        // The shift can exceed the map (H < wh): full modulo, not a single wrap.
        py = posMod(y - g.sh, g.H);
        px = posMod(x - g.sw, g.W);
    }
}

//! Reverse: flat row ((b * nW + wi) * N + t) of the windows input read by output row `outRow`
//! (= (b * H + y) * W + x) of the (B, H, W, C) output. Never padding.
SWIN_HD int64_t reverseSourceRow(WindowGeometry const& g, int64_t outRow)
{
    int64_t const perImage = static_cast<int64_t>(g.H) * g.W;
    int64_t const b = outRow / perImage;
    int32_t const rem = static_cast<int32_t>(outRow - b * perImage);
    int32_t const y = rem / g.W;
    int32_t const x = rem - y * g.W;
    int32_t py, px;
    reverseGridPosition(g, y, x, py, px);
    int32_t const wy = py / g.wh;
    int32_t const wx = px / g.ww;
    int32_t const wi = wy * g.nWw + wx;
    int32_t const t = (py - wy * g.wh) * g.ww + (px - wx * g.ww);
    return (b * g.nW + wi) * static_cast<int64_t>(g.N) + t;
}

// ---------------------------------------------------------------------------------------------------------
// Window attention: relative position index and shifted-window mask.

//! Number of rows of the relative position bias table: (2wh - 1) * (2ww - 1).
SWIN_HD int32_t biasTableSize(int32_t wh, int32_t ww)
{
    return (2 * wh - 1) * (2 * ww - 1);
}

//! rpi(i, j) = (yi - yj + wh - 1) * (2ww - 1) + (xi - xj + ww - 1), with (y, x) = (t / ww, t % ww).
SWIN_HD int32_t relativePositionIndex(int32_t i, int32_t j, int32_t wh, int32_t ww)
{
    int32_t const yi = i / ww, xi = i - (i / ww) * ww;
    int32_t const yj = j / ww, xj = j - (j / ww) * ww;
    return (yi - yj + wh - 1) * (2 * ww - 1) + (xi - xj + ww - 1);
}

//! Separable form used by the kernel: rpi(i, j) = rpiKey(i) - rpiKey(j) + rpiOffset.
SWIN_HD int32_t rpiKey(int32_t t, int32_t ww)
{
    int32_t const y = t / ww;
    return y * (2 * ww - 1) + (t - y * ww);
}

SWIN_HD int32_t rpiOffset(int32_t wh, int32_t ww)
{
    return (wh - 1) * (2 * ww - 1) + (ww - 1);
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

//! Attention geometry: the padded grid (Hp, Wp) is given directly (attributes height/width).
struct AttentionGeometry
{
    int32_t Hp, Wp;
    int32_t wh, ww;
    int32_t sh, sw;
    int32_t nWw; // windows along the width
    int32_t nW;  // windows per image
    int32_t N;   // tokens per window
};

SWIN_HD AttentionGeometry makeAttentionGeometry(
    int32_t Hp, int32_t Wp, int32_t wh, int32_t ww, int32_t sh, int32_t sw)
{
    AttentionGeometry g;
    g.Hp = Hp;
    g.Wp = Wp;
    g.wh = wh;
    g.ww = ww;
    g.sh = sh;
    g.sw = sw;
    g.nWw = Wp / ww;
    g.nW = (Hp / wh) * g.nWw;
    g.N = wh * ww;
    return g;
}

//! True when the attention uses a shifted-window mask.
SWIN_HD bool hasShiftMask(AttentionGeometry const& g)
{
    return g.sh != 0 || g.sw != 0;
}

//! Mask region 3 * rh + rw of token t of window w (w in [0, nW)).
SWIN_HD int32_t maskRegion(AttentionGeometry const& g, int32_t w, int32_t t)
{
    int32_t const wy = w / g.nWw;
    int32_t const wx = w - wy * g.nWw;
    int32_t const iy = t / g.ww;
    int32_t const ix = t - iy * g.ww;
    int32_t const py = wy * g.wh + iy;
    int32_t const px = wx * g.ww + ix;
    return 3 * maskRegion1d(py, g.Hp, g.wh, g.sh) + maskRegion1d(px, g.Wp, g.ww, g.sw);
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

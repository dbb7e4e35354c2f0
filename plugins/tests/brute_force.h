// Brute-force, deliberately naive models of the op contract for the host tests: they build the padded and
// rolled grids explicitly (torch.roll + F.pad + view/permute, step by step) instead of using swin_index.h.
#ifndef SWIN_TRT_TESTS_BRUTE_FORCE_H
#define SWIN_TRT_TESTS_BRUTE_FORCE_H

#include <math.h>
#include <stddef.h>
#include <stdint.h>

#include <utility>
#include <vector>

namespace brute
{

struct Grid
{
    int32_t rows, cols;
    std::vector<int64_t> v;

    Grid(int32_t r, int32_t c, int64_t fill)
        : rows(r)
        , cols(c)
        , v(static_cast<size_t>(r) * c, fill)
    {
    }

    int64_t& at(int32_t y, int32_t x)
    {
        return v[static_cast<size_t>(y) * cols + x];
    }
};

inline int32_t mod(int32_t a, int32_t m)
{
    return ((a % m) + m) % m;
}

//! torch.roll(g, shifts=(dy, dx), dims=(0, 1)): out[y][x] = g[(y - dy) mod rows][(x - dx) mod cols].
inline Grid roll(Grid g, int32_t dy, int32_t dx)
{
    Grid out(g.rows, g.cols, 0);
    for (int32_t y = 0; y < g.rows; ++y)
    {
        for (int32_t x = 0; x < g.cols; ++x)
        {
            out.at(y, x) = g.at(mod(y - dy, g.rows), mod(x - dx, g.cols));
        }
    }
    return out;
}

//! Zero (here: `fill`) padding at the bottom/right to rows x cols.
inline Grid pad(Grid g, int32_t rows, int32_t cols, int64_t fill)
{
    Grid out(rows, cols, fill);
    for (int32_t y = 0; y < g.rows; ++y)
    {
        for (int32_t x = 0; x < g.cols; ++x)
        {
            out.at(y, x) = g.at(y, x);
        }
    }
    return out;
}

inline Grid crop(Grid g, int32_t rows, int32_t cols)
{
    Grid out(rows, cols, 0);
    for (int32_t y = 0; y < rows; ++y)
    {
        for (int32_t x = 0; x < cols; ++x)
        {
            out.at(y, x) = g.at(y, x);
        }
    }
    return out;
}

inline int32_t ceilTo(int32_t v, int32_t m)
{
    return (v + m - 1) / m * m;
}

//! For one image: flat source pixel (y * W + x) of every window token, -1 for padding; size nW * N.
inline std::vector<int64_t> partitionSources(
    int32_t H, int32_t W, int32_t wh, int32_t ww, int32_t sh, int32_t sw, bool padFirst)
{
    int32_t const Hp = ceilTo(H, wh);
    int32_t const Wp = ceilTo(W, ww);
    Grid img(H, W, 0);
    for (int32_t y = 0; y < H; ++y)
    {
        for (int32_t x = 0; x < W; ++x)
        {
            img.at(y, x) = static_cast<int64_t>(y) * W + x;
        }
    }
    Grid shifted = padFirst ? roll(pad(img, Hp, Wp, -1), -sh, -sw) : pad(roll(img, -sh, -sw), Hp, Wp, -1);
    std::vector<int64_t> out;
    for (int32_t wy = 0; wy < Hp / wh; ++wy)
    {
        for (int32_t wx = 0; wx < Wp / ww; ++wx)
        {
            for (int32_t iy = 0; iy < wh; ++iy)
            {
                for (int32_t ix = 0; ix < ww; ++ix)
                {
                    out.push_back(shifted.at(wy * wh + iy, wx * ww + ix));
                }
            }
        }
    }
    return out;
}

//! For one image: window token index (wi * N + t) read by every output pixel (y * W + x); size H * W.
inline std::vector<int64_t> reverseSources(
    int32_t H, int32_t W, int32_t wh, int32_t ww, int32_t sh, int32_t sw, bool padFirst)
{
    int32_t const Hp = ceilTo(H, wh);
    int32_t const Wp = ceilTo(W, ww);
    int32_t const N = wh * ww;
    Grid merged(Hp, Wp, 0); // window reverse: token ids placed back on the padded grid
    for (int32_t wy = 0; wy < Hp / wh; ++wy)
    {
        for (int32_t wx = 0; wx < Wp / ww; ++wx)
        {
            for (int32_t t = 0; t < N; ++t)
            {
                int64_t const wi = static_cast<int64_t>(wy) * (Wp / ww) + wx;
                merged.at(wy * wh + t / ww, wx * ww + t % ww) = wi * N + t;
            }
        }
    }
    Grid out = padFirst ? crop(roll(merged, sh, sw), H, W) : roll(crop(merged, H, W), sh, sw);
    return out.v;
}

//! Original Swin construction of the shifted-window regions (img_mask with slices), per window and token.
inline std::vector<int32_t> maskRegions(int32_t Hp, int32_t Wp, int32_t wh, int32_t ww, int32_t sh, int32_t sw)
{
    std::vector<std::pair<int32_t, int32_t>> hs, ws;
    if (sh > 0)
    {
        hs = {{0, Hp - wh}, {Hp - wh, Hp - sh}, {Hp - sh, Hp}};
    }
    else
    {
        hs = {{0, Hp}};
    }
    if (sw > 0)
    {
        ws = {{0, Wp - ww}, {Wp - ww, Wp - sw}, {Wp - sw, Wp}};
    }
    else
    {
        ws = {{0, Wp}};
    }
    Grid img(Hp, Wp, 0);
    int64_t cnt = 0;
    for (auto const& h : hs)
    {
        for (auto const& w : ws)
        {
            for (int32_t y = h.first; y < h.second; ++y)
            {
                for (int32_t x = w.first; x < w.second; ++x)
                {
                    img.at(y, x) = cnt;
                }
            }
            ++cnt;
        }
    }
    std::vector<int32_t> out;
    for (int32_t wy = 0; wy < Hp / wh; ++wy)
    {
        for (int32_t wx = 0; wx < Wp / ww; ++wx)
        {
            for (int32_t t = 0; t < wh * ww; ++t)
            {
                out.push_back(static_cast<int32_t>(img.at(wy * wh + t / ww, wx * ww + t % ww)));
            }
        }
    }
    return out;
}

//! relative_position_index the way the original Swin builds it (coords, relative coords, shift, multiply).
inline std::vector<int32_t> relativePositionIndex(int32_t wh, int32_t ww)
{
    int32_t const N = wh * ww;
    std::vector<int32_t> out(static_cast<size_t>(N) * N);
    for (int32_t i = 0; i < N; ++i)
    {
        for (int32_t j = 0; j < N; ++j)
        {
            int32_t rel0 = i / ww - j / ww;
            int32_t rel1 = i % ww - j % ww;
            rel0 += wh - 1;
            rel1 += ww - 1;
            rel0 *= 2 * ww - 1;
            out[static_cast<size_t>(i) * N + j] = rel0 + rel1;
        }
    }
    return out;
}

//! SwinWindowAttention in double precision, straight from the contract: qkv (rows, N, 3C) with the last dim
//! laid out as (3, heads, headDim), table ((2wh-1)(2ww-1), heads), (Hp, Wp) the padded grid. Returns
//! context (rows, N, C). With `headScale` (cosine mode, one per head) the logit is
//! headScale[h] * q.k / (max(|q|, 1e-12) max(|k|, 1e-12)) instead of scale * q.k.
inline std::vector<double> attention(std::vector<float> const& qkv, std::vector<float> const& table, int32_t rows,
    int32_t heads, int32_t headDim, int32_t wh, int32_t ww, int32_t sh, int32_t sw, int32_t Hp, int32_t Wp, double scale,
    std::vector<float> const* headScale = nullptr)
{
    int32_t const N = wh * ww;
    int32_t const C = heads * headDim;
    int32_t const nW = (Hp / wh) * (Wp / ww);
    std::vector<int32_t> const regions = maskRegions(Hp, Wp, wh, ww, sh, sw);
    std::vector<int32_t> const rpi = relativePositionIndex(wh, ww);
    bool const masked = sh != 0 || sw != 0;
    std::vector<double> out(static_cast<size_t>(rows) * N * C);
    std::vector<double> p(N);
    auto at = [&](int32_t r, int32_t t, int32_t part, int32_t h, int32_t d) {
        return static_cast<double>(qkv[(static_cast<size_t>(r) * N + t) * 3 * C + part * C + h * headDim + d]);
    };
    for (int32_t r = 0; r < rows; ++r)
    {
        int32_t const w = r % nW;
        for (int32_t h = 0; h < heads; ++h)
        {
            for (int32_t i = 0; i < N; ++i)
            {
                double mx = -1e300;
                for (int32_t j = 0; j < N; ++j)
                {
                    double dot = 0.0;
                    double qq = 0.0;
                    double kk = 0.0;
                    for (int32_t d = 0; d < headDim; ++d)
                    {
                        dot += at(r, i, 0, h, d) * at(r, j, 1, h, d);
                        qq += at(r, i, 0, h, d) * at(r, i, 0, h, d);
                        kk += at(r, j, 1, h, d) * at(r, j, 1, h, d);
                    }
                    double const similarity = headScale == nullptr
                        ? scale * dot
                        : (*headScale)[static_cast<size_t>(h)] * dot / (fmax(sqrt(qq), 1e-12) * fmax(sqrt(kk), 1e-12));
                    double v = similarity + table[static_cast<size_t>(rpi[static_cast<size_t>(i) * N + j]) * heads + h];
                    if (masked && regions[static_cast<size_t>(w) * N + i] != regions[static_cast<size_t>(w) * N + j])
                    {
                        v += -100.0;
                    }
                    p[j] = v;
                    mx = v > mx ? v : mx;
                }
                double sum = 0.0;
                for (int32_t j = 0; j < N; ++j)
                {
                    p[j] = exp(p[j] - mx);
                    sum += p[j];
                }
                for (int32_t d = 0; d < headDim; ++d)
                {
                    double o = 0.0;
                    for (int32_t j = 0; j < N; ++j)
                    {
                        o += p[j] * at(r, j, 2, h, d);
                    }
                    out[(static_cast<size_t>(r) * N + i) * C + h * headDim + d] = o / sum;
                }
            }
        }
    }
    return out;
}

//! max |got - expect| / max |expect| (NaN in `got` counts as an infinite error).
template <typename Got>
double relativeError(Got const& got, std::vector<double> const& expect)
{
    double maxErr = 0.0;
    double maxRef = 0.0;
    for (size_t i = 0; i < expect.size(); ++i)
    {
        double const err = fabs(static_cast<double>(got[i]) - expect[i]);
        maxErr = (err > maxErr || err != err) ? (err != err ? INFINITY : err) : maxErr;
        maxRef = fabs(expect[i]) > maxRef ? fabs(expect[i]) : maxRef;
    }
    return maxErr / (maxRef > 0 ? maxRef : 1.0);
}

} // namespace brute

#endif // SWIN_TRT_TESTS_BRUTE_FORCE_H

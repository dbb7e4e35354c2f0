// swin_trt_index_test: host-only test of plugins/common/swin_index.h (the index math the kernels run)
// against the brute-force model of the op contract (brute_force.h). Needs no CUDA. Exit status 0 = pass.
#include "swin_index.h"

#include "brute_force.h"

#include <stdio.h>

#include <string>
#include <vector>

namespace
{

int gFailures = 0;
int gChecks = 0;

void check(bool ok, std::string const& what)
{
    ++gChecks;
    if (!ok)
    {
        if (++gFailures <= 20)
        {
            fprintf(stderr, "FAIL: %s\n", what.c_str());
        }
    }
}

std::string cfg(int32_t H, int32_t W, int32_t wh, int32_t ww, int32_t sh, int32_t sw, int32_t padFirst)
{
    char buf[160];
    snprintf(buf, sizeof(buf), "H=%d W=%d window=(%d,%d) shift=(%d,%d) pad_first=%d", H, W, wh, ww, sh, sw, padFirst);
    return buf;
}

void testPartitionReverse(int32_t H, int32_t W, int32_t wh, int32_t ww, int32_t sh, int32_t sw, int32_t padFirst)
{
    using namespace swin_trt;
    std::string const where = cfg(H, W, wh, ww, sh, sw, padFirst);
    WindowGeometry const g = makeWindowGeometry(H, W, wh, ww, sh, sw, padFirst);
    check(g.Hp % wh == 0 && g.Hp >= H && g.Hp < H + wh, where + ": Hp");
    check(g.Wp % ww == 0 && g.Wp >= W && g.Wp < W + ww, where + ": Wp");
    check(g.nW == (g.Hp / wh) * (g.Wp / ww) && g.N == wh * ww, where + ": nW/N");

    int32_t const B = 2;
    std::vector<int64_t> const part = brute::partitionSources(H, W, wh, ww, sh, sw, padFirst != 0);
    check(static_cast<int64_t>(part.size()) == static_cast<int64_t>(g.nW) * g.N, where + ": brute partition size");
    for (int32_t b = 0; b < B; ++b)
    {
        for (size_t k = 0; k < part.size(); ++k)
        {
            int64_t const row = b * static_cast<int64_t>(part.size()) + static_cast<int64_t>(k);
            int64_t const expect = part[k] < 0 ? -1 : b * static_cast<int64_t>(H) * W + part[k];
            int64_t const got = partitionSourceRow(g, row);
            if (got != expect)
            {
                check(false, where + ": partition row " + std::to_string(row) + " -> " + std::to_string(got)
                        + ", expected " + std::to_string(expect));
                return;
            }
        }
    }
    std::vector<int64_t> const rev = brute::reverseSources(H, W, wh, ww, sh, sw, padFirst != 0);
    int64_t const perImage = static_cast<int64_t>(g.nW) * g.N;
    for (int32_t b = 0; b < B; ++b)
    {
        for (size_t k = 0; k < rev.size(); ++k)
        {
            int64_t const row = b * static_cast<int64_t>(H) * W + static_cast<int64_t>(k);
            int64_t const expect = b * perImage + rev[k];
            int64_t const got = reverseSourceRow(g, row);
            if (got != expect)
            {
                check(false, where + ": reverse row " + std::to_string(row) + " -> " + std::to_string(got)
                        + ", expected " + std::to_string(expect));
                return;
            }
            // Exact inverse on the kept region: partition(reverse(row)) == row.
            if (partitionSourceRow(g, got) != row)
            {
                check(false, where + ": reverse is not the inverse of partition at row " + std::to_string(row));
                return;
            }
        }
    }
    check(true, where);
}

void testRelativePosition(int32_t wh, int32_t ww)
{
    using namespace swin_trt;
    int32_t const N = wh * ww;
    std::vector<int32_t> const expect = brute::relativePositionIndex(wh, ww);
    int32_t const L = biasTableSize(wh, ww);
    int32_t const offset = rpiOffset(wh, ww);
    for (int32_t i = 0; i < N; ++i)
    {
        for (int32_t j = 0; j < N; ++j)
        {
            int32_t const direct = relativePositionIndex(i, j, wh, ww);
            int32_t const separable = rpiKey(i, ww) - rpiKey(j, ww) + offset;
            int32_t const e = expect[static_cast<size_t>(i) * N + j];
            if (direct != e || separable != e || e < 0 || e >= L)
            {
                check(false, "rpi window=(" + std::to_string(wh) + "," + std::to_string(ww) + ") i=" + std::to_string(i)
                        + " j=" + std::to_string(j));
                return;
            }
        }
    }
    check(true, "rpi");
}

void testMask(int32_t Hp, int32_t Wp, int32_t wh, int32_t ww, int32_t sh, int32_t sw)
{
    using namespace swin_trt;
    AttentionGeometry const g = makeAttentionGeometry(Hp, Wp, wh, ww, sh, sw);
    std::vector<int32_t> const regions = brute::maskRegions(Hp, Wp, wh, ww, sh, sw);
    int32_t const N = wh * ww;
    for (int32_t w = 0; w < g.nW; ++w)
    {
        for (int32_t i = 0; i < N; ++i)
        {
            for (int32_t j = 0; j < N; ++j)
            {
                bool const differ = regions[static_cast<size_t>(w) * N + i] != regions[static_cast<size_t>(w) * N + j];
                float const expect = (sh == 0 && sw == 0) ? 0.0F : (differ ? kMaskValue : 0.0F);
                if (maskValue(g, w, i, j) != expect)
                {
                    check(false, "mask Hp=" + std::to_string(Hp) + " Wp=" + std::to_string(Wp) + " window=("
                            + std::to_string(wh) + "," + std::to_string(ww) + ") shift=(" + std::to_string(sh) + ","
                            + std::to_string(sw) + ") w=" + std::to_string(w) + " i=" + std::to_string(i)
                            + " j=" + std::to_string(j));
                    return;
                }
            }
        }
    }
    check(true, "mask");
}

} // namespace

int main()
{
    using namespace swin_trt;
    // Attribute ranges.
    check(checkWindowShift(7, 7, 0, 0) == nullptr, "valid window/shift");
    check(checkWindowShift(7, 7, 3, 6) == nullptr, "valid shift");
    check(checkWindowShift(0, 7, 0, 0) != nullptr, "window 0");
    check(checkWindowShift(7, 7, 7, 0) != nullptr, "shift == window");
    check(checkWindowShift(7, 7, -1, 0) != nullptr, "negative shift");
    check(posMod(-1, 5) == 4 && posMod(-10, 5) == 0 && posMod(7, 5) == 2, "posMod");
    check(ceilDiv(INT32_MAX, 7) == INT32_MAX / 7 + 1 && ceilDiv(14, 7) == 2 && ceilDiv(0, 7) == 0,
        "ceilDiv near INT32_MAX does not overflow");

    // Geometry bounds: every count (N, nW, Hp * Wp) must fit in int32, whatever the attributes say.
    check(checkWindowGeometry(56, 56, 7, 7) == nullptr, "Swin-T stage 1 geometry");
    check(checkWindowGeometry(5, 3, 7, 7) == nullptr, "map smaller than the window");
    check(checkWindowGeometry(46340, 46340, 1, 1) == nullptr, "46340^2 < 2^31 positions");
    check(checkWindowGeometry(46341, 46341, 1, 1) != nullptr, "46341^2 > 2^31 - 1 positions");
    check(checkWindowGeometry(7, 7, 65536, 65536) != nullptr, "window product 2^32");
    check(checkWindowGeometry(1 << 24, 1 << 24, 1, 1) != nullptr, "2^48 positions");
    check(checkWindowGeometry(INT32_MAX, 7, 7, 7) != nullptr, "H beyond 2^24");
    check(checkWindowGeometry(int64_t{1} << 40, 7, 7, 7) != nullptr, "H as int64 beyond int32");
    check(checkWindowGeometry(0, 7, 7, 7) != nullptr && checkWindowGeometry(7, 7, 0, 7) != nullptr, "zero sizes");

    // Partition/reverse: square and non-square windows, divisible and padded maps, maps smaller than the
    // window, shift 0 and > 0 (also shifts larger than the map), both pad orders.
    int32_t const sizes[][2] = {{1, 1}, {3, 5}, {7, 7}, {8, 6}, {13, 9}, {14, 14}, {16, 23}, {56, 56}};
    int32_t const windows[][2] = {{1, 1}, {2, 3}, {4, 4}, {7, 7}, {5, 2}, {12, 12}};
    for (auto const& s : sizes)
    {
        for (auto const& w : windows)
        {
            int32_t const shifts[][2] = {{0, 0}, {w[0] / 2, w[1] / 2}, {w[0] - 1, 0}, {0, w[1] - 1}, {w[0] - 1, w[1] - 1}};
            for (auto const& sft : shifts)
            {
                for (int32_t padFirst = 0; padFirst < 2; ++padFirst)
                {
                    testPartitionReverse(s[0], s[1], w[0], w[1], sft[0], sft[1], padFirst);
                }
            }
        }
    }

    for (auto const& w : windows)
    {
        testRelativePosition(w[0], w[1]);
    }
    testRelativePosition(16, 16);
    testRelativePosition(1, 256);

    // Masks over padded grids (Hp, Wp multiples of the window).
    int32_t const maskCases[][6] = {{56, 56, 7, 7, 3, 3}, {14, 14, 7, 7, 3, 3}, {7, 7, 7, 7, 3, 3}, {14, 21, 7, 7, 0, 3},
        {14, 21, 7, 7, 3, 0}, {24, 36, 12, 12, 6, 6}, {8, 6, 4, 2, 1, 1}, {8, 6, 4, 3, 0, 0}, {12, 10, 4, 5, 3, 4}};
    for (auto const& m : maskCases)
    {
        testMask(m[0], m[1], m[2], m[3], m[4], m[5]);
    }

    printf("swin_trt_index_test: %d checks, %d failures\n", gChecks, gFailures);
    return gFailures == 0 ? 0 : 1;
}

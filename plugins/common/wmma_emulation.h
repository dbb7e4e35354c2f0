// Host emulation of CUDA's warp matrix functions (nvcuda::wmma, <mma.h>) for the kernel emulator
// (SWIN_TRT_EMULATION; included by cuda_compat.cuh), so that the tensor-core kernels' real source runs in tests.
//
// Model: every thread (fiber) of a warp holds the WHOLE tile in its fragment (row-major, `num_elements` =
// rows * cols), where the GPU spreads it over the 32 lanes in an unspecified order. Element-wise loops over
// `x[0 .. num_elements)` (fill, scaling, conversion) therefore mean the same on both; code that depends on which
// element a lane holds (the GPU's unspecified mapping) is not portable and is not supported here either.
// Semantics, exact in float:
//  * load_matrix_sync / store_matrix_sync: element (r, c) at p[r * ldm + c] (row major) or p[c * ldm + r]
//    (column major), checked like the hardware requires: `p` 256-bit (32-byte) aligned, `ldm` a multiple of
//    16 bytes (8 __half, 4 float) and at least the tile's row (resp. column) length; a violation aborts.
//  * mma_sync: d = a * b + c with every product of two __half exact in float and a float sum over k in order
//    (the tensor cores' FP32 accumulation may round in another order: tests allow for float32 error).
//  * __half values are converted with the CUDA headers' host functions (__half2float, __float2half_rn).
// Only the shapes and types the kernels use are provided: m16n16k16 with __half inputs and float (or __half)
// accumulators.
#ifndef SWIN_TRT_WMMA_EMULATION_H
#define SWIN_TRT_WMMA_EMULATION_H

#if !defined(SWIN_TRT_EMULATION)
#error "wmma_emulation.h is only for SWIN_TRT_EMULATION builds"
#endif

#include <cuda_fp16.h>

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

namespace nvcuda
{
namespace wmma
{

struct matrix_a;
struct matrix_b;
struct accumulator;
struct row_major;
struct col_major;

enum layout_t
{
    mem_row_major,
    mem_col_major
};

namespace detail
{

template <typename Use, int M, int N, int K>
struct TileShape;

template <int M, int N, int K>
struct TileShape<matrix_a, M, N, K>
{
    static constexpr int kRows = M;
    static constexpr int kCols = K;
};

template <int M, int N, int K>
struct TileShape<matrix_b, M, N, K>
{
    static constexpr int kRows = K;
    static constexpr int kCols = N;
};

template <int M, int N, int K>
struct TileShape<accumulator, M, N, K>
{
    static constexpr int kRows = M;
    static constexpr int kCols = N;
};

inline float toFloat(float v)
{
    return v;
}

inline float toFloat(__half v)
{
    return __half2float(v);
}

template <typename T>
T fromFloat(float v);

template <>
inline float fromFloat<float>(float v)
{
    return v;
}

template <>
inline __half fromFloat<__half>(float v)
{
    return __float2half_rn(v);
}

[[noreturn]] inline void misuse(char const* what)
{
    fprintf(stderr, "wmma emulation: %s\n", what);
    abort();
}

//! The hardware's requirements on a matrix pointer and its leading dimension (elements of T).
template <typename T>
void checkMatrix(void const* p, unsigned ldm, int minLd)
{
    if (reinterpret_cast<uintptr_t>(p) % 32 != 0)
    {
        misuse("matrix pointer is not 256-bit (32-byte) aligned");
    }
    if ((ldm * sizeof(T)) % 16 != 0)
    {
        misuse("ldm is not a multiple of 16 bytes");
    }
    if (static_cast<int>(ldm) < minLd)
    {
        misuse("ldm is smaller than the tile");
    }
}

} // namespace detail

//! The whole tile, row-major, in every thread (see the header comment).
template <typename Use, int M, int N, int K, typename T, typename Layout = void>
class fragment
{
public:
    using element_type = T;
    using storage_element_type = T;
    static constexpr int kRows = detail::TileShape<Use, M, N, K>::kRows;
    static constexpr int kCols = detail::TileShape<Use, M, N, K>::kCols;
    static constexpr int num_elements = kRows * kCols;
    T x[num_elements];
};

template <typename Use, int M, int N, int K, typename T, typename Layout>
inline void fill_fragment(fragment<Use, M, N, K, T, Layout>& f, T const& v)
{
    for (int i = 0; i < f.num_elements; ++i)
    {
        f.x[i] = v;
    }
}

namespace detail
{

template <typename Frag, typename T>
void loadTile(Frag& f, T const* p, unsigned ldm, bool rowMajor)
{
    checkMatrix<T>(p, ldm, rowMajor ? Frag::kCols : Frag::kRows);
    for (int r = 0; r < Frag::kRows; ++r)
    {
        for (int c = 0; c < Frag::kCols; ++c)
        {
            f.x[r * Frag::kCols + c] = rowMajor ? p[r * ldm + c] : p[c * ldm + r];
        }
    }
}

} // namespace detail

template <typename Use, int M, int N, int K, typename T>
inline void load_matrix_sync(fragment<Use, M, N, K, T, row_major>& f, T const* p, unsigned ldm)
{
    detail::loadTile(f, p, ldm, true);
}

template <typename Use, int M, int N, int K, typename T>
inline void load_matrix_sync(fragment<Use, M, N, K, T, col_major>& f, T const* p, unsigned ldm)
{
    detail::loadTile(f, p, ldm, false);
}

template <int M, int N, int K, typename T>
inline void load_matrix_sync(fragment<accumulator, M, N, K, T>& f, T const* p, unsigned ldm, layout_t layout)
{
    detail::loadTile(f, p, ldm, layout == mem_row_major);
}

template <int M, int N, int K, typename T>
inline void store_matrix_sync(T* p, fragment<accumulator, M, N, K, T> const& f, unsigned ldm, layout_t layout)
{
    using Frag = fragment<accumulator, M, N, K, T>;
    bool const rowMajor = layout == mem_row_major;
    detail::checkMatrix<T>(p, ldm, rowMajor ? Frag::kCols : Frag::kRows);
    for (int r = 0; r < Frag::kRows; ++r)
    {
        for (int c = 0; c < Frag::kCols; ++c)
        {
            (rowMajor ? p[r * ldm + c] : p[c * ldm + r]) = f.x[r * Frag::kCols + c];
        }
    }
}

//! d = a * b + c (d may be c): products exact in float, float sum over k in order, one rounding to Tc.
template <int M, int N, int K, typename Ta, typename La, typename Tb, typename Lb, typename Tc>
inline void mma_sync(fragment<accumulator, M, N, K, Tc>& d, fragment<matrix_a, M, N, K, Ta, La> const& a,
    fragment<matrix_b, M, N, K, Tb, Lb> const& b, fragment<accumulator, M, N, K, Tc> const& c)
{
    float af[M * K];
    float bt[N * K]; // b transposed: the k loop reads both contiguously
    float out[M * N];
    for (int e = 0; e < M * K; ++e)
    {
        af[e] = detail::toFloat(a.x[e]);
    }
    for (int k = 0; k < K; ++k)
    {
        for (int j = 0; j < N; ++j)
        {
            bt[j * K + k] = detail::toFloat(b.x[k * N + j]);
        }
    }
    for (int i = 0; i < M; ++i)
    {
        for (int j = 0; j < N; ++j)
        {
            float acc = detail::toFloat(c.x[i * N + j]);
            for (int k = 0; k < K; ++k)
            {
                acc += af[i * K + k] * bt[j * K + k];
            }
            out[i * N + j] = acc;
        }
    }
    for (int e = 0; e < M * N; ++e)
    {
        d.x[e] = detail::fromFloat<Tc>(out[e]);
    }
}

} // namespace wmma
} // namespace nvcuda

#endif // SWIN_TRT_WMMA_EMULATION_H

// SIMD float kernels under the conv/norm ops: a portable vector type, deterministic reductions, and the
// gather-GEMM that convolutions are lowered to.
//
// Contract: SimdFloat is a GCC vector of kLanes floats sized for the widest ISA the build targets (AVX-512,
// AVX or SSE), so one source serves every -march. Reductions use a fixed lane and accumulator order: a
// result depends on the data only, never on alignment or threads.
// gather_gemm(src, row_off, red_off, B) computes C = A * B (floats, or doubles for the exact mode) where
// A[r][j] = src[row_off[r] + red_off[j]] is read in place. A convolution passes output pixels as rows and kernel
// taps as the reduction (or the reverse for the weight gradient), which replaces an im2col matrix by two offset
// tables.
#pragma once

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <span>
#include <stdexcept>
#include <type_traits>
#include <utility>
#include <vector>

namespace ironclad {

#if defined(__AVX512F__)
inline constexpr int kLanes = 16;
#elif defined(__AVX__)
inline constexpr int kLanes = 8;
#else
inline constexpr int kLanes = 4;
#endif

using SimdFloat = float __attribute__((vector_size(kLanes * sizeof(float))));

inline SimdFloat simd_load(const float* p) {
    SimdFloat v;
    std::memcpy(&v, p, sizeof v);
    return v;
}
inline void simd_store(float* p, SimdFloat v) { std::memcpy(p, &v, sizeof v); }
// s - 0 is exactly s, so this compiles to a single broadcast (a lane-by-lane fill does not).
inline SimdFloat simd_splat(float s) { return s - SimdFloat{}; }
inline float simd_hsum(SimdFloat v) {
    float s = 0.0f;
    for (int i = 0; i < kLanes; ++i) s += v[i];
    return s;
}

// The vector of T as wide as SimdFloat (kLanes floats, kLanes / 2 doubles): the gather-GEMM runs on either.
template <class T>
struct SimdOfType {
    typedef T type __attribute__((vector_size(kLanes * sizeof(float))));
};
template <class T>
using SimdOf = typename SimdOfType<T>::type;
template <class T>
inline constexpr int kLanesOf = static_cast<int>(kLanes * sizeof(float) / sizeof(T));

namespace detail {
using SimdInt = int __attribute__((vector_size(kLanes * sizeof(int))));

// Shuffle mask of one butterfly output: lanes of a and b (b's indexed from kLanes) such that, within each group
// of 2H lanes, the low output is [a's low half, b's low half] and the high one [a's high half, b's high half].
template <int H, bool High, int... L>
constexpr SimdInt butterfly_mask(std::integer_sequence<int, L...>) {
    return SimdInt{(High ? ((L % (2 * H)) < H ? L + H : kLanes + L) : ((L % (2 * H)) < H ? L : kLanes + L - H))...};
}

template <int H>
inline void transpose_stages(SimdFloat* v) {
    constexpr SimdInt lo = butterfly_mask<H, false>(std::make_integer_sequence<int, kLanes>{});
    constexpr SimdInt hi = butterfly_mask<H, true>(std::make_integer_sequence<int, kLanes>{});
#pragma GCC unroll 16
    for (int i = 0; i < kLanes; ++i)
        if ((i & H) == 0) {
            const SimdFloat a = v[i], b = v[i + H];
            v[i] = __builtin_shuffle(a, b, lo);
            v[i + H] = __builtin_shuffle(a, b, hi);
        }
    if constexpr (H > 1) transpose_stages<H / 2>(v);
}
}  // namespace detail

// v[i][l] <- v[l][i], in log2(kLanes) butterfly stages that each swap the off-diagonal blocks of half the size.
inline void simd_transpose(SimdFloat (&v)[kLanes]) { detail::transpose_stages<kLanes / 2>(v); }

// dst[c * ldd + r] = src[r * lds + c] (or += with accumulate, floats only) for r < rows, c < cols; whole
// kLanes x kLanes blocks go through registers. T is any 32-bit type: the float shuffles move its bits, never
// compute on them (the exact mode transposes int32 raws).
template <class T>
inline void transpose(const T* src, std::int64_t rows, std::int64_t cols, std::int64_t lds, T* dst,
                      std::int64_t ldd, bool accumulate = false) {
    static_assert(sizeof(T) == sizeof(float), "transpose moves 32-bit elements through float vectors");
    if constexpr (!std::is_same_v<T, float>)
        if (accumulate) throw std::logic_error("transpose: accumulate adds floats only");
    auto put = [accumulate](T& d, T v) { d = accumulate ? d + v : v; };
    std::int64_t r0 = 0;
    for (; r0 + kLanes <= rows; r0 += kLanes) {
        std::int64_t c0 = 0;
        for (; c0 + kLanes <= cols; c0 += kLanes) {
            SimdFloat v[kLanes];
            for (int i = 0; i < kLanes; ++i) std::memcpy(&v[i], src + (r0 + i) * lds + c0, sizeof(SimdFloat));
            simd_transpose(v);
            for (int i = 0; i < kLanes; ++i) {
                T* d = dst + (c0 + i) * ldd + r0;
                if constexpr (std::is_same_v<T, float>)
                    if (accumulate) v[i] = simd_load(d) + v[i];
                std::memcpy(d, &v[i], sizeof(SimdFloat));
            }
        }
        for (; c0 < cols; ++c0)
            for (int i = 0; i < kLanes; ++i) put(dst[c0 * ldd + r0 + i], src[(r0 + i) * lds + c0]);
    }
    for (; r0 < rows; ++r0)
        for (std::int64_t c = 0; c < cols; ++c) put(dst[c * ldd + r0], src[r0 * lds + c]);
}

// dst[i] = src[i]: inline, because a library memcpy call costs more than the copy for the short image rows
// that padding copies; a remainder goes in 8 and 4 floats (the 8- and 4-wide rows of small planes), then one by
// one.
inline void copy_floats(float* dst, const float* src, std::int64_t n) {
    std::int64_t i = 0;
    for (; i + kLanes <= n; i += kLanes) simd_store(dst + i, simd_load(src + i));
    const auto move = [&](auto v) {
        std::memcpy(&v, src + i, sizeof v);
        std::memcpy(dst + i, &v, sizeof v);
        i += static_cast<std::int64_t>(sizeof v / sizeof(float));
    };
    using Eight = float __attribute__((vector_size(32)));
    using Four = float __attribute__((vector_size(16)));
    if (kLanes > 8 && i + 8 <= n) move(Eight{});
    if (kLanes > 4 && i + 4 <= n) move(Four{});
    for (; i < n; ++i) dst[i] = src[i];
}

// sum_i a[i] * b[i * b_stride]; four vector accumulators hide the FMA latency.
inline float dot(const float* a, const float* b, std::int64_t n, std::int64_t b_stride = 1) {
    std::int64_t i = 0;
    float tail = 0.0f;
    if (b_stride == 1) {
        SimdFloat acc[4] = {};
        for (; i + 4 * kLanes <= n; i += 4 * kLanes)
            for (int u = 0; u < 4; ++u) acc[u] += simd_load(a + i + u * kLanes) * simd_load(b + i + u * kLanes);
        for (; i + kLanes <= n; i += kLanes) acc[0] += simd_load(a + i) * simd_load(b + i);
        tail = simd_hsum((acc[0] + acc[1]) + (acc[2] + acc[3]));
    }
    for (; i < n; ++i) tail += a[i] * b[i * b_stride];
    return tail;
}

inline float sum(const float* a, std::int64_t n) {
    std::int64_t i = 0;
    SimdFloat acc[4] = {};
    for (; i + 4 * kLanes <= n; i += 4 * kLanes)
        for (int u = 0; u < 4; ++u) acc[u] += simd_load(a + i + u * kLanes);
    for (; i + kLanes <= n; i += kLanes) acc[0] += simd_load(a + i);
    float s = simd_hsum((acc[0] + acc[1]) + (acc[2] + acc[3]));
    for (; i < n; ++i) s += a[i];
    return s;
}

// Register tile of the gather-GEMM: kTileRows<NV> rows by NV vectors of columns. Sizes keep the accumulators,
// the B vectors and one row pointer per row in registers (32 vector registers under AVX-512).
inline constexpr int kMaxTileVectors = 4;
template <int NV>
inline constexpr int kTileRows = NV <= 2 ? 8 : 6;

namespace detail {

// tile[r][:] = sum_j src[row_off[r] + red_off[j]] * b[j][:], for MR rows and NV vectors of b's columns; with
// Resume the sums start from tile's contents (the partial sums of the reduction's earlier chunks).
template <class T, int MR, int NV, bool Resume = false>
inline void gather_gemm_tile(const T* src, const std::int32_t* row_off, const std::int32_t* red_off,
                             std::int64_t depth, const T* b, std::int64_t ldb, T* tile) {
    using V = SimdOf<T>;
    constexpr int lanes = kLanesOf<T>;
    const auto load = [](const T* p) {
        V v;
        std::memcpy(&v, p, sizeof v);
        return v;
    };
    V acc[MR][NV] = {};
    if constexpr (Resume)
        for (int r = 0; r < MR; ++r)
            for (int v = 0; v < NV; ++v) acc[r][v] = load(tile + (r * NV + v) * lanes);
    const T* rows[MR];
#pragma GCC unroll 8
    for (int r = 0; r < MR; ++r) rows[r] = src + row_off[r];
    for (std::int64_t j = 0; j < depth; ++j, b += ldb) {
        const std::int32_t off = red_off[j];
        V bv[NV];
#pragma GCC unroll 4
        for (int v = 0; v < NV; ++v) bv[v] = load(b + v * lanes);
#pragma GCC unroll 8
        for (int r = 0; r < MR; ++r) {
            const V a = rows[r][off] - V{};  // a broadcast, as simd_splat
#pragma GCC unroll 4
            for (int v = 0; v < NV; ++v) acc[r][v] += a * bv[v];
        }
    }
    for (int r = 0; r < MR; ++r)
        for (int v = 0; v < NV; ++v) std::memcpy(tile + (r * NV + v) * lanes, &acc[r][v], sizeof(V));
}

// A reduction deeper than twice this runs in chunks of about this many steps, every row tile through one chunk
// before the next, so that the chunk of B's panel (128 KiB at four vectors) stays in L2 instead of being
// streamed from memory once per tile. Tiles keep their partial sums between chunks: every sum is still taken
// in reduction order, so the result is bit for bit that of one pass.
inline constexpr std::int64_t kDepthChunk = 512;

template <class T, int NV, class Sink>
void gather_gemm_panel(const T* src, std::span<const std::int32_t> row_off, std::span<const std::int32_t> red_off,
                       const T* b, std::int64_t ldb, std::int64_t col0, Sink& sink) {
    constexpr int MR = kTileRows<NV>, tile_size = MR * NV * kLanesOf<T>;
    const auto n = static_cast<std::int64_t>(row_off.size()), depth = static_cast<std::int64_t>(red_off.size());
    const std::int64_t chunks = depth > 2 * kDepthChunk ? (depth + kDepthChunk - 1) / kDepthChunk : 1;
    alignas(64) T one_tile[tile_size];
    thread_local std::vector<T> partial;  // every tile's partial sums while the reduction runs in chunks
    if (chunks > 1) partial.resize(static_cast<std::size_t>((n + MR - 1) / MR * tile_size));
    std::int32_t rows[MR];
    for (std::int64_t k = 0; k < chunks; ++k) {
        const std::int64_t j0 = depth * k / chunks, j1 = depth * (k + 1) / chunks;
        for (std::int64_t r0 = 0; r0 < n; r0 += MR) {
            const int nr = static_cast<int>(std::min<std::int64_t>(MR, n - r0));
            // A short last tile repeats its last row rather than reading past the table.
            for (int r = 0; r < MR; ++r) rows[r] = row_off[static_cast<std::size_t>(r0 + std::min(r, nr - 1))];
            T* tile = chunks > 1 ? partial.data() + r0 / MR * tile_size : one_tile;
            if (k == 0)
                gather_gemm_tile<T, MR, NV>(src, rows, red_off.data(), j1, b + col0, ldb, tile);
            else
                gather_gemm_tile<T, MR, NV, true>(src, rows, red_off.data() + j0, j1 - j0, b + j0 * ldb + col0, ldb,
                                                  tile);
            if (k == chunks - 1) sink(r0, nr, col0, static_cast<const T*>(tile), NV * kLanesOf<T>);
        }
    }
}

}  // namespace detail

// C = A * B with A[r][j] = src[row_off[r] + red_off[j]] and B a row-major [red_off.size(), ldb] matrix, ldb a
// multiple of kLanesOf<T> (T float or double). C is handed over in tiles: sink(row0, rows, col0, tile, ld) gets
// rows [row0, row0+rows) and columns [col0, col0+ld) of C as a row-major tile with leading dimension ld.
template <class T, class Sink>
void gather_gemm(const T* src, std::span<const std::int32_t> row_off, std::span<const std::int32_t> red_off,
                 const T* b, std::int64_t ldb, Sink&& sink) {
    for (std::int64_t col0 = 0; col0 < ldb; col0 += kMaxTileVectors * kLanesOf<T>) {
        switch (std::min<std::int64_t>(kMaxTileVectors, (ldb - col0) / kLanesOf<T>)) {
            case 1: detail::gather_gemm_panel<T, 1>(src, row_off, red_off, b, ldb, col0, sink); break;
            case 2: detail::gather_gemm_panel<T, 2>(src, row_off, red_off, b, ldb, col0, sink); break;
            case 3: detail::gather_gemm_panel<T, 3>(src, row_off, red_off, b, ldb, col0, sink); break;
            default: detail::gather_gemm_panel<T, 4>(src, row_off, red_off, b, ldb, col0, sink); break;
        }
    }
}

// Smallest multiple of kLanes that holds n columns.
inline std::int64_t round_up_lanes(std::int64_t n) { return (n + kLanes - 1) / kLanes * kLanes; }

}  // namespace ironclad

// 2-D pooling with PyTorch semantics (floor-mode output size): max, average, and global average.
//
// Contract: windows are kernel x kernel, moved by stride, over an input padded by `padding` on each side
// (at most kernel / 2, as PyTorch requires). Max pooling treats padding as -inf and sends the gradient to
// the first maximum of each window (NaN counts as the maximum, as in PyTorch). Average pooling divides by
// kernel^2 when count_include_pad, else by the number of real (unpadded) elements in the window.
// Planes (n, c) are independent, so threads split them and results do not depend on the thread count.
// x: [N,C,H,W] -> max/avg: [N,C,(H+2p-k)/s+1,(W+2p-k)/s+1], global: [N,C]
#pragma once

#include "ironclad/autograd/elementwise.hpp"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <stdexcept>
#include <string>
#include <vector>

namespace ironclad {

namespace detail {

struct PoolGeometry {
    std::int64_t planes, h, w, oh, ow, kernel, stride, padding;

    // The window of output (i, j), clipped to the input: rows [h0, h1), columns [w0, w1).
    struct Window {
        std::int64_t h0, h1, w0, w1, padded_area;
    };
    Window window(std::int64_t i, std::int64_t j) const {
        const std::int64_t hs = i * stride - padding, ws = j * stride - padding;
        const std::int64_t padded_area =
            (std::min(hs + kernel, h + padding) - hs) * (std::min(ws + kernel, w + padding) - ws);
        return {std::max<std::int64_t>(hs, 0), std::min(hs + kernel, h), std::max<std::int64_t>(ws, 0),
                std::min(ws + kernel, w), padded_area};
    }
    bool parallel() const { return planes * oh * ow * kernel * kernel >= kElementwiseGrain; }
};

inline PoolGeometry pool_geometry(const char* op, const Var& x, int kernel, int stride, int padding) {
    const Tensor<float>& v = x.value();
    const auto fail = [&](const std::string& why) {
        return std::invalid_argument(std::string(op) + ": input " + shape_str(v.shape()) + ", kernel " +
                                     std::to_string(kernel) + ", stride " + std::to_string(stride) + ", padding " +
                                     std::to_string(padding) + ": " + why);
    };
    if (v.ndim() != 4) throw fail("expected [N,C,H,W]");
    if (kernel < 1 || stride < 1) throw fail("kernel and stride must be positive");
    if (padding < 0 || padding > kernel / 2) throw fail("padding must be in [0, kernel/2]");
    const std::int64_t h = v.dim(2), w = v.dim(3);
    if (h + 2 * padding < kernel || w + 2 * padding < kernel) throw fail("window larger than the padded input");
    const std::int64_t oh = (h + 2 * padding - kernel) / stride + 1, ow = (w + 2 * padding - kernel) / stride + 1;
    return {v.dim(0) * v.dim(1), h, w, oh, ow, kernel, stride, padding};
}

// One plane [h, w] -> [oh, ow]; argmax (may be null) gets each output's index within the plane.
// v replaces the running maximum m when larger or NaN: the scan rule of max_pool_plane.
inline float max_or_nan(float m, float v) { return v > m || v != v ? v : m; }

inline void max_pool_plane(const float* in, const PoolGeometry& g, float* out, std::int32_t* argmax) {
    if (!argmax && g.kernel == 2 && g.stride == 2 && g.padding == 0) {  // the usual pool, in a loop that vectorises
        for (std::int64_t i = 0; i < g.oh; ++i) {
            const float* r0 = in + 2 * i * g.w;
            const float* r1 = r0 + g.w;
            float* o = out + i * g.ow;
            for (std::int64_t j = 0; j < g.ow; ++j)
                o[j] = max_or_nan(max_or_nan(max_or_nan(r0[2 * j], r0[2 * j + 1]), r1[2 * j]), r1[2 * j + 1]);
        }
        return;
    }
    for (std::int64_t i = 0; i < g.oh; ++i)
        for (std::int64_t j = 0; j < g.ow; ++j) {
            const auto win = g.window(i, j);
            std::int64_t best = win.h0 * g.w + win.w0;
            float best_value = -std::numeric_limits<float>::infinity();
            for (std::int64_t r = win.h0; r < win.h1; ++r)
                for (std::int64_t c = win.w0; c < win.w1; ++c) {
                    const float v = in[r * g.w + c];
                    if (v > best_value || std::isnan(v)) {
                        best_value = v;
                        best = r * g.w + c;
                    }
                }
            out[i * g.ow + j] = best_value;
            if (argmax) argmax[i * g.ow + j] = static_cast<std::int32_t>(best);
        }
}

// The mean of one plane of `area` values.
inline float plane_mean(const float* in, std::int64_t area) {
    float s = 0;
#pragma omp simd reduction(+ : s)
    for (std::int64_t i = 0; i < area; ++i) s += in[i];
    return s / static_cast<float>(area);
}

}  // namespace detail

inline Var max_pool2d(const Var& x, int kernel, int stride, int padding = 0) {
    const detail::PoolGeometry g = detail::pool_geometry("max_pool2d", x, kernel, stride, padding);
    const std::int64_t in_plane = g.h * g.w, out_plane = g.oh * g.ow;
    Tensor<float> y({x.dim(0), x.dim(1), g.oh, g.ow});
    // Per output: the argmax's index within its input plane; kept only for backward.
    std::vector<std::int32_t> argmax(needs_tape({&x}) ? static_cast<std::size_t>(g.planes * out_plane) : 0);
    const float* xp = x.value().data();
    float* yp = y.data();
    std::int32_t* ap = argmax.empty() ? nullptr : argmax.data();
#pragma omp parallel for schedule(static) if (g.parallel())
    for (std::int64_t plane = 0; plane < g.planes; ++plane)
        detail::max_pool_plane(xp + plane * in_plane, g, yp + plane * out_plane, ap ? ap + plane * out_plane : nullptr);
    return make_result(std::move(y), {&x}, [g, argmax = std::move(argmax), in_plane, out_plane](Node& n) {
        const float* gp = n.grad.data();
        float* d = n.parents[0]->grad_buffer().data();
        const std::int32_t* a = argmax.data();
#pragma omp parallel for schedule(static) if (g.parallel())
        for (std::int64_t plane = 0; plane < g.planes; ++plane)
            for (std::int64_t o = plane * out_plane; o < (plane + 1) * out_plane; ++o)
                d[plane * in_plane + a[o]] += gp[o];
    });
}

inline Var avg_pool2d(const Var& x, int kernel, int stride, int padding = 0, bool count_include_pad = true) {
    const detail::PoolGeometry g = detail::pool_geometry("avg_pool2d", x, kernel, stride, padding);
    const std::int64_t in_plane = g.h * g.w, out_plane = g.oh * g.ow;
    const auto divisor = [count_include_pad](const detail::PoolGeometry::Window& win) {
        return static_cast<float>(count_include_pad ? win.padded_area : (win.h1 - win.h0) * (win.w1 - win.w0));
    };
    Tensor<float> y({x.dim(0), x.dim(1), g.oh, g.ow});
    const float* xp = x.value().data();
    float* yp = y.data();
#pragma omp parallel for schedule(static) if (g.parallel())
    for (std::int64_t plane = 0; plane < g.planes; ++plane) {
        const float* in = xp + plane * in_plane;
        for (std::int64_t i = 0; i < g.oh; ++i)
            for (std::int64_t j = 0; j < g.ow; ++j) {
                const auto win = g.window(i, j);
                float s = 0;
                for (std::int64_t r = win.h0; r < win.h1; ++r)
                    for (std::int64_t c = win.w0; c < win.w1; ++c) s += in[r * g.w + c];
                yp[plane * out_plane + i * g.ow + j] = s / divisor(win);
            }
    }
    return make_result(std::move(y), {&x}, [g, divisor, in_plane, out_plane](Node& n) {
        const float* gp = n.grad.data();
        float* d = n.parents[0]->grad_buffer().data();
#pragma omp parallel for schedule(static) if (g.parallel())
        for (std::int64_t plane = 0; plane < g.planes; ++plane) {
            float* out = d + plane * in_plane;
            for (std::int64_t i = 0; i < g.oh; ++i)
                for (std::int64_t j = 0; j < g.ow; ++j) {
                    const auto win = g.window(i, j);
                    const float share = gp[plane * out_plane + i * g.ow + j] / divisor(win);
                    for (std::int64_t r = win.h0; r < win.h1; ++r)
                        for (std::int64_t c = win.w0; c < win.w1; ++c) out[r * g.w + c] += share;
                }
        }
    });
}

// x: [N,C,H,W] -> [N,C], the mean of each plane.
inline Var global_avg_pool(const Var& x) {
    const Tensor<float>& v = x.value();
    if (v.ndim() != 4) throw std::invalid_argument("global_avg_pool: expected [N,C,H,W], got " + shape_str(v.shape()));
    const std::int64_t planes = v.dim(0) * v.dim(1), area = v.dim(2) * v.dim(3);
    const bool parallel = v.numel() >= detail::kElementwiseGrain;
    Tensor<float> y({v.dim(0), v.dim(1)});
    const float* xp = v.data();
    float* yp = y.data();
#pragma omp parallel for schedule(static) if (parallel)
    for (std::int64_t plane = 0; plane < planes; ++plane) yp[plane] = detail::plane_mean(xp + plane * area, area);
    return make_result(std::move(y), {&x}, [planes, area, parallel](Node& n) {
        const float* gp = n.grad.data();
        float* d = n.parents[0]->grad_buffer().data();
#pragma omp parallel for schedule(static) if (parallel)
        for (std::int64_t plane = 0; plane < planes; ++plane) {
            const float share = gp[plane] / static_cast<float>(area);
#pragma omp simd
            for (std::int64_t i = 0; i < area; ++i) d[plane * area + i] += share;
        }
    });
}

}  // namespace ironclad

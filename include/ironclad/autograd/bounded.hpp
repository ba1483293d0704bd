// bounded_relu: a ReLU whose output is cut off above a bound, the fault-hardening activation of Ranger,
// FT-ClipAct, FitAct and ProAct (bounds/).
//
// Contract, element-wise with b the bound element that x maps to (see below) and every mode ending in max(0, .)
// as the reference toolbox does, so a negative (e.g. faulted) bound silences the unit instead of emitting b
// (threshold mode then emits the fill value t):
//   zero       y = max(0, x > b ? 0 : x)           values above the bound become 0 (the toolbox's default)
//   clamp      y = max(0, min(x, b))                the classic clipped ReLU
//   threshold  y = max(0, x > b ? t : x)            above the bound -> a second value t (the `fill` input)
//   smooth     y = max(0, x * sigmoid(k (b - x)))   FitAct / ProAct; x << b: ~x, x >> b: ~0, x = b: b/2
// Gradients are the exact derivatives away from the kinks x = 0 and x = b (at x = 0 none passes, as relu; at x = b
// the x <= b branch is taken): d/db is 1 above the bound for clamp, k x s (1 - s) for smooth (s the sigmoid), and 0
// almost everywhere for zero and threshold (a step function of b); d/dt is 1 above the bound where t > 0.
// NaN inputs stay NaN in the forward pass, as in relu.
// Bound shapes (granularity), for x: [N, ...] with per-sample shape S = x.shape[1:]:
//   layer   [1]         one bound for the whole tensor
//   channel [C]         one per channel (dimension 1 of x)
//   neuron  S           one per (c, h, w) position
// Bound gradients are reduced over the batch (and positions) per bound element in a fixed order: bit-identical
// results at any thread count.
#pragma once

#include "ironclad/autograd/elementwise.hpp"

#include <cmath>
#include <cstdint>
#include <stdexcept>
#include <string>

namespace ironclad {

enum class BoundMode { zero, clamp, threshold, smooth };

inline const char* to_string(BoundMode m) {
    switch (m) {
        case BoundMode::zero:
            return "zero";
        case BoundMode::clamp:
            return "clamp";
        case BoundMode::threshold:
            return "threshold";
        case BoundMode::smooth:
            return "smooth";
    }
    return "?";
}

inline BoundMode parse_bound_mode(const std::string& s) {
    for (BoundMode m : {BoundMode::zero, BoundMode::clamp, BoundMode::threshold, BoundMode::smooth})
        if (s == to_string(m)) return m;
    throw std::invalid_argument("unknown bound mode '" + s + "': expected zero, clamp, threshold or smooth");
}

namespace detail {

// x viewed as [N, groups, inner]: bound element g covers positions [g*inner, (g+1)*inner) of every sample.
struct BoundLayout {
    std::int64_t samples, groups, inner;
};

inline BoundLayout bound_layout(const Shape& x, const Shape& bound) {
    if (x.empty()) throw std::invalid_argument("bounded_relu: the input needs a batch dimension");
    const std::int64_t n = x[0], per = n ? shape_numel(x) / n : 0;
    if (shape_numel(bound) == 1) return {n, 1, per};
    if (Shape(x.begin() + 1, x.end()) == bound) return {n, per, 1};
    if (bound.size() == 1 && x.size() > 2 && bound[0] == x[1]) return {n, bound[0], per / bound[0]};
    throw std::invalid_argument("bounded_relu: bound shape " + shape_str(bound) + " fits neither a layer ([1]), a " +
                                "channel or a neuron bound of input " + shape_str(x));
}

// f(i, j) for every input element i with j its bound element; each (i, j) is independent. Loops are arranged so
// that no element pays for an index division.
template <class F>
void for_each_bound_pair(const BoundLayout& L, F f) {
    const std::int64_t per = L.groups * L.inner, total = L.samples * per;
    if (L.groups == 1) {
        elementwise_for(total, [&](std::int64_t i) { f(i, std::int64_t{0}); });
        return;
    }
#pragma omp parallel for collapse(2) schedule(static) if (total >= kElementwiseGrain)
    for (std::int64_t n = 0; n < L.samples; ++n)
        for (std::int64_t g = 0; g < L.groups; ++g) {
            const std::int64_t start = n * per + g * L.inner;
#pragma omp simd
            for (std::int64_t r = 0; r < L.inner; ++r) f(start + r, g);
        }
}

inline float sigmoid(float z) {
    if (z >= 20.0f) return 1.0f;  // what the formula rounds to from z ~ 17.3 on; most activations sit far below b
    if (z >= 0) return 1.0f / (1.0f + std::exp(-z));
    const float e = std::exp(z);
    return e / (1.0f + e);
}

// Adds, for every bound element j, the sum of term(i, j) over the input elements i that map to it.
template <class Term>
void reduce_to_bound(const BoundLayout& L, float* out, Term term) {
    if (L.groups == 1) {
        out[0] += static_cast<float>(block_sum(L.samples * L.inner, [&](std::int64_t i) { return term(i, 0); }));
        return;
    }
    const std::int64_t per = L.groups * L.inner;
#pragma omp parallel for schedule(static) if (L.samples * per >= kElementwiseGrain)
    for (std::int64_t g = 0; g < L.groups; ++g) {
        double s = 0;
        for (std::int64_t n = 0; n < L.samples; ++n)
            for (std::int64_t r = 0; r < L.inner; ++r) s += term(n * per + g * L.inner + r, g);
        out[g] += static_cast<float>(s);
    }
}

}  // namespace detail

// x: [N, ...]; bound: [1], [C] or x.shape[1:]; fill: the bound's shape, threshold mode only -> y: x's shape.
inline Var bounded_relu(const Var& x, const Var& bound, BoundMode mode, float k = 20.0f, const Var& fill = {}) {
    const detail::BoundLayout L = detail::bound_layout(x.shape(), bound.shape());
    if (mode == BoundMode::threshold && (!fill.defined() || fill.shape() != bound.shape()))
        throw std::invalid_argument("bounded_relu: threshold mode needs a fill value shaped like the bound " +
                                    shape_str(bound.shape()));
    if (mode == BoundMode::smooth && !(k > 0))
        throw std::invalid_argument("bounded_relu: smooth mode needs a positive steepness k, got " + std::to_string(k));
    const float* xp = x.value().data();
    const float* bp = bound.value().data();
    const float* tp = mode == BoundMode::threshold ? fill.value().data() : nullptr;
    auto y = Tensor<float>::uninitialized(x.shape());
    float* yp = y.data();
    auto relu_of = [](float v) { return v < 0.0f ? 0.0f : v; };  // NaN passes
    switch (mode) {
        case BoundMode::zero:
            detail::for_each_bound_pair(L, [=](std::int64_t i, std::int64_t j) {
                yp[i] = relu_of(xp[i] > bp[j] ? 0.0f : xp[i]);
            });
            break;
        case BoundMode::clamp:
            detail::for_each_bound_pair(L, [=](std::int64_t i, std::int64_t j) {
                yp[i] = relu_of(xp[i] > bp[j] ? bp[j] : xp[i]);
            });
            break;
        case BoundMode::threshold:
            detail::for_each_bound_pair(L, [=](std::int64_t i, std::int64_t j) {
                yp[i] = relu_of(xp[i] > bp[j] ? tp[j] : xp[i]);
            });
            break;
        case BoundMode::smooth:
            detail::for_each_bound_pair(L, [=](std::int64_t i, std::int64_t j) {
                const float v = xp[i];
                if (!(v > 0)) {
                    yp[i] = relu_of(v);
                    return;
                }
                const float s = detail::sigmoid(k * (bp[j] - v));
                yp[i] = s == 0.0f ? 0.0f : v * s;  // s == 0: a huge (maybe infinite) x is cut to 0, not inf * 0
            });
            break;
    }

    std::vector<Var> inputs{x, bound};
    if (mode == BoundMode::threshold) inputs.push_back(fill);
    return make_result(std::move(y), inputs, [L, mode, k](Node& n) {
        Node& px = *n.parents[0];
        Node& pb = *n.parents[1];
        const float* xv = px.value.data();
        const float* bv = pb.value.data();
        const float* g = n.grad.data();
        if (px.requires_grad) {
            float* dx = px.grad_buffer().data();
            if (mode == BoundMode::smooth)
                detail::for_each_bound_pair(L, [=](std::int64_t i, std::int64_t j) {
                    const float v = xv[i];
                    if (!(v > 0)) return;
                    const float s = detail::sigmoid(k * (bv[j] - v));
                    dx[i] += (s - k * v * s * (1 - s)) * g[i];
                });
            else
                detail::for_each_bound_pair(L, [=](std::int64_t i, std::int64_t j) {
                    dx[i] += xv[i] > 0 && xv[i] <= bv[j] ? g[i] : 0.0f;
                });
        }
        // zero and threshold are step functions of b: their bound gradient stays 0.
        if (pb.requires_grad) {
            float* db = pb.grad_buffer().data();
            if (mode == BoundMode::clamp)
                detail::reduce_to_bound(L, db, [=](std::int64_t i, std::int64_t j) -> double {
                    return xv[i] > bv[j] && bv[j] > 0 ? g[i] : 0.0f;
                });
            if (mode == BoundMode::smooth)
                detail::reduce_to_bound(L, db, [=](std::int64_t i, std::int64_t j) -> double {
                    if (!(xv[i] > 0)) return 0.0;
                    const float s = detail::sigmoid(k * (bv[j] - xv[i]));
                    return static_cast<double>(g[i]) * k * xv[i] * s * (1 - s);
                });
        }
        if (mode == BoundMode::threshold && n.parents[2]->requires_grad) {
            Node& pt = *n.parents[2];
            const float* tv = pt.value.data();
            detail::reduce_to_bound(L, pt.grad_buffer().data(), [=](std::int64_t i, std::int64_t j) -> double {
                return xv[i] > bv[j] && tv[j] > 0 ? g[i] : 0.0f;
            });
        }
    });
}

}  // namespace ironclad

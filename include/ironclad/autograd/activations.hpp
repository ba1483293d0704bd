// Clipping activations: relu, relu6 and clamp.
//
// Contract: y = min(max(x, lo), hi) element-wise. NaN passes through the forward (a flipped exponent bit
// must stay visible to fault statistics, as in PyTorch). Gradients follow PyTorch at the kinks and for
// NaN: relu and relu6 block the gradient at and beyond their kinks (threshold / hardtanh backward, so the
// gradient at x == 0 is 0), clamp passes it on the closed interval [lo, hi] (clamp backward).
// x: any shape -> y: same shape
#pragma once

#include "ironclad/autograd/elementwise.hpp"

#include <limits>
#include <stdexcept>
#include <string>

namespace ironclad {

namespace detail {

// `passes(x)` says whether the gradient flows through element x.
template <class Passes>
Var clip(const Var& x, float lo, float hi, Passes passes) {
    Tensor<float> y = map_elements(x.value(), [lo, hi](float v) { return v < lo ? lo : (v > hi ? hi : v); });
    return make_result(std::move(y), {&x}, [passes](Node& n) {
        Node& p = *n.parents[0];
        const float* xp = p.value.data();
        const float* g = n.grad.data();
        const bool accumulate = p.grad_accumulates();
        float* d = p.grad.data();
        if (accumulate)
            elementwise_for(n.grad.numel(), [=](std::int64_t i) { d[i] += passes(xp[i]) ? g[i] : 0.0f; });
        else
            elementwise_for(n.grad.numel(), [=](std::int64_t i) { d[i] = passes(xp[i]) ? g[i] : 0.0f; });
    });
}

}  // namespace detail

inline Var relu(const Var& x) {
    return detail::clip(x, 0.0f, std::numeric_limits<float>::infinity(), [](float v) { return !(v <= 0.0f); });
}

inline Var relu6(const Var& x) {
    return detail::clip(x, 0.0f, 6.0f, [](float v) { return !(v <= 0.0f || v >= 6.0f); });
}

inline Var clamp(const Var& x, float lo, float hi) {
    if (!(lo <= hi))
        throw std::invalid_argument("clamp: lower bound " + std::to_string(lo) + " above upper bound " +
                                    std::to_string(hi));
    return detail::clip(x, lo, hi, [lo, hi](float v) { return v >= lo && v <= hi; });
}

}  // namespace ironclad

// Element-wise arithmetic (add, sub, mul, scale, add_scalar) and full reductions (sum, mean).
//
// Contract: binary ops take equal shapes; there is no broadcasting, because every use (residual adds,
// combining losses) is same-shape and a silent broadcast would hide a shape bug. sum and mean return a 0-d
// Var (shape {}, one element, like a torch scalar), so backward() can be called on them directly.
// Results are bit-identical at any thread count: element-wise loops are independent, and reductions add
// fixed-size blocks in double and combine the block sums in order.
// a, b, x: any shape -> same shape (sum, mean: shape {})
#pragma once

#include "ironclad/autograd/variable.hpp"

#include <algorithm>
#include <cstdint>
#include <stdexcept>
#include <string>
#include <vector>

namespace ironclad {

namespace detail {

// Below this many elements, forking threads costs more than it saves.
inline constexpr std::int64_t kElementwiseGrain = std::int64_t{1} << 15;

// f(i) for i in [0, n): threads split the range only when it is large; each i is independent.
// Each thread runs its own copy of f: read through the shared closure, its pointers are reloaded after every
// store (they might alias), which keeps the loop scalar.
template <class F>
void elementwise_for(std::int64_t n, F f) {
#pragma omp parallel if (n >= kElementwiseGrain)
    {
        const F local = f;
#pragma omp for simd schedule(static)
        for (std::int64_t i = 0; i < n; ++i) local(i);
    }
}

// Sum of term(i) over [0, n) in double. The block partition is fixed, so the rounding is the same however
// many threads share the blocks.
template <class Term>
double block_sum(std::int64_t n, Term term) {
    constexpr std::int64_t block = std::int64_t{1} << 14;
    const std::int64_t blocks = (n + block - 1) / block;
    std::vector<double> partial(static_cast<std::size_t>(blocks));
#pragma omp parallel for schedule(static) if (n >= kElementwiseGrain)
    for (std::int64_t b = 0; b < blocks; ++b) {
        const std::int64_t end = std::min(n, (b + 1) * block);
        double s = 0;
#pragma omp simd reduction(+ : s)
        for (std::int64_t i = b * block; i < end; ++i) s += term(i);
        partial[static_cast<std::size_t>(b)] = s;
    }
    double total = 0;
    for (double s : partial) total += s;
    return total;
}

// parent.grad += s * src, element-wise over equal element counts (assigned when the buffer is new).
inline void add_scaled(Node& parent, const Tensor<float>& src, float s) {
    const bool accumulate = parent.grad_accumulates();
    float* d = parent.grad.data();
    const float* g = src.data();
    if (accumulate)
        elementwise_for(src.numel(), [=](std::int64_t i) { d[i] += s * g[i]; });
    else
        elementwise_for(src.numel(), [=](std::int64_t i) { d[i] = s * g[i]; });
}

inline void check_equal_shapes(const char* op, const Var& a, const Var& b) {
    if (a.shape() != b.shape())
        throw std::invalid_argument(std::string(op) + ": shapes " + shape_str(a.shape()) + " and " +
                                    shape_str(b.shape()) + " differ");
}

template <class F>
Tensor<float> map_elements(const Tensor<float>& x, F f) {
    auto y = Tensor<float>::uninitialized(x.shape());
    const float* xp = x.data();
    float* yp = y.data();
    elementwise_for(x.numel(), [=](std::int64_t i) { yp[i] = f(xp[i]); });
    return y;
}

template <class F>
Tensor<float> zip_elements(const Tensor<float>& a, const Tensor<float>& b, F f) {
    auto y = Tensor<float>::uninitialized(a.shape());
    const float* ap = a.data();
    const float* bp = b.data();
    float* yp = y.data();
    elementwise_for(a.numel(), [=](std::int64_t i) { yp[i] = f(ap[i], bp[i]); });
    return y;
}

// a + sign * b; the gradient reaching b is multiplied by sign.
inline Var add_signed(const char* op, const Var& a, const Var& b, float sign) {
    check_equal_shapes(op, a, b);
    return make_result(zip_elements(a.value(), b.value(), [sign](float x, float y) { return x + sign * y; }), {&a, &b},
                       [sign](Node& n) {
                           if (n.parents[0]->requires_grad) add_scaled(*n.parents[0], n.grad, 1.0f);
                           if (n.parents[1]->requires_grad) add_scaled(*n.parents[1], n.grad, sign);
                       });
}

// Shape {} holding (sum of x) / divisor; every element's gradient is seed / divisor.
inline Var sum_over(const Var& x, double divisor) {
    const float* xp = x.value().data();
    Tensor<float> y(Shape{});
    y[0] = static_cast<float>(block_sum(x.value().numel(), [=](std::int64_t i) { return double(xp[i]); }) / divisor);
    return make_result(std::move(y), {&x}, [divisor](Node& n) {
        const float share = static_cast<float>(n.grad[0] / divisor);
        float* d = n.parents[0]->grad_buffer().data();
        elementwise_for(n.parents[0]->value.numel(), [=](std::int64_t i) { d[i] += share; });
    });
}

}  // namespace detail

inline Var add(const Var& a, const Var& b) { return detail::add_signed("add", a, b, 1.0f); }

inline Var sub(const Var& a, const Var& b) { return detail::add_signed("sub", a, b, -1.0f); }

inline Var mul(const Var& a, const Var& b) {
    detail::check_equal_shapes("mul", a, b);
    return make_result(
        detail::zip_elements(a.value(), b.value(), [](float x, float y) { return x * y; }), {&a, &b}, [](Node& n) {
            const float* g = n.grad.data();
            for (int k = 0; k < 2; ++k) {
                Node& self = *n.parents[k];
                if (!self.requires_grad) continue;
                const float* other = n.parents[1 - k]->value.data();
                float* d = self.grad_buffer().data();
                detail::elementwise_for(n.grad.numel(), [=](std::int64_t i) { d[i] += g[i] * other[i]; });
            }
        });
}

inline Var scale(const Var& x, float s) {
    return make_result(detail::map_elements(x.value(), [s](float v) { return v * s; }), {&x},
                       [s](Node& n) { detail::add_scaled(*n.parents[0], n.grad, s); });
}

inline Var add_scalar(const Var& x, float s) {
    return make_result(detail::map_elements(x.value(), [s](float v) { return v + s; }), {&x},
                       [](Node& n) { detail::add_scaled(*n.parents[0], n.grad, 1.0f); });
}

inline Var sum(const Var& x) { return detail::sum_over(x, 1.0); }

// An empty x gives NaN, as in torch.
inline Var mean(const Var& x) { return detail::sum_over(x, static_cast<double>(x.value().numel())); }

}  // namespace ironclad

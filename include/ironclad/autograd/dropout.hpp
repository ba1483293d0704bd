// Inverted dropout.
//
// Contract: in training, element i is zeroed with probability p and the survivors are scaled by 1/(1-p), so
// the expectation is unchanged; in evaluation (or with p = 0) the input Var itself is returned. Whether
// element i survives is a pure function of (seed, i) — the i-th output of a SplitMix64 stream whose state
// starts at the mixed seed — so the mask is the same on any thread count, and backward recomputes it instead
// of storing it. Callers pass a fresh seed per step and per layer; mixing the seed first keeps consecutive
// seeds (seed + step) from giving shifted copies of one mask.
// x: any shape -> same shape
#pragma once

#include "ironclad/autograd/elementwise.hpp"
#include "ironclad/core/random.hpp"

#include <cstdint>
#include <stdexcept>
#include <string>

namespace ironclad {

namespace detail {

// The factor element i is multiplied by: 0 (dropped) or 1/(1-p) (kept).
struct DropoutMask {
    std::uint64_t stream;
    float p, scale;

    DropoutMask(std::uint64_t seed, float p_) : stream(Rng::mix(seed)), p(p_), scale(p_ < 1 ? 1 / (1 - p_) : 0) {}
    float operator()(std::int64_t i) const {
        const std::uint64_t bits = Rng::mix(stream + (static_cast<std::uint64_t>(i) + 1) * Rng::golden_gamma);
        const float u = static_cast<float>(bits >> 40) * 0x1p-24f;  // uniform in [0, 1), exact in float
        return u < p ? 0.0f : scale;
    }
};

}  // namespace detail

inline Var dropout(const Var& x, float p, bool training, std::uint64_t seed) {
    if (!(p >= 0 && p <= 1))
        throw std::invalid_argument("dropout: probability " + std::to_string(p) + " not in [0, 1]");
    if (!training || p == 0) return x;
    const detail::DropoutMask mask(seed, p);
    const float* xp = x.value().data();
    Tensor<float> y(x.shape());
    float* yp = y.data();
    detail::elementwise_for(y.numel(), [=](std::int64_t i) { yp[i] = xp[i] * mask(i); });
    return make_result(std::move(y), {&x}, [mask](Node& n) {
        const float* g = n.grad.data();
        float* d = n.parents[0]->grad_buffer().data();
        detail::elementwise_for(n.grad.numel(), [=](std::int64_t i) { d[i] += g[i] * mask(i); });
    });
}

}  // namespace ironclad

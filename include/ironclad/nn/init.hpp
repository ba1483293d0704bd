// Weight initialisation (PyTorch's nn.init), deterministic for a given seed.
#pragma once

#include "ironclad/core/random.hpp"
#include "ironclad/core/tensor.hpp"

#include <cmath>

namespace ironclad::init {

// fan_in of a weight [out, in, k...]: in * prod(k).
inline std::int64_t fan_in(const Tensor<float>& w) { return w.ndim() < 2 ? w.numel() : w.numel() / w.dim(0); }

// kaiming_normal_(mode='fan_in', nonlinearity='relu'): N(0, 2/fan_in).
inline void kaiming_normal(Tensor<float>& w, Rng& rng) {
    const double std = std::sqrt(2.0 / static_cast<double>(fan_in(w)));
    for (auto& v : w) v = static_cast<float>(rng.normal() * std);
}

// PyTorch's default for Conv/Linear: kaiming_uniform_(a=sqrt(5)) = U(-1/sqrt(fan_in), 1/sqrt(fan_in)); same for bias.
inline void uniform_fan_in(Tensor<float>& t, std::int64_t fan, Rng& rng) {
    const double bound = 1.0 / std::sqrt(static_cast<double>(fan));
    for (auto& v : t) v = static_cast<float>((2.0 * rng.uniform() - 1.0) * bound);
}

}  // namespace ironclad::init

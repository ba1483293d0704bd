// Finite-difference gradient check shared by every op test.
//
// check_gradients(f, inputs) seeds the output of f with fixed random weights w (loss = sum w*f(x)),
// back-propagates, and compares each input's analytic gradient with central differences of the same
// loss computed in double. Inputs are perturbed element by element (all of them, or a seeded sample
// of `max_checks` per input for large tensors).
#pragma once

#include "ironclad/autograd/variable.hpp"

#include <doctest/doctest.h>

#include <cmath>
#include <functional>
#include <numeric>
#include <random>
#include <vector>

namespace ironclad::testing {

inline Tensor<float> random_tensor(Shape shape, std::uint32_t seed, float lo = -1.0f, float hi = 1.0f) {
    Tensor<float> t(std::move(shape));
    std::mt19937 rng(seed);
    std::uniform_real_distribution<float> u(lo, hi);
    for (auto& v : t) v = u(rng);
    return t;
}

// 0, 1, 2, ... in storage order: distinct values, so max-pool and shape tests have no ties.
inline Tensor<float> iota(Shape shape) {
    Tensor<float> t(std::move(shape));
    std::iota(t.begin(), t.end(), 0.0f);
    return t;
}

struct GradCheckOptions {
    double eps = 1e-3;
    double rtol = 2e-2;
    double atol = 2e-3;
    int max_checks = 64;
};

inline void check_gradients(const std::function<Var(std::vector<Var>&)>& f, std::vector<Tensor<float>> inputs,
                            GradCheckOptions opt = {}) {
    std::vector<Var> vars;
    for (auto& t : inputs) vars.emplace_back(t.clone(), true);
    Var out = f(vars);
    Tensor<float> w = random_tensor(out.shape(), 12345u);
    out.backward(w);

    auto loss_at = [&](std::vector<Var>& probe) {
        NoGradGuard no_grad;
        Var o = f(probe);
        double s = 0;
        for (std::int64_t i = 0; i < o.value().numel(); ++i) s += double(w[i]) * double(o.value()[i]);
        return s;
    };
    std::mt19937 rng(7);
    for (std::size_t k = 0; k < vars.size(); ++k) {
        CAPTURE(k);
        REQUIRE(vars[k].grad().defined());
        const Tensor<float> analytic = vars[k].grad();
        const std::int64_t n = inputs[k].numel();
        std::vector<std::int64_t> idx;
        if (n <= opt.max_checks) {
            for (std::int64_t i = 0; i < n; ++i) idx.push_back(i);
        } else {
            std::uniform_int_distribution<std::int64_t> pick(0, n - 1);
            for (int i = 0; i < opt.max_checks; ++i) idx.push_back(pick(rng));
        }
        for (std::int64_t i : idx) {
            std::vector<Var> probe;
            for (auto& t : inputs) probe.emplace_back(t.clone(), false);
            const float x0 = inputs[k][i];
            probe[k].value()[i] = static_cast<float>(x0 + opt.eps);
            const double up = loss_at(probe);
            probe[k].value()[i] = static_cast<float>(x0 - opt.eps);
            const double down = loss_at(probe);
            const double numeric = (up - down) / (2 * opt.eps);
            CAPTURE(i);
            CAPTURE(numeric);
            CAPTURE(analytic[i]);
            CHECK(std::abs(numeric - analytic[i]) <= opt.atol + opt.rtol * std::abs(numeric));
        }
    }
}

}  // namespace ironclad::testing

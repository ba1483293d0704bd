// The small optimizer problem shared by the SGD and Adam tests, as in scripts/golden/optim_golden.py.
#pragma once

#include "ironclad/optim/param_group.hpp"

#include <doctest/doctest.h>

#include <functional>
#include <optional>
#include <string>
#include <vector>

namespace ironclad::testing {

// The problem of scripts/golden/optim_golden.py: p0 in group 0, p1 and p2 in group 1 (weight decay 0, half lr).
inline std::vector<Var> initial_params() {
    return {Var(Tensor<float>({2, 3}, {0.5f, -1.0f, 0.25f, 1.5f, -0.75f, 2.0f}), true),
            Var(Tensor<float>({3}, {0.1f, -0.2f, 0.3f}), true), Var(Tensor<float>({2}, {1.0f, -1.0f}), true)};
}

inline std::vector<ParamGroup> golden_groups(const std::vector<Var>& p,
                                             std::optional<float> weight_decay = std::nullopt) {
    return {ParamGroup{{p[0]}, weight_decay}, ParamGroup{{p[1], p[2]}, 0.0f, 0.5f}};
}

// grad = 0.5 p + c_t, c_t[k] = ((7k + 3t) % 11 - 5) / 10; p2 gets no gradient at step 1.
inline void set_grads(std::vector<Var>& params, int t) {
    for (std::size_t i = 0; i < params.size(); ++i) {
        params[i].zero_grad();
        if (i == 2 && t == 1) continue;
        Tensor<float>& g = params[i].grad_buffer();
        for (std::int64_t k = 0; k < g.numel(); ++k)
            g[k] = params[i].value()[k] * 0.5f + static_cast<float>((7 * k + 3 * t) % 11 - 5) * 0.1f;
    }
}

template <class Optimizer>
void run_steps(Optimizer& opt, std::vector<Var>& params, int first, int last) {
    for (int t = first; t < last; ++t) {
        set_grads(params, t);
        opt.step();
    }
}

inline std::vector<float> flat(const std::vector<Var>& params) {
    std::vector<float> out;
    for (const auto& p : params) out.insert(out.end(), p.value().begin(), p.value().end());
    return out;
}

inline void check_golden(const std::vector<Var>& params, const std::vector<float>& expected) {
    const auto got = flat(params);
    REQUIRE(got.size() == expected.size());
    for (std::size_t k = 0; k < got.size(); ++k) {
        CAPTURE(k);
        CHECK(got[k] == doctest::Approx(expected[k]).epsilon(1e-6));
    }
}

inline std::string error_of(const std::function<void()>& f) {
    try {
        f();
    } catch (const std::exception& e) {
        return e.what();
    }
    return "";
}

}  // namespace ironclad::testing

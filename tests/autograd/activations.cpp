#include "ironclad/autograd/activations.hpp"

#include "../support/grad_check.hpp"

#include <doctest/doctest.h>

#include <cmath>
#include <limits>

using namespace ironclad;
using ironclad::testing::check_gradients;
using ironclad::testing::random_tensor;

namespace {

// Pushes every element at least `gap` away from each kink, so finite differences never straddle one.
Tensor<float> away_from(Tensor<float> t, std::initializer_list<float> kinks, float gap) {
    for (auto& v : t)
        for (float k : kinks)
            if (std::abs(v - k) < gap) v = k + (v < k ? -gap : gap);
    return t;
}

// Values and input gradient (seed of ones) of op applied to `xs`.
template <class Op>
std::pair<Tensor<float>, Tensor<float>> value_and_grad(Op op, Tensor<float> xs) {
    Var x(std::move(xs), true);
    Var y = op(x);
    y.backward(Tensor<float>(y.shape(), 1.0f));
    return {y.value(), x.grad()};
}

}  // namespace

TEST_CASE("activations: values and PyTorch gradients at the kinks") {
    const float nan = std::numeric_limits<float>::quiet_NaN();
    const Tensor<float> xs({6}, {nan, 0.0f, 6.0f, -0.5f, 3.0f, 7.0f});

    auto [r, gr] = value_and_grad([](const Var& x) { return relu(x); }, xs.clone());
    CHECK(std::isnan(r[0]));
    CHECK(r[1] == 0.0f);
    CHECK(r[3] == 0.0f);
    CHECK(r[5] == 7.0f);
    // torch.relu backward: 0 at x == 0, 1 above, and 1 for NaN (threshold_backward tests x <= 0).
    const float relu_grad[] = {1, 0, 1, 0, 1, 1};
    for (int i = 0; i < 6; ++i) CHECK(gr[i] == relu_grad[i]);

    auto [r6, g6] = value_and_grad([](const Var& x) { return relu6(x); }, xs.clone());
    CHECK(r6[2] == 6.0f);
    CHECK(r6[5] == 6.0f);
    CHECK(r6[4] == 3.0f);
    const float relu6_grad[] = {1, 0, 0, 0, 1, 0};  // F.relu6 = hardtanh: blocked at both kinks
    for (int i = 0; i < 6; ++i) CHECK(g6[i] == relu6_grad[i]);

    auto [c, gc] = value_and_grad([](const Var& x) { return clamp(x, 0.0f, 6.0f); }, xs.clone());
    CHECK(std::isnan(c[0]));
    CHECK(c[3] == 0.0f);
    CHECK(c[5] == 6.0f);
    const float clamp_grad[] = {0, 1, 1, 0, 1, 0};  // torch.clamp: passes on the closed interval
    for (int i = 0; i < 6; ++i) CHECK(gc[i] == clamp_grad[i]);
}

TEST_CASE("activations: finite-difference gradients away from the kinks") {
    const Tensor<float> x = away_from(random_tensor({2, 3, 4, 4}, 1, -2.0f, 8.0f), {0.0f, 6.0f, -1.0f, 2.5f}, 0.05f);
    check_gradients([](std::vector<Var>& v) { return relu(v[0]); }, {x});
    check_gradients([](std::vector<Var>& v) { return relu6(v[0]); }, {x});
    check_gradients([](std::vector<Var>& v) { return clamp(v[0], -1.0f, 2.5f); }, {x});
}

TEST_CASE("activations: no tape without a gradient; bad clamp bounds") {
    Var x(random_tensor({4}, 2), false);
    CHECK_FALSE(relu(x).requires_grad());
    CHECK_THROWS_AS(clamp(x, 1.0f, 0.0f), std::invalid_argument);
}

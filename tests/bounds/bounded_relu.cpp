// Bounded activations: values of every mode, finite-difference gradients with respect to input, bound and fill for
// every mode and granularity, thread-count independence, and the module's shape checks.
#include "ironclad/bounds/bounded_relu.hpp"
#include "ironclad/core/parallel.hpp"

#include "../support/grad_check.hpp"

#include <doctest/doctest.h>

#include <cmath>
#include <limits>

using namespace ironclad;
using ironclad::testing::check_gradients;
using ironclad::testing::random_tensor;

namespace {

float apply(BoundMode mode, float x, float b, float t = 0.5f) {
    const Tensor<float> fill({1}, {t});
    Var y = bounded_relu(Var(Tensor<float>({1, 1}, {x})), Var(Tensor<float>({1}, {b})), mode, 20.0f,
                         mode == BoundMode::threshold ? Var(fill) : Var());
    return y.value()[0];
}

// Moves every x at least `gap` away from 0 and from the bound element it maps to (finite differences must not
// straddle a kink or the jump of zero / threshold mode).
Tensor<float> away_from_kinks(Tensor<float> x, const Tensor<float>& bound, float gap) {
    const std::int64_t per = x.numel() / x.dim(0);
    const std::int64_t inner = bound.numel() == 1 ? per : bound.numel() == per ? 1 : per / bound.numel();
    for (std::int64_t i = 0; i < x.numel(); ++i) {
        const float b = bound[bound.numel() == 1 ? 0 : (i % per) / inner];
        for (float kink : {0.0f, b})
            if (std::abs(x[i] - kink) < gap) x[i] = kink + (x[i] < kink ? -gap : gap);
    }
    return x;
}

}  // namespace

TEST_CASE("bounded_relu: the value of each mode") {
    // zero: above the bound -> 0; at the bound it passes; negatives -> 0.
    CHECK(apply(BoundMode::zero, 3.0f, 2.0f) == 0.0f);
    CHECK(apply(BoundMode::zero, 2.0f, 2.0f) == 2.0f);
    CHECK(apply(BoundMode::zero, 1.5f, 2.0f) == 1.5f);
    CHECK(apply(BoundMode::zero, -1.0f, 2.0f) == 0.0f);
    CHECK(apply(BoundMode::clamp, 3.0f, 2.0f) == 2.0f);
    CHECK(apply(BoundMode::clamp, 1.0f, 2.0f) == 1.0f);
    CHECK(apply(BoundMode::threshold, 3.0f, 2.0f, 0.25f) == 0.25f);
    CHECK(apply(BoundMode::threshold, 3.0f, 2.0f, -0.25f) == 0.0f);
    CHECK(apply(BoundMode::threshold, 1.0f, 2.0f, 0.25f) == 1.0f);
    // smooth: x * sigmoid(20 (b - x)); b/2 at the bound.
    CHECK(apply(BoundMode::smooth, 2.0f, 2.0f) == doctest::Approx(1.0f));
    CHECK(apply(BoundMode::smooth, 1.0f, 2.0f) == doctest::Approx(1.0f / (1.0f + std::exp(-20.0f))));
    CHECK(apply(BoundMode::smooth, 2.1f, 2.0f) == doctest::Approx(2.1f / (1.0f + std::exp(2.0f))));
    CHECK(apply(BoundMode::smooth, -1.0f, 2.0f) == 0.0f);
    CHECK(apply(BoundMode::smooth, 1e30f, 2.0f) == 0.0f);
    CHECK(apply(BoundMode::smooth, std::numeric_limits<float>::infinity(), 2.0f) == 0.0f);
    // A negative (e.g. faulted) bound silences the unit instead of emitting the bound (threshold: the fill value).
    for (BoundMode m : {BoundMode::zero, BoundMode::clamp, BoundMode::smooth}) CHECK(apply(m, 1.0f, -5.0f) == 0.0f);
    CHECK(apply(BoundMode::threshold, 1.0f, -5.0f, 0.25f) == 0.25f);
    // NaN stays visible to fault statistics.
    CHECK(std::isnan(apply(BoundMode::zero, std::numeric_limits<float>::quiet_NaN(), 2.0f)));
    CHECK(std::isnan(apply(BoundMode::clamp, std::numeric_limits<float>::quiet_NaN(), 2.0f)));
}

TEST_CASE("bounded_relu: gradients for input, bound and fill in every mode and granularity") {
    const Shape x_shape{3, 4, 2, 2};
    for (BoundGranularity g : {BoundGranularity::layer, BoundGranularity::channel, BoundGranularity::neuron}) {
        const Shape b_shape = bound_shape(g, x_shape);
        const Tensor<float> bound = random_tensor(b_shape, 11, 0.4f, 1.2f);
        const Tensor<float> fill = random_tensor(b_shape, 12, 0.1f, 0.6f);
        const Tensor<float> x = away_from_kinks(random_tensor(x_shape, 13, -0.5f, 1.8f), bound, 0.02f);
        for (BoundMode mode : {BoundMode::zero, BoundMode::clamp, BoundMode::threshold, BoundMode::smooth}) {
            CAPTURE(to_string(g));
            CAPTURE(to_string(mode));
            std::vector<Tensor<float>> inputs{x, bound};
            if (mode == BoundMode::threshold) inputs.push_back(fill);
            check_gradients(
                [mode](std::vector<Var>& v) {
                    return bounded_relu(v[0], v[1], mode, 20.0f, v.size() > 2 ? v[2] : Var());
                },
                inputs, {.eps = 1e-3, .rtol = 2e-2, .atol = 2e-3, .max_checks = 64});
        }
    }
}

TEST_CASE("bounded_relu: gradients on fully connected activations and with another steepness") {
    const Tensor<float> bound = random_tensor({6}, 21, 0.5f, 1.0f);
    const Tensor<float> x = away_from_kinks(random_tensor({5, 6}, 22, -0.5f, 1.5f), bound, 0.02f);
    check_gradients([](std::vector<Var>& v) { return bounded_relu(v[0], v[1], BoundMode::smooth, 8.0f); },
                    {x, bound});
    check_gradients([](std::vector<Var>& v) { return bounded_relu(v[0], v[1], BoundMode::clamp); }, {x, bound});
}

TEST_CASE("bounded_relu: zero and threshold bounds get an all-zero gradient; clamp counts the clipped elements") {
    Var x(Tensor<float>({1, 4}, {0.5f, 2.0f, 3.0f, -1.0f}), true);
    for (BoundMode mode : {BoundMode::zero, BoundMode::clamp}) {
        Var b(Tensor<float>({1}, {1.0f}), true);
        bounded_relu(x, b, mode).backward(Tensor<float>({1, 4}, 1.0f));
        CHECK(b.grad()[0] == (mode == BoundMode::clamp ? 2.0f : 0.0f));
    }
}

TEST_CASE("bounded_relu: bound gradients are the same at any thread count") {
    const Shape x_shape{64, 16, 8, 8};  // above the parallel grain
    const Tensor<float> x = random_tensor(x_shape, 31, -1.0f, 3.0f);
    const Tensor<float> seed = random_tensor(x_shape, 32);
    for (BoundGranularity g : {BoundGranularity::layer, BoundGranularity::channel, BoundGranularity::neuron}) {
        std::vector<Tensor<float>> grads;
        const int threads_before = num_threads();
        for (int threads : {1, 2, 3}) {
            set_num_threads(threads);
            Var b(Tensor<float>(bound_shape(g, x_shape), 1.0f), true);
            bounded_relu(Var(x), b, BoundMode::smooth).backward(seed);
            grads.push_back(b.grad().clone());
        }
        set_num_threads(threads_before);
        for (std::size_t t = 1; t < grads.size(); ++t)
            for (std::int64_t i = 0; i < grads[0].numel(); ++i) CHECK(grads[t][i] == grads[0][i]);
    }
}

TEST_CASE("BoundedReLU: parameters, shape checks and errors") {
    BoundedReLU layer(Tensor<float>({1}, {2.0f}), BoundMode::zero, BoundGranularity::layer);
    CHECK(layer.type_name() == "BoundedReLU");
    REQUIRE(layer.named_parameters().size() == 1);
    CHECK(layer.named_parameters()[0].first == "bound");
    BoundedReLU thr(Tensor<float>({4}, 1.0f), BoundMode::threshold, BoundGranularity::channel, 20.0f,
                    Tensor<float>({4}, 0.5f));
    REQUIRE(thr.named_parameters().size() == 2);
    CHECK(thr.named_parameters()[1].first == "fill");
    const Tensor<float> y = thr(Var(Tensor<float>({1, 4, 1, 1}, {0.5f, 2.0f, 0.0f, 1.0f}))).value();
    CHECK(y[0] == 0.5f);
    CHECK(y[1] == 0.5f);
    CHECK(y[3] == 1.0f);

    CHECK_THROWS_WITH_AS(BoundedReLU(Tensor<float>({3}), BoundMode::zero, BoundGranularity::layer),
                         doctest::Contains("does not fit layer granularity"), std::invalid_argument);
    CHECK_THROWS_AS(BoundedReLU(Tensor<float>({1}), BoundMode::threshold, BoundGranularity::layer),
                    std::invalid_argument);
    CHECK_THROWS_AS(BoundedReLU(Tensor<float>({1}), BoundMode::smooth, BoundGranularity::layer, 0.0f),
                    std::invalid_argument);
    CHECK_THROWS_WITH_AS(bounded_relu(Var(Tensor<float>({2, 4, 3, 3})), Var(Tensor<float>({3})), BoundMode::zero),
                         doctest::Contains("fits neither"), std::invalid_argument);
    CHECK(parse_bound_mode("smooth") == BoundMode::smooth);
    CHECK_THROWS_WITH_AS(parse_bound_mode("soft"), doctest::Contains("unknown bound mode 'soft'"),
                         std::invalid_argument);
    CHECK(parse_bound_granularity("channel") == BoundGranularity::channel);
    CHECK(bound_shape(BoundGranularity::neuron, {8, 16, 4, 4}) == Shape{16, 4, 4});
    CHECK(bound_shape(BoundGranularity::channel, {8, 16, 4, 4}) == Shape{16});
}

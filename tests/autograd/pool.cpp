#include "ironclad/autograd/pool.hpp"

#include "../support/grad_check.hpp"

#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <numeric>
#include <random>

using namespace ironclad;
using ironclad::testing::check_gradients;
using ironclad::testing::iota;
using ironclad::testing::random_tensor;

namespace {

// Distinct values 0.01 apart in shuffled order: no ties inside a window, and a finite-difference step
// cannot change which element is the maximum.
Tensor<float> distinct(Shape shape, std::uint32_t seed) {
    Tensor<float> t = iota(std::move(shape));
    std::shuffle(t.begin(), t.end(), std::mt19937(seed));
    for (auto& v : t) v *= 0.01f;
    return t;
}

void check_values(const Tensor<float>& got, std::initializer_list<float> want) {
    REQUIRE(got.numel() == static_cast<std::int64_t>(want.size()));
    std::int64_t i = 0;
    for (float w : want) CHECK(got[i++] == doctest::Approx(w));
}

}  // namespace

// Expected values are from torch.nn.functional on the same inputs (0..15 as [1,1,4,4], 0..24 as [1,1,5,5]).
TEST_CASE("pool: forward values match PyTorch, padding included or not") {
    Var x(iota({1, 1, 4, 4}));
    CHECK(max_pool2d(x, 3, 2, 1).shape() == Shape{1, 1, 2, 2});
    check_values(max_pool2d(x, 3, 2, 1).value(), {5, 7, 13, 15});
    check_values(avg_pool2d(x, 3, 2, 1).value(), {10.0f / 9, 24.0f / 9, 51.0f / 9, 10});
    check_values(avg_pool2d(x, 3, 2, 1, false).value(), {2.5f, 4, 8.5f, 10});
    check_values(avg_pool2d(Var(iota({1, 1, 5, 5})), 2, 2, 1).value(), {0, 0.75f, 1.75f, 3.75f, 9, 11, 8.75f, 19, 21});
    check_values(global_avg_pool(Var(iota({2, 1, 2, 2}))).value(), {1.5f, 5.5f});
    CHECK(global_avg_pool(Var(iota({2, 3, 2, 2}))).shape() == Shape{2, 3});
}

TEST_CASE("pool: max-pool gradient goes to the first maximum on ties, as in PyTorch") {
    Var z(Tensor<float>({1, 1, 4, 4}), true);
    max_pool2d(z, 3, 2, 1).backward(Tensor<float>({1, 1, 2, 2}, 1.0f));
    // Windows start in the padding; the first real element of each wins.
    check_values(z.grad(), {1, 1, 0, 0, 1, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0});
    Var w(Tensor<float>({1, 1, 4, 4}), true);
    max_pool2d(w, 2, 2).backward(Tensor<float>({1, 1, 2, 2}, 1.0f));
    check_values(w.grad(), {1, 0, 1, 0, 0, 0, 0, 0, 1, 0, 1, 0, 0, 0, 0, 0});
}

TEST_CASE("pool: finite-difference gradients") {
    check_gradients([](std::vector<Var>& v) { return max_pool2d(v[0], 3, 2, 1); }, {distinct({2, 2, 5, 6}, 1)});
    check_gradients([](std::vector<Var>& v) { return max_pool2d(v[0], 2, 2); }, {distinct({1, 3, 4, 4}, 2)});
    const Tensor<float> x = random_tensor({2, 2, 5, 6}, 3);
    check_gradients([](std::vector<Var>& v) { return avg_pool2d(v[0], 3, 2, 1); }, {x});
    check_gradients([](std::vector<Var>& v) { return avg_pool2d(v[0], 3, 2, 1, false); }, {x});
    check_gradients([](std::vector<Var>& v) { return avg_pool2d(v[0], 2, 1); }, {x});
    check_gradients([](std::vector<Var>& v) { return global_avg_pool(v[0]); }, {x});
}

TEST_CASE("pool: 2x2 max pool without gradients gives the general loop's values, NaN and -inf included") {
    Tensor<float> x = random_tensor({2, 3, 7, 8}, 31);  // odd height: the last row is dropped
    x[5] = std::numeric_limits<float>::quiet_NaN();
    x[9] = -std::numeric_limits<float>::infinity();
    for (int k : {16, 17, 24, 25}) x[k] = -std::numeric_limits<float>::infinity();  // a window of -inf only
    Var xv(x, true);
    const Tensor<float> general = max_pool2d(xv, 2, 2).value();  // the tape's path records argmaxes
    Tensor<float> fast;
    {
        NoGradGuard no_grad;
        fast = max_pool2d(Var(x), 2, 2).value();
    }
    REQUIRE(fast.shape() == general.shape());
    CHECK(std::isnan(fast[2]));
    CHECK(fast[4] == -std::numeric_limits<float>::infinity());
    for (std::int64_t i = 0; i < fast.numel(); ++i) {
        CAPTURE(i);
        CHECK((fast[i] == general[i] || (std::isnan(fast[i]) && std::isnan(general[i]))));
    }
}

TEST_CASE("pool: shape errors name the op") {
    Var x(Tensor<float>({1, 1, 4, 4}));
    CHECK_THROWS_WITH_AS(max_pool2d(x, 3, 1, 2), doctest::Contains("max_pool2d"), std::invalid_argument);
    CHECK_THROWS_AS(avg_pool2d(x, 5, 1), std::invalid_argument);
    CHECK_THROWS_AS(max_pool2d(Var(Tensor<float>({4, 4})), 2, 2), std::invalid_argument);
    CHECK_THROWS_AS(global_avg_pool(Var(Tensor<float>({2, 3}))), std::invalid_argument);
}

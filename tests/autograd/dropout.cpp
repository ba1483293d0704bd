#include "ironclad/autograd/dropout.hpp"

#include "../support/grad_check.hpp"

#include <doctest/doctest.h>

#include <omp.h>

using namespace ironclad;
using ironclad::testing::check_gradients;
using ironclad::testing::random_tensor;

namespace {

Tensor<float> dropped_on(int threads, const Var& x, float p, std::uint64_t seed) {
    const int previous = omp_get_max_threads();
    omp_set_num_threads(threads);
    Tensor<float> y = dropout(x, p, true, seed).value();
    omp_set_num_threads(previous);
    return y;
}

}  // namespace

TEST_CASE("dropout: identity in evaluation and at p = 0") {
    Var x(random_tensor({4, 8}, 1), true);
    CHECK(dropout(x, 0.5f, false, 3).node() == x.node());
    CHECK(dropout(x, 0.0f, true, 3).node() == x.node());
    CHECK_THROWS_AS(dropout(x, 1.5f, true, 3), std::invalid_argument);
    CHECK_THROWS_AS(dropout(x, -0.1f, true, 3), std::invalid_argument);
    const Var all_dropped = dropout(x, 1.0f, true, 3);
    for (float v : all_dropped.value()) CHECK(v == 0.0f);
}

TEST_CASE("dropout: the mask depends on the seed only, not on the thread count") {
    Var x(Tensor<float>({1 << 16}, 1.0f));  // above the parallel grain, so 2 threads really split it
    const Tensor<float> one = dropped_on(1, x, 0.3f, 99), two = dropped_on(2, x, 0.3f, 99);
    const Tensor<float> other = dropped_on(2, x, 0.3f, 100);
    std::int64_t same = 0, zeros = 0, differs = 0, scaled = 0;
    double total = 0;
    for (std::int64_t i = 0; i < x.value().numel(); ++i) {
        same += one[i] == two[i];
        differs += one[i] != other[i];
        zeros += one[i] == 0.0f;
        total += one[i];
        scaled += one[i] == 1 / 0.7f;
    }
    CHECK(same == x.value().numel());
    CHECK(zeros + scaled == x.value().numel());
    CHECK(differs > 10000);
    // Inverted dropout keeps the mean: drop rate 0.3 +- 0.01 and mean 1 +- 0.015 (each > 5 sigma).
    const double n = static_cast<double>(x.value().numel());
    CHECK(zeros / n == doctest::Approx(0.3).epsilon(0.034));
    CHECK(total / n == doctest::Approx(1.0).epsilon(0.015));
}

TEST_CASE("dropout: backward uses the forward mask") {
    check_gradients([](std::vector<Var>& v) { return dropout(v[0], 0.4f, true, 42); }, {random_tensor({3, 5, 4}, 2)});
    Var x(Tensor<float>({64}, 2.0f), true);
    Var y = dropout(x, 0.5f, true, 7);
    y.backward(Tensor<float>({64}, 1.0f));
    for (int i = 0; i < 64; ++i) CHECK(x.grad()[i] == y.value()[i] / 2.0f);
}

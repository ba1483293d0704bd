#include "ironclad/autograd/elementwise.hpp"

#include "../support/grad_check.hpp"

#include <doctest/doctest.h>

#include <omp.h>

using namespace ironclad;
using ironclad::testing::check_gradients;
using ironclad::testing::random_tensor;

TEST_CASE("elementwise: forward values") {
    Var a(Tensor<float>({2, 2}, {1, 2, 3, 4}));
    Var b(Tensor<float>({2, 2}, {0.5f, -1, 2, 0}));
    const float added[] = {1.5f, 1, 5, 4}, subtracted[] = {0.5f, 3, 1, 4}, multiplied[] = {0.5f, -2, 6, 0};
    for (int i = 0; i < 4; ++i) {
        CHECK(add(a, b).value()[i] == added[i]);
        CHECK(sub(a, b).value()[i] == subtracted[i]);
        CHECK(mul(a, b).value()[i] == multiplied[i]);
        CHECK(scale(a, -2).value()[i] == -2 * a.value()[i]);
        CHECK(add_scalar(a, 0.25f).value()[i] == a.value()[i] + 0.25f);
    }
    CHECK(sum(a).value().shape() == Shape{});
    CHECK(sum(a).value()[0] == 10);
    CHECK(mean(b).value()[0] == doctest::Approx(0.375));
    CHECK_THROWS_AS(add(a, Var(Tensor<float>({4}))), std::invalid_argument);
    CHECK_THROWS_AS(mul(a, Var(Tensor<float>({2, 3}))), std::invalid_argument);
}

TEST_CASE("elementwise: finite-difference gradients for every input") {
    const Tensor<float> a = random_tensor({2, 3, 5}, 1), b = random_tensor({2, 3, 5}, 2);
    check_gradients([](std::vector<Var>& v) { return add(v[0], v[1]); }, {a, b});
    check_gradients([](std::vector<Var>& v) { return sub(v[0], v[1]); }, {a, b});
    check_gradients([](std::vector<Var>& v) { return mul(v[0], v[1]); }, {a, b});
    check_gradients([](std::vector<Var>& v) { return scale(v[0], -1.5f); }, {a});
    check_gradients([](std::vector<Var>& v) { return add_scalar(v[0], 3.0f); }, {a});
    check_gradients([](std::vector<Var>& v) { return sum(v[0]); }, {a});
    check_gradients([](std::vector<Var>& v) { return mean(v[0]); }, {a});
    // The same Var on both sides: both contributions must accumulate.
    check_gradients([](std::vector<Var>& v) { return mul(v[0], v[0]); }, {a});
}

TEST_CASE("elementwise: a 0-d sum starts backward on its own") {
    Var x(Tensor<float>({3}, {1, 2, 3}), true);
    Var loss = mean(mul(x, x));
    loss.backward();
    CHECK(loss.value()[0] == doctest::Approx(14.0 / 3));
    for (int i = 0; i < 3; ++i) CHECK(x.grad()[i] == doctest::Approx(2.0 * (i + 1) / 3));
}

TEST_CASE("elementwise: reductions are bit-identical on 1 and 2 threads") {
    Var x(random_tensor({1 << 17}, 3), true);
    const int threads = omp_get_max_threads();
    omp_set_num_threads(1);
    const float one = sum(x).value()[0];
    omp_set_num_threads(2);
    const float two = sum(x).value()[0];
    omp_set_num_threads(threads);
    CHECK(one == two);
    double reference = 0;
    for (float v : x.value()) reference += v;
    CHECK(one == doctest::Approx(reference).epsilon(1e-6));
}

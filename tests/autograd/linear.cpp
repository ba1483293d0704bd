// linear: finite-difference gradients, PyTorch golden values, bit-identical results at 1 and 2 threads,
// gradients only where asked, shape errors.
#include "ironclad/autograd/linear.hpp"

#include "../golden/ops/linear.inc"
#include "../support/grad_check.hpp"

#include <doctest/doctest.h>

#include <cstring>
#include <string>

using namespace ironclad;
using ironclad::testing::check_gradients;
using ironclad::testing::random_tensor;

TEST_CASE("linear gradients match finite differences") {
    check_gradients([](std::vector<Var>& v) { return linear(v[0], v[1], v[2]); },
                    {random_tensor({5, 7}, 1), random_tensor({4, 7}, 2), random_tensor({4}, 3)});
    check_gradients([](std::vector<Var>& v) { return linear(v[0], v[1], Var()); },
                    {random_tensor({3, 6}, 4), random_tensor({9, 6}, 5)});
}

TEST_CASE("linear matches PyTorch") {
    for (const LinearGolden& g : linear_golden) {
        CAPTURE(g.name);
        Var x(golden_input({g.n, g.in}, 1), true), w(golden_input({g.out, g.in}, 2), true);
        Var b = g.bias ? Var(golden_input({g.out}, 3), true) : Var();
        Var y = linear(x, w, b);
        y.backward(golden_input(y.shape(), 4));
        check_golden(y.value(), g.y, "y");
        check_golden(x.grad(), g.dx, "dx");
        check_golden(w.grad(), g.dw, "dw");
        if (g.bias) check_golden(b.grad(), g.db, "db");
    }
}

TEST_CASE("linear results do not depend on the thread count") {
    // 70 rows and 40 outputs: several row blocks, the last one short, each big enough to run in parallel.
    const Tensor<float> x = random_tensor({70, 50}, 1), w = random_tensor({40, 50}, 2), b = random_tensor({40}, 3),
                        dy = random_tensor({70, 40}, 4);
    auto run = [&](int threads) {
        set_num_threads(threads);
        Var xv(x, true), wv(w, true), bv(b, true);
        Var y = linear(xv, wv, bv);
        y.backward(dy);
        return std::vector<Tensor<float>>{y.value(), xv.grad(), wv.grad(), bv.grad()};
    };
    const int threads = num_threads();
    const auto one = run(1), two = run(2);
    set_num_threads(threads);
    for (std::size_t k = 0; k < one.size(); ++k) {
        CAPTURE(k);
        CHECK(std::memcmp(one[k].data(), two[k].data(), one[k].bytes().size()) == 0);
    }
}

TEST_CASE("linear computes only the gradients that are required") {
    Var x(random_tensor({3, 4}, 1), true), w(random_tensor({2, 4}, 2), false), b(random_tensor({2}, 3), false);
    Var y = linear(x, w, b);
    y.backward(random_tensor({3, 2}, 4));
    CHECK(x.grad().defined());
    CHECK_FALSE(w.grad().defined());
    CHECK_FALSE(b.grad().defined());
    CHECK_FALSE(linear(Var(random_tensor({3, 4}, 1)), w, b).requires_grad());
}

TEST_CASE("linear rejects inconsistent shapes with a message naming them") {
    std::string what;
    try {
        linear(Var(Tensor<float>({3, 4})), Var(Tensor<float>({2, 5})), Var());
    } catch (const std::invalid_argument& e) {
        what = e.what();
    }
    CHECK(what.find("linear") != std::string::npos);
    CHECK(what.find("[3,4]") != std::string::npos);
    CHECK(what.find("[2,5]") != std::string::npos);
    CHECK_THROWS_AS(linear(Var(Tensor<float>({3, 4})), Var(Tensor<float>({2, 4})), Var(Tensor<float>({3}))),
                    std::invalid_argument);
    CHECK_THROWS_AS(linear(Var(Tensor<float>({4})), Var(Tensor<float>({2, 4})), Var()), std::invalid_argument);
}

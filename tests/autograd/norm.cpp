// batch_norm2d: finite-difference gradients in both modes, PyTorch golden values (outputs, gradients and
// running statistics), accuracy far from zero, bit-identical results at 1 and 2 threads, argument errors.
// batch_norm_act: finite differences, and bit-identical to batch norm, add and ReLU/ReLU6 in a row.
#include "ironclad/autograd/activations.hpp"
#include "ironclad/autograd/norm.hpp"

#include "../golden/ops/norm.inc"
#include "../support/grad_check.hpp"

#include <doctest/doctest.h>

#include <cmath>
#include <cstring>
#include <string>

using namespace ironclad;
using ironclad::testing::check_gradients;
using ironclad::testing::random_tensor;

TEST_CASE("batch_norm2d gradients match finite differences") {
    const Shape shape{3, 2, 3, 4};
    Tensor<float> mean = random_tensor({2}, 5, -0.5f, 0.5f), var = random_tensor({2}, 6, 0.5f, 1.5f);
    for (bool training : {true, false}) {
        CAPTURE(training);
        check_gradients(
            [&](std::vector<Var>& v) { return batch_norm2d(v[0], v[1], v[2], mean, var, training); },
            {random_tensor(shape, 1), random_tensor({2}, 2, 0.5f, 1.5f), random_tensor({2}, 3)});
    }
    Tensor<float> untracked_mean, untracked_var;
    check_gradients(
        [&](std::vector<Var>& v) { return batch_norm2d(v[0], Var(), Var(), untracked_mean, untracked_var, true); },
        {random_tensor(shape, 4)});
}

TEST_CASE("batch_norm_act gradients match finite differences") {
    const Shape shape{3, 2, 3, 4};
    const float inf = std::numeric_limits<float>::infinity();
    Tensor<float> mean = random_tensor({2}, 5, -0.5f, 0.5f), var = random_tensor({2}, 6, 0.5f, 1.5f);
    for (bool training : {true, false})
        for (float hi : {inf, 0.8f}) {
            CAPTURE(training);
            CAPTURE(hi);
            check_gradients(
                [&](std::vector<Var>& v) {
                    return batch_norm_act(v[0], v[1], v[2], mean, var, training, 0.1f, 1e-5f, &v[3], 0.0f, hi);
                },
                {random_tensor(shape, 1), random_tensor({2}, 2, 0.5f, 1.5f), random_tensor({2}, 3), random_tensor(shape, 7)});
        }
}

TEST_CASE("batch_norm_act equals batch norm, residual add and ReLU/ReLU6 in a row, bit for bit") {
    const Shape shape{4, 3, 5, 5};
    for (bool relu6_clip : {false, true})
        for (bool training : {true, false}) {
            CAPTURE(relu6_clip);
            CAPTURE(training);
            Tensor<float> mean_a = random_tensor({3}, 5, -0.5f, 0.5f), var_a = random_tensor({3}, 6, 0.5f, 1.5f);
            Tensor<float> mean_b = mean_a.clone(), var_b = var_a.clone();
            const Tensor<float> x0 = random_tensor(shape, 1, -4.0f, 4.0f), r0 = random_tensor(shape, 2, -3.0f, 3.0f);
            const Tensor<float> g0 = random_tensor({3}, 3, 0.5f, 4.0f), b0 = random_tensor({3}, 4), w = random_tensor(shape, 9);
            Var xa(x0.clone(), true), ra(r0.clone(), true), ga(g0.clone(), true), ba(b0.clone(), true);
            Var xb(x0.clone(), true), rb(r0.clone(), true), gb(g0.clone(), true), bb(b0.clone(), true);
            Var fused = batch_norm_act(xa, ga, ba, mean_a, var_a, training, 0.1f, 1e-5f, &ra, 0.0f,
                                       relu6_clip ? 6.0f : std::numeric_limits<float>::infinity());
            Var sum = add(batch_norm2d(xb, gb, bb, mean_b, var_b, training), rb);
            Var plain = relu6_clip ? relu6(sum) : relu(sum);
            fused.backward(w);
            plain.backward(w);
            auto same = [](const Tensor<float>& a, const Tensor<float>& b) {
                return a.shape() == b.shape() && std::memcmp(a.data(), b.data(), sizeof(float) * static_cast<std::size_t>(a.numel())) == 0;
            };
            CHECK(same(fused.value(), plain.value()));
            CHECK(same(xa.grad(), xb.grad()));
            CHECK(same(ra.grad(), rb.grad()));
            CHECK(same(ga.grad(), gb.grad()));
            CHECK(same(ba.grad(), bb.grad()));
            CHECK(same(mean_a, mean_b));
            CHECK(same(var_a, var_b));
            // Both clips are active somewhere, so the masks are exercised.
            int low = 0, high = 0;
            for (float v : fused.value()) {
                low += v == 0.0f;
                high += v == 6.0f;
            }
            CHECK(low > 0);
            if (relu6_clip) CHECK(high > 0);
        }
}

TEST_CASE("batch_norm2d matches PyTorch") {
    for (const NormGolden& g : norm_golden) {
        CAPTURE(g.name);
        const Tensor<float> r = golden_input({g.c}, 2);
        Tensor<float> gamma({g.c}), mean({g.c}), var({g.c});
        const Tensor<float> seed5 = golden_input({g.c}, 5), seed6 = golden_input({g.c}, 6);
        for (int c = 0; c < g.c; ++c) {
            gamma[c] = 1.0f + 0.5f * r[c];
            mean[c] = 0.1f * seed5[c];
            var[c] = 1.0f + 0.5f * seed6[c];
        }
        Var x(golden_input({g.n, g.c, g.h, g.w}, 1), true), gv(gamma, true), bv(golden_input({g.c}, 3), true);
        Var y = batch_norm2d(x, gv, bv, mean, var, g.training);
        y.backward(golden_input(y.shape(), 4));
        check_golden(y.value(), g.y, "y");
        check_golden(x.grad(), g.dx, "dx");
        check_golden(gv.grad(), g.dgamma, "dgamma");
        check_golden(bv.grad(), g.dbeta, "dbeta");
        check_golden(mean, g.running_mean, "running_mean");
        check_golden(var, g.running_var, "running_var");
    }
}

TEST_CASE("batch_norm2d statistics stay accurate far from zero") {
    // Channel values 1000 + U(-1, 1): a naive float sum of squares would lose the variance to cancellation.
    Tensor<float> x = random_tensor({4, 1, 16, 16}, 1);
    for (auto& v : x) v += 1000.0f;
    double sum = 0, sq = 0;
    for (float v : x) sum += v;
    const double mean = sum / double(x.numel());
    for (float v : x) sq += (v - mean) * (v - mean);
    const double var = sq / double(x.numel());
    Tensor<float> running_mean({1}), running_var({1}, 1.0f);
    NoGradGuard no_grad;
    const Tensor<float> y = batch_norm2d(Var(x), Var(), Var(), running_mean, running_var, true).value();
    double worst = 0;
    for (std::int64_t i = 0; i < x.numel(); ++i)
        worst = std::max(worst, std::abs(y[i] - (x[i] - mean) / std::sqrt(var + 1e-5)));
    CHECK(worst < 2e-3);  // float inputs near 1000 carry 6e-5 absolute error; / std ~0.58
    CHECK(running_mean[0] == doctest::Approx(0.1 * mean).epsilon(1e-6));
    CHECK(running_var[0] == doctest::Approx(0.9 + 0.1 * var * x.numel() / (x.numel() - 1)).epsilon(1e-4));
}

TEST_CASE("batch_norm2d results do not depend on the thread count") {
    // Large enough that every loop goes parallel.
    const Shape shape{32, 6, 24, 24};
    const Tensor<float> x = random_tensor(shape, 1), gamma = random_tensor({6}, 2), beta = random_tensor({6}, 3),
                        dy = random_tensor(shape, 4);
    auto run = [&](int threads, bool training) {
        set_num_threads(threads);
        Tensor<float> mean({6}), var({6}, 1.0f);
        Var xv(x, true), gv(gamma, true), bv(beta, true);
        Var y = batch_norm2d(xv, gv, bv, mean, var, training);
        y.backward(dy);
        return std::vector<Tensor<float>>{y.value(), xv.grad(), gv.grad(), bv.grad(), mean, var};
    };
    const int threads = num_threads();
    for (bool training : {true, false}) {
        CAPTURE(training);
        const auto one = run(1, training), two = run(2, training);
        for (std::size_t k = 0; k < one.size(); ++k) {
            CAPTURE(k);
            CHECK(std::memcmp(one[k].data(), two[k].data(), one[k].bytes().size()) == 0);
        }
    }
    set_num_threads(threads);
}

TEST_CASE("batch_norm2d rejects bad arguments with a message naming them") {
    Tensor<float> mean({3}), var({3}, 1.0f), none;
    const Var x(Tensor<float>({2, 3, 4, 4})), g(Tensor<float>({3}, 1.0f)), b(Tensor<float>({3}));
    std::string what;
    try {
        batch_norm2d(x, Var(Tensor<float>({4})), Var(Tensor<float>({4})), mean, var, true);
    } catch (const std::invalid_argument& e) {
        what = e.what();
    }
    CHECK(what.find("batch_norm2d") != std::string::npos);
    CHECK(what.find("[2,3,4,4]") != std::string::npos);
    CHECK(what.find("[4]") != std::string::npos);
    CHECK_THROWS_AS(batch_norm2d(Var(Tensor<float>({2, 3})), g, b, mean, var, true), std::invalid_argument);
    CHECK_THROWS_AS(batch_norm2d(x, g, Var(), mean, var, true), std::invalid_argument);
    CHECK_THROWS_AS(batch_norm2d(x, g, b, none, none, false), std::invalid_argument);
    CHECK_THROWS_AS(batch_norm2d(Var(Tensor<float>({1, 3, 1, 1})), g, b, mean, var, true), std::invalid_argument);
    CHECK_NOTHROW(batch_norm2d(Var(Tensor<float>({1, 3, 1, 1})), g, b, mean, var, false));
}

TEST_CASE("batch_norm_act adds into gradients already there, and with the input as its own residual") {
    // x feeds the batch norm twice (as input and residual) and a second use through add: every gradient buffer
    // receives more than one contribution, which the fused op must add rather than overwrite.
    const Shape shape{3, 2, 4, 4};
    const Tensor<float> x0 = random_tensor(shape, 11, -3.0f, 3.0f), g0 = random_tensor({2}, 12, 0.5f, 2.0f);
    const Tensor<float> b0 = random_tensor({2}, 13), w = random_tensor(shape, 14);
    auto run = [&](bool fused) {
        Tensor<float> mean({2}), var({2}, 1.0f);
        Var x(x0.clone(), true), g(g0.clone(), true), b(b0.clone(), true);
        Var y = fused ? batch_norm_act(x, g, b, mean, var, true, 0.1f, 1e-5f, &x, 0.0f,
                                       std::numeric_limits<float>::infinity())
                      : relu(add(batch_norm2d(x, g, b, mean, var, true), x));
        add(y, x).backward(w);
        return x.grad().clone();
    };
    const Tensor<float> a = run(true), b = run(false);
    REQUIRE(a.shape() == b.shape());
    CHECK(std::memcmp(a.data(), b.data(), sizeof(float) * static_cast<std::size_t>(a.numel())) == 0);
}

#include "ironclad/autograd/shape_ops.hpp"

#include "../support/grad_check.hpp"

#include <doctest/doctest.h>

#include <numeric>

using namespace ironclad;
using ironclad::testing::check_gradients;
using ironclad::testing::iota;
using ironclad::testing::random_tensor;

namespace {

}  // namespace

TEST_CASE("shape_ops: flatten and reshape are views, forward and backward") {
    Var x(iota({2, 3, 4, 5}), true);
    Var y = flatten(x);
    CHECK(y.shape() == Shape{2, 60});
    CHECK(y.value().same_storage(x.value()));
    y.value()[7] = -1;
    CHECK(x.value()[7] == -1);
    y.backward(iota({2, 60}));
    CHECK(x.grad().shape() == x.shape());
    CHECK(x.grad()[119] == 119);
    CHECK(reshape(x, {4, -1, 5}).shape() == Shape{4, 6, 5});
    CHECK_THROWS_WITH_AS(reshape(x, {7, -1}), doctest::Contains("reshape"), std::invalid_argument);
    check_gradients([](std::vector<Var>& v) { return flatten(v[0]); }, {random_tensor({2, 3, 2}, 1)});
    check_gradients([](std::vector<Var>& v) { return reshape(v[0], {3, 4}); }, {random_tensor({2, 3, 2}, 2)});
}

TEST_CASE("shape_ops: concat and split along channels") {
    Var a(Tensor<float>({2, 1, 2}, {1, 2, 3, 4}));
    Var b(Tensor<float>({2, 2, 2}, {5, 6, 7, 8, 9, 10, 11, 12}));
    Var c = concat_channels({a, b});
    CHECK(c.shape() == Shape{2, 3, 2});
    const float joined[] = {1, 2, 5, 6, 7, 8, 3, 4, 9, 10, 11, 12};
    for (int i = 0; i < 12; ++i) CHECK(c.value()[i] == joined[i]);
    CHECK_THROWS_AS(concat_channels({a, Var(Tensor<float>({2, 1, 3}))}), std::invalid_argument);
    CHECK_THROWS_AS(concat_channels({a, Var(Tensor<float>({3, 1, 2}))}), std::invalid_argument);

    auto parts = split_channels(c, {2, 1});
    REQUIRE(parts.size() == 2);
    CHECK(parts[0].shape() == Shape{2, 2, 2});
    const float first[] = {1, 2, 5, 6, 3, 4, 9, 10}, second[] = {7, 8, 11, 12};
    for (int i = 0; i < 8; ++i) CHECK(parts[0].value()[i] == first[i]);
    for (int i = 0; i < 4; ++i) CHECK(parts[1].value()[i] == second[i]);
    CHECK_THROWS_WITH_AS(split_channels(c, {2, 2}), doctest::Contains("split_channels"), std::invalid_argument);

    // Each part is its own node: back-propagating one part reaches only its channels.
    Var x(iota({2, 3, 2}), true);
    auto xs = split_channels(x, {1, 2});
    xs[1].backward(Tensor<float>({2, 2, 2}, 1.0f));
    const float reached[] = {0, 0, 1, 1, 1, 1, 0, 0, 1, 1, 1, 1};
    for (int i = 0; i < 12; ++i) CHECK(x.grad()[i] == reached[i]);
}

TEST_CASE("shape_ops: concat / split finite-difference gradients for every input") {
    check_gradients([](std::vector<Var>& v) { return concat_channels(v); },
                    {random_tensor({2, 1, 3, 2}, 1), random_tensor({2, 3, 3, 2}, 2), random_tensor({2, 2, 3, 2}, 3)});
    // Recombining the parts in another order exercises every part's backward.
    check_gradients(
        [](std::vector<Var>& v) {
            auto p = split_channels(v[0], {2, 1, 3});
            return concat_channels({p[2], p[0], p[1]});
        },
        {random_tensor({2, 6, 2, 2}, 4)});
    // Only one input needs a gradient.
    Var a(random_tensor({1, 2, 2}, 5), true), b(random_tensor({1, 1, 2}, 6), false);
    concat_channels({a, b}).backward(Tensor<float>({1, 3, 2}, 1.0f));
    CHECK(a.grad()[3] == 1.0f);
    CHECK_FALSE(b.grad().defined());
}

TEST_CASE("shape_ops: channel_shuffle is view -> transpose(1,2) -> view") {
    Var x(iota({1, 6, 1, 1}));
    const float two_groups[] = {0, 3, 1, 4, 2, 5}, three_groups[] = {0, 2, 4, 1, 3, 5};
    for (int i = 0; i < 6; ++i) {
        CHECK(channel_shuffle(x, 2).value()[i] == two_groups[i]);
        CHECK(channel_shuffle(x, 3).value()[i] == three_groups[i]);
    }
    // Whole planes move: sample 1, output channel 1 is input channel 2 for 2 groups of 2.
    Var y = channel_shuffle(Var(iota({2, 4, 2, 2})), 2);
    for (int i = 0; i < 4; ++i) CHECK(y.value().at({1, 1, i / 2, i % 2}) == 16 + 2 * 4 + i);
    CHECK_THROWS_AS(channel_shuffle(x, 4), std::invalid_argument);
    check_gradients([](std::vector<Var>& v) { return channel_shuffle(v[0], 3); }, {random_tensor({2, 6, 2, 3}, 7)});
}

TEST_CASE("shape_ops: shortcut option A subsamples and zero-pads channels") {
    Var x(iota({2, 4, 5, 5}));
    Var y = shortcut_option_a(x, 8, 2);  // planes // 4 = 2 zero channels on each side
    CHECK(y.shape() == Shape{2, 8, 3, 3});
    for (std::int64_t n = 0; n < 2; ++n)
        for (std::int64_t c = 0; c < 8; ++c)
            for (std::int64_t i = 0; i < 3; ++i)
                for (std::int64_t j = 0; j < 3; ++j) {
                    const float want = (c < 2 || c >= 6) ? 0.0f : x.value().at({n, c - 2, 2 * i, 2 * j});
                    CHECK(y.value().at({n, c, i, j}) == want);
                }
    CHECK(shortcut_option_a(Var(iota({1, 16, 32, 32})), 32, 2).shape() == Shape{1, 32, 16, 16});
    CHECK(shortcut_option_a(x, 4, 1).value()[37] == 37);
    CHECK_THROWS_AS(shortcut_option_a(x, 7, 2), std::invalid_argument);
    CHECK_THROWS_AS(shortcut_option_a(x, 2, 2), std::invalid_argument);
    check_gradients([](std::vector<Var>& v) { return shortcut_option_a(v[0], 6, 2); },
                    {random_tensor({2, 2, 5, 4}, 8)});
}

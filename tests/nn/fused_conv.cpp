#include "ironclad/nn/fused_conv.hpp"

#include "ironclad/core/random.hpp"
#include "support/grad_check.hpp"

#include <doctest/doctest.h>

#include <cmath>
#include <limits>

using namespace ironclad;

namespace {

Tensor<float> random_tensor(const Shape& shape, std::uint64_t seed, float scale = 1.0f) {
    Tensor<float> t(shape);
    Rng rng = Rng::stream(seed, 0);
    for (auto& v : t) v = scale * static_cast<float>(rng.normal());
    return t;
}

// A batch norm in eval mode with non-trivial statistics and affine parameters.
std::shared_ptr<BatchNorm2d> trained_bn(std::int64_t channels, std::uint64_t seed) {
    auto bn = std::make_shared<BatchNorm2d>(channels);
    Rng rng = Rng::stream(seed, 1);
    for (std::int64_t c = 0; c < channels; ++c) {
        bn->weight().value()[c] = 0.5f + static_cast<float>(rng.uniform());
        bn->bias().value()[c] = static_cast<float>(rng.normal()) * 0.3f;
        bn->running_mean()[c] = static_cast<float>(rng.normal()) * 0.2f;
        bn->running_var()[c] = 0.2f + static_cast<float>(rng.uniform());
    }
    bn->eval();
    return bn;
}

// The modules one by one (gradients on, so nothing fuses).
Var unfused(const Var& x, Conv2d& conv, BatchNorm2d& bn, ActivationSlot* act, const Var* residual) {
    Var y = bn(conv(x));
    if (residual) y = add(y, *residual);
    return act ? (*act)(y) : y;
}

void check_close(const Tensor<float>& a, const Tensor<float>& b, float tol) {
    REQUIRE(a.shape() == b.shape());
    for (std::int64_t i = 0; i < a.numel(); ++i) REQUIRE(a[i] == doctest::Approx(b[i]).epsilon(tol).scale(1.0));
}

}  // namespace

TEST_CASE("conv_bn_act: fused inference equals conv, batch norm, residual and activation run one by one") {
    struct Case {
        Conv2dSpec spec;
        bool residual;
        int act;  // 0 none, 1 relu, 2 relu6
    };
    const Case cases[] = {
        {{16, 16, 3, 1, 1}, false, 1},          {{16, 16, 3, 1, 1}, true, 1},
        {{8, 16, 3, 2, 1}, false, 0},           {{16, 32, 1, 1, 0, 1, true}, true, 2},
        {{12, 12, 3, 2, 1, 12}, false, 2},      {{12, 24, 3, 1, 1, 3}, false, 1},
        {{3, 20, 3, 1, 1, 1, true}, true, 0},
    };
    int k = 0;
    for (const Case& c : cases) {
        CAPTURE(k);
        Rng rng = Rng::stream(7, static_cast<std::uint64_t>(k++));
        Conv2d conv(c.spec, rng);
        if (c.spec.bias)
            for (auto& b : conv.bias().value()) b = static_cast<float>(rng.normal()) * 0.1f;
        auto bn = trained_bn(c.spec.out_channels, k);
        auto act = c.act == 0 ? nullptr : c.act == 1 ? relu_slot() : relu6_slot();
        const Tensor<float> xt = random_tensor({3, c.spec.in_channels, 11, 11}, k, 2.0f);
        const std::int64_t ho = (11 + 2 * c.spec.padding - c.spec.kernel) / c.spec.stride + 1;
        const Var skip(random_tensor({3, c.spec.out_channels, ho, ho}, k + 100));
        const Var* residual = c.residual ? &skip : nullptr;
        const Tensor<float> reference = unfused(Var(xt), conv, *bn, act.get(), residual).value();
        NoGradGuard no_grad;
        REQUIRE(can_fuse_conv_bn(conv, *bn));
        const Tensor<float> fused = conv_bn_act(Var(xt), conv, *bn, act.get(), residual).value();
        check_close(fused, reference, 2e-5f);
        if (c.act == 2) {  // the clamp really happened on both sides
            bool saturated = false;
            for (float v : fused) saturated |= v == 6.0f;
            CHECK(saturated);
        }
    }
}

TEST_CASE("conv_bn_act: NaN and Inf from a flipped weight stay visible, as unfused") {
    Rng rng = Rng::stream(3, 0);
    Conv2d conv({4, 4, 3, 1, 1}, rng);
    auto bn = trained_bn(4, 3);
    auto act = relu_slot();
    const Tensor<float> xt = random_tensor({2, 4, 6, 6}, 5);
    conv.weight().value()[0] = std::numeric_limits<float>::quiet_NaN();   // output channel 0
    conv.weight().value()[36] = std::numeric_limits<float>::infinity();   // output channel 1
    const Tensor<float> reference = unfused(Var(xt), conv, *bn, act.get(), nullptr).value();
    NoGradGuard no_grad;
    const Tensor<float> fused = conv_bn_act(Var(xt), conv, *bn, act.get()).value();
    int nan = 0, inf = 0;
    for (std::int64_t i = 0; i < fused.numel(); ++i) {
        REQUIRE(std::isnan(fused[i]) == std::isnan(reference[i]));
        REQUIRE(std::isinf(fused[i]) == std::isinf(reference[i]));
        nan += std::isnan(fused[i]);
        inf += std::isinf(fused[i]);
    }
    CHECK(nan > 0);
    CHECK(inf > 0);
}

TEST_CASE("conv_bn_act: folding follows the stored parameters on every call") {
    Rng rng = Rng::stream(4, 0);
    Conv2d conv({4, 6, 3, 1, 1}, rng);
    auto bn = trained_bn(6, 4);
    const Tensor<float> xt = random_tensor({2, 4, 5, 5}, 6);
    NoGradGuard no_grad;
    const Tensor<float> before = conv_bn_act(Var(xt), conv, *bn).value();
    conv.weight().value()[5] *= -8.0f;      // a weight fault
    bn->running_var()[3] = 1e-4f;           // a batch-norm fault
    const Tensor<float> after = conv_bn_act(Var(xt), conv, *bn).value();
    const Tensor<float> reference = (*bn)(conv(Var(xt))).value();  // hooks-free modules one by one
    check_close(after, reference, 2e-5f);
    bool changed = false;
    for (std::int64_t i = 0; i < after.numel(); ++i) changed |= after[i] != before[i];
    CHECK(changed);
}

TEST_CASE("conv_bn_act: an output hook or training mode runs the modules unfused") {
    Rng rng = Rng::stream(5, 0);
    Conv2d conv({4, 4, 3, 1, 1}, rng);
    auto bn = trained_bn(4, 5);
    auto act = relu_slot();
    const Tensor<float> xt = random_tensor({2, 4, 5, 5}, 8);
    NoGradGuard no_grad;
    Tensor<float> seen;
    conv.set_output_hook([&](Tensor<float>& y) { seen = y; });
    CHECK_FALSE(can_fuse_conv_bn(conv, *bn));
    const Tensor<float> hooked = conv_bn_act(Var(xt), conv, *bn, act.get()).value();
    const Tensor<float> raw_conv = conv2d(Var(xt), conv.weight(), Var(), {1, 1, 1}).value();
    REQUIRE(seen.shape() == raw_conv.shape());
    for (std::int64_t i = 0; i < seen.numel(); ++i) REQUIRE(seen[i] == raw_conv[i]);  // the conv's own output
    const Tensor<float> chained = (*act)((*bn)(Var(raw_conv))).value();
    for (std::int64_t i = 0; i < hooked.numel(); ++i) REQUIRE(hooked[i] == chained[i]);
    conv.set_output_hook(nullptr);

    // An activation hook keeps conv+BN fused but must see the activation's input and output.
    int activation_calls = 0;
    act->set_output_hook([&](Tensor<float>& y) {
        ++activation_calls;
        for (float v : y) REQUIRE(!(v < 0.0f));
    });
    conv_bn_act(Var(xt), conv, *bn, act.get());
    CHECK(activation_calls == 1);
    act->set_output_hook(nullptr);

    bn->train();
    CHECK_FALSE(can_fuse_conv_bn(conv, *bn));
    const float mean_before = bn->running_mean()[0];
    conv_bn_act(Var(xt), conv, *bn, act.get());
    CHECK(bn->running_mean()[0] != mean_before);  // training-mode batch norm ran and updated its statistics
}

TEST_CASE("forward_fused: a nested sequence equals its forward, hooks and non-fusable parts included") {
    Rng rng = Rng::stream(9, 0);
    auto inner = std::make_shared<Sequential>();
    auto conv_a = inner->add(std::make_shared<Conv2d>(Conv2dSpec{3, 8, 3, 1, 1}, rng));
    auto bn_a = inner->add(trained_bn(8, 1));
    inner->add(relu6_slot());
    Sequential seq;
    seq.add(inner);
    auto conv_b = seq.add(std::make_shared<Conv2d>(Conv2dSpec{8, 8, 3, 2, 1, 8}, rng));
    seq.add(trained_bn(8, 2));
    seq.add(std::make_shared<Conv2d>(Conv2dSpec{8, 5, 1, 1, 0}, rng));  // a conv without batch norm
    seq.add(relu_slot());
    seq.eval();
    const Tensor<float> xt = random_tensor({2, 3, 9, 9}, 10);
    const Tensor<float> reference = seq(Var(xt)).value();  // gradients on: unfused
    NoGradGuard no_grad;
    check_close(forward_fused(seq, Var(xt)).value(), reference, 2e-5f);
    int calls = 0;
    inner->set_output_hook([&](Tensor<float>&) { ++calls; });
    check_close(forward_fused(seq, Var(xt)).value(), reference, 2e-5f);
    CHECK(calls == 1);
}

TEST_CASE("conv_bn_act on a frozen model with gradients on: the input and residual gradients of the ops one by one") {
    for (int act_kind : {0, 1, 2}) {
        CAPTURE(act_kind);
        Rng rng = Rng::stream(21, static_cast<std::uint64_t>(act_kind));
        Conv2d conv({6, 8, 3, act_kind == 1 ? 2 : 1, 1}, rng);
        auto bn = trained_bn(8, 21);
        auto act = act_kind == 0 ? nullptr : act_kind == 1 ? relu_slot() : relu6_slot();
        const Tensor<float> xt = random_tensor({2, 6, 7, 7}, 22, 3.0f);
        const std::int64_t ho = act_kind == 1 ? 4 : 7;
        const Tensor<float> rt = random_tensor({2, 8, ho, ho}, 23);
        const Tensor<float> upstream = random_tensor({2, 8, ho, ho}, 24);
        auto grads = [&](bool frozen) {
            for (Var* p : {&conv.weight(), &bn->weight(), &bn->bias()}) p->set_requires_grad(!frozen);
            Var x(xt.clone(), true), r(rt.clone(), true);
            CHECK(can_fuse_conv_bn(conv, *bn) == frozen);
            Var y = conv_bn_act(x, conv, *bn, act.get(), &r);
            y.backward(upstream);
            return std::make_pair(x.grad().clone(), r.grad().clone());
        };
        const auto [dx_fused, dr_fused] = grads(true);
        const auto [dx_ref, dr_ref] = grads(false);
        check_close(dx_fused, dx_ref, 1e-4f);
        check_close(dr_fused, dr_ref, 1e-4f);
        for (Var* p : {&conv.weight(), &bn->weight(), &bn->bias()}) p->set_requires_grad(true);
    }
}

TEST_CASE("conv_bn_act on a frozen model: finite differences") {
    Rng rng = Rng::stream(31, 0);
    Conv2d conv({3, 4, 3, 1, 1}, rng);
    auto bn = trained_bn(4, 31);
    for (Var* p : {&conv.weight(), &bn->weight(), &bn->bias()}) p->set_requires_grad(false);
    ironclad::testing::check_gradients(
        [&](std::vector<Var>& v) {
            REQUIRE(can_fuse_conv_bn(conv, *bn));
            return conv_bn_act(v[0], conv, *bn, nullptr, &v[1]);
        },
        {random_tensor({2, 3, 5, 5}, 32), random_tensor({2, 4, 5, 5}, 33)});
}

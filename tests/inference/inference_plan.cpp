#include "ironclad/inference/inference_plan.hpp"

#include "ironclad/core/parallel.hpp"
#include "ironclad/models/registry.hpp"
#include "support/grad_check.hpp"

#include <doctest/doctest.h>

#include <cmath>
#include <limits>

using namespace ironclad;
using ironclad::testing::random_tensor;

namespace {

// A model with batch-norm statistics from a few training-mode passes, then in eval mode.
std::shared_ptr<Module> calibrated(const std::string& name, const Tensor<float>& x) {
    ModelConfig cfg;
    cfg.seed = 3;
    auto model = build_model(name, cfg);
    NoGradGuard no_grad;
    model->train();
    (*model)(Var(x));
    model->eval();
    return model;
}

void require_identical(const Tensor<float>& a, const Tensor<float>& b) {
    REQUIRE(a.shape() == b.shape());
    for (std::int64_t i = 0; i < a.numel(); ++i) {
        if (std::isnan(a[i]) && std::isnan(b[i])) continue;
        REQUIRE(a[i] == b[i]);
    }
}

}  // namespace

TEST_CASE("inference plan: bit for bit the model's forward for every architecture, at 1 and 2 threads") {
    const Tensor<float> x = random_tensor({5, 3, 32, 32}, 11, 0.0f, 1.0f);
    for (const auto& info : model_registry()) {
        CAPTURE(info.name);
        auto model = calibrated(info.name, x);
        Tensor<float> reference;
        {
            NoGradGuard no_grad;
            reference = (*model)(Var(x)).value();
        }
        InferencePlan plan(*model, {3, 32, 32});
        if (!info.name.starts_with("shufflenet")) CHECK(plan.trunk_stages() > 0);
        for (int threads : {1, 2}) {
            set_num_threads(threads);
            require_identical(plan.forward(x), reference);
        }
    }
    set_num_threads(2);
}

TEST_CASE("inference plan: restarts at every stage as run_stages does") {
    const Tensor<float> x = random_tensor({3, 3, 32, 32}, 12, 0.0f, 1.0f);
    for (const char* name : {"resnet20", "mobilenetv2_x0_5"}) {
        CAPTURE(name);
        auto model = calibrated(name, x);
        const auto stages = flatten_stages(*model);
        InferencePlan plan(*model, {3, 32, 32});
        NoGradGuard no_grad;
        Var input(x);
        const Tensor<float> reference = run_stages(stages, 0, input).value();
        for (std::size_t s = 0; s < stages.size(); ++s) {
            CAPTURE(s);
            require_identical(plan.run(s, input.value()), reference);
            input = (*stages[s])(input);
        }
    }
}

TEST_CASE("inference plan: weights changed in place and hooks set later take effect") {
    const Tensor<float> x = random_tensor({4, 3, 32, 32}, 13, 0.0f, 1.0f);
    auto model = calibrated("resnet20", x);
    InferencePlan plan(*model, {3, 32, 32});
    const Tensor<float> clean = plan.forward(x);
    Var w = model->named_parameters()[6].second;  // layer1.0.conv2.weight (a handle on the model's parameter)
    const float saved = w.value()[17];
    w.value()[17] = std::numeric_limits<float>::infinity();
    Tensor<float> reference;
    {
        NoGradGuard no_grad;
        reference = (*model)(Var(x)).value();
    }
    const Tensor<float> faulted = plan.forward(x);
    require_identical(faulted, reference);
    bool changed = false;
    for (std::int64_t i = 0; i < clean.numel(); ++i) changed |= !(faulted[i] == clean[i]);
    CHECK(changed);
    w.value()[17] = saved;
    require_identical(plan.forward(x), clean);

    // An activation hook installed after the plan was built runs, and the result follows it.
    Module* block = nullptr;
    for (auto& [name, m] : model->named_modules())
        if (name == "layer2.1.conv1") block = m;
    REQUIRE(block);
    int calls = 0;
    block->set_output_hook([&](Tensor<float>& y) {
        ++calls;
        y[0] += 100.0f;
    });
    {
        NoGradGuard no_grad;
        reference = (*model)(Var(x)).value();
    }
    const int calls_forward = calls;
    require_identical(plan.forward(x), reference);
    CHECK(calls == 2 * calls_forward);
    block->set_output_hook({});
}

TEST_CASE("inference plan: wide stages stay batched; bad use is refused") {
    const Tensor<float> x = random_tensor({2, 3, 32, 32}, 14, 0.0f, 1.0f);
    auto vgg = calibrated("vgg11_bn", x);
    InferencePlan narrow(*vgg, {3, 32, 32}, 64 << 10);
    InferencePlan wide(*vgg, {3, 32, 32}, std::int64_t{1} << 30);
    CHECK(narrow.trunk_stages() < wide.trunk_stages());
    require_identical(narrow.forward(x), wide.forward(x));
    CHECK_THROWS_AS(narrow.forward(random_tensor({2, 1, 32, 32}, 1)), std::invalid_argument);
    CHECK_THROWS_AS(InferencePlan(*vgg, {3, 32}), std::invalid_argument);
    vgg->train();
    CHECK_THROWS_AS(InferencePlan(*vgg, {3, 32, 32}), std::invalid_argument);
    CHECK_THROWS_AS(narrow.forward(x), std::logic_error);
}

TEST_CASE("evaluate_planned gives evaluate's result") {
    Dataset data;
    data.images = Tensor<std::uint8_t>({20, 3, 32, 32});
    Rng rng = Rng::stream(5, 0);
    for (auto& v : data.images) v = static_cast<std::uint8_t>(rng.next_u64() & 255);
    for (int i = 0; i < 20; ++i) data.labels.push_back(i % 10);
    data.num_classes = 10;
    auto model = calibrated("resnet20", random_tensor({4, 3, 32, 32}, 15, 0.0f, 1.0f));
    LoaderOptions opt;
    opt.batch_size = 8;
    const EvalResult a = evaluate(*model, data, opt);
    const EvalResult b = evaluate_planned(*model, data, opt);
    CHECK(a.images == 20);
    CHECK(a.top1 == b.top1);
    CHECK(a.top5 == b.top5);
    CHECK(a.loss == b.loss);
}

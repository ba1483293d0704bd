// Ranger: bounds against maxima and batch means worked out by hand on a tiny network, the per-neuron maxima
// over several batches (where the reference toolbox's reduction goes wrong), channel granularity, and the
// granularity plans.
#include "ironclad/bounds/ranger.hpp"
#include "ironclad/nn/conv2d.hpp"
#include "ironclad/nn/linear.hpp"
#include "ironclad/nn/sequential.hpp"

#include "support/grad_check.hpp"

#include <doctest/doctest.h>

using namespace ironclad;

namespace {

// Linear(2->3) -> relu -> Linear(3->2) -> relu, with hand-set weights:
//   W1 = [[1,0],[0,1],[1,1]], b1 = [0,0,-1];  W2 = [[1,-1,0],[0,1,1]], b2 = [0,0].
std::shared_ptr<Sequential> tiny_network() {
    Rng rng(0);
    auto net = std::make_shared<Sequential>();
    auto fc1 = net->add("fc1", std::make_shared<Linear>(2, 3, rng));
    net->add("relu1", relu_slot());
    auto fc2 = net->add("fc2", std::make_shared<Linear>(3, 2, rng));
    net->add("relu2", relu_slot());
    fc1->weight().value().copy_from(Tensor<float>({3, 2}, {1, 0, 0, 1, 1, 1}));
    fc1->bias().value().copy_from(Tensor<float>({3}, {0, 0, -1}));
    fc2->weight().value().copy_from(Tensor<float>({2, 3}, {1, -1, 0, 0, 1, 1}));
    fc2->bias().value().copy_from(Tensor<float>({2}, {0, 0}));
    return net;
}

// Inputs (1,2), (3,-1) | (-2,0.5), (0.5,0.5) in two batches. By hand:
//   relu1 outputs [1,2,2], [3,0,1] | [0,0.5,0], [0.5,0.5,0]
//   relu2 outputs [0,4],   [3,1]   | [0,0.5],   [0,0.5]
EvalSet tiny_calibration() {
    EvalSet set;
    set.batches = {Tensor<float>({2, 2}, {1, 2, 3, -1}), Tensor<float>({2, 2}, {-2, 0.5f, 0.5f, 0.5f})};
    set.labels = {0, 1, 0, 1};
    return set;
}

void check_values(const Tensor<float>& t, std::initializer_list<float> want) {
    REQUIRE(t.numel() == static_cast<std::int64_t>(want.size()));
    std::int64_t i = 0;
    for (float w : want) CHECK(t[i++] == doctest::Approx(w));
}

}  // namespace

TEST_CASE("ranger: layer and neuron bounds of a tiny network equal the hand-computed maxima") {
    auto net = tiny_network();
    const EvalSet calib = tiny_calibration();
    const auto neuron = activation_ranges(*net, calib, granularity_plan(2, "neuron"));
    check_values(neuron[0].max, {3, 2, 2});
    check_values(neuron[1].max, {3, 4});
    // batch means per neuron: relu1 [2,1,1.5] then [0.25,0.5,0]; relu2 [1.5,2.5] then [0,0.5]
    check_values(neuron[0].min_batch_mean, {0.25f, 0.5f, 0});
    check_values(neuron[1].min_batch_mean, {0, 0.5f});

    const auto layer = activation_ranges(*net, calib, granularity_plan(2, "layer"));
    check_values(layer[0].max, {3});
    check_values(layer[1].max, {4});
    // layer batch means: relu1 9/6 then 1.5/6; relu2 8/4 then 1/4
    check_values(layer[0].min_batch_mean, {0.25f});
    check_values(layer[1].min_batch_mean, {0.25f});

    // Installed as zero-mode bounds, nothing on the calibration set reaches above them: outputs are unchanged.
    NoGradGuard no_grad;
    net->eval();
    const Tensor<float> before = (*net)(Var(calib.batches[0])).value().clone();
    install_bounds(*net, ranger_bounds(*net, calib, granularity_plan(2, "hybrid"), BoundMode::zero));
    const auto installed = bounded_slots(*net);
    REQUIRE(installed.size() == 2);
    CHECK(installed[0].slot == "relu1");
    CHECK(installed[0].granularity == BoundGranularity::layer);
    CHECK(installed[1].granularity == BoundGranularity::neuron);
    check_values(installed[1].bound, {3, 4});
    const Tensor<float> after = (*net)(Var(calib.batches[0])).value();
    for (std::int64_t i = 0; i < before.numel(); ++i) CHECK(after[i] == before[i]);
    // An input beyond the calibration range is cut: (10, 0) gives relu1 [10,0,9] > 3 -> zeros -> relu2 [0,0].
    check_values((*net)(Var(Tensor<float>({1, 2}, {10, 0}))).value(), {0, 0});
}

TEST_CASE("ranger: per-(c,h,w) maxima over many batches, and channel maxima") {
    // A 1x1 identity convolution followed by a ReLU slot: the slot's output is relu(input).
    Rng rng(0);
    auto net = std::make_shared<Sequential>();
    auto conv = net->add("conv", std::make_shared<Conv2d>(Conv2dSpec{2, 2, 1, 1, 0}, rng));
    net->add("relu", relu_slot());
    conv->weight().value().copy_from(Tensor<float>({2, 2, 1, 1}, {1, 0, 0, 1}));
    EvalSet calib;
    for (std::uint32_t b = 0; b < 4; ++b)  // the toolbox's bug starts at the third batch
        calib.batches.push_back(testing::random_tensor({3, 2, 2, 3}, 100 + b, -1.0f, 2.0f));
    calib.labels.assign(12, 0);
    Tensor<float> want_neuron({2, 2, 3}), want_channel({2});
    for (const auto& batch : calib.batches)
        for (std::int64_t n = 0; n < 3; ++n)
            for (std::int64_t p = 0; p < 12; ++p) {
                const float v = std::max(batch[n * 12 + p], 0.0f);
                want_neuron[p] = std::max(want_neuron[p], v);
                want_channel[p / 6] = std::max(want_channel[p / 6], v);
            }
    const auto neuron = activation_ranges(*net, calib, {BoundGranularity::neuron});
    REQUIRE(neuron[0].max.shape() == Shape{2, 2, 3});
    for (std::int64_t p = 0; p < 12; ++p) CHECK(neuron[0].max[p] == want_neuron[p]);
    const auto channel = activation_ranges(*net, calib, {BoundGranularity::channel});
    REQUIRE(channel[0].max.shape() == Shape{2});
    CHECK(channel[0].max[0] == want_channel[0]);
    CHECK(channel[0].max[1] == want_channel[1]);
    CHECK(want_channel[0] != want_channel[1]);
}

TEST_CASE("ranger: granularity plans and errors") {
    const auto hybrid = granularity_plan(3, "hybrid", BoundGranularity::channel);
    CHECK(hybrid == std::vector<BoundGranularity>{BoundGranularity::layer, BoundGranularity::layer,
                                                  BoundGranularity::channel});
    CHECK(granularity_plan(2, "neuron") == std::vector<BoundGranularity>(2, BoundGranularity::neuron));
    CHECK_THROWS_WITH_AS(granularity_plan(2, "per-layer"), doctest::Contains("unknown bound granularity 'per-layer'"),
                         std::invalid_argument);
    auto net = tiny_network();
    CHECK_THROWS_WITH_AS(activation_ranges(*net, tiny_calibration(), granularity_plan(1, "layer")),
                         doctest::Contains("1 granularities for 2 activation slots"), std::invalid_argument);
    CHECK_THROWS_WITH_AS(install_bounds(*net, {{"relu3", BoundMode::zero, BoundGranularity::layer, 20.0f,
                                                Tensor<float>({1}, 1.0f), {}}}),
                         doctest::Contains("no activation slot named 'relu3'"), std::invalid_argument);
}

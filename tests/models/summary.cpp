#include "ironclad/models/summary.hpp"

#include "ironclad/nn/activation.hpp"
#include "ironclad/nn/batch_norm.hpp"
#include "ironclad/nn/pooling.hpp"
#include "ironclad/nn/sequential.hpp"

#include <doctest/doctest.h>

using namespace ironclad;

namespace {

// conv 4->6 3x3 groups 2 with bias, BN, ReLU, 2x2 max pool, flatten, linear 6*4*4 -> 5; input [1,4,8,8].
std::shared_ptr<Sequential> tiny_net() {
    Rng rng(1);
    auto net = std::make_shared<Sequential>();
    net->add(std::make_shared<Conv2d>(Conv2dSpec{4, 6, 3, 1, 1, 2, true}, rng));
    net->add(std::make_shared<BatchNorm2d>(6));
    net->add(relu_slot());
    net->add(std::make_shared<MaxPool2d>(2, 2));
    net->add("flat", std::make_shared<Flatten>());
    net->add("head", std::make_shared<Linear>(96, 5, rng));
    return net;
}

}  // namespace

TEST_CASE("summarize lists leaves in call order with shapes, parameters and MACs") {
    auto net = tiny_net();
    const ModelSummary s = summarize(*net, {1, 4, 8, 8});
    REQUIRE(s.layers.size() == 6);
    const char* names[] = {"0", "1", "2", "3", "flat", "head"};
    const char* types[] = {"Conv2d", "BatchNorm2d", "ReLU", "MaxPool2d", "Flatten", "Linear"};
    const Shape shapes[] = {{1, 6, 8, 8}, {1, 6, 8, 8}, {1, 6, 8, 8}, {1, 6, 4, 4}, {1, 96}, {1, 5}};
    // conv: 6*2*3*3 weights + 6 biases; BN: gamma and beta; linear: 96*5 + 5
    const std::int64_t params[] = {114, 12, 0, 0, 0, 485};
    // conv: 384 outputs * (4/2 inputs) * 9 taps; linear: 96 * 5
    const std::int64_t macs[] = {6912, 0, 0, 0, 0, 480};
    for (std::size_t i = 0; i < 6; ++i) {
        CAPTURE(i);
        CHECK(s.layers[i].name == names[i]);
        CHECK(s.layers[i].type == types[i]);
        CHECK(s.layers[i].output_shape == shapes[i]);
        CHECK(s.layers[i].params == params[i]);
        CHECK(s.layers[i].macs == macs[i]);
    }
    CHECK(s.params == 611);
    CHECK(s.macs == 7392);
}

TEST_CASE("summarize leaves the model as it found it") {
    auto net = tiny_net();
    net->train();
    net->children()[1].second->eval();  // a mixed state must survive too
    auto& bn = dynamic_cast<BatchNorm2d&>(*net->children()[1].second);
    const Tensor<float> mean_before = bn.running_mean().clone();
    summarize(*net, {1, 4, 8, 8});
    CHECK(net->is_training());
    CHECK_FALSE(bn.is_training());
    CHECK(net->children()[0].second->is_training());
    for (auto& [name, m] : net->named_modules()) CHECK_FALSE(m->has_output_hook());
    net->children()[1].second->train();
    summarize(*net, {1, 4, 8, 8});
    CHECK(std::equal(mean_before.begin(), mean_before.end(), bn.running_mean().begin()));  // ran in eval mode
}

TEST_CASE("summarize refuses what it cannot restore or run") {
    auto net = tiny_net();
    CHECK_THROWS_WITH_AS(summarize(*net, {2, 4, 8, 8}), doctest::Contains("[1,C,H,W]"), std::invalid_argument);
    CHECK_THROWS_AS(summarize(*net, {1, 3, 8, 8}), std::invalid_argument);  // the conv's own error
    for (auto& [name, m] : net->named_modules()) CHECK_FALSE(m->has_output_hook());
    net->children()[3].second->set_output_hook([](Tensor<float>&) {});
    CHECK_THROWS_WITH_AS(summarize(*net, {1, 4, 8, 8}), doctest::Contains("module '3' already has an output hook"),
                         std::invalid_argument);
    CHECK(net->children()[3].second->has_output_hook());
}

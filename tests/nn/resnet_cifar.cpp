#include "ironclad/autograd/losses.hpp"
#include "ironclad/io/safetensors.hpp"
#include "ironclad/models/resnet_cifar.hpp"
#include "ironclad/nn/quantize.hpp"
#include "ironclad/core/fixed_point.hpp"
#include "ironclad/training/checkpoint.hpp"

#include <doctest/doctest.h>

#include <filesystem>

using namespace ironclad;

namespace {
const std::filesystem::path shared_dir = std::filesystem::path(IRONCLAD_SOURCE_DIR) / ".." / "shared";
}

TEST_CASE("resnet20: PyTorch names, parameter count, activation slots in forward order") {
    auto m = resnet_cifar({.depth = 20});
    // akamaster's resnet20: 269,722 parameters (0.27 M).
    CHECK(m->parameter_count() == 269722);
    auto params = m->named_parameters();
    CHECK(params.front().first == "conv1.weight");
    CHECK(params[1].first == "bn1.weight");
    CHECK(params.back().first == "linear.bias");
    auto state = m->state_dict();
    CHECK(state[3].first == "bn1.running_mean");
    auto slots = activation_slots(*m);
    REQUIRE(slots.size() == 19);
    CHECK(slots.front().first == "relu");
    CHECK(slots[1].first == "layer1.0.relu1");
    CHECK(slots[2].first == "layer1.0.relu2");
    CHECK(slots.back().first == "layer3.2.relu2");
    CHECK_THROWS_AS(resnet_cifar({.depth = 21}), std::invalid_argument);
}

TEST_CASE("resnet20 option B: downsample branch and fc head names") {
    auto m = resnet_cifar({.depth = 20, .shortcut = Shortcut::B});
    bool has_down = false;
    for (auto& [name, p] : m->named_parameters()) has_down |= name == "layer2.0.downsample.0.weight";
    CHECK(has_down);
    CHECK(m->named_parameters().back().first == "fc.bias");
}

TEST_CASE("resnet20: forward shapes for CIFAR and Fashion-MNIST inputs, gradients reach every parameter") {
    auto m = resnet_cifar({.depth = 20, .in_channels = 1});
    Var x(Tensor<float>({2, 1, 28, 28}, 0.5f));
    Var y = (*m)(x);
    CHECK(y.shape() == Shape{2, 10});
    Var loss = cross_entropy(y, std::vector<std::int32_t>{3, 7});
    loss.backward();
    for (auto& [name, p] : m->named_parameters()) {
        CAPTURE(name);
        CHECK(p.grad().defined());
    }
}

TEST_CASE("resnet20: loads the pretrained CIFAR-10 checkpoint by name") {
    const auto path = shared_dir / "models" / "resnet20-cifar10.safetensors";
    if (!std::filesystem::exists(path)) {
        MESSAGE("skipped: " << path << " not found");
        return;
    }
    auto m = resnet_cifar({.depth = 20});
    load_model(path, *m);
    auto wrong = resnet_cifar({.depth = 32});
    CHECK_THROWS_WITH_AS(load_model(path, *wrong), doctest::Contains("layer1.3.conv1.weight"), std::exception);
}

TEST_CASE("quantize: Q15.16 storage emulation rounds parameters and activations toward zero") {
    auto m = resnet_cifar({.depth = 20});
    quantize_parameters<FixedPoint<15, 16>>(*m);
    for (auto& [name, p] : m->named_parameters())
        for (float v : p.value().span()) REQUIRE(v * 65536.0f == std::trunc(v * 65536.0f));
    quantize_activations<FixedPoint<15, 16>>(*m);
    m->eval();
    NoGradGuard g;
    Var x(Tensor<float>({1, 3, 32, 32}, 0.3f));
    Var y = (*m)(x);
    for (float v : y.value().span()) CHECK(v * 65536.0f == std::trunc(v * 65536.0f));
}

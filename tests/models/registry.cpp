#include "ironclad/models/registry.hpp"

#include <doctest/doctest.h>

#include <string>
#include <vector>

using namespace ironclad;

namespace {

Tensor<float> state_tensor(Module& m, const std::string& name) {
    for (auto& [n, t] : m.state_dict())
        if (n == name) return t;
    FAIL("no tensor " << name);
    return {};
}

}  // namespace

TEST_CASE("model_registry lists the CIFAR zoo in a stable order") {
    std::vector<std::string> names, families;
    for (const auto& info : model_registry()) {
        names.push_back(info.name);
        families.push_back(info.family);
    }
    CHECK(names == std::vector<std::string>{"resnet20", "resnet32", "resnet44", "resnet56", "vgg11_bn", "vgg13_bn",
                                            "vgg16_bn", "vgg19_bn", "mobilenetv2_x0_5", "mobilenetv2_x0_75",
                                            "shufflenetv2_x1_5"});
    CHECK(families == std::vector<std::string>{"resnet", "resnet", "resnet", "resnet", "vgg", "vgg", "vgg", "vgg",
                                               "mobilenetv2", "mobilenetv2", "shufflenetv2"});
}

TEST_CASE("build_model applies the config") {
    ModelConfig cfg;
    cfg.num_classes = 100;
    cfg.in_channels = 1;
    cfg.shortcut = Shortcut::B;
    cfg.seed = 7;
    auto resnet = build_model("resnet20", cfg);
    CHECK(state_tensor(*resnet, "fc.weight").shape() == Shape{100, 64});
    CHECK(state_tensor(*resnet, "conv1.weight").shape() == Shape{16, 1, 3, 3});
    CHECK(state_tensor(*resnet, "layer2.0.downsample.0.weight").shape() == Shape{32, 16, 1, 1});
    cfg.shortcut = Shortcut::A;
    CHECK(state_tensor(*build_model("resnet20", cfg), "linear.weight").shape() == Shape{100, 64});
    CHECK(state_tensor(*build_model("mobilenetv2_x0_5", cfg), "classifier.1.weight").shape() == Shape{100, 1280});
    CHECK(state_tensor(*build_model("shufflenetv2_x1_5", cfg), "conv1.0.weight").shape() == Shape{24, 1, 3, 3});

    // The seed alone decides the initial weights.
    const auto w = [&](std::uint64_t seed) {
        cfg.seed = seed;
        return state_tensor(*build_model("resnet20", cfg), "layer2.1.conv1.weight").clone();
    };
    const Tensor<float> a = w(3), b = w(3), c = w(4);
    CHECK(std::equal(a.begin(), a.end(), b.begin()));
    CHECK_FALSE(std::equal(a.begin(), a.end(), c.begin()));
}

TEST_CASE("build_model names the known models when it does not know one") {
    CHECK_THROWS_WITH_AS(build_model("resnet18", {}),
                         doctest::Contains("unknown model 'resnet18' (known: resnet20, resnet32"),
                         std::invalid_argument);
    CHECK_THROWS_WITH_AS(build_model("vgg16", {}), doctest::Contains("shufflenetv2_x1_5)"), std::invalid_argument);
}

#include "ironclad/models/vgg_cifar.hpp"

#include "golden_model.hpp"

using namespace ironclad;
using ironclad::testing::check_model_parity;

TEST_CASE("vgg_cifar matches PyTorch") {
    const std::pair<int, std::size_t> depths[] = {{11, 10}, {13, 12}, {16, 15}, {19, 18}};
    for (auto [depth, relus] : depths) {
        const std::string name = "vgg" + std::to_string(depth) + "_bn";
        check_model_parity(name, name + "_3x32", relus);
    }
    // Fashion-MNIST: the pools meet 7 and 3, so they pad (28-14-7-4-2-1).
    check_model_parity("vgg11_bn", "vgg11_bn_1x28", 10);
}

TEST_CASE("vgg_cifar sizes its classifier from the input size") {
    // 40 -> 20, 10, 5, 3, 2 after five poolings: the classifier reads 512 * 2 * 2 features.
    auto net = vgg_cifar({11, 10, 3, 40, 0});
    const ModelSummary s = summarize(*net, {1, 3, 40, 40});
    const Shape pooled[] = {{1, 64, 20, 20}, {1, 128, 10, 10}, {1, 256, 5, 5}, {1, 512, 3, 3}, {1, 512, 2, 2}};
    std::size_t pools = 0;
    for (const auto& layer : s.layers)
        if (layer.type == "MaxPool2d") CHECK(layer.output_shape == pooled[pools++]);
    CHECK(pools == 5);
    CHECK(s.layers[s.layers.size() - 7].name == "classifier.0");
    CHECK(s.layers[s.layers.size() - 7].params == 2048 * 512 + 512);
    CHECK(s.layers.back().output_shape == Shape{1, 10});
}

TEST_CASE("vgg_cifar rejects unknown depths and empty inputs") {
    CHECK_THROWS_WITH_AS(vgg_cifar({12, 10, 3, 32, 0}), doctest::Contains("depth must be 11, 13, 16 or 19"),
                         std::invalid_argument);
    CHECK_THROWS_WITH_AS(vgg_cifar({11, 10, 3, 0, 0}), doctest::Contains("input size"), std::invalid_argument);
}

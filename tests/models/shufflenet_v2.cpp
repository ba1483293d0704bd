#include "ironclad/models/shufflenet_v2.hpp"

#include "golden_model.hpp"

using namespace ironclad;
using ironclad::testing::check_model_parity;

TEST_CASE("shufflenet_v2 x1.5 matches PyTorch (CIFAR and Fashion-MNIST inputs)") {
    for (const char* input : {"3x32", "1x28"})
        check_model_parity("shufflenetv2_x1_5", std::string("shufflenetv2_x1_5_") + input, 37);
}

TEST_CASE("shufflenet_v2 widths follow torchvision's table") {
    // x0.5: stage widths 48/96/192; a stride-2 unit's branch1 projects to half the stage width.
    auto net = shufflenet_v2({0.5, 10, 3, 0});
    std::map<std::string, Shape> shapes;
    for (auto& [name, t] : net->state_dict()) shapes[name] = t.shape();
    CHECK(shapes.at("stage2.0.branch1.2.weight") == Shape{24, 24, 1, 1});
    CHECK(shapes.at("stage4.3.branch2.5.weight") == Shape{96, 96, 1, 1});
    CHECK(shapes.at("fc.weight") == Shape{10, 1024});
    CHECK(shapes.count("stage2.1.branch1.0.weight") == 0);
    CHECK_THROWS_WITH_AS(shufflenet_v2({1.25, 10, 3, 0}), doctest::Contains("width_mult"), std::invalid_argument);
}

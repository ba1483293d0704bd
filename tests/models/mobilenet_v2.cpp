#include "ironclad/models/mobilenet_v2.hpp"

#include "golden_model.hpp"

using namespace ironclad;
using ironclad::testing::check_model_parity;

TEST_CASE("mobilenet_v2 matches PyTorch (CIFAR and Fashion-MNIST inputs)") {
    for (const char* name : {"mobilenetv2_x0_5", "mobilenetv2_x0_75"})
        for (const char* input : {"3x32", "1x28"}) check_model_parity(name, std::string(name) + "_" + input, 35);
}

TEST_CASE("make_divisible rounds the spec's widths to multiples of 8") {
    // Stem, the seven stages and the last conv at x0.5 and x0.75 (reference-rrelu.md 4.3).
    const double base[] = {32, 16, 24, 32, 64, 96, 160, 320};
    const std::int64_t half[] = {16, 8, 16, 16, 32, 48, 80, 160}, three_quarters[] = {24, 16, 24, 24, 48, 72, 120, 240};
    for (int i = 0; i < 8; ++i) {
        CHECK(make_divisible(base[i] * 0.5) == half[i]);
        CHECK(make_divisible(base[i] * 0.75) == three_quarters[i]);
    }
    CHECK(make_divisible(1280 * 1.0) == 1280);
}

TEST_CASE("mobilenet_v2 rejects a non-positive width") {
    CHECK_THROWS_WITH_AS(mobilenet_v2({0.0, 10, 3, 0}), doctest::Contains("width_mult"), std::invalid_argument);
}

// PyTorch parity of the CIFAR ResNets: option B (chenyaofo) at every depth, option A (akamaster) at 20.
#include "golden_model.hpp"

using ironclad::testing::check_model_parity;

TEST_CASE("resnet_cifar option B matches PyTorch (CIFAR and Fashion-MNIST inputs)") {
    const std::pair<int, std::size_t> depths[] = {{20, 19}, {32, 31}, {44, 43}, {56, 55}};
    for (auto [depth, relus] : depths)
        for (const char* input : {"3x32", "1x28"})
            check_model_parity("resnet" + std::to_string(depth), "resnet" + std::to_string(depth) + "_b_" + input,
                               relus);
}

TEST_CASE("resnet_cifar option A matches PyTorch") {
    for (const char* input : {"3x32", "1x28"}) check_model_parity("resnet20", std::string("resnet20_a_") + input, 19);
}

// A toy problem for the bound searches: which of two pixels is brighter, solved by a hand-set network with one
// activation slot "act" of three units:
//   h0 = relu(4 (x0 - x1)), h1 = relu(4 (x1 - x0))   informative: logits are 3 h0 and 3 h1 + 0.5, so a cut h0
//                                                    loses the image (and differences below ~10 levels are lost)
//   h2 = relu(2.5 (x0 + x1))                         a distractor: large, but its output weights are 0
// Images are 1x1x2 bytes; x = pixel / 255.
#pragma once

#include "ironclad/core/random.hpp"
#include "ironclad/data/dataset.hpp"
#include "ironclad/nn/activation.hpp"
#include "ironclad/nn/linear.hpp"
#include "ironclad/nn/pooling.hpp"
#include "ironclad/nn/sequential.hpp"

namespace ironclad::testing {

inline std::shared_ptr<Sequential> brighter_pixel_network() {
    Rng rng(0);
    auto net = std::make_shared<Sequential>();
    net->add("flatten", std::make_shared<Flatten>());
    auto fc1 = net->add("fc1", std::make_shared<Linear>(2, 3, rng));
    net->add("act", relu_slot());
    auto fc2 = net->add("fc2", std::make_shared<Linear>(3, 2, rng));
    fc1->weight().value().copy_from(Tensor<float>({3, 2}, {4, -4, -4, 4, 2.5f, 2.5f}));
    fc1->bias().value().copy_from(Tensor<float>({3}, {0, 0, 0}));
    fc2->weight().value().copy_from(Tensor<float>({2, 3}, {3, 0, 0, 0, 3, 0}));
    fc2->bias().value().copy_from(Tensor<float>({2}, {0, 0.5f}));
    return net;
}

// n images with two distinct random pixels; label 0 when the first is brighter.
inline Dataset brighter_pixel_data(std::int64_t n, std::uint64_t seed) {
    Dataset ds{Tensor<std::uint8_t>({n, 1, 1, 2}), {}, 2, {"first", "second"}, "toy"};
    Rng rng = Rng::stream(seed, 0);
    for (std::int64_t i = 0; i < n; ++i) {
        const auto a = static_cast<std::uint8_t>(rng.uniform_int(0, 255));
        auto b = static_cast<std::uint8_t>(rng.uniform_int(0, 254));
        if (b >= a) ++b;  // distinct
        ds.images[2 * i] = a;
        ds.images[2 * i + 1] = b;
        ds.labels.push_back(a > b ? 0 : 1);
    }
    return ds;
}

}  // namespace ironclad::testing

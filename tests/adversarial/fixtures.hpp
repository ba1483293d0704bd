// Small models and data for the adversarial tests: fast enough that an attack on a few dozen images takes
// milliseconds, with a non-trivial normalisation inside the model so pixel-space bounds are really tested.
#pragma once

#include "ironclad/adversarial/normalized_model.hpp"
#include "ironclad/autograd/losses.hpp"
#include "ironclad/data/dataset.hpp"
#include "ironclad/models/resnet_cifar.hpp"
#include "ironclad/nn/activation.hpp"
#include "ironclad/nn/batch_norm.hpp"
#include "ironclad/nn/conv2d.hpp"
#include "ironclad/nn/linear.hpp"
#include "ironclad/nn/pooling.hpp"
#include "ironclad/nn/sequential.hpp"

#include <omp.h>

#include <memory>

namespace ironclad::testing {

// Class c's images are bright in quadrant c (4 classes, channels x 8 x 8), plus seeded noise: learnable in a few
// epochs by a tiny net.
inline Dataset quadrant_images(std::int64_t n, std::uint64_t seed, int channels = 1) {
    Dataset d;
    d.images = Tensor<std::uint8_t>({n, channels, 8, 8});
    d.num_classes = 4;
    d.class_names = {"a", "b", "c", "d"};
    Rng rng = Rng::stream(seed, 0);
    for (std::int64_t i = 0; i < n; ++i) {
        const int c = static_cast<int>(i % 4);
        d.labels.push_back(c);
        for (int ch = 0; ch < channels; ++ch)
            for (int y = 0; y < 8; ++y)
                for (int x = 0; x < 8; ++x) {
                    const bool in = (y / 4) == c / 2 && (x / 4) == c % 2;
                    d.images[((i * channels + ch) * 8 + y) * 8 + x] = static_cast<std::uint8_t>((in ? 150 : 70) + 60 * rng.uniform());
                }
    }
    return d;
}

// conv 3x3 -> BN -> ReLU -> linear, for `channels` x 8 x 8 inputs and 4 classes.
inline std::shared_ptr<Sequential> tiny_net(std::uint64_t seed, int channels = 1) {
    Rng rng = Rng::stream(seed, 0);
    auto net = std::make_shared<Sequential>();
    net->add(std::make_shared<Conv2d>(Conv2dSpec{channels, 4, 3, 1, 1}, rng));
    net->add(std::make_shared<BatchNorm2d>(4));
    net->add(relu_slot());
    net->add(std::make_shared<Flatten>());
    net->add(std::make_shared<Linear>(4 * 8 * 8, 4, rng));
    return net;
}

// A ResNet-8 (3x8x8 inputs, 10 classes) in eval mode behind a normalisation far from the identity.
inline std::shared_ptr<NormalizedModel> small_resnet(std::uint64_t seed = 5) {
    auto net = resnet_cifar({.depth = 8, .num_classes = 10, .in_channels = 3, .shortcut = Shortcut::A, .seed = seed});
    auto model = std::make_shared<NormalizedModel>(net, std::vector<float>{0.4f, 0.5f, 0.6f},
                                                   std::vector<float>{0.2f, 0.25f, 0.3f});
    model->eval();
    return model;
}

// n random 3x8x8 images; the first half labelled with `model`'s own clean predictions (so there is accuracy to
// attack), the rest with class i % 10.
inline Dataset random_images(Module& model, std::int64_t n, std::uint64_t seed) {
    Dataset d;
    d.images = Tensor<std::uint8_t>({n, 3, 8, 8});
    d.num_classes = 10;
    d.class_names.resize(10, "c");
    Rng rng = Rng::stream(seed, 1);
    for (auto& v : d.images) v = static_cast<std::uint8_t>(rng.uniform_int(0, 255));
    Tensor<float> x({n, 3, 8, 8});
    for (std::int64_t i = 0; i < x.numel(); ++i) x[i] = static_cast<float>(d.images[i]) / 255.0f;
    NoGradGuard no_grad;
    model.eval();
    const auto pred = argmax_rows(model(Var(x)).value());
    for (std::int64_t i = 0; i < n; ++i) d.labels.push_back(i < n / 2 ? pred[static_cast<std::size_t>(i)] : static_cast<std::int32_t>(i % 10));
    return d;
}

// Runs f with `threads` OpenMP threads, then restores the previous count.
template <class F>
auto with_threads(int threads, F f) {
    const int before = omp_get_max_threads();
    omp_set_num_threads(threads);
    auto out = f();
    omp_set_num_threads(before);
    return out;
}

}  // namespace ironclad::testing

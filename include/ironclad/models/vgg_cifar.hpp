// CIFAR VGG-11/13/16/19 with batch norm (chenyaofo/pytorch-cifar-models, configurations A/B/D/E).
//
// Names equal the PyTorch reference: "features.N" numbered as nn.Sequential (conv 3x3 with bias -> BN ->
// ReLU per entry, MaxPool 2x2/2 per "M"), "classifier.0/.3/.6" Linear with ReLU at .1/.4 and Dropout(0.5) at
// .2/.5. Every ReLU is its own slot (10/12/15/18). No average pooling: the classifier reads the flattened
// last feature map, 512 x S x S with S = 1 at 32x32. A pool that meets an odd size pads 1 on each side
// (PyTorch MaxPool2d(2, 2, padding=1)), so 28x28 inputs shrink 28-14-7-4-2-1 and keep the 512 features;
// sizes that are powers of two pool exactly as the reference, and any size >= 1 works.
#pragma once

#include "ironclad/nn/activation.hpp"
#include "ironclad/nn/batch_norm.hpp"
#include "ironclad/nn/conv2d.hpp"
#include "ironclad/nn/dropout.hpp"
#include "ironclad/nn/linear.hpp"
#include "ironclad/nn/pooling.hpp"
#include "ironclad/nn/sequential.hpp"

#include <stdexcept>
#include <string>
#include <vector>

namespace ironclad {

struct VggCifarConfig {
    int depth = 16;  // 11, 13, 16 or 19
    int num_classes = 10;
    int in_channels = 3;
    int input_size = 32;  // the classifier's input width depends on it
    std::uint64_t seed = 0;
};

class VggCifar : public Module {
public:
    explicit VggCifar(const VggCifarConfig& cfg) : cfg_(cfg) {
        if (cfg.input_size < 1)
            throw std::invalid_argument("VggCifar: input size must be positive, got " + std::to_string(cfg.input_size));
        Rng rng = Rng::stream(cfg.seed, 0);
        features_ = register_module("features", std::make_shared<Sequential>());
        std::int64_t in = cfg.in_channels, size = cfg.input_size;
        for (int v : layout(cfg.depth)) {
            if (v == kPool) {
                const int padding = static_cast<int>(size % 2);
                features_->add(std::make_shared<MaxPool2d>(2, 2, padding));
                size = (size + 2 * padding - 2) / 2 + 1;
                continue;
            }
            features_->add(std::make_shared<Conv2d>(Conv2dSpec{in, v, 3, 1, 1, 1, true}, rng));
            features_->add(std::make_shared<BatchNorm2d>(v));
            features_->add(relu_slot());
            in = v;
        }
        flatten_ = std::make_shared<Flatten>();
        classifier_ = register_module("classifier", std::make_shared<Sequential>());
        classifier_->add(std::make_shared<Linear>(in * size * size, 512, rng));
        classifier_->add(relu_slot());
        classifier_->add(std::make_shared<Dropout>(0.5f, rng.next_u64()));
        classifier_->add(std::make_shared<Linear>(512, 512, rng));
        classifier_->add(relu_slot());
        classifier_->add(std::make_shared<Dropout>(0.5f, rng.next_u64()));
        classifier_->add(std::make_shared<Linear>(512, cfg.num_classes, rng));
    }
    // x: [N,in_channels,input_size,input_size] -> logits [N,num_classes]
    Var forward(const Var& x) override { return (*classifier_)((*flatten_)((*features_)(x))); }
    std::string type_name() const override { return "VGG"; }
    std::vector<Module*> stages() override { return {features_.get(), flatten_.get(), classifier_.get()}; }
    const VggCifarConfig& config() const { return cfg_; }

private:
    static constexpr int kPool = 0;
    // Output channels per conv, kPool per max pooling (Simonyan & Zisserman's configurations A, B, D, E).
    static std::vector<int> layout(int depth) {
        const int convs_per_stage[4][5] = {{1, 1, 2, 2, 2}, {2, 2, 2, 2, 2}, {2, 2, 3, 3, 3}, {2, 2, 4, 4, 4}};
        const int widths[5] = {64, 128, 256, 512, 512};
        const int row = depth == 11 ? 0 : depth == 13 ? 1 : depth == 16 ? 2 : depth == 19 ? 3 : -1;
        if (row < 0)
            throw std::invalid_argument("VggCifar: depth must be 11, 13, 16 or 19, got " + std::to_string(depth));
        std::vector<int> out;
        for (int s = 0; s < 5; ++s) {
            out.insert(out.end(), convs_per_stage[row][s], widths[s]);
            out.push_back(kPool);
        }
        return out;
    }

    VggCifarConfig cfg_;
    std::shared_ptr<Sequential> features_, classifier_;
    std::shared_ptr<Flatten> flatten_;
};

inline std::shared_ptr<VggCifar> vgg_cifar(const VggCifarConfig& cfg) { return std::make_shared<VggCifar>(cfg); }

}  // namespace ironclad

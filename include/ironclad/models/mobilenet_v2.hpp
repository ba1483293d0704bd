// CIFAR MobileNetV2 (Sandler et al. 2018) as in chenyaofo/pytorch-cifar-models: the stem and the
// 24-channel stage keep stride 1, so a 32x32 input ends at 4x4.
//
// Names equal the PyTorch reference: "features.0" = ConvBNReLU (".0" conv, ".1" BN, ".2" ReLU6),
// "features.1".."features.17" inverted residuals ("features.N.conv.K..."), "features.18" the 1x1
// ConvBNReLU to 1280, then global average pooling, "classifier.0" Dropout(0.2), "classifier.1" Linear.
// Channels are width_mult times the paper's, rounded to multiples of 8. Every ReLU6 is its own slot (35).
#pragma once

#include "ironclad/autograd/elementwise.hpp"
#include "ironclad/nn/activation.hpp"
#include "ironclad/nn/batch_norm.hpp"
#include "ironclad/nn/conv2d.hpp"
#include "ironclad/nn/fused_conv.hpp"
#include "ironclad/nn/dropout.hpp"
#include "ironclad/nn/linear.hpp"
#include "ironclad/nn/pooling.hpp"
#include "ironclad/nn/sequential.hpp"

#include <algorithm>
#include <cmath>
#include <stdexcept>
#include <string>

namespace ironclad {

struct MobileNetV2Config {
    double width_mult = 1.0;
    int num_classes = 10;
    int in_channels = 3;
    std::uint64_t seed = 0;
};

// torchvision's _make_divisible: the nearest multiple of 8, but never more than 10% below v.
inline std::int64_t make_divisible(double v, std::int64_t divisor = 8) {
    const auto nearest = static_cast<std::int64_t>(v + static_cast<double>(divisor) / 2) / divisor * divisor;
    std::int64_t out = std::max(divisor, nearest);
    if (static_cast<double>(out) < 0.9 * v) out += divisor;
    return out;
}

// Conv (no bias, "same" padding) -> BN -> ReLU6 slot, as torchvision's ConvBNReLU.
inline std::shared_ptr<Sequential> conv_bn_relu6(std::int64_t in, std::int64_t out, int kernel, int stride, int groups,
                                                 Rng& rng) {
    auto s = std::make_shared<Sequential>();
    s->add(std::make_shared<Conv2d>(Conv2dSpec{in, out, kernel, stride, (kernel - 1) / 2, groups}, rng));
    s->add(std::make_shared<BatchNorm2d>(out));
    s->add(relu6_slot());
    return s;
}

class InvertedResidual : public Module {
public:
    // expand: the expansion ratio t (hidden width in * t).
    InvertedResidual(std::int64_t in, std::int64_t out, int stride, int expand, Rng& rng)
        : residual_(stride == 1 && in == out) {
        const std::int64_t hidden = in * expand;
        conv_ = register_module("conv", std::make_shared<Sequential>());
        if (expand != 1) conv_->add(conv_bn_relu6(in, hidden, 1, 1, 1, rng));
        conv_->add(conv_bn_relu6(hidden, hidden, 3, stride, static_cast<int>(hidden), rng));
        conv_->add(std::make_shared<Conv2d>(Conv2dSpec{hidden, out, 1, 1, 0}, rng));
        conv_->add(std::make_shared<BatchNorm2d>(out));
    }
    // x: [N,in,H,W] -> [N,out,H/stride,W/stride]; the projection stays linear (no activation after it).
    Var forward(const Var& x) override { return residual_ ? add(x, forward_fused(*conv_, x)) : forward_fused(*conv_, x); }
    std::string type_name() const override { return "InvertedResidual"; }

private:
    bool residual_;
    std::shared_ptr<Sequential> conv_;
};

class MobileNetV2 : public Module {
public:
    explicit MobileNetV2(const MobileNetV2Config& cfg) : cfg_(cfg) {
        if (!(cfg.width_mult > 0))
            throw std::invalid_argument("MobileNetV2: width_mult must be positive, got " +
                                        std::to_string(cfg.width_mult));
        Rng rng = Rng::stream(cfg.seed, 0);
        // t (expansion), c (channels at width 1), n (blocks), s (stride of the first block)
        const int settings[7][4] = {{1, 16, 1, 1}, {6, 24, 2, 1}, {6, 32, 3, 2}, {6, 64, 4, 2},
                                    {6, 96, 3, 1}, {6, 160, 3, 2}, {6, 320, 1, 1}};
        std::int64_t in = make_divisible(32 * cfg.width_mult);
        const std::int64_t last = make_divisible(1280 * std::max(1.0, cfg.width_mult));
        features_ = register_module("features", std::make_shared<Sequential>());
        features_->add(conv_bn_relu6(cfg.in_channels, in, 3, 1, 1, rng));
        for (const auto& [t, c, n, s] : settings) {
            const std::int64_t out = make_divisible(c * cfg.width_mult);
            for (int i = 0; i < n; ++i) {
                features_->add(std::make_shared<InvertedResidual>(in, out, i == 0 ? s : 1, t, rng));
                in = out;
            }
        }
        features_->add(conv_bn_relu6(in, last, 1, 1, 1, rng));
        pool_ = std::make_shared<GlobalAvgPool>();
        classifier_ = register_module("classifier", std::make_shared<Sequential>());
        classifier_->add(std::make_shared<Dropout>(0.2f, rng.next_u64()));
        classifier_->add(std::make_shared<Linear>(last, cfg.num_classes, rng));
    }
    // x: [N,in_channels,H,W] -> logits [N,num_classes]
    Var forward(const Var& x) override { return (*classifier_)((*pool_)((*features_)(x))); }
    std::string type_name() const override { return "MobileNetV2"; }
    std::vector<Module*> stages() override { return {features_.get(), pool_.get(), classifier_.get()}; }
    const MobileNetV2Config& config() const { return cfg_; }

private:
    MobileNetV2Config cfg_;
    std::shared_ptr<Sequential> features_, classifier_;
    std::shared_ptr<GlobalAvgPool> pool_;
};

inline std::shared_ptr<MobileNetV2> mobilenet_v2(const MobileNetV2Config& cfg) {
    return std::make_shared<MobileNetV2>(cfg);
}

}  // namespace ironclad

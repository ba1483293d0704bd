// CIFAR ShuffleNetV2 (Ma et al. 2018) as in chenyaofo/pytorch-cifar-models: torchvision's network with a
// stride-1 stem and no max pooling, so a 32x32 input ends at 4x4.
//
// Names equal the PyTorch reference: "conv1.0/.1/.2" (conv 3x3 -> BN -> ReLU), "stage2".."stage4" of
// inverted residuals ("stageS.B.branch1.K", "stageS.B.branch2.K"), "conv5.0/.1/.2" (1x1 conv to the last
// width), global average pooling, "fc". Every ReLU is its own slot (37 for [4, 8, 4] repeats).
#pragma once

#include "ironclad/autograd/shape_ops.hpp"
#include "ironclad/nn/activation.hpp"
#include "ironclad/nn/batch_norm.hpp"
#include "ironclad/nn/conv2d.hpp"
#include "ironclad/nn/fused_conv.hpp"
#include "ironclad/nn/linear.hpp"
#include "ironclad/nn/pooling.hpp"
#include "ironclad/nn/sequential.hpp"

#include <array>
#include <stdexcept>
#include <string>

namespace ironclad {

struct ShuffleNetV2Config {
    double width_mult = 1.0;  // 0.5, 1.0, 1.5 or 2.0
    int num_classes = 10;
    int in_channels = 3;
    std::uint64_t seed = 0;
};

class ShuffleUnit : public Module {
public:
    // A stride-2 unit feeds the whole input to two branches (each out/2 wide); a stride-1 unit keeps the
    // first half of the channels and transforms the second half.
    ShuffleUnit(std::int64_t in, std::int64_t out, int stride, Rng& rng) : in_(in), stride_(stride) {
        const std::int64_t half = out / 2;
        if (stride == 1 && in != out)
            throw std::invalid_argument("ShuffleUnit: a stride-1 unit needs in == out, got " + std::to_string(in) +
                                        " -> " + std::to_string(out));
        if (stride > 1) {
            branch1_ = register_module("branch1", std::make_shared<Sequential>());
            branch1_->add(std::make_shared<Conv2d>(Conv2dSpec{in, in, 3, stride, 1, static_cast<int>(in)}, rng));
            branch1_->add(std::make_shared<BatchNorm2d>(in));
            branch1_->add(std::make_shared<Conv2d>(Conv2dSpec{in, half, 1, 1, 0}, rng));
            branch1_->add(std::make_shared<BatchNorm2d>(half));
            branch1_->add(relu_slot());
        }
        branch2_ = register_module("branch2", std::make_shared<Sequential>());
        branch2_->add(std::make_shared<Conv2d>(Conv2dSpec{stride > 1 ? in : half, half, 1, 1, 0}, rng));
        branch2_->add(std::make_shared<BatchNorm2d>(half));
        branch2_->add(relu_slot());
        branch2_->add(std::make_shared<Conv2d>(Conv2dSpec{half, half, 3, stride, 1, static_cast<int>(half)}, rng));
        branch2_->add(std::make_shared<BatchNorm2d>(half));
        branch2_->add(std::make_shared<Conv2d>(Conv2dSpec{half, half, 1, 1, 0}, rng));
        branch2_->add(std::make_shared<BatchNorm2d>(half));
        branch2_->add(relu_slot());
    }
    // x: [N,in,H,W] -> [N,out,H/stride,W/stride]
    Var forward(const Var& x) override {
        Var y;
        if (stride_ == 1) {
            auto halves = split_channels(x, {in_ / 2, in_ - in_ / 2});
            y = concat_channels({halves[0], forward_fused(*branch2_, halves[1])});
        } else {
            y = concat_channels({forward_fused(*branch1_, x), forward_fused(*branch2_, x)});
        }
        return channel_shuffle(y, 2);
    }
    std::string type_name() const override { return "InvertedResidual"; }

private:
    std::int64_t in_;
    int stride_;
    std::shared_ptr<Sequential> branch1_, branch2_;
};

class ShuffleNetV2 : public Module {
public:
    explicit ShuffleNetV2(const ShuffleNetV2Config& cfg) : cfg_(cfg) {
        const auto widths = stage_widths(cfg.width_mult);
        Rng rng = Rng::stream(cfg.seed, 0);
        conv1_ = register_module("conv1", std::make_shared<Sequential>());
        conv1_->add(std::make_shared<Conv2d>(Conv2dSpec{cfg.in_channels, widths[0], 3, 1, 1}, rng));
        conv1_->add(std::make_shared<BatchNorm2d>(widths[0]));
        conv1_->add(relu_slot());
        std::int64_t in = widths[0];
        const int repeats[3] = {4, 8, 4};
        for (int s = 0; s < 3; ++s) {
            auto stage = register_module("stage" + std::to_string(s + 2), std::make_shared<Sequential>());
            for (int b = 0; b < repeats[s]; ++b) {
                stage->add(std::make_shared<ShuffleUnit>(in, widths[s + 1], b == 0 ? 2 : 1, rng));
                in = widths[s + 1];
            }
            stages_.push_back(stage);
        }
        conv5_ = register_module("conv5", std::make_shared<Sequential>());
        conv5_->add(std::make_shared<Conv2d>(Conv2dSpec{in, widths[4], 1, 1, 0}, rng));
        conv5_->add(std::make_shared<BatchNorm2d>(widths[4]));
        conv5_->add(relu_slot());
        pool_ = std::make_shared<GlobalAvgPool>();
        fc_ = register_module("fc", std::make_shared<Linear>(widths[4], cfg.num_classes, rng));
    }
    // x: [N,in_channels,H,W] -> logits [N,num_classes]
    Var forward(const Var& x) override {
        Var y = (*conv1_)(x);
        for (auto& stage : stages_) y = (*stage)(y);
        return (*fc_)((*pool_)((*conv5_)(y)));
    }
    std::string type_name() const override { return "ShuffleNetV2"; }
    std::vector<Module*> stages() override {
        std::vector<Module*> out{conv1_.get()};
        for (auto& stage : stages_) out.push_back(stage.get());
        for (Module* m : {static_cast<Module*>(conv5_.get()), static_cast<Module*>(pool_.get()), static_cast<Module*>(fc_.get())})
            out.push_back(m);
        return out;
    }
    const ShuffleNetV2Config& config() const { return cfg_; }

private:
    // Stem, stage 2, 3, 4 and conv5 widths (torchvision's table).
    static std::array<std::int64_t, 5> stage_widths(double width_mult) {
        if (width_mult == 0.5) return {24, 48, 96, 192, 1024};
        if (width_mult == 1.0) return {24, 116, 232, 464, 1024};
        if (width_mult == 1.5) return {24, 176, 352, 704, 1024};
        if (width_mult == 2.0) return {24, 244, 488, 976, 2048};
        throw std::invalid_argument("ShuffleNetV2: width_mult must be 0.5, 1.0, 1.5 or 2.0, got " +
                                    std::to_string(width_mult));
    }

    ShuffleNetV2Config cfg_;
    std::shared_ptr<Sequential> conv1_, conv5_;
    std::vector<std::shared_ptr<Sequential>> stages_;
    std::shared_ptr<GlobalAvgPool> pool_;
    std::shared_ptr<Linear> fc_;
};

inline std::shared_ptr<ShuffleNetV2> shufflenet_v2(const ShuffleNetV2Config& cfg) {
    return std::make_shared<ShuffleNetV2>(cfg);
}

}  // namespace ironclad

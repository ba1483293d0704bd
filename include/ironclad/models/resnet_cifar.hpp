// CIFAR ResNet-20/32/44/56 (He et al. 2016, §4.2): depth 6n+2, stages of 16/32/64 channels.
//
// Names equal the PyTorch reference definitions: option A (akamaster/pytorch_resnet_cifar10: zero-padding
// shortcut, head "linear") and option B (chenyaofo/pytorch-cifar-models: 1x1 conv + BN "downsample", head
// "fc"). Each ReLU is its own slot: "relu" (stem), "layerS.B.relu1", "layerS.B.relu2" (after the addition).
// Any input size works (global average pooling); Fashion-MNIST uses in_channels 1 at 28x28.
#pragma once

#include "ironclad/autograd/elementwise.hpp"
#include "ironclad/autograd/shape_ops.hpp"
#include "ironclad/nn/activation.hpp"
#include "ironclad/nn/batch_norm.hpp"
#include "ironclad/nn/conv2d.hpp"
#include "ironclad/nn/fused_conv.hpp"
#include "ironclad/nn/linear.hpp"
#include "ironclad/nn/pooling.hpp"
#include "ironclad/nn/sequential.hpp"

namespace ironclad {

enum class Shortcut { A, B };

struct ResNetCifarConfig {
    int depth = 20;
    int num_classes = 10;
    int in_channels = 3;
    Shortcut shortcut = Shortcut::A;
    std::uint64_t seed = 0;  // weight initialisation
};

class BasicBlock : public Module {
public:
    BasicBlock(std::int64_t in, std::int64_t out, int stride, Shortcut shortcut, Rng& rng)
        : in_(in), out_(out), stride_(stride) {
        conv1_ = register_module("conv1", std::make_shared<Conv2d>(Conv2dSpec{in, out, 3, stride, 1}, rng));
        bn1_ = register_module("bn1", std::make_shared<BatchNorm2d>(out));
        relu1_ = register_module("relu1", relu_slot());
        conv2_ = register_module("conv2", std::make_shared<Conv2d>(Conv2dSpec{out, out, 3, 1, 1}, rng));
        bn2_ = register_module("bn2", std::make_shared<BatchNorm2d>(out));
        if (shortcut == Shortcut::B && (stride != 1 || in != out)) {
            downsample_ = register_module("downsample", std::make_shared<Sequential>());
            downsample_->add(std::make_shared<Conv2d>(Conv2dSpec{in, out, 1, stride, 0}, rng));
            downsample_->add(std::make_shared<BatchNorm2d>(out));
        }
        relu2_ = register_module("relu2", relu_slot());
    }
    // x: [N,in,H,W] -> [N,out,H/stride,W/stride]
    Var forward(const Var& x) override {
        auto shortcut = [&] {
            if (downsample_) return forward_fused(*downsample_, x);
            return stride_ != 1 || in_ != out_ ? shortcut_option_a(x, out_, stride_) : x;
        };
        Var y = conv_bn_act(x, *conv1_, *bn1_, relu1_.get());
        if (can_fuse_conv_bn(*conv2_, *bn2_)) {
            const Var skip = shortcut();
            return conv_bn_act(y, *conv2_, *bn2_, relu2_.get(), &skip);
        }
        y = (*conv2_)(y);
        if (bn2_->has_output_hook()) {
            y = (*bn2_)(y);  // PyTorch's order: the shortcut's modules run after bn2
            return (*relu2_)(add(y, shortcut()));
        }
        const Var skip = shortcut();  // bn2 has no hook, so nothing can see that it runs after the shortcut
        return bn_act(y, *bn2_, relu2_.get(), &skip);
    }
    std::string type_name() const override { return "BasicBlock"; }

private:
    std::int64_t in_, out_;
    int stride_;
    std::shared_ptr<Conv2d> conv1_, conv2_;
    std::shared_ptr<BatchNorm2d> bn1_, bn2_;
    std::shared_ptr<ActivationSlot> relu1_, relu2_;
    std::shared_ptr<Sequential> downsample_;
};

class ResNetCifar : public Module {
public:
    explicit ResNetCifar(const ResNetCifarConfig& cfg) : cfg_(cfg) {
        if (cfg.depth < 8 || (cfg.depth - 2) % 6 != 0)
            throw std::invalid_argument("ResNetCifar: depth must be 6n+2 (20, 32, 44, 56), got " +
                                        std::to_string(cfg.depth));
        Rng rng = Rng::stream(cfg.seed, 0);
        const int blocks = (cfg.depth - 2) / 6;
        conv1_ = register_module("conv1", std::make_shared<Conv2d>(Conv2dSpec{cfg.in_channels, 16, 3, 1, 1}, rng));
        bn1_ = register_module("bn1", std::make_shared<BatchNorm2d>(16));
        relu_ = register_module("relu", relu_slot());
        std::int64_t in = 16;
        const std::int64_t widths[3] = {16, 32, 64};
        for (int s = 0; s < 3; ++s) {
            auto stage = register_module("layer" + std::to_string(s + 1), std::make_shared<Sequential>());
            for (int b = 0; b < blocks; ++b) {
                const int stride = (s > 0 && b == 0) ? 2 : 1;
                stage->add(std::make_shared<BasicBlock>(in, widths[s], stride, cfg.shortcut, rng));
                in = widths[s];
            }
            stages_.push_back(stage);
        }
        pool_ = std::make_shared<GlobalAvgPool>();
        head_ = register_module(cfg.shortcut == Shortcut::A ? "linear" : "fc",
                                std::make_shared<Linear>(64, cfg.num_classes, rng));
    }
    // x: [N,in_channels,H,W] -> logits [N,num_classes]
    Var forward(const Var& x) override {
        Var y = bn_act((*conv1_)(x), *bn1_, relu_.get());  // bit-identical to the three modules in a row
        for (auto& stage : stages_) y = (*stage)(y);
        return (*head_)((*pool_)(y));
    }
    std::string type_name() const override { return "ResNetCifar"; }
    std::vector<Module*> stages() override {
        std::vector<Module*> out{conv1_.get(), bn1_.get(), relu_.get()};
        for (auto& stage : stages_) out.push_back(stage.get());
        out.push_back(pool_.get());
        out.push_back(head_.get());
        return out;
    }
    const ResNetCifarConfig& config() const { return cfg_; }

private:
    ResNetCifarConfig cfg_;
    std::shared_ptr<Conv2d> conv1_;
    std::shared_ptr<BatchNorm2d> bn1_;
    std::shared_ptr<ActivationSlot> relu_;
    std::vector<std::shared_ptr<Sequential>> stages_;
    std::shared_ptr<GlobalAvgPool> pool_;
    std::shared_ptr<Linear> head_;
};

inline std::shared_ptr<ResNetCifar> resnet_cifar(const ResNetCifarConfig& cfg) {
    return std::make_shared<ResNetCifar>(cfg);
}

}  // namespace ironclad

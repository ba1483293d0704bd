// Conv2d layer: parameters "weight" [O, C/groups, K, K] and optional "bias" [O], PyTorch names and init.
#pragma once

#include "ironclad/autograd/conv.hpp"
#include "ironclad/nn/init.hpp"
#include "ironclad/nn/module.hpp"

namespace ironclad {

struct Conv2dSpec {
    std::int64_t in_channels, out_channels;
    int kernel = 3;
    int stride = 1;
    int padding = 0;
    int groups = 1;
    bool bias = false;
};

class Conv2d : public Module {
public:
    Conv2d(const Conv2dSpec& spec, Rng& rng) : spec_(spec) {
        if (spec.in_channels % spec.groups || spec.out_channels % spec.groups)
            throw std::invalid_argument("Conv2d: channels " + std::to_string(spec.in_channels) + "->" +
                                        std::to_string(spec.out_channels) + " not divisible by groups " +
                                        std::to_string(spec.groups));
        Tensor<float> w({spec.out_channels, spec.in_channels / spec.groups, spec.kernel, spec.kernel});
        init::kaiming_normal(w, rng);
        weight_ = register_parameter("weight", w);
        if (spec.bias) {
            Tensor<float> b({spec.out_channels});
            init::uniform_fan_in(b, init::fan_in(w), rng);
            bias_ = register_parameter("bias", b);
        }
    }
    // x: [N,C,H,W] -> [N,O,Ho,Wo]
    Var forward(const Var& x) override {
        return conv2d(x, weight_, bias_, Conv2dOptions{spec_.stride, spec_.padding, spec_.groups});
    }
    std::string type_name() const override { return "Conv2d"; }
    const Conv2dSpec& spec() const { return spec_; }
    Var& weight() { return weight_; }
    Var& bias() { return bias_; }

private:
    Conv2dSpec spec_;
    Var weight_, bias_;
};

}  // namespace ironclad

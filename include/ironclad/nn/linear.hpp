// Linear layer: "weight" [out, in], "bias" [out], PyTorch default init.
#pragma once

#include "ironclad/autograd/linear.hpp"
#include "ironclad/nn/init.hpp"
#include "ironclad/nn/module.hpp"

namespace ironclad {

class Linear : public Module {
public:
    Linear(std::int64_t in_features, std::int64_t out_features, Rng& rng, bool bias = true) {
        Tensor<float> w({out_features, in_features});
        init::kaiming_normal(w, rng);
        weight_ = register_parameter("weight", w);
        if (bias) {
            Tensor<float> b({out_features});
            init::uniform_fan_in(b, in_features, rng);
            bias_ = register_parameter("bias", b);
        }
    }
    // x: [N,in] -> [N,out]
    Var forward(const Var& x) override { return linear(x, weight_, bias_); }
    std::string type_name() const override { return "Linear"; }
    Var& weight() { return weight_; }
    Var& bias() { return bias_; }

private:
    Var weight_, bias_;
};

}  // namespace ironclad

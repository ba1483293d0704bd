// BatchNorm2d: "weight" (gamma), "bias" (beta), buffers "running_mean", "running_var" (PyTorch names;
// num_batches_tracked is not kept: momentum is always set, so PyTorch never reads it).
#pragma once

#include "ironclad/autograd/norm.hpp"
#include "ironclad/nn/module.hpp"

namespace ironclad {

class BatchNorm2d : public Module {
public:
    explicit BatchNorm2d(std::int64_t channels, float momentum = 0.1f, float eps = 1e-5f)
        : momentum_(momentum), eps_(eps) {
        gamma_ = register_parameter("weight", Tensor<float>({channels}, 1.0f));
        beta_ = register_parameter("bias", Tensor<float>({channels}, 0.0f));
        running_mean_ = register_buffer("running_mean", Tensor<float>({channels}, 0.0f));
        running_var_ = register_buffer("running_var", Tensor<float>({channels}, 1.0f));
    }
    // x: [N,C,H,W] -> [N,C,H,W]
    Var forward(const Var& x) override {
        return batch_norm2d(x, gamma_, beta_, running_mean_, running_var_, is_training(), momentum_, eps_);
    }
    std::string type_name() const override { return "BatchNorm2d"; }
    Var& weight() { return gamma_; }
    Var& bias() { return beta_; }
    Tensor<float>& running_mean() { return running_mean_; }
    Tensor<float>& running_var() { return running_var_; }
    float eps() const { return eps_; }
    float momentum() const { return momentum_; }

private:
    float momentum_, eps_;
    Var gamma_, beta_;
    Tensor<float> running_mean_, running_var_;
};

}  // namespace ironclad

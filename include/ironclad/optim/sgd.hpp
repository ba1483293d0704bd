// Stochastic gradient descent with momentum, dampening, Nesterov and L2 weight decay: torch.optim.SGD.
//
// Per parameter p with gradient g (lr = the optimizer's lr times the group's lr_scale):
//   d = g + weight_decay * p
//   buf = d on the first step, else momentum * buf + (1 - dampening) * d
//   d = nesterov ? d + momentum * buf : buf          (only when momentum != 0)
//   p -= lr * d
// Momentum buffers are exported as "sgd.momentum.<group>.<index>" for resumable training.
#pragma once

#include "ironclad/optim/optimizer_state.hpp"
#include "ironclad/optim/param_group.hpp"

#include <array>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

namespace ironclad {

struct SgdOptions {
    float lr = 1e-3f;
    float momentum = 0;
    float dampening = 0;
    bool nesterov = false;
    float weight_decay = 0;  // for groups that set none
};

class Sgd {
public:
    Sgd(std::vector<ParamGroup> groups, SgdOptions options) : groups_(std::move(groups)), options_(options) {
        detail::check_param_groups(groups_, "Sgd");
        if (!(options_.lr >= 0)) throw std::invalid_argument("Sgd: invalid lr " + std::to_string(options_.lr));
        if (!(options_.momentum >= 0))
            throw std::invalid_argument("Sgd: invalid momentum " + std::to_string(options_.momentum));
        if (!(options_.weight_decay >= 0))
            throw std::invalid_argument("Sgd: invalid weight decay " + std::to_string(options_.weight_decay));
        if (options_.nesterov && (options_.momentum <= 0 || options_.dampening != 0))
            throw std::invalid_argument("Sgd: Nesterov momentum requires momentum > 0 and dampening 0");
        for (const auto& g : groups_) momentum_.emplace_back(g.params.size());
    }

    void step() {
        const float momentum = options_.momentum, keep = 1 - options_.dampening;
        const bool nesterov = options_.nesterov;
        for (std::size_t g = 0; g < groups_.size(); ++g) {
            const float lr = options_.lr * groups_[g].lr_scale;
            const float wd = groups_[g].weight_decay.value_or(options_.weight_decay);
            for (std::size_t i = 0; i < groups_[g].params.size(); ++i) {
                Var& p = groups_[g].params[i];
                if (!p.grad().defined()) continue;
                detail::check_grad_shape(p, "Sgd", g, i);
                float* w = p.value().data();
                const float* grad = p.grad().data();
                const std::int64_t n = p.value().numel();
                if (momentum == 0) {
                    detail::for_each_element(n, [=](std::int64_t k) {
                        const float d = wd != 0 ? grad[k] + wd * w[k] : grad[k];
                        w[k] -= lr * d;
                    });
                    continue;
                }
                Tensor<float>& buffer = momentum_[g][i];
                const bool first = !buffer.defined();
                if (first) buffer = Tensor<float>(p.shape());
                float* buf = buffer.data();
                detail::for_each_element(n, [=](std::int64_t k) {
                    const float d = wd != 0 ? grad[k] + wd * w[k] : grad[k];
                    buf[k] = first ? d : momentum * buf[k] + keep * d;
                    w[k] -= lr * (nesterov ? d + momentum * buf[k] : buf[k]);
                });
            }
        }
    }

    // Drops the gradients (as torch's zero_grad(set_to_none=True)): the next backward allocates fresh ones.
    void zero_grad() {
        for (auto& g : groups_)
            for (auto& p : g.params) p.zero_grad();
    }

    void set_lr(float lr) {
        if (!(lr >= 0)) throw std::invalid_argument("Sgd::set_lr: invalid lr " + std::to_string(lr));
        options_.lr = lr;
    }
    float lr() const { return options_.lr; }
    const SgdOptions& options() const { return options_; }
    const std::vector<ParamGroup>& groups() const { return groups_; }

    // A copy of the momentum buffers that exist (a parameter gets one at its first update).
    std::vector<std::pair<std::string, Tensor<float>>> state() const {
        std::vector<std::pair<std::string, Tensor<float>>> out;
        for (std::size_t g = 0; g < momentum_.size(); ++g)
            for (std::size_t i = 0; i < momentum_[g].size(); ++i)
                if (momentum_[g][i].defined())
                    out.emplace_back(detail::state_name("sgd", "momentum", g, i), momentum_[g][i].clone());
        return out;
    }

    // Replaces all state with `state` (as produced by state(), possibly via a checkpoint); parameters
    // without an entry start afresh. Nothing changes if any entry is invalid.
    void load_state(const std::vector<std::pair<std::string, Tensor<float>>>& state) {
        static constexpr std::array<detail::StateSlot, 1> slots{{{"momentum", true}}};
        const auto entries = detail::parse_state(state, "sgd", slots, groups_);
        for (auto& group : momentum_)
            for (auto& buffer : group) buffer = Tensor<float>();
        for (const auto& e : entries) momentum_[e.group][e.index] = e.tensor->clone();
    }

private:
    std::vector<ParamGroup> groups_;
    SgdOptions options_;
    std::vector<std::vector<Tensor<float>>> momentum_;  // [group][index]; undefined until first update
};

}  // namespace ironclad

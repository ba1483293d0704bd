// Adam and AdamW: torch.optim.Adam / torch.optim.AdamW (without amsgrad).
//
// Per parameter p with gradient g, at its step t = 1, 2, ... (lr = the optimizer's lr times the group's
// lr_scale, wd = the group's weight decay):
//   Adam:  g += wd * p                       AdamW: p *= 1 - lr * wd   (decoupled decay)
//   m = beta1 * m + (1 - beta1) * g
//   v = beta2 * v + (1 - beta2) * g * g
//   p -= lr / (1 - beta1^t) * m / (sqrt(v) / sqrt(1 - beta2^t) + eps)
// Hyper-parameters are doubles, and the per-step coefficients are computed in double before rounding to
// float, as torch does with Python floats. Each parameter counts its own steps (a parameter that received no
// gradient did not step). State is exported as "adam.{exp_avg,exp_avg_sq,step}.<group>.<index>"; the step
// count travels as a float of shape [1], exact up to 2^24 steps.
#pragma once

#include "ironclad/optim/optimizer_state.hpp"
#include "ironclad/optim/param_group.hpp"

#include <array>
#include <cmath>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

namespace ironclad {

struct AdamOptions {
    float lr = 1e-3f;
    double beta1 = 0.9;
    double beta2 = 0.999;
    double eps = 1e-8;
    float weight_decay = 0;               // for groups that set none
    bool decoupled_weight_decay = false;  // true: AdamW
};

class Adam {
public:
    Adam(std::vector<ParamGroup> groups, AdamOptions options) : groups_(std::move(groups)), options_(options) {
        detail::check_param_groups(groups_, "Adam");
        if (!(options_.lr >= 0)) throw std::invalid_argument("Adam: invalid lr " + std::to_string(options_.lr));
        if (!(options_.beta1 >= 0 && options_.beta1 < 1) || !(options_.beta2 >= 0 && options_.beta2 < 1))
            throw std::invalid_argument("Adam: betas must lie in [0, 1), got " + std::to_string(options_.beta1) +
                                        ", " + std::to_string(options_.beta2));
        if (!(options_.eps >= 0)) throw std::invalid_argument("Adam: invalid eps " + std::to_string(options_.eps));
        if (!(options_.weight_decay >= 0))
            throw std::invalid_argument("Adam: invalid weight decay " + std::to_string(options_.weight_decay));
        for (const auto& g : groups_) state_.emplace_back(g.params.size());
    }

    void step() {
        const double beta1 = options_.beta1, beta2 = options_.beta2;
        const auto b1 = static_cast<float>(beta1), b2 = static_cast<float>(beta2);
        const auto one_minus_b1 = static_cast<float>(1 - beta1), one_minus_b2 = static_cast<float>(1 - beta2);
        const auto eps = static_cast<float>(options_.eps);
        for (std::size_t g = 0; g < groups_.size(); ++g) {
            const double lr = static_cast<double>(options_.lr) * groups_[g].lr_scale;
            const double wd = groups_[g].weight_decay.value_or(options_.weight_decay);
            const bool decoupled = options_.decoupled_weight_decay;
            const auto l2 = static_cast<float>(decoupled ? 0.0 : wd);
            const auto shrink = static_cast<float>(1 - lr * (decoupled ? wd : 0.0));
            for (std::size_t i = 0; i < groups_[g].params.size(); ++i) {
                Var& p = groups_[g].params[i];
                if (!p.grad().defined()) continue;
                detail::check_grad_shape(p, "Adam", g, i);
                Moments& s = state_[g][i];
                if (s.step == 0) {
                    s.exp_avg = Tensor<float>(p.shape());
                    s.exp_avg_sq = Tensor<float>(p.shape());
                }
                ++s.step;
                const double t = static_cast<double>(s.step);
                const auto step_size = static_cast<float>(lr / (1 - std::pow(beta1, t)));
                const auto correction2_sqrt = static_cast<float>(std::sqrt(1 - std::pow(beta2, t)));
                float* w = p.value().data();
                const float* grad = p.grad().data();
                float* m = s.exp_avg.data();
                float* v = s.exp_avg_sq.data();
                detail::for_each_element(p.value().numel(), [=](std::int64_t k) {
                    const float d = l2 != 0 ? grad[k] + l2 * w[k] : grad[k];
                    w[k] *= shrink;
                    m[k] = m[k] * b1 + one_minus_b1 * d;
                    v[k] = v[k] * b2 + one_minus_b2 * d * d;
                    w[k] -= step_size * (m[k] / (std::sqrt(v[k]) / correction2_sqrt + eps));
                });
            }
        }
    }

    // Drops the gradients (as torch's zero_grad(set_to_none=True)).
    void zero_grad() {
        for (auto& g : groups_)
            for (auto& p : g.params) p.zero_grad();
    }

    void set_lr(float lr) {
        if (!(lr >= 0)) throw std::invalid_argument("Adam::set_lr: invalid lr " + std::to_string(lr));
        options_.lr = lr;
    }
    float lr() const { return options_.lr; }
    const AdamOptions& options() const { return options_; }
    const std::vector<ParamGroup>& groups() const { return groups_; }

    // A copy of the state of every parameter that has stepped.
    std::vector<std::pair<std::string, Tensor<float>>> state() const {
        std::vector<std::pair<std::string, Tensor<float>>> out;
        for (std::size_t g = 0; g < state_.size(); ++g)
            for (std::size_t i = 0; i < state_[g].size(); ++i) {
                const Moments& s = state_[g][i];
                if (s.step == 0) continue;
                out.emplace_back(detail::state_name("adam", "exp_avg", g, i), s.exp_avg.clone());
                out.emplace_back(detail::state_name("adam", "exp_avg_sq", g, i), s.exp_avg_sq.clone());
                out.emplace_back(detail::state_name("adam", "step", g, i),
                                 Tensor<float>({1}, {static_cast<float>(s.step)}));
            }
        return out;
    }

    // Replaces all state with `state` (as produced by state()); parameters without entries start afresh.
    // A parameter's three entries must come together. Nothing changes if any entry is invalid.
    void load_state(const std::vector<std::pair<std::string, Tensor<float>>>& state) {
        static constexpr std::array<detail::StateSlot, 3> slots{
            {{"exp_avg", true}, {"exp_avg_sq", true}, {"step", false}}};
        const auto entries = detail::parse_state(state, "adam", slots, groups_);
        std::vector<std::vector<Moments>> loaded;
        for (const auto& g : groups_) loaded.emplace_back(g.params.size());
        std::vector<std::vector<int>> found;  // bit s set: slot s present
        for (const auto& g : groups_) found.emplace_back(g.params.size(), 0);
        std::vector<std::string> problems;
        for (const auto& e : entries) {
            Moments& s = loaded[e.group][e.index];
            found[e.group][e.index] |= 1 << e.slot;
            if (e.slot == 0) s.exp_avg = e.tensor->clone();
            if (e.slot == 1) s.exp_avg_sq = e.tensor->clone();
            if (e.slot == 2) {
                const float step = (*e.tensor)[0];
                if (!(step >= 1 && step == std::floor(step)))
                    problems.push_back(detail::state_name("adam", "step", e.group, e.index) +
                                       ": not a positive whole number: " + std::to_string(step));
                s.step = static_cast<std::int64_t>(step);
            }
        }
        for (std::size_t g = 0; g < found.size(); ++g)
            for (std::size_t i = 0; i < found[g].size(); ++i)
                if (found[g][i] != 0 && found[g][i] != 7)
                    problems.push_back("adam state of group " + std::to_string(g) + ", parameter " +
                                       std::to_string(i) + ": exp_avg, exp_avg_sq and step must come together");
        if (!problems.empty()) {
            std::string message = "adam load_state: " + std::to_string(problems.size()) + " problem(s):";
            for (const auto& p : problems) message += "\n  " + p;
            throw std::invalid_argument(message);
        }
        state_ = std::move(loaded);
    }

private:
    struct Moments {
        Tensor<float> exp_avg, exp_avg_sq;
        std::int64_t step = 0;  // 0: no state yet
    };

    std::vector<ParamGroup> groups_;
    AdamOptions options_;
    std::vector<std::vector<Moments>> state_;  // [group][index]
};

}  // namespace ironclad

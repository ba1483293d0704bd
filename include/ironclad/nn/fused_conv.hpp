// Inference fusion: conv -> batch norm [-> + residual] [-> ReLU/ReLU6] as one convolution pass.
//
// Contract: conv_bn_act(x, conv, bn, act, residual) returns act(bn(conv(x)) + residual) (act and residual
// optional). It fuses when the batch norm is in eval mode, neither the conv nor the batch norm carries an output
// hook (a fault injector or probe must see their outputs), and gradients are off or none of their parameters
// needs one (an attack on a frozen model: the fused op is then one tape node for the input and the residual):
// the batch norm is folded into
// the weights, w' = w * gamma / sqrt(var + eps), b' = (b - mean) * gamma / sqrt(var + eps) + beta, and the
// residual add and a plain ReLU/ReLU6 (slot and implementation without hooks) are applied to each image's output
// while it is in cache. Folding is redone on every call from the stored parameters, so faults flipped into the
// weights or batch-norm parameters take effect. Otherwise the modules run one by one through operator(), exactly
// as unfused, except that bn_act runs the batch norm, the residual add and a plain ReLU/ReLU6 as one tape node
// (batch_norm_act: bit-identical values and gradients, and the tape keeps only its output, as training memory
// needs) when neither the batch norm nor the activation carries a hook. Fused and unfused results differ by
// float rounding only (about 1e-6 relative).
// forward_fused(seq, x) runs a Sequential with every Conv2d, BatchNorm2d[, ActivationSlot] run fused; blocks
// that form a single stage of the stage chain use it for their inner sequences, so a flattened chain and the
// model's forward stay bit-identical.
#pragma once

#include "ironclad/autograd/elementwise.hpp"
#include "ironclad/nn/activation.hpp"
#include "ironclad/nn/batch_norm.hpp"
#include "ironclad/nn/conv2d.hpp"
#include "ironclad/nn/sequential.hpp"

#include <cmath>
#include <limits>
#include <utility>

namespace ironclad {

// No parameter of the pair needs a gradient (inference, or an attack's frozen model).
inline bool conv_bn_frozen(Conv2d& conv, BatchNorm2d& bn) {
    auto frozen = [](const Var& v) { return !v.defined() || !v.requires_grad(); };
    return frozen(conv.weight()) && frozen(conv.bias()) && frozen(bn.weight()) && frozen(bn.bias());
}

inline bool can_fuse_conv_bn(Conv2d& conv, BatchNorm2d& bn) {
    return !bn.is_training() && !conv.has_output_hook() && !bn.has_output_hook() &&
           (!grad_enabled() || conv_bn_frozen(conv, bn));
}

namespace detail {

// The clamp of a plain ReLU/ReLU6 in `act` that the epilogue can apply, or false when it must run as a module.
inline bool fusable_activation(ActivationSlot* act, ConvEpilogue& e) {
    if (!act || act->has_output_hook() || act->impl().has_output_hook()) return false;
    if (dynamic_cast<ReLU*>(&act->impl())) {
        e.lo = 0.0f;
        return true;
    }
    if (dynamic_cast<ReLU6*>(&act->impl())) {
        e.lo = 0.0f, e.hi = 6.0f;
        return true;
    }
    return false;
}

}  // namespace detail

// The conv's weights and bias with the eval-mode batch norm after it folded in: {w', b'}.
inline std::pair<Tensor<float>, Tensor<float>> fold_batch_norm(Conv2d& conv, BatchNorm2d& bn) {
    const Tensor<float>& w = conv.weight().value();
    const std::int64_t outs = w.dim(0), per_out = w.numel() / outs;
    auto folded = Tensor<float>::uninitialized(w.shape());
    Tensor<float> shift({outs});
    for (std::int64_t o = 0; o < outs; ++o) {
        // The same scale as batch_norm2d's eval mode computes.
        const float scale = bn.weight().value()[o] * (1.0f / std::sqrt(bn.running_var()[o] + bn.eps()));
        for (std::int64_t i = 0; i < per_out; ++i) folded[o * per_out + i] = w[o * per_out + i] * scale;
        const float b = conv.bias().defined() ? conv.bias().value()[o] : 0.0f;
        shift[o] = (b - bn.running_mean()[o]) * scale + bn.bias().value()[o];
    }
    return {std::move(folded), std::move(shift)};
}

// act(bn(x) + residual) in any mode; one node unless the batch norm's hook must see its output.
inline Var bn_act(const Var& x, BatchNorm2d& bn, ActivationSlot* act = nullptr, const Var* residual = nullptr) {
    if (bn.has_output_hook()) {
        Var y = bn(x);
        if (residual) y = add(y, *residual);
        return act ? (*act)(y) : y;
    }
    detail::ConvEpilogue e;
    const bool act_fused = detail::fusable_activation(act, e);
    Var y = batch_norm_act(x, bn.weight(), bn.bias(), bn.running_mean(), bn.running_var(), bn.is_training(),
                           bn.momentum(), bn.eps(), residual, e.lo, e.hi);
    return act && !act_fused ? (*act)(y) : y;
}

inline Var conv_bn_act(const Var& x, Conv2d& conv, BatchNorm2d& bn, ActivationSlot* act = nullptr,
                       const Var* residual = nullptr) {
    if (!can_fuse_conv_bn(conv, bn)) return bn_act(conv(x), bn, act, residual);
    const Conv2dSpec& spec = conv.spec();
    const detail::ConvShape s =
        detail::conv_shape(x, conv.weight(), conv.bias(), Conv2dOptions{spec.stride, spec.padding, spec.groups});
    if (residual && residual->shape() != Shape{s.n, s.o, s.ho, s.wo})
        throw std::invalid_argument("conv_bn_act: residual " + shape_str(residual->shape()) +
                                    " does not match the conv output");
    const auto [folded, shift] = fold_batch_norm(conv, bn);
    detail::ConvEpilogue e;
    if (residual) e.residual = &residual->value();
    const bool act_fused = detail::fusable_activation(act, e);
    Tensor<float> out = detail::conv2d_forward(x.value(), folded, &shift, s, e);
    // With gradients on (an attack on the frozen model), one tape node: the clamp's mask read from the output
    // (for ReLU/ReLU6 the output is inside (lo, hi) exactly when the input was; NaN passes, as relu's backward
    // lets it), the gradient passed on to the residual, and the conv's input gradient with the folded weights.
    auto backward = [xv = x.value(), w = folded, s, e, y = out](Node& node) {
        // The output's gradient is complete when this runs and read by nothing else: masked in place.
        const Tensor<float>* dz = &node.grad;
        if (e.lo > -std::numeric_limits<float>::infinity()) {
            float* g = node.grad.data();
            const float* yv = y.data();
            const float lo = e.lo, hi = e.hi;
            if (hi < std::numeric_limits<float>::infinity())  // relu6
                detail::elementwise_for(node.grad.numel(), [=](std::int64_t i) {
                    if (yv[i] <= lo || yv[i] >= hi) g[i] = 0.0f;
                });
            else
                detail::elementwise_for(node.grad.numel(), [=](std::int64_t i) {
                    if (yv[i] <= lo) g[i] = 0.0f;
                });
        }
        if (node.parents.size() > 1 && node.parents[1]->requires_grad) detail::add_scaled(*node.parents[1], *dz, 1.0f);
        if (node.parents[0]->requires_grad) {
            const bool assign = !node.parents[0]->grad_accumulates();
            detail::conv2d_backward(*dz, xv, w, s, &node.parents[0]->grad, nullptr, nullptr, assign);
        }
    };
    Var y = residual ? make_result(std::move(out), {&x, residual}, std::move(backward))
                     : make_result(std::move(out), {&x}, std::move(backward));
    return act && !act_fused ? (*act)(y) : y;
}

inline Var forward_fused(Sequential& seq, const Var& x) {
    if (seq.has_output_hook()) return seq(x);  // its hook must see the sequence's output, as through operator()
    const auto& parts = seq.children();
    Var y = x;
    for (std::size_t i = 0; i < parts.size(); ++i) {
        if (auto* inner = dynamic_cast<Sequential*>(parts[i].second.get())) {
            y = forward_fused(*inner, y);
            continue;
        }
        auto* conv = dynamic_cast<Conv2d*>(parts[i].second.get());
        auto* bn = i + 1 < parts.size() ? dynamic_cast<BatchNorm2d*>(parts[i + 1].second.get()) : nullptr;
        if (!conv || !bn) {
            y = (*parts[i].second)(y);
            continue;
        }
        auto* act = i + 2 < parts.size() ? dynamic_cast<ActivationSlot*>(parts[i + 2].second.get()) : nullptr;
        y = conv_bn_act(y, *conv, *bn, act);
        i += act ? 2 : 1;
    }
    return y;
}

}  // namespace ironclad

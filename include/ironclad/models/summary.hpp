// Model summary: per-layer output shapes, parameters and multiply-accumulates for one image.
//
// Contract: summarize() runs one forward pass of zeros in eval mode without gradients, with an output hook on
// every leaf module, and lists the leaves in call order. MAC convention (as thop / ptflops count conv and
// linear layers): Conv2d = output elements * (C_in / groups) * K * K, Linear = in * out; batch norm, pooling,
// activations and additions count 0. Training modes are restored afterwards and the temporary hooks
// cleared; a leaf that already has an output hook is refused, because its hook could not be restored.
#pragma once

#include "ironclad/nn/conv2d.hpp"
#include "ironclad/nn/linear.hpp"
#include "ironclad/nn/module.hpp"

#include <cstdint>
#include <stdexcept>
#include <string>
#include <vector>

namespace ironclad {

struct LayerSummary {
    std::string name;
    std::string type;
    Shape output_shape;  // [1,...]
    std::int64_t params;
    std::int64_t macs;
};

struct ModelSummary {
    std::int64_t params;
    std::int64_t macs;  // per image
    std::vector<LayerSummary> layers;
};

namespace detail {

// MACs of one leaf for one image, from its output shape [1,...].
inline std::int64_t leaf_macs(Module& m, const Shape& out) {
    const std::int64_t out_elems = shape_numel(out);
    if (auto* conv = dynamic_cast<Conv2d*>(&m)) {
        const auto& w = conv->weight().value();  // [O, C/groups, K, K]
        return out_elems * w.dim(1) * w.dim(2) * w.dim(3);
    }
    if (auto* lin = dynamic_cast<Linear*>(&m)) return out_elems * lin->weight().value().dim(1);
    return 0;
}

}  // namespace detail

// input_shape: [1,C,H,W]
inline ModelSummary summarize(Module& model, const Shape& input_shape) {
    if (input_shape.size() != 4 || input_shape[0] != 1)
        throw std::invalid_argument("summarize: input shape must be [1,C,H,W], got " + shape_str(input_shape));
    auto modules = model.named_modules();
    std::vector<std::pair<std::string, Module*>> leaves;
    for (auto& [name, m] : modules) {
        if (!m->children().empty()) continue;
        if (m->has_output_hook())
            throw std::invalid_argument("summarize: module '" + name + "' already has an output hook");
        leaves.emplace_back(name, m);
    }
    std::vector<bool> was_training;
    for (auto& [name, m] : modules) was_training.push_back(m->is_training());

    ModelSummary summary{model.parameter_count(), 0, {}};
    for (auto& [name, m] : leaves)
        m->set_output_hook([&summary, name = name, m = m](Tensor<float>& y) {
            summary.layers.push_back(
                {name, m->type_name(), y.shape(), m->parameter_count(), detail::leaf_macs(*m, y.shape())});
        });
    auto restore = [&] {
        for (auto& [name, m] : leaves) m->set_output_hook({});
        // Pre-order: a parent's recursive train() is overridden by its children's own entries that follow.
        for (std::size_t i = 0; i < modules.size(); ++i) modules[i].second->train(was_training[i]);
    };
    try {
        model.eval();
        NoGradGuard no_grad;
        model(Var(Tensor<float>(input_shape, 0.0f)));
    } catch (...) {
        restore();
        throw;
    }
    restore();
    for (const auto& layer : summary.layers) summary.macs += layer.macs;
    return summary;
}

}  // namespace ironclad

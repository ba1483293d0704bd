// BoundedReLU: the bounded activation module that replaces a ReLU in an activation slot (nn/activation.hpp).
//
// Contract: forward is autograd/bounded.hpp's bounded_relu with this module's mode and steepness k. The bound is the
// parameter "bound" (and, in threshold mode only, the value put above it is the parameter "fill", same shape), so
// both sit in the state_dict under the slot's name ("layer1.0.relu1.bound"), train like weights and are fault
// sites like weights (fault/sites.hpp takes every parameter of a leaf whose type name contains "Bounded").
// Granularity says what one bound element covers: the whole layer ([1]), one channel ([C]) or one neuron (the
// per-sample activation shape, e.g. [C,H,W]); the constructor checks the bound's shape against it.
#pragma once

#include "ironclad/autograd/bounded.hpp"
#include "ironclad/nn/module.hpp"

#include <stdexcept>
#include <string>

namespace ironclad {

enum class BoundGranularity { layer, channel, neuron };

inline const char* to_string(BoundGranularity g) {
    return g == BoundGranularity::layer ? "layer" : g == BoundGranularity::channel ? "channel" : "neuron";
}

inline BoundGranularity parse_bound_granularity(const std::string& s) {
    for (BoundGranularity g : {BoundGranularity::layer, BoundGranularity::channel, BoundGranularity::neuron})
        if (s == to_string(g)) return g;
    throw std::invalid_argument("unknown bound granularity '" + s + "': expected layer, channel or neuron");
}

// The bound shape of granularity g for activations shaped `activation` ([N, C, ...] or [N, F]).
inline Shape bound_shape(BoundGranularity g, const Shape& activation) {
    if (activation.size() < 2)
        throw std::invalid_argument("bound_shape: activation " + shape_str(activation) + " has no per-sample shape");
    switch (g) {
        case BoundGranularity::layer:
            return {1};
        case BoundGranularity::channel:
            return {activation[1]};
        case BoundGranularity::neuron:
            return Shape(activation.begin() + 1, activation.end());
    }
    return {};
}

class BoundedReLU : public Module {
public:
    BoundedReLU(Tensor<float> bound, BoundMode mode, BoundGranularity granularity, float k = 20.0f,
                Tensor<float> fill = {})
        : mode_(mode), granularity_(granularity), k_(k) {
        const Shape& s = bound.shape();
        const bool fits = granularity == BoundGranularity::layer     ? s == Shape{1}
                          : granularity == BoundGranularity::channel ? s.size() == 1
                                                                     : !s.empty();
        if (!fits)
            throw std::invalid_argument(std::string("BoundedReLU: bound shape ") + shape_str(s) + " does not fit " +
                                        to_string(granularity) + " granularity");
        if (mode == BoundMode::smooth && !(k > 0))
            throw std::invalid_argument("BoundedReLU: smooth mode needs a positive steepness k");
        if ((mode == BoundMode::threshold) != fill.defined())
            throw std::invalid_argument("BoundedReLU: a fill value is needed in threshold mode, and only there");
        if (fill.defined() && fill.shape() != s)
            throw std::invalid_argument("BoundedReLU: fill shape " + shape_str(fill.shape()) + " differs from bound " +
                                        shape_str(s));
        bound_ = register_parameter("bound", std::move(bound));
        if (fill.defined()) fill_ = register_parameter("fill", std::move(fill));
    }

    Var forward(const Var& x) override { return bounded_relu(x, bound_, mode_, k_, fill_); }
    std::string type_name() const override { return "BoundedReLU"; }

    Var& bound() { return bound_; }
    Var& fill() { return fill_; }  // undefined unless threshold mode
    BoundMode mode() const { return mode_; }
    BoundGranularity granularity() const { return granularity_; }
    float k() const { return k_; }

private:
    BoundMode mode_;
    BoundGranularity granularity_;
    float k_;
    Var bound_, fill_;
};

}  // namespace ironclad

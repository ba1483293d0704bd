// Fixed-point storage emulation (the reference toolbox's mode): values are stored in a number format Q and
// computed on in float. quantize_parameters rounds every parameter through Q once (BN running statistics are
// buffers and stay float, as in the reference); quantize_activations makes every leaf layer round its output
// through Q, so each activation buffer holds only values representable in Q.
#pragma once

#include "ironclad/nn/module.hpp"

namespace ironclad {

// t[i] = round(t[i]) for every element.
template <class Round>
void round_each(Tensor<float>& t, Round round) {
    float* p = t.data();
    const std::int64_t n = t.numel();
#pragma omp parallel for schedule(static) if (n > 65536)
    for (std::int64_t i = 0; i < n; ++i) p[i] = round(p[i]);
}

// Round every element through Q: t[i] = float(Q(t[i])) (Q's rounding and overflow policies apply).
template <class Q>
void round_through(Tensor<float>& t) {
    round_each(t, [](float v) { return static_cast<float>(Q(v)); });
}

// Sets (or, with an empty hook, clears) the output hook of every leaf module (one with no children).
inline void set_leaf_output_hooks(Module& model, const OutputHook& hook) {
    for (auto& [name, m] : model.named_modules())
        if (m->children().empty()) m->set_output_hook(hook);
}

template <class Q>
void quantize_parameters(Module& model) {
    for (auto& [name, p] : model.named_parameters()) round_through<Q>(p.value());
}

// Installs an output hook on every leaf module (one with no children); replaces existing hooks.
template <class Q>
void quantize_activations(Module& model) {
    set_leaf_output_hooks(model, [](Tensor<float>& y) { round_through<Q>(y); });
}

inline void clear_output_hooks(Module& model) {
    for (auto& [name, m] : model.named_modules()) m->set_output_hook({});
}

}  // namespace ironclad

// Stages: a model's forward pass as a flat chain of modules, so that it can be restarted from any boundary.
//
// Contract: flatten_stages(m) lists modules s_1..s_k with m.forward(x) == s_k(...s_1(x)) (each called through
// operator(), so output hooks run as in forward). A module is split into its own stages() recursively unless it
// has none or carries an output hook of its own (splitting would skip the hook); the root's hook, if any, is not
// part of the chain unless the root is its own single stage. run_stages(stages, from, x) runs s_from..s_k on x, the output of s_from-1.
// stage_of_module maps a dotted module name to the index of the stage that contains it (-1: in no stage, e.g. a
// module forward() never calls through the chain).
#pragma once

#include "ironclad/nn/module.hpp"

#include <map>
#include <string>
#include <vector>

namespace ironclad {

namespace detail {
inline void append_stages(Module& m, bool is_root, std::vector<Module*>& out) {
    const auto parts = m.stages();
    if (parts.empty() || (!is_root && m.has_output_hook())) {
        out.push_back(&m);
        return;
    }
    for (Module* part : parts) append_stages(*part, false, out);
}
}  // namespace detail

inline std::vector<Module*> flatten_stages(Module& model) {
    std::vector<Module*> out;
    detail::append_stages(model, true, out);
    return out;
}

inline Var run_stages(const std::vector<Module*>& stages, std::size_t from, Var x) {
    for (std::size_t i = from; i < stages.size(); ++i) x = (*stages[i])(x);
    return x;
}

// Dotted name of every module inside a stage -> that stage's index (a stage's own name included; an unnamed stage,
// such as a pooling layer that is not registered, maps nothing).
inline std::map<std::string, int> stage_of_module(Module& model, const std::vector<Module*>& stages) {
    std::map<const Module*, int> index;
    for (std::size_t i = 0; i < stages.size(); ++i) index[stages[i]] = static_cast<int>(i);
    std::map<std::string, int> out;
    std::vector<std::pair<std::string, int>> open;  // stage prefixes seen so far (pre-order)
    for (auto& [name, m] : model.named_modules()) {
        int stage = -1;
        if (auto it = index.find(m); it != index.end()) {
            stage = it->second;
            open.emplace_back(name, stage);
        } else {
            for (auto& [prefix, s] : open)
                if (prefix.empty() || name.starts_with(prefix + ".") || name == prefix) stage = s;
        }
        if (stage >= 0) out[name] = stage;
    }
    return out;
}

}  // namespace ironclad

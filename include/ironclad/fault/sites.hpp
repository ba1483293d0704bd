// Fault sites: the tensors (weights) and layer outputs (activations) of a model that faults may hit.
//
// Contract: weight sites are, in state_dict order, the weight and bias of every Conv2d and Linear, the weight and
// bias of every BatchNorm2d when include_bn is set, and every parameter of a bounded activation (its bounds) when
// include_bounds is set. Activation sites are, in registration order, every activation slot and every Conv2d,
// Linear, BatchNorm2d and pooling layer: each writes a fresh output buffer, which the fault hook changes in place.
// A non-empty `layers` list keeps only sites whose module name equals one of its entries or starts with it
// followed by '.'; with require_match, an entry that selects nothing is an error naming it (a campaign on both
// sites checks the entries against the union of the two lists instead).
#pragma once

#include "ironclad/nn/activation.hpp"
#include "ironclad/nn/module.hpp"

#include <set>
#include <stdexcept>
#include <string>
#include <vector>

namespace ironclad {

struct WeightSite {
    std::string name;    // parameter name, e.g. "layer1.0.conv1.weight"
    std::string module;  // owning module, e.g. "layer1.0.conv1"
    Tensor<float> values;
};

struct ActivationSite {
    std::string name;  // module name, e.g. "layer1.0.relu1"
    Module* module;
};

// The module a dotted parameter name belongs to: "layer1.0.conv1.weight" -> "layer1.0.conv1".
inline std::string parameter_module(const std::string& parameter) {
    const auto dot = parameter.rfind('.');
    return dot == std::string::npos ? std::string() : parameter.substr(0, dot);
}

namespace detail {
inline bool selected(const std::string& module, const std::vector<std::string>& layers) {
    if (layers.empty()) return true;
    for (const auto& l : layers)
        if (module == l || module.starts_with(l + ".")) return true;
    return false;
}
inline void check_layers_used(const std::vector<std::string>& layers, const std::vector<std::string>& modules,
                              const char* what) {
    for (const auto& l : layers) {
        bool used = false;
        for (const auto& m : modules) used = used || m == l || m.starts_with(l + ".");
        if (!used) throw std::invalid_argument("--layers: '" + l + "' names no " + what + " of this model");
    }
}
inline bool is_bounded_activation(const Module& m) { return m.type_name().find("Bounded") != std::string::npos; }
}  // namespace detail

inline std::vector<WeightSite> weight_sites(Module& model, const std::vector<std::string>& layers,
                                            bool include_bn = false, bool include_bounds = true,
                                            bool require_match = true) {
    std::vector<WeightSite> out;
    std::vector<std::string> candidates;
    for (auto& [name, m] : model.named_modules()) {
        const std::string type = m->type_name();
        const bool eligible = type == "Conv2d" || type == "Linear" || (include_bn && type == "BatchNorm2d") ||
                              (include_bounds && m->children().empty() && detail::is_bounded_activation(*m));
        if (!eligible || !m->children().empty()) continue;
        candidates.push_back(name);
        if (!detail::selected(name, layers)) continue;
        for (auto& [pname, p] : m->named_parameters())
            out.push_back({name.empty() ? pname : name + "." + pname, name, p.value()});
    }
    if (require_match) detail::check_layers_used(layers, candidates, "faultable weight layer");
    return out;
}

inline std::vector<ActivationSite> activation_sites(Module& model, const std::vector<std::string>& layers,
                                                    bool require_match = true) {
    std::vector<ActivationSite> out;
    std::vector<std::string> candidates;
    std::set<std::string> slots;
    for (auto& [name, m] : model.named_modules()) {
        const std::string type = m->type_name();
        const bool slot = dynamic_cast<ActivationSlot*>(m) != nullptr;
        if (!slot && slots.count(name)) continue;  // a slot's implementation shares the slot's name
        const bool layer = m->children().empty() &&
                           (type == "Conv2d" || type == "Linear" || type == "BatchNorm2d" || type == "MaxPool2d" ||
                            type == "AvgPool2d" || type == "AdaptiveAvgPool2d");
        if (!slot && !layer) continue;
        if (slot) slots.insert(name);
        candidates.push_back(name);
        if (detail::selected(name, layers)) out.push_back({name, m});
    }
    if (require_match) detail::check_layers_used(layers, candidates, "activation slot or layer");
    return out;
}

}  // namespace ironclad

// Bounds of a model: installing bounded activations into activation slots by name, listing them, and keeping them
// in a checkpoint.
//
// Contract:
// - install_bounds puts a BoundedReLU into each named slot (an unknown slot name is an error naming it); the
//   tensors are the module's own (not shared with the SlotBound). bounded_slots lists the installed ones in slot
//   order (= forward order for the zoo's models).
// - A hardened checkpoint is an ordinary model checkpoint (training/checkpoint.hpp) whose state_dict includes
//   "<slot>.bound" (and "<slot>.fill"), plus metadata: bound_method, bound_mode, bound_granularity (summaries;
//   "mixed" / "hybrid" where slots differ) and bound_slots, a JSON list of {slot, mode, granularity, k, shape}.
//   install_bounds_from_metadata rebuilds those activations (zero-filled, the recorded shapes), so that
//   load_model then fills bounds and weights by name; a file without bound_slots installs nothing.
// - SwappedActivations puts other activations into slots for its lifetime (e.g. the unbounded teacher of ProAct)
//   and restores the previous ones when it ends.
#pragma once

#include "ironclad/bounds/bounded_relu.hpp"
#include "ironclad/nn/activation.hpp"
#include "ironclad/training/checkpoint.hpp"

#include <nlohmann/json.hpp>

#include <map>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

namespace ironclad {

// One slot's bounded activation, as a value.
struct SlotBound {
    std::string slot;  // e.g. "layer1.0.relu1"
    BoundMode mode = BoundMode::zero;
    BoundGranularity granularity = BoundGranularity::layer;
    float k = 20.0f;
    Tensor<float> bound, fill;  // fill: threshold mode only
};

inline ActivationSlot& find_slot(Module& model, const std::string& name) {
    for (auto& [slot_name, slot] : activation_slots(model))
        if (slot_name == name) return *slot;
    throw std::invalid_argument("no activation slot named '" + name + "' in this model");
}

inline BoundedReLU* bounded_activation(ActivationSlot& slot) { return dynamic_cast<BoundedReLU*>(&slot.impl()); }

inline void install_bounds(Module& model, const std::vector<SlotBound>& bounds) {
    for (const SlotBound& b : bounds)
        find_slot(model, b.slot).replace(std::make_shared<BoundedReLU>(
            b.bound.clone(), b.mode, b.granularity, b.k, b.fill.defined() ? b.fill.clone() : Tensor<float>()));
}

// The bounded activations installed in `model`, in slot order (tensors are copies).
inline std::vector<SlotBound> bounded_slots(Module& model) {
    std::vector<SlotBound> out;
    for (auto& [name, slot] : activation_slots(model))
        if (BoundedReLU* b = bounded_activation(*slot))
            out.push_back({name, b->mode(), b->granularity(), b->k(), b->bound().value().clone(),
                           b->fill().defined() ? b->fill().value().clone() : Tensor<float>()});
    return out;
}

// Elements of all bounds (and fill values): the parameters bounding adds to a model.
inline std::int64_t bound_parameter_count(Module& model) {
    std::int64_t n = 0;
    for (auto& [name, slot] : activation_slots(model))
        if (BoundedReLU* b = bounded_activation(*slot)) n += b->parameter_count();
    return n;
}

// The checkpoint metadata describing model's bounded activations (empty when it has none).
inline std::map<std::string, std::string> bounds_metadata(Module& model, const std::string& method) {
    const auto slots = bounded_slots(model);
    if (slots.empty()) return {};
    nlohmann::ordered_json list = nlohmann::ordered_json::array();
    std::string mode = to_string(slots.front().mode), granularity = to_string(slots.front().granularity);
    for (std::size_t i = 0; i < slots.size(); ++i) {
        const SlotBound& s = slots[i];
        list.push_back({{"slot", s.slot},
                        {"mode", to_string(s.mode)},
                        {"granularity", to_string(s.granularity)},
                        {"k", s.k},
                        {"shape", s.bound.shape()}});
        if (mode != to_string(s.mode)) mode = "mixed";
        if (granularity != to_string(s.granularity))
            granularity = i + 1 == slots.size() && granularity != "mixed" ? "hybrid" : "mixed";
    }
    return {{"bound_method", method},
            {"bound_mode", mode},
            {"bound_granularity", granularity},
            {"bound_slots", list.dump()}};
}

// Installs zero-filled bounded activations as `metadata` (bound_slots) records them; returns how many.
inline std::size_t install_bounds_from_metadata(Module& model, const std::map<std::string, std::string>& metadata,
                                                const std::string& source) {
    const auto it = metadata.find("bound_slots");
    if (it == metadata.end()) return 0;
    std::vector<SlotBound> bounds;
    try {
        for (const auto& j : nlohmann::json::parse(it->second)) {
            SlotBound b;
            b.slot = j.at("slot").get<std::string>();
            b.mode = parse_bound_mode(j.at("mode").get<std::string>());
            b.granularity = parse_bound_granularity(j.at("granularity").get<std::string>());
            b.k = j.at("k").get<float>();
            b.bound = Tensor<float>(j.at("shape").get<Shape>());
            if (b.mode == BoundMode::threshold) b.fill = Tensor<float>(b.bound.shape());
            bounds.push_back(std::move(b));
        }
        install_bounds(model, bounds);
    } catch (const std::exception& e) {  // nlohmann's errors and ours: name the file
        throw std::runtime_error(source + ": bad bound_slots metadata: " + e.what());
    }
    return bounds.size();
}

// A checkpoint of model (weights and bounds) with `metadata` plus the bounds' description.
inline void save_hardened_model(const std::filesystem::path& path, Module& model, const std::string& method,
                                std::map<std::string, std::string> metadata) {
    for (auto& [key, value] : bounds_metadata(model, method)) metadata[key] = value;
    save_model(path, model, metadata);
}

class SwappedActivations {
public:
    SwappedActivations(Module& model, const std::map<std::string, std::shared_ptr<Module>>& activations) {
        for (auto& [name, slot] : activation_slots(model)) {
            const auto it = activations.find(name);
            if (it == activations.end()) continue;
            saved_.emplace_back(slot, slot->children().front().second);
            slot->replace(it->second);
        }
    }
    SwappedActivations(const SwappedActivations&) = delete;
    SwappedActivations& operator=(const SwappedActivations&) = delete;
    ~SwappedActivations() {
        for (auto& [slot, impl] : saved_) slot->replace(impl);
    }

private:
    std::vector<std::pair<ActivationSlot*, std::shared_ptr<Module>>> saved_;
};

// The current activation of every slot, by name (to swap back in later).
inline std::map<std::string, std::shared_ptr<Module>> current_activations(Module& model) {
    std::map<std::string, std::shared_ptr<Module>> out;
    for (auto& [name, slot] : activation_slots(model)) out[name] = slot->children().front().second;
    return out;
}

}  // namespace ironclad

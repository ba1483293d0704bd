// Activations and the activation slot.
//
// Every ReLU of a model sits in its own ActivationSlot (never one object reused at two places), so a
// bounded activation can later replace it by name, and slots can be listed in forward order.
#pragma once

#include "ironclad/autograd/activations.hpp"
#include "ironclad/nn/module.hpp"

namespace ironclad {

class ReLU : public Module {
public:
    Var forward(const Var& x) override { return relu(x); }
    std::string type_name() const override { return "ReLU"; }
};

class ReLU6 : public Module {
public:
    Var forward(const Var& x) override { return relu6(x); }
    std::string type_name() const override { return "ReLU6"; }
};

// A named, replaceable activation. Its implementation is a child with an empty name, so the slot adds no
// name level: parameters of a bounded activation (e.g. "layer1.0.relu1.bound") appear under the slot's name.
class ActivationSlot : public Module {
public:
    explicit ActivationSlot(std::shared_ptr<Module> impl) { register_module("", std::move(impl)); }
    Var forward(const Var& x) override { return impl()(x); }
    std::string type_name() const override { return children().front().second->type_name(); }
    Module& impl() { return *children().front().second; }
    void replace(std::shared_ptr<Module> impl) {
        if (!impl) throw std::invalid_argument("ActivationSlot::replace: null activation");
        replace_child(0, std::move(impl));
    }
};

inline std::shared_ptr<ActivationSlot> relu_slot() { return std::make_shared<ActivationSlot>(std::make_shared<ReLU>()); }
inline std::shared_ptr<ActivationSlot> relu6_slot() {
    return std::make_shared<ActivationSlot>(std::make_shared<ReLU6>());
}

// Every activation slot of a model, in registration order (equal to forward order for the zoo's models).
inline std::vector<std::pair<std::string, ActivationSlot*>> activation_slots(Module& model) {
    std::vector<std::pair<std::string, ActivationSlot*>> out;
    for (auto& [name, m] : model.named_modules())
        if (auto* slot = dynamic_cast<ActivationSlot*>(m)) out.emplace_back(name, slot);
    return out;
}

}  // namespace ironclad

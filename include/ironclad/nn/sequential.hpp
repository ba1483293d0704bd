// Sequential: children run in order, named "0", "1", ... unless given names.
#pragma once

#include "ironclad/nn/module.hpp"

namespace ironclad {

class Sequential : public Module {
public:
    Sequential() = default;
    template <class M>
    std::shared_ptr<M> add(std::shared_ptr<M> m) {
        return register_module(std::to_string(children().size()), std::move(m));
    }
    template <class M>
    std::shared_ptr<M> add(std::string name, std::shared_ptr<M> m) {
        return register_module(std::move(name), std::move(m));
    }
    Var forward(const Var& x) override {
        Var y = x;
        for (auto& [name, m] : children()) y = (*m)(y);
        return y;
    }
    std::string type_name() const override { return "Sequential"; }
    std::vector<Module*> stages() override {
        std::vector<Module*> out;
        for (auto& [name, m] : children()) out.push_back(m.get());
        return out;
    }
    std::size_t size() const { return children().size(); }
};

}  // namespace ironclad

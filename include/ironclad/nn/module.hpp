// Module: the unit of network composition (PyTorch's nn.Module, without the magic).
//
// Contract: a Module owns named parameters (trainable Vars), named buffers (float tensors such as BN running
// statistics) and named children, all in registration order, so names and order equal PyTorch's state_dict
// ("layer1.0.conv1.weight"). forward() is virtual: networks are composed at run time, never through template
// recursion, which keeps compile times flat. operator() runs forward and then the module's output hook, the
// single place where fixed-point storage emulation and activation fault injection touch a layer's output.
#pragma once

#include "ironclad/autograd/variable.hpp"

#include <functional>
#include <memory>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

namespace ironclad {

// Called on a module's output tensor, in place, after forward (never recorded on the tape).
using OutputHook = std::function<void(Tensor<float>&)>;

class Module {
public:
    Module() = default;
    Module(const Module&) = delete;
    Module& operator=(const Module&) = delete;
    virtual ~Module() = default;

    virtual Var forward(const Var& x) = 0;
    // PyTorch-style class name, for summaries and error messages.
    virtual std::string type_name() const = 0;

    Var operator()(const Var& x) {
        Var y = forward(x);
        if (output_hook_) output_hook_(y.value());
        return y;
    }

    void set_output_hook(OutputHook hook) { output_hook_ = std::move(hook); }
    bool has_output_hook() const { return static_cast<bool>(output_hook_); }
    const OutputHook& output_hook() const { return output_hook_; }

    // The modules forward() calls one after the other, each through operator() on the previous one's output, when
    // forward is exactly that chain; empty (the default) when it is not. Lets a fault campaign restart a forward
    // pass from a cached intermediate output instead of the input (see nn/stages.hpp).
    virtual std::vector<Module*> stages() { return {}; }

    void train(bool on = true) {
        training_ = on;
        for (auto& [name, child] : children_) child->train(on);
    }
    void eval() { train(false); }
    bool is_training() const { return training_; }

    const std::vector<std::pair<std::string, std::shared_ptr<Module>>>& children() const { return children_; }
    // The direct child registered as `name`, or null.
    Module* child(const std::string& name) const {
        for (auto& [n, c] : children_)
            if (n == name) return c.get();
        return nullptr;
    }

    // Every parameter of this module and its descendants, with dotted PyTorch names.
    std::vector<std::pair<std::string, Var>> named_parameters() const {
        std::vector<std::pair<std::string, Var>> out;
        collect_parameters("", out);
        return out;
    }
    std::vector<Var> parameters() const {
        std::vector<Var> out;
        for (auto& [name, p] : named_parameters()) out.push_back(p);
        return out;
    }
    std::vector<std::pair<std::string, Tensor<float>>> named_buffers() const {
        std::vector<std::pair<std::string, Tensor<float>>> out;
        collect_buffers("", out);
        return out;
    }
    // Parameters and buffers, module by module in registration order, as PyTorch's state_dict().
    // The tensors share storage with the module: writing into them loads weights.
    std::vector<std::pair<std::string, Tensor<float>>> state_dict() const {
        std::vector<std::pair<std::string, Tensor<float>>> out;
        collect_state("", out);
        return out;
    }
    // Every module in the tree (pre-order) with its dotted name; the root is "".
    std::vector<std::pair<std::string, Module*>> named_modules() {
        std::vector<std::pair<std::string, Module*>> out;
        collect_modules("", out);
        return out;
    }
    std::int64_t parameter_count() const {
        std::int64_t n = 0;
        for (auto& [name, p] : named_parameters()) n += p.value().numel();
        return n;
    }

protected:
    Var& register_parameter(std::string name, Tensor<float> value) {
        params_.emplace_back(std::move(name), Var(std::move(value), true));
        return params_.back().second;
    }
    Tensor<float>& register_buffer(std::string name, Tensor<float> value) {
        buffers_.emplace_back(std::move(name), std::move(value));
        return buffers_.back().second;
    }
    template <class M>
    std::shared_ptr<M> register_module(std::string name, std::shared_ptr<M> module) {
        if (!module) throw std::invalid_argument("register_module: null module '" + name + "'");
        children_.emplace_back(std::move(name), module);
        return module;
    }
    void replace_child(std::size_t index, std::shared_ptr<Module> module) {
        module->train(training_);
        children_.at(index).second = std::move(module);
    }

private:
    static std::string join(const std::string& prefix, const std::string& name) {
        // An empty child name adds no level (ActivationSlot's implementation shares the slot's name).
        if (name.empty()) return prefix;
        return prefix.empty() ? name : prefix + "." + name;
    }
    void collect_parameters(const std::string& prefix, std::vector<std::pair<std::string, Var>>& out) const {
        for (auto& [name, p] : params_) out.emplace_back(join(prefix, name), p);
        for (auto& [name, c] : children_) c->collect_parameters(join(prefix, name), out);
    }
    void collect_buffers(const std::string& prefix, std::vector<std::pair<std::string, Tensor<float>>>& out) const {
        for (auto& [name, b] : buffers_) out.emplace_back(join(prefix, name), b);
        for (auto& [name, c] : children_) c->collect_buffers(join(prefix, name), out);
    }
    void collect_state(const std::string& prefix, std::vector<std::pair<std::string, Tensor<float>>>& out) const {
        for (auto& [name, p] : params_) out.emplace_back(join(prefix, name), p.value());
        for (auto& [name, b] : buffers_) out.emplace_back(join(prefix, name), b);
        for (auto& [name, c] : children_) c->collect_state(join(prefix, name), out);
    }
    void collect_modules(const std::string& prefix, std::vector<std::pair<std::string, Module*>>& out) {
        out.emplace_back(prefix, this);
        for (auto& [name, c] : children_) c->collect_modules(join(prefix, name), out);
    }

    // Vars are handles: the copies in params_ and in a layer's member share one node.
    std::vector<std::pair<std::string, Var>> params_;
    std::vector<std::pair<std::string, Tensor<float>>> buffers_;
    std::vector<std::pair<std::string, std::shared_ptr<Module>>> children_;
    OutputHook output_hook_;
    bool training_ = true;
};

}  // namespace ironclad

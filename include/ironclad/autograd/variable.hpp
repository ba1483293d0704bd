// Reverse-mode, define-by-run autograd over float tensors.
//
// Contract: a Var is a handle to a Node holding a value tensor, a gradient tensor (allocated on first
// use, zero-filled) and, when recorded, the closure that pushes the node's gradient to its parents.
// An op records a node only when grad mode is on and some input requires a gradient, so inference
// (NoGradGuard, or inputs that need no gradient) carries no tape overhead. backward() runs the
// closures in reverse topological order; gradients accumulate (+=) as in PyTorch.
// Any tensor can be made trainable (parameters, clipping bounds, adversarial inputs).
#pragma once

#include "ironclad/core/tensor.hpp"

#include <algorithm>
#include <functional>
#include <memory>
#include <stdexcept>
#include <unordered_set>
#include <utility>
#include <vector>

namespace ironclad {

namespace detail {
inline thread_local bool grad_mode_enabled = true;
}

inline bool grad_enabled() { return detail::grad_mode_enabled; }

// Sets recording on or off in its scope and restores the previous mode after.
class GradModeGuard {
public:
    explicit GradModeGuard(bool enabled) : previous_(detail::grad_mode_enabled) { detail::grad_mode_enabled = enabled; }
    ~GradModeGuard() { detail::grad_mode_enabled = previous_; }
    GradModeGuard(const GradModeGuard&) = delete;
    GradModeGuard& operator=(const GradModeGuard&) = delete;

private:
    bool previous_;
};

// Disables recording in its scope (evaluation, attacks' projection steps, optimizer updates).
class NoGradGuard : public GradModeGuard {
public:
    NoGradGuard() : GradModeGuard(false) {}
};

struct Node {
    Tensor<float> value;
    Tensor<float> grad;  // empty until a gradient reaches this node
    bool requires_grad = false;
    std::vector<std::shared_ptr<Node>> parents;
    std::function<void(Node&)> backward;  // reads this->grad, accumulates into parents' grads

    // The gradient buffer, zero-allocated on first use.
    Tensor<float>& grad_buffer() {
        if (!grad.defined()) grad = Tensor<float>(value.shape());
        return grad;
    }
    // For a backward that writes every element: true when the gradient buffer already holds contributions (add
    // to it), false when it was just created uninitialized (assign, which saves zeroing it and reading it back).
    bool grad_accumulates() {
        if (grad.defined()) return true;
        grad = Tensor<float>::uninitialized(value.shape());
        return false;
    }
};

class Var {
public:
    Var() = default;
    explicit Var(Tensor<float> value, bool requires_grad = false) : node_(std::make_shared<Node>()) {
        node_->value = std::move(value);
        node_->requires_grad = requires_grad;
    }

    bool defined() const { return node_ != nullptr; }
    Tensor<float>& value() { return node_->value; }
    const Tensor<float>& value() const { return node_->value; }
    const Shape& shape() const { return node_->value.shape(); }
    std::int64_t dim(int i) const { return node_->value.dim(i); }
    // The accumulated gradient (empty tensor if none reached this node yet).
    Tensor<float>& grad() { return node_->grad; }
    const Tensor<float>& grad() const { return node_->grad; }
    Tensor<float>& grad_buffer() { return node_->grad_buffer(); }
    bool requires_grad() const { return node_ && node_->requires_grad; }
    void set_requires_grad(bool on) { node_->requires_grad = on; }
    void zero_grad() { node_->grad = Tensor<float>(); }
    Node* node() const { return node_.get(); }
    const std::shared_ptr<Node>& node_ptr() const { return node_; }

    // Same value storage, cut from the tape (like torch's detach()).
    Var detach() const { return Var(node_->value, false); }

    // Back-propagates from this node. A scalar (one element) is seeded with 1; otherwise pass the seed.
    void backward(const Tensor<float>& seed = {}) const {
        if (!node_->requires_grad) throw std::logic_error("backward: the output does not require a gradient");
        Tensor<float>& g = node_->grad_buffer();
        if (seed.defined()) {
            g.copy_from(seed);
        } else {
            if (node_->value.numel() != 1)
                throw std::logic_error("backward: output has " + std::to_string(node_->value.numel()) +
                                       " elements; pass a seed gradient");
            g[0] = 1.0f;
        }
        std::vector<Node*> order;
        std::unordered_set<Node*> seen;
        topological_order(node_.get(), seen, order);
        for (auto it = order.rbegin(); it != order.rend(); ++it) {
            Node* n = *it;
            if (n->backward && n->grad.defined()) n->backward(*n);
        }
    }

private:
    // Iterative DFS post-order: deep nets would overflow the stack with recursion.
    static void topological_order(Node* root, std::unordered_set<Node*>& seen, std::vector<Node*>& order) {
        std::vector<std::pair<Node*, std::size_t>> stack{{root, 0}};
        seen.insert(root);
        while (!stack.empty()) {
            auto& [n, next] = stack.back();
            if (next < n->parents.size()) {
                Node* p = n->parents[next++].get();
                if (p->requires_grad && seen.insert(p).second) stack.push_back({p, 0});
            } else {
                order.push_back(n);
                stack.pop_back();
            }
        }
    }

    std::shared_ptr<Node> node_;
};

// True when an op with these inputs must record a node.
inline bool needs_tape(std::initializer_list<const Var*> inputs) {
    if (!grad_enabled()) return false;
    for (const Var* v : inputs)
        if (v->requires_grad()) return true;
    return false;
}

// Builds the output Var of an op. If recording is needed, the node keeps its parents and closure.
// `backward` receives the output node; it must only touch parents that require a gradient.
inline Var make_result(Tensor<float> value, std::initializer_list<const Var*> inputs,
                       std::function<void(Node&)> backward) {
    Var out(std::move(value), false);
    if (!needs_tape(inputs)) return out;
    Node* n = out.node();
    n->requires_grad = true;
    for (const Var* v : inputs) n->parents.push_back(v->node_ptr());
    n->backward = std::move(backward);
    return out;
}

// The same for an op with a run-time number of inputs (channel concatenation).
inline Var make_result(Tensor<float> value, const std::vector<Var>& inputs, std::function<void(Node&)> backward) {
    Var out(std::move(value), false);
    const bool any = std::any_of(inputs.begin(), inputs.end(), [](const Var& v) { return v.requires_grad(); });
    if (!grad_enabled() || !any) return out;
    Node* n = out.node();
    n->requires_grad = true;
    for (const Var& v : inputs) n->parents.push_back(v.node_ptr());
    n->backward = std::move(backward);
    return out;
}

}  // namespace ironclad

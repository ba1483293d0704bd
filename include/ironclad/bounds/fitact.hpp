// FitAct (Ghavami et al., DATE 2022): fine-grained (neuron-wise) bounds of the smooth bounded ReLU, trained jointly by
// gradient descent on cross-entropy plus an L2 penalty on the bounds, the network's weights frozen.
//
// Contract: fitact trains every bound installed in `model` (bounds/bound_io.hpp; the caller installs them, from
// Ranger, in smooth mode: the other modes give the bound no useful gradient) with train_bounds. Defaults are the
// reference toolbox's: Adam lr 1e-3 with one cosine decay, coupled weight decay 4e-11 and loss term
// 4e-11 * sum over layers of mean(b^2), no distillation; epochs are the caller's (the toolbox runs 100 epochs of the
// full training set, which a 2-core machine cannot afford by default). Unlike the toolbox, training runs in eval mode
// and the final bounds are returned as trained (it selects nothing on the test set and crashes after one epoch on a
// single device, see ../shared/spec/reference-rrelu.md §2.3).
#pragma once

#include "ironclad/bounds/bound_io.hpp"
#include "ironclad/bounds/bound_training.hpp"

#include <stdexcept>

namespace ironclad {

inline BoundTrainOptions fitact_defaults() {
    BoundTrainOptions o;
    o.lr = 1e-3f;
    o.cosine = true;
    o.weight_decay = 4e-11f;
    o.l2 = 4e-11f;
    o.distill = 0;
    return o;
}

inline BoundTrainResult fitact(Module& model, const Dataset& train, const BoundTrainOptions& opt,
                               const std::function<void(std::int64_t, std::int64_t, double)>& on_step = {}) {
    std::vector<Var> bounds;
    for (auto& [name, slot] : activation_slots(model))
        if (BoundedReLU* b = bounded_activation(*slot)) {
            if (b->mode() != BoundMode::smooth)
                throw std::invalid_argument("fitact: slot '" + name + "' is in " + to_string(b->mode()) +
                                            " mode; FitAct trains smooth bounds");
            bounds.push_back(b->bound());
        }
    if (bounds.empty()) throw std::invalid_argument("fitact: the model has no bounded activation to train");
    return train_bounds(model, bounds, train, opt, {}, on_step);
}

}  // namespace ironclad

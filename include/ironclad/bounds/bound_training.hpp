// Gradient training of activation bounds with the network frozen: the loop FitAct and ProAct share.
//
// Contract: train_bounds trains only the Vars in `bounds` (every other parameter of the model is frozen for the
// call and unfrozen after), with Adam (coupled weight decay `weight_decay`, the toolboxes' shrinking force) at a
// constant learning rate or one cosine decay over the call, on `epochs` passes over `train` (loader options:
// batch size, normalisation, augmentation, shuffling seed). The loss per batch is
//   cross_entropy(logits, labels) + distill * KL(softmax(teacher) || softmax(logits)) + l2 * sum_b mean(b^2)
// (KL at temperature 1 has the gradient of the toolbox's soft cross-entropy to the teacher). The model runs in
// eval mode: batch-norm statistics stay those of the trained network, so the bounds are trained for the
// network that will be deployed (the toolbox trains in train mode and then discards the drifted statistics).
// Epoch e of a call shuffles and augments with the loader's Rng::stream(seed, e): same options, same bounds.
#pragma once

#include "ironclad/autograd/losses.hpp"
#include "ironclad/data/loader.hpp"
#include "ironclad/nn/module.hpp"
#include "ironclad/optim/adam.hpp"
#include "ironclad/optim/schedule.hpp"

#include <chrono>
#include <functional>
#include <set>
#include <stdexcept>
#include <vector>

namespace ironclad {

struct BoundTrainOptions {
    int epochs = 1;
    float lr = 1e-3f;
    bool cosine = true;        // false: constant lr
    float weight_decay = 0;    // Adam's coupled L2 on the bounds
    float l2 = 0;              // loss term l2 * sum over bound tensors of mean(b^2)
    float distill = 0;         // loss term weight of the distillation to the teacher
    LoaderOptions loader;
};

struct BoundTrainResult {
    double loss = 0;  // mean over the last epoch's batches
    std::int64_t steps = 0;
    double seconds = 0;
};

// Teacher logits for a batch of normalised images (for distillation).
using TeacherLogits = std::function<Tensor<float>(const Tensor<float>& images)>;

inline BoundTrainResult train_bounds(Module& model, const std::vector<Var>& bounds, const Dataset& train,
                                     const BoundTrainOptions& opt, const TeacherLogits& teacher = {},
                                     const std::function<void(std::int64_t step, std::int64_t steps, double loss)>&
                                         on_step = {}) {
    if (opt.epochs < 1) throw std::invalid_argument("train_bounds: epochs must be at least 1");
    if (opt.distill > 0 && !teacher) throw std::invalid_argument("train_bounds: distillation needs a teacher");
    BatchLoader loader(train, opt.loader);
    const std::int64_t batches = loader.num_batches();
    if (batches == 0) throw std::invalid_argument("train_bounds: the training set has fewer images than one batch");

    // Freeze everything but the bounds; put back each parameter's flag at the end.
    std::set<const Node*> trained;
    for (const Var& b : bounds) trained.insert(b.node());
    std::vector<std::pair<Var, bool>> flags;
    for (auto& [name, p] : model.named_parameters()) {
        flags.emplace_back(p, p.requires_grad());
        p.set_requires_grad(trained.count(p.node()) > 0);
    }
    const bool was_training = model.is_training();
    struct Restore {
        std::vector<std::pair<Var, bool>>& flags;
        Module& model;
        bool was_training;
        ~Restore() {
            for (auto& [p, on] : flags) p.set_requires_grad(on);
            model.train(was_training);
        }
    } restore{flags, model, was_training};
    model.eval();

    Adam adam({ParamGroup{bounds, opt.weight_decay}}, AdamOptions{.lr = opt.lr});
    const CosineSchedule schedule{opt.lr, static_cast<std::int64_t>(opt.epochs) * batches};
    const auto t0 = std::chrono::steady_clock::now();
    BoundTrainResult r;
    Batch batch;
    for (int epoch = 0; epoch < opt.epochs; ++epoch) {
        loader.start_epoch(epoch);
        double loss_sum = 0;
        std::int64_t seen = 0;
        while (loader.next(batch)) {
            if (opt.cosine) adam.set_lr(schedule.lr(r.steps));
            Tensor<float> soft_targets;
            if (opt.distill > 0) soft_targets = teacher(batch.images);
            Var logits = model(Var(batch.images));
            Var loss = cross_entropy(logits, batch.labels);
            if (opt.distill > 0) loss = add(loss, scale(kl_div_tempered(logits, Var(soft_targets), 1.0f), opt.distill));
            if (opt.l2 > 0)
                for (const Var& b : bounds) loss = add(loss, scale(mean(mul(b, b)), opt.l2));
            adam.zero_grad();
            loss.backward();
            adam.step();
            ++r.steps;
            ++seen;
            loss_sum += loss.value()[0];
            if (on_step) on_step(r.steps, static_cast<std::int64_t>(opt.epochs) * batches, loss_sum / seen);
        }
        r.loss = loss_sum / static_cast<double>(seen);
    }
    r.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    return r;
}

}  // namespace ironclad

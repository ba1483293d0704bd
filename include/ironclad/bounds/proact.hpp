// ProAct (Mousavi et al., arXiv 2406.06313): progressive training of the smooth bounded ReLU's bounds, one
// activation slot at a time from the output back to the input, with distillation to the unbounded network, keeping
// a slot's new bounds only while accuracy holds.
//
// Contract: the caller installs smooth bounds (Ranger's maxima; "hybrid" granularity: neuron-wise in the last slot,
// layer-wise elsewhere) and passes the slots' unbounded activations as the teacher. reference_top1 is the top-1 of
// that starting model on `held_out`, a part of the TRAINING split that is never trained on. Then, for each bounded
// slot from the last to the first, only that slot's bounds train (train_bounds with distillation, constant lr), for
// each weight decay of the sweep (strong to weak: Adam's coupled decay is what shrinks a bound that the loss does
// not hold up) for up to max_rounds rounds. After each round the held-out top-1 is measured: the round is kept while
// top1 >= reference_top1 - tolerance, otherwise the slot's bounds go back to the last kept ones and the sweep moves
// on to the next weight decay.
// Where this differs from the toolbox (../shared/spec/reference-rrelu.md §2.4): it selects on the test set and
// rejects improvements above 0.2 points too (|delta| <= 0.2); here the check is on held-out training images and one
// sided. It trains in train mode (drifting BN statistics, then discarded) and runs the student twice per batch;
// here eval mode and one student pass. The budget (rounds of a training subset instead of up to 105 full epochs per
// weight decay, a shorter sweep) is the caller's; a fresh Adam starts for every (slot, weight decay). The default lr
// is 0.1, not the toolbox's 0.01: Adam moves a bound by about lr a step, and a round here has ~30x fewer steps.
#pragma once

#include "ironclad/bounds/bound_io.hpp"
#include "ironclad/bounds/bound_training.hpp"
#include "ironclad/core/random.hpp"
#include "ironclad/training/evaluate.hpp"

#include <chrono>
#include <functional>
#include <map>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

namespace ironclad {

struct ProActOptions {
    BoundTrainOptions round = [] {
        BoundTrainOptions o;
        o.epochs = 1;
        o.lr = 0.1f;  // the toolbox's 0.01 over ~780 steps an epoch; rounds here are ~20-40 steps
        o.cosine = false;
        o.distill = 1.0f;
        return o;
    }();
    std::vector<float> weight_decays{4e-5f, 4e-6f, 4e-7f};
    int max_rounds = 2;       // per weight decay
    double tolerance = 0.2;   // top-1 points below reference_top1 that a kept round may lose
    std::uint64_t seed = 0;   // shuffling and augmentation of the rounds
};

struct ProActSlotReport {
    std::string slot;
    std::int64_t elements = 0;
    double mean_bound_before = 0, mean_bound_after = 0;
    int kept_rounds = 0, undone_rounds = 0;
};

struct ProActReport {
    double reference_top1 = 0;  // held-out top-1 of the starting (Ranger) model
    double final_top1 = 0;
    std::vector<ProActSlotReport> slots;  // in training order (last slot first)
    double seconds = 0;
};

struct ProActCallbacks {
    std::function<void(const std::string& slot, float weight_decay, int round, double top1, bool kept)> on_round;
    std::function<void(std::int64_t step, std::int64_t steps, double loss)> on_step;
};

namespace detail {
inline double mean_of(const Tensor<float>& t) {
    double s = 0;
    for (std::int64_t i = 0; i < t.numel(); ++i) s += t[i];
    return t.numel() ? s / static_cast<double>(t.numel()) : 0;
}
}  // namespace detail

inline ProActReport proact(Module& model, const std::map<std::string, std::shared_ptr<Module>>& teacher_activations,
                           const Dataset& train, const Dataset& held_out, const ProActOptions& opt,
                           const ProActCallbacks& cb = {}) {
    if (opt.max_rounds < 1) throw std::invalid_argument("proact: max_rounds must be at least 1");
    if (opt.weight_decays.empty()) throw std::invalid_argument("proact: the weight-decay sweep is empty");
    std::vector<std::pair<std::string, BoundedReLU*>> bounded;
    for (auto& [name, slot] : activation_slots(model))
        if (BoundedReLU* b = bounded_activation(*slot)) {
            if (b->mode() != BoundMode::smooth)
                throw std::invalid_argument("proact: slot '" + name + "' is in " + to_string(b->mode()) +
                                            " mode; ProAct trains smooth bounds");
            bounded.emplace_back(name, b);
        }
    if (bounded.empty()) throw std::invalid_argument("proact: the model has no bounded activation to train");

    const auto t0 = std::chrono::steady_clock::now();
    const TeacherLogits teacher = [&](const Tensor<float>& images) {
        NoGradGuard no_grad;
        SwappedActivations unbounded(model, teacher_activations);
        return model(Var(images)).value();
    };
    auto held_out_top1 = [&] { return evaluate(model, held_out, opt.round.loader).top1; };

    ProActReport report;
    report.reference_top1 = held_out_top1();
    std::uint64_t round_id = 0;
    for (auto it = bounded.rbegin(); it != bounded.rend(); ++it) {
        Var& bound = it->second->bound();
        ProActSlotReport slot{it->first, bound.value().numel(), detail::mean_of(bound.value()), 0, 0, 0};
        for (float wd : opt.weight_decays) {
            for (int r = 0; r < opt.max_rounds; ++r) {
                const Tensor<float> kept = bound.value().clone();
                BoundTrainOptions round = opt.round;
                round.weight_decay = wd;
                round.loader.seed = Rng::mix(opt.seed ^ Rng::mix(++round_id));
                train_bounds(model, {bound}, train, round, teacher, cb.on_step);
                const double top1 = held_out_top1();
                const bool keep = top1 >= report.reference_top1 - opt.tolerance;
                if (cb.on_round) cb.on_round(slot.slot, wd, r, top1, keep);
                if (keep) {
                    ++slot.kept_rounds;
                    continue;
                }
                bound.value().copy_from(kept);
                ++slot.undone_rounds;
                break;
            }
        }
        slot.mean_bound_after = detail::mean_of(bound.value());
        report.slots.push_back(slot);
    }
    report.final_top1 = held_out_top1();
    report.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    return report;
}

}  // namespace ironclad

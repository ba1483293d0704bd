// harden: replaces every ReLU slot of a trained model by a bounded activation whose bounds come from one of four
// methods, the library call behind `ironclad harden`.
//
// Contract: the model must have no bounded activation yet. From the training split, training_subsets draws (seed)
// the calibration images (all methods), the bound-training images (FitAct, ProAct) and ProAct's held-out images.
//   ranger     Ranger's maxima at the chosen granularity, in the chosen mode.
//   ftclipact  Ranger's layer maxima, then FT-ClipAct's interval search (layer granularity only), its campaigns on
//              the calibration images (or the first search_images of them: the search costs ~10 campaigns a slot).
//   fitact     Ranger's maxima in smooth mode, trained jointly (default granularity neuron); top-1 on the held-out
//              training images is measured before and after, so the training budget can be judged without the
//              test set.
//   proact     Ranger's maxima in smooth mode, trained progressively with distillation (default hybrid).
// FitAct and ProAct train in smooth mode and then switch the slots to the chosen mode (smooth by default); threshold
// mode, which needs Ranger's batch means as its fill values, is for ranger and ftclipact only.
#pragma once

#include "ironclad/bounds/fitact.hpp"
#include "ironclad/bounds/ftclipact.hpp"
#include "ironclad/bounds/proact.hpp"
#include "ironclad/bounds/ranger.hpp"
#include "ironclad/bounds/training_subsets.hpp"

#include <chrono>
#include <stdexcept>
#include <string>

namespace ironclad {

enum class HardenMethod { ranger, ftclipact, fitact, proact };

inline const char* to_string(HardenMethod m) {
    switch (m) {
        case HardenMethod::ranger:
            return "ranger";
        case HardenMethod::ftclipact:
            return "ftclipact";
        case HardenMethod::fitact:
            return "fitact";
        case HardenMethod::proact:
            return "proact";
    }
    return "?";
}

inline HardenMethod parse_harden_method(const std::string& s) {
    for (HardenMethod m : {HardenMethod::ranger, HardenMethod::ftclipact, HardenMethod::fitact, HardenMethod::proact})
        if (s == to_string(m)) return m;
    throw std::invalid_argument("unknown hardening method '" + s + "': expected ranger, ftclipact, fitact or proact");
}

// The papers' choices: Ranger and FT-ClipAct zero layer bounds, FitAct smooth neuron bounds, ProAct smooth hybrid.
inline BoundMode default_bound_mode(HardenMethod m) {
    return m == HardenMethod::fitact || m == HardenMethod::proact ? BoundMode::smooth : BoundMode::zero;
}
inline std::string default_granularity(HardenMethod m) {
    return m == HardenMethod::fitact ? "neuron" : m == HardenMethod::proact ? "hybrid" : "layer";
}

struct HardenOptions {
    HardenMethod method = HardenMethod::ranger;
    BoundMode mode = BoundMode::zero;
    std::string granularity = "layer";  // layer, channel, neuron or hybrid
    BoundGranularity hybrid_last = BoundGranularity::neuron;
    float k = 20.0f;
    SubsetSizes subsets;                // held_out and train are used by the methods that need them
    std::int64_t search_images = 0;     // ftclipact: campaigns on the first N calibration images (0: all)
    std::uint64_t seed = 0;
    LoaderOptions eval_loader;          // normalisation and batch size of calibration and held-out evaluation
    FtClipActOptions ftclipact;
    // Training batches come from fitact.loader / proact.round.loader (batch size, augmentation); their
    // normalisation is eval_loader's.
    BoundTrainOptions fitact = fitact_defaults();
    ProActOptions proact;
};

struct HardenCallbacks {
    std::function<void(const std::string& stage)> on_stage;
    std::function<void(std::int64_t step, std::int64_t steps, double loss)> on_step;
    std::function<void(const std::string& slot, int iteration, float bound, double auc)> on_campaign;
    std::function<void(const std::string& slot, float weight_decay, int round, double top1, bool kept)> on_round;
};

struct HardenReport {
    std::int64_t calibration_images = 0, train_images = 0, held_out_images = 0, search_images = 0;
    std::vector<FtClipActSlotReport> ftclipact;
    BoundTrainResult fitact;
    double fitact_start_top1 = 0, fitact_final_top1 = 0;  // held-out top-1 of the Ranger start and of FitAct's bounds
    ProActReport proact;
    double seconds = 0;
};

// Puts every bounded slot into `mode`, keeping its bounds.
inline void set_bound_mode(Module& model, BoundMode mode) {
    auto bounds = bounded_slots(model);
    for (auto& b : bounds) b.mode = mode;
    install_bounds(model, bounds);
}

inline HardenReport harden(Module& model, const Dataset& train_split, const HardenOptions& opt,
                           const HardenCallbacks& cb = {}) {
    const auto t0 = std::chrono::steady_clock::now();
    if (!bounded_slots(model).empty())
        throw std::invalid_argument("harden: the model already has bounded activations; start from an unbounded one");
    const auto slots = activation_slots(model);
    if (slots.empty()) throw std::invalid_argument("harden: the model has no activation slot to bound");
    const auto plan = granularity_plan(slots.size(), opt.granularity, opt.hybrid_last);
    const bool trains = opt.method == HardenMethod::fitact || opt.method == HardenMethod::proact;
    if (opt.method == HardenMethod::ftclipact && opt.granularity != "layer")
        throw std::invalid_argument("ftclipact searches one bound per layer: use granularity layer");
    if (trains && opt.mode == BoundMode::threshold)
        throw std::invalid_argument(std::string(to_string(opt.method)) +
                                    " trains bounds in smooth mode; threshold mode is for ranger and ftclipact");

    SubsetSizes sizes = opt.subsets;
    if (!trains) sizes.held_out = sizes.train = 0;  // only the training methods use these parts
    const TrainingSubsets parts = training_subsets(train_split, sizes, opt.seed);
    HardenReport report;
    report.calibration_images = parts.calibration.size();
    report.train_images = parts.train.size();
    report.held_out_images = parts.held_out.size();
    const auto unbounded = current_activations(model);

    if (cb.on_stage) cb.on_stage("ranger");
    const EvalSet calibration = make_eval_set(parts.calibration, opt.eval_loader);
    install_bounds(model, ranger_bounds(model, calibration, plan, trains ? BoundMode::smooth : opt.mode, opt.k));

    if (opt.method == HardenMethod::ftclipact) {
        if (cb.on_stage) cb.on_stage("ftclipact");
        const std::int64_t n = opt.search_images > 0 ? std::min(opt.search_images, parts.calibration.size())
                                                      : parts.calibration.size();
        report.search_images = n;
        const EvalSet search = make_eval_set(take(parts.calibration, 0, n), opt.eval_loader);
        report.ftclipact = ftclipact(model, search, opt.ftclipact, cb.on_campaign);
    } else if (opt.method == HardenMethod::fitact) {
        if (cb.on_stage) cb.on_stage("fitact");
        BoundTrainOptions f = opt.fitact;
        f.loader.mean = opt.eval_loader.mean;
        f.loader.std = opt.eval_loader.std;
        const bool check = parts.held_out.size() > 0;
        if (check) report.fitact_start_top1 = evaluate(model, parts.held_out, opt.eval_loader).top1;
        report.fitact = fitact(model, parts.train, f, cb.on_step);
        if (check) report.fitact_final_top1 = evaluate(model, parts.held_out, opt.eval_loader).top1;
    } else if (opt.method == HardenMethod::proact) {
        if (cb.on_stage) cb.on_stage("proact");
        ProActOptions p = opt.proact;
        p.round.loader.mean = opt.eval_loader.mean;
        p.round.loader.std = opt.eval_loader.std;
        report.proact = proact(model, unbounded, parts.train, parts.held_out, p, {cb.on_round, cb.on_step});
    }
    if (trains && opt.mode != BoundMode::smooth) set_bound_mode(model, opt.mode);
    report.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    return report;
}

}  // namespace ironclad

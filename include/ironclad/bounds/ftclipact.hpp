// FT-ClipAct (Hoang, Hanif and Shafique, DATE 2020): a per-layer interval search for the clipping bound that
// maximises the area under the accuracy-versus-fault-rate curve, measured with fault campaigns.
//
// Contract: every activation slot must hold a layer-granularity bounded activation (Ranger's maxima, installed by
// the caller). Slots are tuned one after the other in forward order, each with the earlier ones fixed at their
// chosen bounds and the later ones at Ranger's:
//   S = [0, ranger bound]; for iteration 1..N: candidates T = 4 equally spaced points of S (both ends included);
//   AUC(T) = a Campaign (fault/campaign.hpp) on the calibration set at each rate with `trials` fault maps, the mean
//   top-1 per rate joined by trapezoids over equally spaced positions, divided by the width: the average accuracy in
//   percent over the rate grid; pick i* = argmax AUC (the lowest bound on ties); S = [T0,T1] if i* = 0,
//   [T2,T3] if i* = 3, else [T(i*-1), T(i*+1)]; stop after iteration M or later once every pair of neighbouring
//   candidates' AUCs differ by at most delta points. The slot keeps T(i*) of the last iteration.
// A candidate already measured (an end point kept from the last iteration) is not measured again. Every campaign
// uses the same fault maps (trial streams depend on the seed, rate and trial only), so candidates are compared on
// equal faults. Campaigns store the weights in the fault model's format in place; the search puts every parameter
// back as it found it, then sets the chosen bounds.
// Where this differs from the toolbox (../shared/spec/reference-rrelu.md §2.2): its per-layer replacement misses
// every nested slot (names joined without dots), so it tunes only top-level activations; it measures AUC on a 0..80
// scale (so its 0.2 stop almost never fires); and it returns Ranger's maximum of the tuned model, not the tuned bound.
#pragma once

#include "ironclad/bounds/bound_io.hpp"
#include "ironclad/fault/campaign.hpp"

#include <algorithm>
#include <array>
#include <cmath>
#include <functional>
#include <map>
#include <stdexcept>
#include <string>
#include <vector>

namespace ironclad {

struct FtClipActOptions {
    int iterations = 4;      // N
    int min_iterations = 3;  // M
    double delta = 0.2;      // AUC points
    std::vector<double> rates{1e-7, 1e-6, 3e-6, 1e-5, 3e-5};
    int trials = 5;          // fault maps per rate
    FaultModel fault = [] {  // weights in Q15.16, the toolbox's per-tensor counts
        FaultModel f;
        f.count_mode = CountMode::reference;
        return f;
    }();
};

struct FtClipActSlotReport {
    std::string slot;
    float ranger_bound = 0, bound = 0;
    double auc = 0;  // of the chosen bound
    int iterations = 0, campaigns = 0;
};

// Average top-1 (percent) over the rate grid: trapezoids over equally spaced positions, divided by the width.
inline double accuracy_auc(const std::vector<double>& top1) {
    if (top1.size() == 1) return top1[0];
    double area = 0;
    for (std::size_t i = 0; i + 1 < top1.size(); ++i) area += (top1[i] + top1[i + 1]) / 2;
    return area / static_cast<double>(top1.size() - 1);
}

inline std::vector<FtClipActSlotReport> ftclipact(
    Module& model, const EvalSet& calibration, const FtClipActOptions& opt,
    const std::function<void(const std::string& slot, int iteration, float bound, double auc)>& on_campaign = {}) {
    if (opt.iterations < 1 || opt.min_iterations < 1 || opt.min_iterations > opt.iterations)
        throw std::invalid_argument("ftclipact: need 1 <= min_iterations <= iterations");
    if (opt.rates.empty() || opt.trials < 1) throw std::invalid_argument("ftclipact: need rates and trials >= 1");
    std::vector<std::pair<std::string, BoundedReLU*>> slots;
    for (auto& [name, slot] : activation_slots(model)) {
        BoundedReLU* b = bounded_activation(*slot);
        if (!b || b->granularity() != BoundGranularity::layer)
            throw std::invalid_argument("ftclipact: slot '" + name +
                                        "' needs a layer-wise bounded activation (install Ranger's layer bounds first)");
        slots.emplace_back(name, b);
    }
    // Campaigns round the stored values in place: every campaign starts from the parameters as they were.
    std::vector<std::pair<Var, Tensor<float>>> saved;
    auto snapshot = [&] {
        saved.clear();
        for (auto& [pname, p] : model.named_parameters()) saved.emplace_back(p, p.value().clone());
    };
    auto restore = [&] {
        for (auto& [p, value] : saved) p.value().copy_from(value);
    };
    snapshot();

    CampaignOptions co;
    co.fault = opt.fault;
    co.levels = opt.rates;
    co.max_trials = opt.trials;
    co.min_trials = opt.trials;
    std::vector<FtClipActSlotReport> report;
    for (auto& [name, activation] : slots) {
        float& bound = activation->bound().value()[0];
        FtClipActSlotReport r{name, bound, bound, 0, 0, 0};
        std::map<float, double> measured;
        auto auc_of = [&](float t) {
            if (auto it = measured.find(t); it != measured.end()) return it->second;
            restore();
            bound = t;
            Campaign campaign(model, calibration, co);
            std::vector<double> top1;
            for (const LevelResult& level : campaign.run().levels) top1.push_back(level.top1.mean);
            ++r.campaigns;
            measured[t] = accuracy_auc(top1);
            if (on_campaign) on_campaign(name, r.iterations, t, measured[t]);
            return measured[t];
        };
        float lo = 0, hi = r.ranger_bound;
        for (int iteration = 1; iteration <= opt.iterations; ++iteration) {
            r.iterations = iteration;
            const std::array<float, 4> t{lo, lo + (hi - lo) / 3, lo + 2 * (hi - lo) / 3, hi};
            std::array<double, 4> auc{};
            for (int j = 0; j < 4; ++j) auc[j] = auc_of(t[j]);
            const auto best = static_cast<int>(std::max_element(auc.begin(), auc.end()) - auc.begin());
            r.bound = t[best];
            r.auc = auc[best];
            const int left = std::clamp(best - 1, 0, 2);  // the new interval [t[left], t[left + 1 or 2]]
            lo = t[left];
            hi = t[best == 0 || best == 3 ? left + 1 : left + 2];
            double spread = 0;
            for (int j = 0; j < 3; ++j) spread = std::max(spread, std::abs(auc[j + 1] - auc[j]));
            if (spread <= opt.delta && iteration >= opt.min_iterations) break;
        }
        restore();
        bound = r.bound;
        snapshot();  // the tuned bound is part of the model from now on
        report.push_back(r);
    }
    return report;
}

}  // namespace ironclad

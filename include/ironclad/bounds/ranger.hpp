// Ranger (Chen et al., DSN 2021, as the reliable-relu toolbox runs it): the bound of each activation slot is the
// largest output that slot produces over a calibration set.
//
// Contract:
// - activation_ranges runs the calibration batches through the model (eval mode, no tape) and records, for every
//   activation slot in slot order, at the granularity the plan gives that slot: `max`, the largest output value
//   per bound element over all calibration images, and `min_batch_mean`, the smallest over batches of the batch
//   mean per bound element (the toolbox's "tresh", the value threshold mode puts above the bound). The maxima do
//   not depend on batching; the batch means do. The output recorded is what the slot currently emits (after an
//   installed bound, as the toolbox's hooks see it).
// - Unlike the toolbox, neuron bounds are the true per-(c,h,w) maxima (its reduction over dimension 0 from the
//   third batch on mixes channels and collapses fully connected bounds to the layer maximum), and channel
//   granularity exists.
// - ranger_bounds turns the ranges into SlotBounds of the given mode (fill = min_batch_mean in threshold mode).
#pragma once

#include "ironclad/bounds/bound_io.hpp"
#include "ironclad/fault/campaign.hpp"

#include <algorithm>
#include <limits>
#include <stdexcept>
#include <string>
#include <vector>

namespace ironclad {

// `all` ("layer", "channel", "neuron") for every slot, or "hybrid": `last` for the last slot, layer elsewhere.
inline std::vector<BoundGranularity> granularity_plan(std::size_t slots, const std::string& all,
                                                      BoundGranularity last = BoundGranularity::neuron) {
    if (all == "hybrid") {
        std::vector<BoundGranularity> plan(slots, BoundGranularity::layer);
        if (!plan.empty()) plan.back() = last;
        return plan;
    }
    try {
        return std::vector<BoundGranularity>(slots, parse_bound_granularity(all));
    } catch (const std::invalid_argument&) {
        throw std::invalid_argument("unknown bound granularity '" + all +
                                    "': expected layer, channel, neuron or hybrid");
    }
}

struct ActivationRange {
    Tensor<float> max, min_batch_mean;
};

namespace detail {

// Puts back the output hooks (and the model's training flag) it saved when it ends.
class HookRestorer {
public:
    HookRestorer() = default;
    explicit HookRestorer(Module& model) : model_(&model), was_training_(model.is_training()) { model.eval(); }
    HookRestorer(const HookRestorer&) = delete;
    HookRestorer& operator=(const HookRestorer&) = delete;
    ~HookRestorer() {
        for (auto& [m, hook] : saved_) m->set_output_hook(hook);
        if (model_) model_->train(was_training_);
    }
    void save(Module* m) { saved_.emplace_back(m, m->output_hook()); }

private:
    std::vector<std::pair<Module*, OutputHook>> saved_;
    Module* model_ = nullptr;
    bool was_training_ = false;
};

inline void record_range(const Tensor<float>& y, BoundGranularity g, ActivationRange& r) {
    const Shape shape = bound_shape(g, y.shape());
    if (!r.max.defined()) {
        r.max = Tensor<float>(shape, 0.0f);  // slot outputs are >= 0
        r.min_batch_mean = Tensor<float>(shape, std::numeric_limits<float>::infinity());
    }
    const BoundLayout L = bound_layout(y.shape(), shape);
    const float* v = y.data();
    float* m = r.max.data();
    const std::int64_t per = L.groups * L.inner;
#pragma omp parallel for schedule(static) if (L.groups > 1 && y.numel() >= kElementwiseGrain)
    for (std::int64_t grp = 0; grp < L.groups; ++grp) {
        float best = m[grp];
        for (std::int64_t n = 0; n < L.samples; ++n)
            for (std::int64_t i = 0; i < L.inner; ++i) best = std::max(best, v[n * per + grp * L.inner + i]);
        m[grp] = best;
    }
    Tensor<float> sums(shape);
    reduce_to_bound(L, sums.data(), [=](std::int64_t i, std::int64_t) { return static_cast<double>(v[i]); });
    const auto count = static_cast<float>(L.samples * L.inner);
    for (std::int64_t grp = 0; grp < L.groups; ++grp)
        r.min_batch_mean[grp] = std::min(r.min_batch_mean[grp], sums[grp] / count);
}

}  // namespace detail

// plan: one granularity per activation slot, in slot order.
inline std::vector<ActivationRange> activation_ranges(Module& model, const EvalSet& calibration,
                                                      const std::vector<BoundGranularity>& plan) {
    const auto slots = activation_slots(model);
    if (plan.size() != slots.size())
        throw std::invalid_argument("activation_ranges: " + std::to_string(plan.size()) + " granularities for " +
                                    std::to_string(slots.size()) + " activation slots");
    if (calibration.size() == 0) throw std::invalid_argument("activation_ranges: the calibration set is empty");
    std::vector<ActivationRange> ranges(slots.size());
    {
        detail::HookRestorer restore(model);  // eval mode until the end of the block
        for (std::size_t k = 0; k < slots.size(); ++k) {
            ActivationSlot* slot = slots[k].second;
            restore.save(slot);
            slot->set_output_hook([&ranges, &plan, k, previous = slot->output_hook()](Tensor<float>& y) {
                if (previous) previous(y);
                detail::record_range(y, plan[k], ranges[k]);
            });
        }
        NoGradGuard no_grad;
        for (const auto& batch : calibration.batches) model(Var(batch));
    }
    for (std::size_t k = 0; k < slots.size(); ++k)
        if (!ranges[k].max.defined())
            throw std::runtime_error("activation slot '" + slots[k].first + "' produced no output on calibration");
    return ranges;
}

inline std::vector<SlotBound> ranger_bounds(Module& model, const EvalSet& calibration,
                                            const std::vector<BoundGranularity>& plan, BoundMode mode,
                                            float k = 20.0f) {
    const auto ranges = activation_ranges(model, calibration, plan);
    const auto slots = activation_slots(model);
    std::vector<SlotBound> out;
    for (std::size_t i = 0; i < slots.size(); ++i)
        out.push_back({slots[i].first, mode, plan[i], k, ranges[i].max,
                       mode == BoundMode::threshold ? ranges[i].min_batch_mean : Tensor<float>()});
    return out;
}

}  // namespace ironclad

// Fault campaign: top-1 accuracy and silent data corruption of a model over trials of random faults, per fault
// level (a rate, or a flip count in count mode), with statistics and early stopping.
//
// Contract:
// - The model is evaluated in eval mode with no tape. Its weights are first stored in the fault model's format
//   (store_in: rounded once, as deployed); with store_activations, every leaf layer's output is rounded to the
//   format too. int8 activations use symmetric scales max|y|/127 per layer (or per channel for int8-channel)
//   calibrated on the fault-free float run over the evaluation set. The golden (fault-free) run of that stored model
//   is the reference for silent data corruption (SDC: a prediction that differs from the golden one).
// - Trial t of level L draws its faults from Rng::stream(trial_seed(seed, L), t) only: the same seed gives the same
//   faults, records and numbers at any thread count and batch size, and a trial can be replayed alone.
// - Speed: a trial with no fault is the golden result (no inference); otherwise the forward pass restarts at the
//   first stage (nn/stages.hpp) that holds a fault, from golden stage inputs cached once; activation faults
//   recompute only the images that received one. Weight faults are applied in place and restored after the trial.
// - set_faulted_evaluation: the caller evaluates each faulted model itself (e.g. attacks it), weight faults only;
//   the fault maps, statistics and state file stay the campaign's.
// - Statistics per level over finished trials: mean, sample std and a Student-t 95% interval of the per-trial
//   top-1 ("trials" interval: the variation between fault maps), and the Wilson 95% interval of the pooled top-1
//   over all (fault map, image) pairs ("pooled": each pair one sample, the statistical fault injection model of
//   Leveugle et al.; narrower, since images sharing a fault map are not independent). With margin > 0 a level stops
//   once the chosen interval's half-width is at most margin x 100 points (after min_trials).
// - Arithmetic: with `exact` set, the stored model runs in exact integer fixed-point arithmetic (exact/): weights
//   are faulted in the integer engine's raw storage, activations are raws, and every trial carries the overflow
//   counts per layer of its whole evaluation (golden counts for the stages it did not recompute; exact mode always
//   recomputes all images, so the counts are those of the faulted model).
// - Resumable: with a state file, every finished trial is saved (atomically) and a rerun with the same campaign
//   identity continues where it stopped with identical results; a different identity is an error.
#pragma once

#include "ironclad/autograd/losses.hpp"
#include "ironclad/core/random.hpp"
#include "ironclad/data/loader.hpp"
#include "ironclad/fault/injector.hpp"
#include "ironclad/fault/sites.hpp"
#include "ironclad/fault/stage_chain.hpp"
#include "ironclad/fault/statistics.hpp"
#include "ironclad/io/atomic_file.hpp"
#include "ironclad/nn/stages.hpp"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <bit>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <map>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

namespace ironclad {

enum class IntervalKind { pooled, trials };

// Normalised evaluation images in fixed batches, with labels.
struct EvalSet {
    std::vector<Tensor<float>> batches;  // [B,C,H,W] each
    std::vector<std::int32_t> labels;
    std::int64_t size() const { return static_cast<std::int64_t>(labels.size()); }
};

// The whole of `data` in order, normalised as the loader options say (no augmentation).
inline EvalSet make_eval_set(const Dataset& data, LoaderOptions opt) {
    opt.shuffle = false;
    opt.augment_crop_pad = 0;
    opt.augment_flip = false;
    opt.drop_last = false;
    BatchLoader loader(data, opt);
    EvalSet set;
    Batch b;
    while (loader.next(b)) {
        set.batches.push_back(b.images.clone());  // the loader reuses its buffer
        set.labels.insert(set.labels.end(), b.labels.begin(), b.labels.end());
    }
    return set;
}

struct CampaignOptions {
    FaultModel fault;
    std::vector<double> levels;  // rates (ber, reference) or flip counts (exact)
    int max_trials = 100;
    int min_trials = 3;
    double margin = 0;  // fraction (0.01 = 1 point); 0 runs max_trials at every level
    IntervalKind interval = IntervalKind::pooled;
    bool store_activations = false;
    std::optional<ExactArithmetic> exact;    // exact integer arithmetic (its format is the fault model's)
    std::filesystem::path state_file;        // empty: not resumable
    nlohmann::ordered_json identity;         // what the state file must agree on (model, weights, data, ...)
};

struct TrialResult {
    int trial = 0;
    std::int64_t faults = 0;           // weight faults + activation faults
    std::int64_t correct = 0;
    std::int64_t sdc = 0;              // predictions that differ from the golden run
    std::int64_t sdc_on_correct = 0;   // ... among images the golden run classifies correctly
    std::int64_t non_finite = 0;       // images whose logits hold Inf or NaN
    std::int64_t recomputed = 0;       // images actually run (0: golden result reused)
    int first_stage = -1;
    std::map<std::string, SaturationCounts> saturation;  // exact arithmetic: overflow counts per layer
};

struct LevelResult {
    double level = 0;
    std::vector<TrialResult> trials;
    Summary top1;              // over per-trial top-1 (percent)
    Proportion pooled;         // Wilson over (trial, image) pairs (fractions)
    double sdc_rate = 0;       // percent of (trial, image) pairs
    double sdc_on_correct_rate = 0;
    double mean_faults = 0;
    std::int64_t non_finite_images = 0;
    bool stopped_early = false;
    std::map<std::string, SaturationCounts> saturation;  // summed over the trials
    double ci95_low() const;
    double ci95_high() const;
    IntervalKind interval = IntervalKind::pooled;
};

struct CampaignResult {
    double clean_top1 = 0;
    std::int64_t images = 0;
    std::int64_t golden_correct = 0;
    std::vector<LevelResult> levels;
    std::vector<std::string> weight_targets, activation_targets;
    std::map<std::string, SaturationCounts> golden_saturation;  // exact arithmetic: the fault-free run's counts
    double seconds = 0;
};

inline double LevelResult::ci95_low() const {
    return interval == IntervalKind::pooled ? 100.0 * pooled.low : top1.ci95_low;
}
inline double LevelResult::ci95_high() const {
    return interval == IntervalKind::pooled ? 100.0 * pooled.high : top1.ci95_high;
}

// The seed of level `level`'s trial streams: the campaign seed mixed with the level's bits, so a trial's faults do
// not depend on which other levels the grid holds.
inline std::uint64_t trial_seed(std::uint64_t seed, double level) {
    return Rng::mix(seed ^ Rng::mix(std::bit_cast<std::uint64_t>(level)));
}

// Limits a trial's faults to some sites and one bit position, for vulnerability maps (empty: no limit).
struct FaultRestriction {
    std::vector<bool> weight_targets;      // per weight target: may be hit
    std::vector<bool> activation_targets;  // per activation site: may be hit
    int bit = -1;                          // the only eligible bit; -1: the fault model's range
    std::uint64_t id = 0;                  // mixed into the trial seed, so each map cell has its own faults
};

struct CampaignCallbacks {
    std::function<void(std::int64_t done, std::int64_t total)> on_golden;
    std::function<void(const LevelResult&, int max_trials)> on_trial;
};

namespace detail {

inline void summarize_level(LevelResult& r, std::int64_t images, std::int64_t golden_correct) {
    std::vector<double> top1;
    std::int64_t correct = 0, sdc = 0, sdc_c = 0, faults = 0, nf = 0;
    r.saturation.clear();
    for (auto& t : r.trials) {
        for (auto& [layer, c] : t.saturation) r.saturation[layer] += c;
        top1.push_back(100.0 * static_cast<double>(t.correct) / static_cast<double>(images));
        correct += t.correct;
        sdc += t.sdc;
        sdc_c += t.sdc_on_correct;
        faults += t.faults;
        nf += t.non_finite;
    }
    const auto n = static_cast<std::int64_t>(r.trials.size());
    r.top1 = summarize_trials(top1);
    r.pooled = wilson_interval(correct, n * images);
    r.sdc_rate = n ? 100.0 * static_cast<double>(sdc) / static_cast<double>(n * images) : 0;
    r.sdc_on_correct_rate =
        n && golden_correct ? 100.0 * static_cast<double>(sdc_c) / static_cast<double>(n * golden_correct) : 0;
    r.mean_faults = n ? static_cast<double>(faults) / static_cast<double>(n) : 0;
    r.non_finite_images = nf;
}

inline nlohmann::ordered_json trial_json(const TrialResult& t) {
    nlohmann::ordered_json j{{"trial", t.trial},       {"faults", t.faults},         {"correct", t.correct},
                             {"sdc", t.sdc},           {"sdc_on_correct", t.sdc_on_correct}, {"non_finite", t.non_finite},
                             {"recomputed", t.recomputed}, {"first_stage", t.first_stage}};
    for (auto& [layer, c] : t.saturation) j["saturation"][layer] = {c.accumulator, c.narrowing};
    return j;
}

inline TrialResult trial_from_json(const nlohmann::json& j) {
    TrialResult t;
    t.trial = j.at("trial").get<int>();
    t.faults = j.at("faults").get<std::int64_t>();
    t.correct = j.at("correct").get<std::int64_t>();
    t.sdc = j.at("sdc").get<std::int64_t>();
    t.sdc_on_correct = j.at("sdc_on_correct").get<std::int64_t>();
    t.non_finite = j.at("non_finite").get<std::int64_t>();
    t.recomputed = j.at("recomputed").get<std::int64_t>();
    t.first_stage = j.at("first_stage").get<int>();
    if (j.contains("saturation"))
        for (auto& [layer, c] : j.at("saturation").items())
            t.saturation[layer] = {c.at(0).get<std::int64_t>(), c.at(1).get<std::int64_t>()};
    return t;
}

}  // namespace detail

class Campaign {
public:
    Campaign(Module& model, const EvalSet& data, CampaignOptions options)
        : model_(model), data_(data), opt_(std::move(options)) {
        opt_.fault.validate();
        if (data_.size() == 0) throw std::invalid_argument("fault campaign: the evaluation set is empty");
        if (opt_.max_trials < 1) throw std::invalid_argument("fault campaign: trials must be at least 1");
        if (opt_.margin < 0 || opt_.margin >= 1) throw std::invalid_argument("fault campaign: margin must be in [0, 1)");
        model_.eval();
        if (opt_.exact) {
            if (opt_.fault.format.kind != StorageKind::fixed)
                throw std::invalid_argument("exact arithmetic needs a fixed-point format, not '" +
                                            opt_.fault.format.name() + "'");
            opt_.exact->format = opt_.fault.format.fixed;
        }
        prepare_sites();
        stages_ = flatten_stages(model_);  // after prepare_sites: a hooked module stays one stage
        if (!exact_ && data_.batches.front().ndim() == 4) {
            const Shape& in = data_.batches.front().shape();
            plan_ = std::make_unique<InferencePlan>(model_, Shape{in[1], in[2], in[3]});
        }
        chain_ = StageChain(stages_, exact_.get(), plan_.get());
        stage_of_ = stage_of_module(model_, stages_);
        for (auto& t : injector_->targets())
            target_stage_.push_back(static_cast<int>(stage_index(parameter_module(t.name))));
        for (auto& a : activation_sites_) activation_stage_.push_back(static_cast<int>(stage_index(a.name)));
    }
    ~Campaign() {
        for (auto& [m, hook] : saved_hooks_) m->set_output_hook(hook);
    }

    // Predictions of the evaluation set's images by the model as it stands (its weights faulted in place).
    using FaultedEvaluation = std::function<std::vector<std::int32_t>()>;
    // Trials evaluated by the caller instead of by restarting the cached golden run: each trial's weight faults (the
    // map run_trial draws) are applied in place, `evaluate` runs with gradients on (it may attack the faulted model)
    // and its predictions are counted against the golden run's. Weight faults only: activation faults are drawn
    // per image inside the campaign's own evaluation.
    void set_faulted_evaluation(FaultedEvaluation evaluate) {
        if (evaluate && opt_.fault.faults_activations())
            throw std::invalid_argument("fault campaign: an evaluation of the faulted model by the caller needs weight "
                                        "faults only (site weights), not " + std::string(to_string(opt_.fault.site)));
        if (evaluate && exact_) throw std::invalid_argument("fault campaign: exact arithmetic evaluates itself");
        faulted_evaluation_ = std::move(evaluate);
    }

    const std::vector<FaultTarget>& weight_targets() const { return injector_->targets(); }
    const std::vector<ActivationSite>& activation_targets() const { return activation_sites_; }
    // The golden run; called by run() when needed.
    void run_golden(const CampaignCallbacks& cb = {}) {
        if (golden_done_) return;
        NoGradGuard no_grad;
        // Only stages where a fault can first appear need their inputs cached; stage 0's input is the data itself.
        std::vector<bool> cached(stages_.size(), false);
        for (int s : target_stage_) cached[static_cast<std::size_t>(s)] = true;
        for (int s : activation_stage_) cached[static_cast<std::size_t>(s)] = true;
        cached[0] = exact_ != nullptr;  // float: the data itself; exact: its raws
        cache_.assign(stages_.size(), {});
        golden_pred_.clear();
        // Exact arithmetic: overflow counts of the input quantisation (bucket 0) and of each stage s (bucket s + 1).
        golden_counts_.assign(stages_.size() + 1, {});
        std::int64_t done = 0;
        for (std::size_t b = 0; b < data_.batches.size(); ++b) {
            StageValue x = chain_.input(data_.batches[b]);
            take_counts(golden_counts_[0]);
            for (std::size_t s = 0; s < stages_.size(); ++s) {
                if (cached[s]) cache_[s].push_back(x);
                x = chain_.run_stage(s, x);
                take_counts(golden_counts_[s + 1]);
            }
            const auto pred = StageChain::predictions(x);
            golden_pred_.insert(golden_pred_.end(), pred.begin(), pred.end());
            done += static_cast<std::int64_t>(pred.size());
            if (cb.on_golden) cb.on_golden(done, data_.size());
        }
        golden_correct_ = 0;
        for (std::int64_t i = 0; i < data_.size(); ++i)
            golden_correct_ += golden_pred_[static_cast<std::size_t>(i)] == data_.labels[static_cast<std::size_t>(i)];
        golden_done_ = true;
    }

    // One trial of fault level `level`, replayable alone; `records` (if given) receives the weight fault records.
    TrialResult run_trial(double level, int trial, std::vector<FaultRecord>* records = nullptr,
                          const FaultRestriction* limit = nullptr) {
        run_golden();
        NoGradGuard no_grad;
        FaultModel fm = level_model(level);
        if (limit && limit->bit >= 0) {
            fm.bit_lo = fm.bit_hi = limit->bit;
            fm.validate();
        }
        // Excluded sites take part with zero elements: they cannot be hit and the others keep their draws' meaning.
        auto allowed = [](std::vector<std::int64_t> numels, const std::vector<bool>& mask) {
            for (std::size_t i = 0; i < mask.size() && i < numels.size(); ++i)
                if (!mask[i]) numels[i] = 0;
            return numels;
        };
        const auto weight_numels = limit ? allowed(weight_numels_, limit->weight_targets) : weight_numels_;
        const auto activation_numels =
            limit ? allowed(activation_numels_, limit->activation_targets) : activation_numels_;
        const std::uint64_t seed = limit ? Rng::mix(opt_.fault.seed ^ Rng::mix(limit->id + 1)) : opt_.fault.seed;
        Rng rng = Rng::stream(trial_seed(seed, level), static_cast<std::uint64_t>(trial));
        TrialResult r;
        r.trial = trial;
        int first = static_cast<int>(stages_.size());

        std::vector<FaultPosition> weight_faults;
        if (fm.faults_weights() && !weight_numels_.empty()) weight_faults = sample_faults(weight_numels, fm, rng);
        for (auto& f : weight_faults) first = std::min(first, target_stage_[static_cast<std::size_t>(f.target)]);
        r.faults += static_cast<std::int64_t>(weight_faults.size());

        // Activation faults of each image come from the image's own stream, so they do not depend on batching.
        activation_faults_.clear();
        std::vector<std::int64_t> hit_images;
        if (fm.faults_activations() && !activation_sites_.empty()) {
            const std::uint64_t image_seed = rng.next_u64();
            for (std::int64_t i = 0; i < data_.size(); ++i) {
                Rng image_rng = Rng::stream(image_seed, static_cast<std::uint64_t>(i));
                auto faults = sample_faults(activation_numels, fm, image_rng);
                if (faults.empty()) continue;
                for (auto& f : faults) first = std::min(first, activation_stage_[static_cast<std::size_t>(f.target)]);
                r.faults += static_cast<std::int64_t>(faults.size());
                activation_faults_[i] = std::move(faults);
                hit_images.push_back(i);
            }
        }
        activation_effect_ = fm.effect;

        std::vector<std::int32_t> pred = golden_pred_;
        std::vector<char> finite(golden_pred_.size(), 1);
        if (r.faults > 0) {
            r.first_stage = first;
            injector_->apply(weight_faults, fm.effect);
            if (records) *records = injector_->records();
            // Exact arithmetic recomputes every image, so that the trial's overflow counts are whole.
            const bool all = !weight_faults.empty() || exact_;
            try {
                if (faulted_evaluation_) {
                    GradModeGuard grad(true);
                    pred = faulted_evaluation_();
                    if (pred.size() != golden_pred_.size())
                        throw std::logic_error("fault campaign: the faulted evaluation returned " + std::to_string(pred.size()) +
                                               " predictions for " + std::to_string(golden_pred_.size()) + " images");
                } else if (all)
                    recompute_all(static_cast<std::size_t>(first), pred, finite);
                else
                    recompute_images(static_cast<std::size_t>(first), hit_images, pred, finite);
            } catch (...) {
                injector_->restore();
                throw;
            }
            injector_->restore();
            r.recomputed = all ? data_.size() : static_cast<std::int64_t>(hit_images.size());
        }
        if (exact_) {
            for (std::size_t s = 0; s <= static_cast<std::size_t>(std::min<int>(first, static_cast<int>(stages_.size())));
                 ++s)
                for (auto& [layer, c] : golden_counts_[s]) r.saturation[layer] += c;
            take_counts(r.saturation);
        }
        for (std::int64_t i = 0; i < data_.size(); ++i) {
            const auto k = static_cast<std::size_t>(i);
            const bool golden_right = golden_pred_[k] == data_.labels[k];
            r.correct += pred[k] == data_.labels[k];
            if (pred[k] != golden_pred_[k]) {
                ++r.sdc;
                r.sdc_on_correct += golden_right;
            }
            r.non_finite += !finite[k];
        }
        return r;
    }

    CampaignResult run(const CampaignCallbacks& cb = {}) {
        const auto start = std::chrono::steady_clock::now();
        std::map<double, std::map<int, TrialResult>> finished = load_state();
        run_golden(cb);
        CampaignResult out;
        out.images = data_.size();
        out.golden_correct = golden_correct_;
        out.clean_top1 = 100.0 * static_cast<double>(golden_correct_) / static_cast<double>(data_.size());
        for (auto& t : injector_->targets()) out.weight_targets.push_back(t.name);
        for (auto& bucket : golden_counts_)
            for (auto& [layer, c] : bucket) out.golden_saturation[layer] += c;
        for (auto& a : activation_sites_) out.activation_targets.push_back(a.name);
        for (double level : opt_.levels) {
            LevelResult lr;
            lr.level = level;
            lr.interval = opt_.interval;
            auto& done = finished[level];
            for (int t = 0; t < opt_.max_trials; ++t) {
                if (auto it = done.find(t); it != done.end()) {
                    lr.trials.push_back(it->second);
                } else {
                    lr.trials.push_back(run_trial(level, t));
                    done[t] = lr.trials.back();
                    save_state(finished);
                }
                detail::summarize_level(lr, data_.size(), golden_correct_);
                if (cb.on_trial) cb.on_trial(lr, opt_.max_trials);
                if (opt_.margin > 0 && static_cast<int>(lr.trials.size()) >= opt_.min_trials &&
                    (lr.ci95_high() - lr.ci95_low()) / 2 <= 100.0 * opt_.margin) {
                    lr.stopped_early = t + 1 < opt_.max_trials;
                    break;
                }
            }
            out.levels.push_back(std::move(lr));
        }
        out.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
        return out;
    }

    // `trials` trials of `level` under `limit` (not saved to the state file: maps are cheap to redo).
    LevelResult run_restricted(double level, int trials, const FaultRestriction& limit) {
        run_golden();
        LevelResult lr;
        lr.level = level;
        lr.interval = opt_.interval;
        for (int t = 0; t < trials; ++t) lr.trials.push_back(run_trial(level, t, nullptr, &limit));
        detail::summarize_level(lr, data_.size(), golden_correct_);
        return lr;
    }

    // Vulnerability-map cells: each layer alone (its weight tensors, then its output, in site order) ...
    std::vector<std::pair<std::string, FaultRestriction>> layer_restrictions() const {
        std::vector<std::string> layers;
        auto add = [&](const std::string& m) {
            if (std::find(layers.begin(), layers.end(), m) == layers.end()) layers.push_back(m);
        };
        for (auto& t : injector_->targets()) add(parameter_module(t.name));
        for (auto& a : activation_sites_) add(a.name);
        std::vector<std::pair<std::string, FaultRestriction>> out;
        for (std::size_t m = 0; m < layers.size(); ++m) {
            FaultRestriction limit;
            for (auto& t : injector_->targets()) limit.weight_targets.push_back(parameter_module(t.name) == layers[m]);
            for (auto& a : activation_sites_) limit.activation_targets.push_back(a.name == layers[m]);
            limit.id = m;
            out.emplace_back(layers[m], std::move(limit));
        }
        return out;
    }
    // ... and each eligible bit position alone.
    std::vector<std::pair<std::string, FaultRestriction>> bit_restrictions() const {
        std::vector<std::pair<std::string, FaultRestriction>> out;
        for (int b = opt_.fault.bit_lo; b <= opt_.fault.top_bit(); ++b) {
            FaultRestriction limit;
            limit.bit = b;
            limit.id = 1000 + static_cast<std::uint64_t>(b);  // apart from the layer cells' ids
            out.emplace_back(std::to_string(b), std::move(limit));
        }
        return out;
    }

    const std::vector<std::int32_t>& golden_predictions() const { return golden_pred_; }

private:
    FaultModel level_model(double level) const {
        FaultModel fm = opt_.fault;
        if (fm.count_mode == CountMode::count) {
            if (level < 0 || level != std::floor(level))
                throw std::invalid_argument("count mode: levels are flip counts, got " + std::to_string(level));
            fm.count = static_cast<std::int64_t>(level);
        } else {
            fm.rate = level;
        }
        fm.validate();
        return fm;
    }

    std::size_t stage_index(const std::string& module) const {
        const auto it = stage_of_.find(module);
        // A module outside the chain: restart from the input (always correct, only slower).
        return it == stage_of_.end() ? 0 : static_cast<std::size_t>(it->second);
    }

    void prepare_sites() {
        const FaultModel& fm = opt_.fault;
        std::vector<WeightSite> ws;
        if (fm.faults_weights()) ws = weight_sites(model_, fm.layers, fm.include_bn, true, fm.site == FaultSite::weights);
        if (fm.faults_activations())
            activation_sites_ = activation_sites(model_, fm.layers, fm.site == FaultSite::activations);
        if (fm.site == FaultSite::both && !fm.layers.empty()) {
            std::vector<std::string> names;
            for (auto& w : ws) names.push_back(w.module);
            for (auto& a : activation_sites_) names.push_back(a.name);
            detail::check_layers_used(fm.layers, names, "faultable layer");
        }
        if (ws.empty() && activation_sites_.empty())
            throw std::invalid_argument("fault campaign: the model has no fault site of the requested kind");

        // Deployed storage: every parameter in the format, then the codecs of the faultable ones.
        std::map<std::string, TensorCodec> codecs;
        for (auto& [name, p] : model_.named_parameters()) codecs[name] = store_in(p.value(), fm.format);
        if (opt_.exact) exact_ = std::make_unique<ExactNetwork>(model_, flatten_stages(model_), *opt_.exact);
        std::vector<FaultTarget> targets;
        for (auto& w : ws) {
            targets.push_back({w.name, w.values, codecs.at(w.name), exact_ ? exact_->raw_parameter(w.name) : RawTensor{}});
            weight_numels_.push_back(w.values.numel());
        }
        injector_ = std::make_unique<Injector>(std::move(targets));
        activation_codec_ = TensorCodec(fm.format, Tensor<float>({1}));
        if (exact_) {  // activations are raws already; faults act on them in the integer engine
            for (std::size_t k = 0; k < activation_sites_.size(); ++k)
                exact_->set_hook(activation_sites_[k].module, [this, k](RawTensor& y) { inject_activation(k, y); });
            return;
        }

        if (opt_.store_activations && fm.format.kind == StorageKind::fixed) {
            for (auto& [name, m] : model_.named_modules())
                if (m->children().empty()) {
                    saved_hooks_.emplace_back(m, m->output_hook());
                    m->set_output_hook([q = fm.format.fixed](Tensor<float>& y) { round_through(y, q); });
                }
        }
        if (fm.format.kind == StorageKind::int8) {
            std::vector<Module*> stored;
            if (opt_.store_activations)
                for (auto& [name, m] : model_.named_modules())
                    if (m->children().empty()) stored.push_back(m);
            for (auto& a : activation_sites_) stored.push_back(a.module);
            const auto codecs = calibrate_int8(stored, fm.format);
            if (opt_.store_activations)
                for (auto& [name, m] : model_.named_modules())
                    if (m->children().empty()) {
                        saved_hooks_.emplace_back(m, m->output_hook());
                        m->set_output_hook([codec = codecs.at(m)](Tensor<float>& y) {
                            const std::int64_t rows = y.dim(0), channels = y.ndim() > 1 ? y.dim(1) : 1;
                            const std::int64_t inner = y.numel() / std::max<std::int64_t>(rows * channels, 1);
                            for (std::int64_t i = 0; i < y.numel(); ++i) y[i] = codec.store(i / inner % channels, y[i]);
                        });
                    }
            for (auto& a : activation_sites_) activation_codecs_.push_back(codecs.at(a.module));
        }
        for (std::size_t k = 0; k < activation_sites_.size(); ++k) {
            Module* m = activation_sites_[k].module;
            saved_hooks_.emplace_back(m, m->output_hook());
            m->set_output_hook([this, k, previous = m->output_hook()](Tensor<float>& y) {
                if (previous) previous(y);
                inject_activation(k, y);
            });
        }
    }

    // Per stored module, an int8 codec whose scales (one, or one per channel) are max|y|/127 over the float run.
    std::map<Module*, TensorCodec> calibrate_int8(const std::vector<Module*>& modules, const StorageFormat& format) {
        std::map<Module*, std::vector<float>> maxima;
        std::vector<std::pair<Module*, OutputHook>> previous;
        for (Module* m : modules) {
            if (maxima.count(m)) continue;
            maxima[m] = {};
            previous.emplace_back(m, m->output_hook());
            m->set_output_hook([&max = maxima[m], per_channel = format.per_channel](Tensor<float>& y) {
                const std::int64_t rows = y.dim(0), channels = per_channel && y.ndim() > 1 ? y.dim(1) : 1;
                const std::int64_t inner = y.numel() / std::max<std::int64_t>(rows * channels, 1);
                max.resize(static_cast<std::size_t>(channels), 0.0f);
                for (std::int64_t i = 0; i < y.numel(); ++i) {
                    float& m = max[static_cast<std::size_t>(i / inner % channels)];
                    if (std::isfinite(y[i])) m = std::max(m, std::abs(y[i]));
                }
            });
        }
        {
            NoGradGuard no_grad;
            for (auto& batch : data_.batches) model_(Var(batch));
        }
        for (auto& [m, hook] : previous) m->set_output_hook(hook);
        std::map<Module*, TensorCodec> out;
        for (auto& [m, max] : maxima) {
            Tensor<float> t({static_cast<std::int64_t>(std::max<std::size_t>(max.size(), 1)), 1});
            for (std::size_t c = 0; c < max.size(); ++c) t[static_cast<std::int64_t>(c)] = max[c];
            out.emplace(m, TensorCodec(format, t));  // scale = max / 127 per row of t: per channel or per tensor
        }
        return out;
    }

    void take_counts(std::map<std::string, SaturationCounts>& into) {
        if (!exact_) return;
        for (auto& [layer, c] : exact_->take_counts()) into[layer] += c;
    }

    // Output hook body of activation site k: applies the current trial's faults of the images in this batch.
    template <class T>
    void inject_activation(std::size_t k, Tensor<T>& y) {
        const std::int64_t rows = y.dim(0), per = y.numel() / std::max<std::int64_t>(rows, 1);
        if (!golden_done_) {  // golden run: learn the site's per-image size
            if (activation_numels_.size() <= k) activation_numels_.resize(k + 1, 0);
            activation_numels_[k] = per;
            return;
        }
        for (std::int64_t r = 0; r < rows; ++r) {
            const auto it = activation_faults_.find(current_rows_[static_cast<std::size_t>(r)]);
            if (it == activation_faults_.end()) continue;
            for (const FaultPosition& f : it->second) {
                if (f.target != static_cast<int>(k)) continue;
                T& v = y.data()[r * per + f.element];
                if constexpr (std::is_same_v<T, float>) {
                    // int8: the element's channel picks its scale (a per-tensor codec has one)
                    const TensorCodec& codec = activation_codecs_.empty() ? activation_codec_ : activation_codecs_[k];
                    const std::int64_t channels = y.ndim() > 1 ? y.dim(1) : 1;
                    const std::int64_t index =
                        codec.scales().size() > 1 ? f.element / std::max<std::int64_t>(per / channels, 1) : 0;
                    v = codec.decode(index, apply_effect(codec.encode(index, v), f.bit, activation_effect_));
                } else {  // a raw of the exact engine
                    const int unused = 64 - activation_codec_.bits();
                    const std::uint64_t after = apply_effect(static_cast<std::uint64_t>(v), f.bit, activation_effect_);
                    v = static_cast<T>(static_cast<std::int64_t>(after << unused) >> unused);
                }
            }
        }
    }

    void finish_rows(const StageValue& logits, std::span<const std::int64_t> rows, std::vector<std::int32_t>& pred,
                     std::vector<char>& finite) {
        const auto p = StageChain::predictions(logits);
        for (std::size_t r = 0; r < rows.size(); ++r) {
            pred[static_cast<std::size_t>(rows[r])] = p[r];
            finite[static_cast<std::size_t>(rows[r])] = StageChain::row_finite(logits, static_cast<std::int64_t>(r));
        }
    }

    StageValue stage_input(std::size_t stage, std::size_t batch) const {
        if (stage == 0 && !exact_) return data_.batches[batch];
        return cache_[stage][batch];
    }

    void recompute_all(std::size_t first, std::vector<std::int32_t>& pred, std::vector<char>& finite) {
        std::int64_t offset = 0;
        for (std::size_t b = 0; b < data_.batches.size(); ++b) {
            const StageValue x = stage_input(first, b);
            const std::int64_t n = data_.batches[b].dim(0);
            current_rows_.resize(static_cast<std::size_t>(n));
            for (std::int64_t r = 0; r < n; ++r) current_rows_[static_cast<std::size_t>(r)] = offset + r;
            finish_rows(chain_.run(first, x), current_rows_, pred, finite);
            offset += n;
        }
    }

    void recompute_images(std::size_t first, const std::vector<std::int64_t>& images, std::vector<std::int32_t>& pred,
                          std::vector<char>& finite) {
        const std::int64_t batch = data_.batches.front().dim(0);
        for (std::size_t i = 0; i < images.size();) {
            // Images of one cached batch together, then the rows they hold in it.
            const std::int64_t b = images[i] / batch;
            std::vector<std::int64_t> local;
            current_rows_.clear();
            for (; i < images.size() && images[i] / batch == b; ++i) {
                local.push_back(images[i] - b * batch);
                current_rows_.push_back(images[i]);
            }
            const StageValue x = StageChain::gather_rows(stage_input(first, static_cast<std::size_t>(b)), local);
            finish_rows(chain_.run(first, x), current_rows_, pred, finite);
        }
    }

    std::map<double, std::map<int, TrialResult>> load_state() {
        std::map<double, std::map<int, TrialResult>> out;
        if (opt_.state_file.empty() || !std::filesystem::exists(opt_.state_file)) return out;
        const auto bytes = read_file(opt_.state_file);
        nlohmann::json j;
        try {
            j = nlohmann::json::parse(reinterpret_cast<const char*>(bytes.data()),
                                      reinterpret_cast<const char*>(bytes.data()) + bytes.size());
        } catch (const nlohmann::json::exception& e) {
            throw std::runtime_error(opt_.state_file.string() + ": not a campaign state file (" + e.what() + ")");
        }
        if (!j.contains("identity") || j["identity"] != nlohmann::json(identity()))
            throw std::runtime_error(opt_.state_file.string() +
                                     " belongs to a different campaign (model, data, fault model or levels differ): "
                                     "delete it or choose another output");
        for (auto& level : j.at("levels"))
            for (auto& t : level.at("trials"))
                out[level.at("level").get<double>()][t.at("trial").get<int>()] = detail::trial_from_json(t);
        return out;
    }

    void save_state(const std::map<double, std::map<int, TrialResult>>& finished) const {
        if (opt_.state_file.empty()) return;
        nlohmann::ordered_json j;
        j["identity"] = identity();
        j["levels"] = nlohmann::ordered_json::array();
        for (auto& [level, trials] : finished) {
            nlohmann::ordered_json l{{"level", level}, {"trials", nlohmann::ordered_json::array()}};
            for (auto& [t, r] : trials) l["trials"].push_back(detail::trial_json(r));
            j["levels"].push_back(l);
        }
        const std::string text = j.dump();
        write_file_atomic(opt_.state_file, std::as_bytes(std::span(text.data(), text.size())));
    }

    nlohmann::ordered_json identity() const {
        nlohmann::ordered_json id = opt_.identity;
        id["fault_model"] = opt_.fault.to_json();
        id["store_activations"] = opt_.store_activations;
        if (opt_.exact) id["arithmetic"] = "exact, accumulator " + opt_.exact->accumulator_name();
        id["images"] = data_.size();
        return id;
    }

    Module& model_;
    const EvalSet& data_;
    CampaignOptions opt_;
    std::vector<Module*> stages_;
    std::map<std::string, int> stage_of_;
    std::unique_ptr<Injector> injector_;
    std::vector<std::int64_t> weight_numels_;
    std::vector<int> target_stage_;
    std::vector<ActivationSite> activation_sites_;
    std::vector<std::int64_t> activation_numels_;
    std::vector<int> activation_stage_;
    TensorCodec activation_codec_;
    std::vector<TensorCodec> activation_codecs_;  // int8: per activation site, with calibrated scales
    FaultEffect activation_effect_ = FaultEffect::flip;
    std::map<std::int64_t, std::vector<FaultPosition>> activation_faults_;
    std::vector<std::int64_t> current_rows_;
    std::vector<std::pair<Module*, OutputHook>> saved_hooks_;
    std::unique_ptr<ExactNetwork> exact_;
    std::unique_ptr<InferencePlan> plan_;  // float trials' restarts
    FaultedEvaluation faulted_evaluation_;
    StageChain chain_;
    std::vector<std::map<std::string, SaturationCounts>> golden_counts_;
    std::vector<std::vector<StageValue>> cache_;
    std::vector<std::int32_t> golden_pred_;
    std::int64_t golden_correct_ = 0;
    bool golden_done_ = false;
};

}  // namespace ironclad

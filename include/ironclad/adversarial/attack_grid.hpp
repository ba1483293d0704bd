// Joint attack x fault evaluation: top-1 over a grid of attack strengths (rows) and fault levels (columns).
//
// Contract:
// - The model is first deployed: its parameters are stored in the fault model's format once (store_in, as a
//   Campaign does), so attacks are crafted on the same fault-free model the campaigns start from.
// - Row eps: the attack (PGD or FGSM with eps, step = step_fraction * eps, the other settings of `attack`) is
//   crafted on the fault-free deployed model, image by image in [0,1]; the adversarial images are normalised
//   exactly as the data loader normalises clean pixels ((x - mean) / std in float), and a fault Campaign
//   (fault/campaign.hpp) evaluates them under every fault level with its own statistics and intervals. So eps 0
//   is the plain campaign on the clean images, result for result, and row eps's fault-free top-1 is the robust
//   top-1 of the attack.
// - Every row uses the campaign options unchanged (same seed: the same fault maps in every row, so rows differ
//   only by the images). With a state file, row k keeps its own `<state_file>.row<k>` and resumes.
// - craft_on_faulted (the attacker who knows the faults): in every trial the attack is crafted again on the faulted
//   model (the trial's fault map applied in place, Campaign::set_faulted_evaluation) and evaluated there; the
//   fault-free column and the golden predictions stay those of the fault-free attack. Weight faults only.
#pragma once

#include "ironclad/adversarial/normalized_model.hpp"
#include "ironclad/adversarial/pgd.hpp"
#include "ironclad/fault/campaign.hpp"


namespace ironclad {

struct GridOptions {
    std::vector<float> strengths;  // eps per row, in [0,1] pixel units (0: the clean images)
    ThreatModel attack;            // norm, steps, restarts, random start and seed of every row's attack
    float step_fraction = 0.25f;   // PGD step = step_fraction * eps
    bool fgsm = false;             // FGSM (one step of eps) instead of PGD
    bool craft_on_faulted = false; // craft each trial's attack on the faulted model (weight faults only)
    CampaignOptions campaign;      // fault model, levels, trials, margin, interval, state file
    std::int64_t batch_size = 128;
};

struct GridRow {
    float eps = 0;
    nlohmann::ordered_json attack;  // the attack's identity
    double attack_seconds = 0;
    CampaignResult campaign;        // clean_top1 here = fault-free top-1 on this row's (adversarial) images
};

struct GridCallbacks {
    std::function<void(std::size_t row, float eps)> on_row;  // before a row's attack
    std::function<void(std::int64_t done, std::int64_t total)> on_attack_batch;
    CampaignCallbacks campaign;
};

// model: the network with its normalisation; data: the images to attack.
inline std::vector<GridRow> run_attack_grid(NormalizedModel& model, const Dataset& data, const GridOptions& opt,
                                            const GridCallbacks& cb = {}) {
    if (opt.strengths.empty()) throw std::invalid_argument("attack grid: no attack strengths");
    if (!(opt.step_fraction > 0)) throw std::invalid_argument("attack grid: step_fraction must be positive");
    if (opt.craft_on_faulted && opt.campaign.fault.faults_activations())
        throw std::invalid_argument("attack grid: crafting the attack on the faulted model needs weight faults only "
                                    "(activation faults are drawn per image during evaluation)");
    for (auto& [name, p] : model.net().named_parameters()) store_in(p.value(), opt.campaign.fault.format);
    model.eval();
    std::vector<GridRow> rows;
    for (std::size_t k = 0; k < opt.strengths.size(); ++k) {
        const float eps = opt.strengths[k];
        if (cb.on_row) cb.on_row(k, eps);
        ThreatModel t = opt.attack;
        if (opt.fgsm) t = fgsm(t.norm, eps);
        t.eps = eps;
        t.step = opt.fgsm ? eps : opt.step_fraction * eps;
        t.seed = opt.attack.seed;
        Pgd attack(t, opt.fgsm ? "fgsm" : "pgd");
        const AttackReport adversarial = run_attack(
            model, data, attack, {.batch_size = opt.batch_size, .keep_adversarial = true, .on_batch = cb.on_attack_batch});
        EvalSet set;
        set.labels = adversarial.labels;
        {
            NoGradGuard no_grad;
            for (const auto& batch : adversarial.adversarial)
                set.batches.push_back(normalize_channels(Var(batch), model.mean(), model.stddev()).value());
        }
        CampaignOptions co = opt.campaign;
        co.identity["attack"] = attack.to_json();
        co.identity["crafted_on"] = opt.craft_on_faulted ? "faulted model" : "fault-free model";
        if (!co.state_file.empty()) co.state_file += ".row" + std::to_string(k);
        Campaign campaign(model.net(), set, co);
        if (opt.craft_on_faulted)
            campaign.set_faulted_evaluation([&] {
                const AttackReport faulted = run_attack(model, data, attack, {.batch_size = opt.batch_size, .keep_adversarial = false, .on_batch = {}});
                std::vector<std::int32_t> pred;
                pred.reserve(faulted.per_image.size());
                for (const ImageResult& im : faulted.per_image) pred.push_back(im.adversarial_prediction);
                return pred;
            });
        GridRow row{eps, attack.to_json(), adversarial.seconds, campaign.run(cb.campaign)};
        rows.push_back(std::move(row));
    }
    return rows;
}

}  // namespace ironclad

// AutoAttack-style sequence (Croce & Hein 2020, "standard" version without FAB-T): APGD-CE, then APGD-T on the
// targeted DLR loss, then Square, each attacking only the images that are still classified correctly.
//
// Contract: every stage starts from the clean images (as fra31/auto-attack does) and an image counts as broken once
// any stage fools it; its adversarial image is the one from that stage, and a robust image is returned unchanged.
// Defaults are AutoAttack's standard settings: APGD-CE 100 iterations and 1 restart, APGD-T 100 iterations over
// 9 target classes, Square 5000 queries with p_init 0.8. FAB-T (the fourth standard attack) is not included, so the
// sequence may be weaker than standard AutoAttack. Square runs in the threat model's norm (Linf or L2).
// statistics() counts, over all batches so far, the images classified correctly clean and after each stage.
#pragma once

#include "ironclad/adversarial/apgd.hpp"
#include "ironclad/adversarial/square.hpp"

#include <memory>

namespace ironclad {

struct AutoAttackOptions {
    int apgd_iterations = 100;
    int target_classes = 9;
    int square_queries = 5000;
};

class AutoAttack : public Attack {
public:
    AutoAttack(ThreatModel threat, AutoAttackOptions options = {}) : Attack(threat), opt_(options) {
        ThreatModel apgd = threat_;
        apgd.steps = opt_.apgd_iterations;
        apgd.restarts = 1;
        stages_.push_back(std::make_unique<Apgd>(apgd, ApgdOptions{.loss = ApgdLoss::ce}));
        stages_.push_back(
            std::make_unique<Apgd>(apgd, ApgdOptions{.loss = ApgdLoss::dlr_targeted, .target_classes = opt_.target_classes}));
        ThreatModel square = threat_;
        square.restarts = 1;
        stages_.push_back(std::make_unique<Square>(square, SquareOptions{.queries = opt_.square_queries}));
        robust_after_.assign(stages_.size() + 1, 0);
    }
    std::string name() const override { return "autoattack"; }
    nlohmann::ordered_json parameters() const override {
        nlohmann::ordered_json stages = nlohmann::ordered_json::array();
        for (auto& s : stages_) stages.push_back(s->to_json());
        return {{"stages", stages}};
    }
    nlohmann::ordered_json statistics() const override {
        nlohmann::ordered_json j{{"robust_clean", robust_after_[0]}};
        for (std::size_t s = 0; s < stages_.size(); ++s) j["robust_after_" + stages_[s]->name()] = robust_after_[s + 1];
        return j;
    }

    Tensor<float> perturb(Module& model, const Tensor<float>& x, std::span<const std::int32_t> labels,
                          std::span<const std::int64_t> ids) override {
        const auto clean = detail::predict(model, x);
        std::vector<char> open(labels.size());
        for (std::size_t i = 0; i < labels.size(); ++i) open[i] = clean[i] == labels[i];
        robust_after_[0] += std::count(open.begin(), open.end(), 1);
        Tensor<float> adv = x.clone();
        for (std::size_t s = 0; s < stages_.size(); ++s) {
            const auto rows = detail::rows_where(open);
            if (!rows.empty()) {
                const auto ys = detail::select(labels, rows);
                const Tensor<float> found =
                    stages_[s]->perturb(model, detail::select_rows(x, rows), ys, detail::select(ids, rows));
                const auto pred = detail::predict(model, found);
                for (std::size_t j = 0; j < rows.size(); ++j)
                    if (pred[j] != ys[j]) {
                        detail::assign_row(adv, rows[j], found, static_cast<std::int64_t>(j));
                        open[static_cast<std::size_t>(rows[j])] = 0;
                    }
            }
            robust_after_[s + 1] += std::count(open.begin(), open.end(), 1);
        }
        return adv;
    }

private:
    AutoAttackOptions opt_;
    std::vector<std::unique_ptr<Attack>> stages_;
    std::vector<std::int64_t> robust_after_;
};

}  // namespace ironclad

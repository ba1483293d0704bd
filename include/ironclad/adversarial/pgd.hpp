// PGD (Madry et al. 2018) in Linf and L2, and FGSM as its one-step case.
//
// Contract:
// - pgd_ascent(model, x, start, threat, objective): `threat.steps` times, adv <- project(adv + step * steepest
//   ascent direction of the objective's input gradient). The loop every gradient attack and the inner maximisation
//   of adversarial training share; it returns the last iterate (inside the threat model around x).
// - Pgd::perturb maximises the cross-entropy from a uniform random start in the ball (or from x itself without
//   random_start), `restarts` times on the images still classified correctly; per image it keeps the first restart
//   that fools the model, else the one with the highest final cross-entropy (the worst case). Images the model
//   already misclassifies are returned unchanged. Restart r of image id draws from the stream (seed, r, id).
// - fgsm(norm, eps) is the threat model of FGSM: one step of size eps (Linf: x + eps * sign(g); L2: the
//   normalised gradient, "FGM"), no random start, then clipped to [0,1]; Pgd with it is FGSM exactly.
#pragma once

#include "ironclad/adversarial/attack.hpp"
#include "ironclad/adversarial/input_gradient.hpp"

#include <limits>

namespace ironclad {

inline Tensor<float> pgd_ascent(Module& model, const Tensor<float>& x, Tensor<float> start, const ThreatModel& threat,
                                const LogitObjective& objective) {
    Tensor<float> adv = std::move(start);
    for (int s = 0; s < threat.steps; ++s) {
        const InputGradient g = input_gradient(model, adv, objective);
        threat.ascend(adv, g.grad, threat.step);
        threat.project(adv, x);
    }
    return adv;
}

inline ThreatModel fgsm(Norm norm, float eps) {
    return {.norm = norm, .eps = eps, .step = eps, .steps = 1, .restarts = 1, .random_start = false};
}

class Pgd : public Attack {
public:
    // name: "pgd", or "fgsm" for the one-step threat model of fgsm().
    explicit Pgd(ThreatModel threat, std::string name = "pgd") : Attack(threat), name_(std::move(name)) {}
    std::string name() const override { return name_; }

    Tensor<float> perturb(Module& model, const Tensor<float>& x, std::span<const std::int32_t> labels,
                          std::span<const std::int64_t> ids) override {
        if (threat_.eps == 0) return x.clone();  // the ball is one point
        const auto clean = detail::predict(model, x);
        std::vector<char> open(labels.size());  // still classified correctly: worth attacking
        for (std::size_t i = 0; i < labels.size(); ++i) open[i] = clean[i] == labels[i];
        std::vector<double> worst(labels.size(), -std::numeric_limits<double>::infinity());
        Tensor<float> adv = x.clone();
        for (int r = 0; r < threat_.restarts; ++r) {
            const auto rows = detail::rows_where(open);
            if (rows.empty()) break;
            const Tensor<float> xs = detail::select_rows(x, rows);
            const auto ys = detail::select(labels, rows);
            Tensor<float> start = xs.clone();
            if (threat_.random_start)
                threat_.random_start_point(start, xs, [&](std::int64_t j) {
                    return image_stream(static_cast<std::uint64_t>(r), ids[static_cast<std::size_t>(rows[static_cast<std::size_t>(j)])]);
                });
            const auto objective = cross_entropy_objective(ys);
            const Tensor<float> found = pgd_ascent(model, xs, std::move(start), threat_, objective);
            Tensor<float> logits;
            {
                NoGradGuard no_grad;
                logits = model(Var(found)).value();
            }
            const auto loss = objective(logits).loss;
            const auto pred = argmax_rows(logits);
            for (std::size_t j = 0; j < rows.size(); ++j) {
                const auto i = static_cast<std::size_t>(rows[j]);
                const bool fooled = pred[j] != ys[j];
                if (!fooled && !(loss[j] > worst[i])) continue;
                detail::assign_row(adv, rows[j], found, static_cast<std::int64_t>(j));
                worst[i] = loss[j];
                open[i] = !fooled;
            }
        }
        return adv;
    }

private:
    std::string name_;
};

}  // namespace ironclad

// APGD (Croce & Hein, ICML 2020, "Reliable evaluation of adversarial robustness with an ensemble of diverse
// parameter-free attacks"): PGD with momentum and a step size that halves at checkpoints where progress stalls.
// Losses: cross-entropy (APGD-CE), DLR, and targeted DLR (APGD-T, one run per target class).
//
// Contract, following fra31/auto-attack's autopgd_base.py (Linf and L2):
// - n_iter = threat.steps iterations (AutoAttack uses 100), restarts = threat.restarts; threat.step and
//   threat.random_start are not used: the start is always random (Linf: x + eps * t / max|t|, t uniform in [-1,1];
//   L2: x + eps * t / ||t||, t Gaussian; clipped to [0,1]) and the step size starts at 2 * eps per image.
// - Iteration i: z = P(x_k + eta * step direction), x_{k+1} = P(x_k + a (z - x_k) + (1 - a)(x_k - x_{k-1})) with
//   a = 0.75 (1 at i = 0), P the projection of the threat model. Checkpoints come after n_iter_2 = max(0.22 n, 1)
//   iterations, then every max(n_iter_2 - j * max(0.03 n, 1), max(0.06 n, 1)) iterations; at a checkpoint an image's
//   step size halves, and it restarts from its best point, if the loss rose in at most rho = 0.75 of the steps since
//   the last checkpoint, or if the step was not halved last time and the best loss did not improve.
// - Per image, the last iterate found misclassified is kept; images never fooled are returned unchanged (x), as
//   AutoAttack does. Only images still classified correctly are attacked by the next restart or target class.
// - APGD-T attacks target classes 2..target_classes+1 of the clean logits' ranking (the 2nd, 3rd, ... largest),
//   each with all restarts, on the images still robust.
// - Run r (a restart, or target class t restart r) of image id draws its start from the stream (seed, run, id).
#pragma once

#include "ironclad/adversarial/attack.hpp"
#include "ironclad/adversarial/input_gradient.hpp"

#include <cmath>

namespace ironclad {

enum class ApgdLoss { ce, dlr, dlr_targeted };

inline const char* to_string(ApgdLoss l) { return l == ApgdLoss::ce ? "ce" : l == ApgdLoss::dlr ? "dlr" : "dlr-targeted"; }

struct ApgdOptions {
    ApgdLoss loss = ApgdLoss::ce;
    int target_classes = 9;  // APGD-T: how many of the top classes after the first are tried as targets
    double rho = 0.75;
};

class Apgd : public Attack {
public:
    Apgd(ThreatModel threat, ApgdOptions options = {}) : Attack(threat), opt_(options) {
        if (opt_.target_classes < 1) throw std::invalid_argument("apgd: target classes must be at least 1");
    }
    std::string name() const override { return opt_.loss == ApgdLoss::ce ? "apgd-ce" : opt_.loss == ApgdLoss::dlr ? "apgd-dlr" : "apgd-t"; }
    nlohmann::ordered_json parameters() const override {
        nlohmann::ordered_json j{{"loss", to_string(opt_.loss)}, {"iterations", threat_.steps}, {"rho", opt_.rho},
                                 {"initial_step", 2.0 * threat_.eps}};
        if (opt_.loss == ApgdLoss::dlr_targeted) j["target_classes"] = opt_.target_classes;
        return j;
    }

    Tensor<float> perturb(Module& model, const Tensor<float>& x, std::span<const std::int32_t> labels,
                          std::span<const std::int64_t> ids) override {
        Tensor<float> clean_logits;
        {
            NoGradGuard no_grad;
            clean_logits = model(Var(x)).value();
        }
        const auto clean = argmax_rows(clean_logits);
        std::vector<char> open(labels.size());
        for (std::size_t i = 0; i < labels.size(); ++i) open[i] = clean[i] == labels[i];
        Tensor<float> adv = x.clone();
        const std::int64_t classes = clean_logits.dim(1);
        const int targets = opt_.loss == ApgdLoss::dlr_targeted ? std::min<int>(opt_.target_classes, static_cast<int>(classes) - 1) : 1;
        for (int t = 0; t < targets; ++t)
            for (int r = 0; r < threat_.restarts; ++r) {
                const auto rows = detail::rows_where(open);
                if (rows.empty()) return adv;
                const Tensor<float> xs = detail::select_rows(x, rows);
                const auto ys = detail::select(labels, rows);
                LogitObjective objective;
                if (opt_.loss == ApgdLoss::ce) objective = cross_entropy_objective(ys);
                if (opt_.loss == ApgdLoss::dlr) objective = dlr_objective(ys);
                if (opt_.loss == ApgdLoss::dlr_targeted) {
                    std::vector<std::int32_t> target;
                    for (std::int64_t row : rows)
                        target.push_back(detail::ranked_classes(clean_logits.data() + row * classes, classes)[static_cast<std::size_t>(t + 1)]);
                    objective = dlr_targeted_objective(ys, target);
                }
                const std::uint64_t run = static_cast<std::uint64_t>(t) * static_cast<std::uint64_t>(threat_.restarts) +
                                          static_cast<std::uint64_t>(r);
                const Run found = single_run(model, xs, ys, objective, [&](std::size_t j) { return image_stream(run, ids[static_cast<std::size_t>(rows[j])]); });
                for (std::size_t j = 0; j < rows.size(); ++j)
                    if (found.fooled[j]) {
                        detail::assign_row(adv, rows[j], found.adversarial, static_cast<std::int64_t>(j));
                        open[static_cast<std::size_t>(rows[j])] = 0;
                    }
            }
        return adv;
    }

private:
    struct Run {
        Tensor<float> adversarial;  // the last misclassified iterate per image (meaningful where fooled)
        std::vector<char> fooled;
    };

    // One APGD run on images that are all classified correctly; stream_of(j) is image j's stream.
    template <class StreamOf>
    Run single_run(Module& model, const Tensor<float>& x, std::span<const std::int32_t> labels,
                   const LogitObjective& objective, StreamOf stream_of) const {
        const std::int64_t n = x.dim(0), per = x.numel() / n;
        const int n_iter = threat_.steps;
        const int n_iter_2 = std::max(static_cast<int>(0.22 * n_iter), 1);
        const int n_iter_min = std::max(static_cast<int>(0.06 * n_iter), 1);
        const int size_decr = std::max(static_cast<int>(0.03 * n_iter), 1);
        const float eps = threat_.eps;

        Tensor<float> x_adv(x.shape());
        for (std::int64_t i = 0; i < n; ++i) {
            Rng rng = stream_of(static_cast<std::size_t>(i));
            float* a = x_adv.data() + i * per;
            double scale = 0;
            for (std::int64_t k = 0; k < per; ++k) {
                a[k] = threat_.norm == Norm::linf ? 2.0f * rng.uniform<float>() - 1.0f : static_cast<float>(rng.normal());
                scale = threat_.norm == Norm::linf ? std::max(scale, double(std::abs(a[k]))) : scale + double(a[k]) * a[k];
            }
            const float factor = static_cast<float>(eps / ((threat_.norm == Norm::linf ? scale : std::sqrt(scale)) + 1e-12));
            const float* c = x.data() + i * per;
            for (std::int64_t k = 0; k < per; ++k) a[k] = std::clamp(c[k] + a[k] * factor, 0.0f, 1.0f);
        }
        Tensor<float> x_best = x_adv.clone(), x_best_adv = x_adv.clone(), x_adv_old = x_adv.clone();
        InputGradient g = input_gradient(model, x_adv, objective);
        Tensor<float> grad = g.grad, grad_best = g.grad.clone();
        std::vector<char> fooled(static_cast<std::size_t>(n));
        auto note_fooled = [&](const InputGradient& at) {
            const auto pred = argmax_rows(at.logits);
            for (std::int64_t i = 0; i < n; ++i)
                if (pred[static_cast<std::size_t>(i)] != labels[static_cast<std::size_t>(i)]) {
                    detail::assign_row(x_best_adv, i, x_adv, i);
                    fooled[static_cast<std::size_t>(i)] = 1;
                }
        };
        note_fooled(g);
        std::vector<double> loss_best = g.loss, loss_best_last_check = g.loss;
        std::vector<char> reduced_last_check(static_cast<std::size_t>(n), 1);
        std::vector<float> step_size(static_cast<std::size_t>(n), 2.0f * eps);
        std::vector<std::vector<double>> loss_steps(static_cast<std::size_t>(n_iter), std::vector<double>(static_cast<std::size_t>(n)));
        int k = n_iter_2, counter = 0;
        for (int it = 0; it < n_iter; ++it) {
            const float a = it > 0 ? 0.75f : 1.0f;
            Tensor<float> z = x_adv.clone();
            threat_.ascend(z, grad, step_size);
            threat_.project(z, x);
            Tensor<float> next = Tensor<float>::uninitialized(x.shape());
            for (std::int64_t e = 0; e < x.numel(); ++e)
                next[e] = x_adv[e] + (z[e] - x_adv[e]) * a + (x_adv[e] - x_adv_old[e]) * (1.0f - a);
            threat_.project(next, x);
            x_adv_old = std::move(x_adv);
            x_adv = std::move(next);

            g = input_gradient(model, x_adv, objective);
            grad = g.grad;
            note_fooled(g);
            for (std::int64_t i = 0; i < n; ++i) {
                const auto s = static_cast<std::size_t>(i);
                loss_steps[static_cast<std::size_t>(it)][s] = g.loss[s];
                if (g.loss[s] > loss_best[s]) {
                    detail::assign_row(x_best, i, x_adv, i);
                    detail::assign_row(grad_best, i, grad, i);
                    loss_best[s] = g.loss[s];
                }
            }
            if (++counter < k) continue;
            for (std::int64_t i = 0; i < n; ++i) {
                const auto s = static_cast<std::size_t>(i);
                // Steps since the last checkpoint where the loss rose (the step before the first counts from 0).
                int rises = 0;
                for (int c = 0; c < k; ++c) {
                    const double before = it - c - 1 >= 0 ? loss_steps[static_cast<std::size_t>(it - c - 1)][s] : 0.0;
                    rises += loss_steps[static_cast<std::size_t>(it - c)][s] > before;
                }
                const bool oscillates = rises <= k * opt_.rho;
                const bool stalled = !reduced_last_check[s] && loss_best_last_check[s] >= loss_best[s];
                reduced_last_check[s] = oscillates || stalled;
                loss_best_last_check[s] = loss_best[s];
                if (reduced_last_check[s]) {
                    step_size[s] /= 2.0f;
                    detail::assign_row(x_adv, i, x_best, i);
                    detail::assign_row(grad, i, grad_best, i);
                }
            }
            k = std::max(k - size_decr, n_iter_min);
            counter = 0;
        }
        return {std::move(x_best_adv), std::move(fooled)};
    }

    ApgdOptions opt_;
};

}  // namespace ironclad

// Gradients of per-image attack objectives with respect to the input images.
//
// Contract: an objective maps logits [N,K] to one loss per row and the gradient of each row's loss with respect to
// that row's logits (rows never mix, so an image's loss and gradient do not depend on the other images of the batch,
// nor on the batch size: no 1/N factor). input_gradient() runs the model on x with the tape on, seeds the logits
// with the objective's gradient and returns d loss_i / d x_i for every image, with the model's parameters frozen
// for the call (no weight gradients are computed or left behind). It must run with grad mode on.
// Objectives (losses computed per row in double; ties between logits go to the lower class index):
//   cross_entropy_objective  -log softmax(z)_y                                    (maximised by PGD, APGD-CE)
//   kl_objective             KL(t_i || softmax(z_i)) for target distributions t   (TRADES / ARD / RSLAD inner loop)
//   dlr_objective            -(z_y - max_{j!=y} z_j) / (z_(1) - z_(3) + 1e-12)    (Croce & Hein 2020, untargeted)
//   dlr_targeted_objective   -(z_y - z_t) / (z_(1) - (z_(3) + z_(4)) / 2 + 1e-12) (APGD-T), z_(k) the k-th largest
// margins(): z_y - max_{j!=y} z_j per row (positive: classified correctly), the score of the Square attack.
// logits: [N,K]; labels, targets: N values in [0, K).
#pragma once

#include "ironclad/autograd/losses.hpp"
#include "ironclad/core/parallel.hpp"
#include "ironclad/nn/module.hpp"

#include <algorithm>
#include <cmath>
#include <functional>
#include <limits>
#include <numeric>
#include <span>
#include <stdexcept>
#include <vector>

namespace ironclad {

struct RowLosses {
    std::vector<double> loss;  // [N]
    Tensor<float> grad;        // [N,K]: d loss_i / d logits_i
};

using LogitObjective = std::function<RowLosses(const Tensor<float>& logits)>;

// Sets requires_grad off on every parameter of a module for its lifetime, and back on afterwards.
class FrozenParameters {
public:
    explicit FrozenParameters(const Module& model) {
        for (auto& p : model.parameters())
            if (p.requires_grad()) {
                frozen_.push_back(p);
                frozen_.back().set_requires_grad(false);
            }
    }
    ~FrozenParameters() {
        for (auto& p : frozen_) p.set_requires_grad(true);
    }
    FrozenParameters(const FrozenParameters&) = delete;
    FrozenParameters& operator=(const FrozenParameters&) = delete;

private:
    std::vector<Var> frozen_;
};

namespace detail {

// Fills loss[i] and the gradient row i from row_fn(i, log_probabilities_i, grad_i), rows in parallel.
template <class RowFn>
RowLosses per_row(const Tensor<float>& logits, RowFn row_fn) {
    detail::check_logits("attack objective", logits);
    const std::int64_t rows = logits.dim(0), k = logits.dim(1);
    RowLosses r{std::vector<double>(static_cast<std::size_t>(rows)), Tensor<float>({rows, k})};
    parallel_for(rows, [&](std::int64_t i) { r.loss[static_cast<std::size_t>(i)] = row_fn(i, r.grad.data() + i * k); }, k * 8);
    return r;
}

// Class indices of one row, largest logit first (ties: lower index first).
inline std::vector<std::int32_t> ranked_classes(const float* z, std::int64_t k) {
    std::vector<std::int32_t> order(static_cast<std::size_t>(k));
    std::iota(order.begin(), order.end(), 0);
    std::stable_sort(order.begin(), order.end(), [z](std::int32_t a, std::int32_t b) { return z[a] > z[b]; });
    return order;
}

}  // namespace detail

inline LogitObjective cross_entropy_objective(std::span<const std::int32_t> labels) {
    std::vector<std::int32_t> y(labels.begin(), labels.end());
    return [y = std::move(y)](const Tensor<float>& logits) {
        detail::check_labels("cross_entropy_objective", logits, y);
        const Tensor<float> log_p = detail::log_softmax_rows(logits, 1.0f);
        const std::int64_t k = logits.dim(1);
        return detail::per_row(logits, [&](std::int64_t i, float* g) {
            const float* lp = log_p.data() + i * k;
            const std::int32_t label = y[static_cast<std::size_t>(i)];
            for (std::int64_t j = 0; j < k; ++j) g[j] = static_cast<float>(std::exp(double(lp[j])) - (j == label));
            return -double(lp[label]);
        });
    };
}

// target: [N,K] probability rows (each sums to 1).
inline LogitObjective kl_objective(Tensor<float> target) {
    return [t = std::move(target)](const Tensor<float>& logits) {
        if (t.shape() != logits.shape())
            throw std::invalid_argument("kl_objective: target " + shape_str(t.shape()) + " and logits " +
                                        shape_str(logits.shape()) + " differ");
        const Tensor<float> log_q = detail::log_softmax_rows(logits, 1.0f);
        const std::int64_t k = logits.dim(1);
        return detail::per_row(logits, [&](std::int64_t i, float* g) {
            const float* lq = log_q.data() + i * k;
            const float* ti = t.data() + i * k;
            double kl = 0;
            for (std::int64_t j = 0; j < k; ++j) {
                if (ti[j] > 0) kl += double(ti[j]) * (std::log(double(ti[j])) - double(lq[j]));
                g[j] = static_cast<float>(std::exp(double(lq[j])) - double(ti[j]));
            }
            return kl;
        });
    };
}

inline LogitObjective dlr_objective(std::span<const std::int32_t> labels) {
    std::vector<std::int32_t> y(labels.begin(), labels.end());
    return [y = std::move(y)](const Tensor<float>& logits) {
        detail::check_labels("dlr_objective", logits, y);
        const std::int64_t k = logits.dim(1);
        if (k < 3) throw std::invalid_argument("dlr_objective: the DLR loss needs at least 3 classes, got " + std::to_string(k));
        return detail::per_row(logits, [&](std::int64_t i, float* g) {
            const float* z = logits.data() + i * k;
            const auto order = detail::ranked_classes(z, k);
            const std::int32_t label = y[static_cast<std::size_t>(i)];
            const std::int32_t other = order[0] == label ? order[1] : order[0];
            const double numerator = double(z[label]) - double(z[other]);
            const double denominator = double(z[order[0]]) - double(z[order[2]]) + 1e-12;
            std::fill(g, g + k, 0.0f);
            // loss = -N/D: dN = dz_label - dz_other, dD = dz_(1) - dz_(3).
            g[label] += static_cast<float>(-1.0 / denominator);
            g[other] += static_cast<float>(1.0 / denominator);
            const double by_d = numerator / (denominator * denominator);
            g[order[0]] += static_cast<float>(by_d);
            g[order[2]] -= static_cast<float>(by_d);
            return -numerator / denominator;
        });
    };
}

inline LogitObjective dlr_targeted_objective(std::span<const std::int32_t> labels, std::span<const std::int32_t> targets) {
    if (labels.size() != targets.size())
        throw std::invalid_argument("dlr_targeted_objective: " + std::to_string(labels.size()) + " labels but " +
                                    std::to_string(targets.size()) + " targets");
    std::vector<std::int32_t> y(labels.begin(), labels.end()), t(targets.begin(), targets.end());
    return [y = std::move(y), t = std::move(t)](const Tensor<float>& logits) {
        detail::check_labels("dlr_targeted_objective", logits, y);
        detail::check_labels("dlr_targeted_objective", logits, t);
        const std::int64_t k = logits.dim(1);
        if (k < 4)
            throw std::invalid_argument("dlr_targeted_objective: the targeted DLR loss needs at least 4 classes, got " +
                                        std::to_string(k));
        return detail::per_row(logits, [&](std::int64_t i, float* g) {
            const float* z = logits.data() + i * k;
            const auto order = detail::ranked_classes(z, k);
            const std::int32_t label = y[static_cast<std::size_t>(i)], target = t[static_cast<std::size_t>(i)];
            const double numerator = double(z[label]) - double(z[target]);
            const double denominator = double(z[order[0]]) - 0.5 * (double(z[order[2]]) + double(z[order[3]])) + 1e-12;
            std::fill(g, g + k, 0.0f);
            g[label] += static_cast<float>(-1.0 / denominator);
            g[target] += static_cast<float>(1.0 / denominator);
            const double by_d = numerator / (denominator * denominator);
            g[order[0]] += static_cast<float>(by_d);
            g[order[2]] -= static_cast<float>(0.5 * by_d);
            g[order[3]] -= static_cast<float>(0.5 * by_d);
            return -numerator / denominator;
        });
    };
}

// z_y - max_{j != y} z_j per row.
inline std::vector<float> margins(const Tensor<float>& logits, std::span<const std::int32_t> labels) {
    detail::check_labels("margins", logits, labels);
    const std::int64_t k = logits.dim(1);
    std::vector<float> out(labels.size());
    for (std::size_t i = 0; i < labels.size(); ++i) {
        const float* z = logits.data() + static_cast<std::int64_t>(i) * k;
        float other = -std::numeric_limits<float>::infinity();
        for (std::int64_t j = 0; j < k; ++j)
            if (j != labels[i]) other = std::max(other, z[j]);
        out[i] = z[labels[i]] - other;
    }
    return out;
}

// softmax(logits) per row, in float, e.g. the target distribution of kl_objective.
inline Tensor<float> softmax_rows(const Tensor<float>& logits) {
    detail::check_logits("softmax_rows", logits);
    Tensor<float> p = detail::log_softmax_rows(logits, 1.0f);
    for (auto& v : p) v = std::exp(v);
    return p;
}

struct InputGradient {
    Tensor<float> logits;       // [N,K] at x
    std::vector<double> loss;   // [N]
    Tensor<float> grad;         // like x
};

// model takes [0,1] images (e.g. a NormalizedModel); x: [N,C,H,W].
inline InputGradient input_gradient(Module& model, const Tensor<float>& x, const LogitObjective& objective) {
    if (!grad_enabled()) throw std::logic_error("input_gradient: called with grad mode off (inside a NoGradGuard)");
    FrozenParameters frozen(model);
    Var input(x, true);  // shares x's storage; no op writes its inputs
    Var logits = model(input);
    RowLosses r = objective(logits.value());
    logits.backward(r.grad);
    return {logits.value(), std::move(r.loss), input.grad()};
}

}  // namespace ironclad

// Training losses (cross-entropy with label smoothing, tempered KL for distillation / TRADES, MSE) and
// accuracy helpers.
//
// Contract: every loss returns a 0-d Var (shape {}, like sum()) holding the mean over the batch, and
// matches PyTorch:
//   cross_entropy    = F.cross_entropy(logits, labels, label_smoothing=eps)
//   kl_div_tempered  = F.kl_div(F.log_softmax(s/T), F.softmax(t/T), reduction='batchmean'), WITHOUT the T^2
//                      factor of distillation (callers scale); gradients reach both logits when they require one
//   mse_loss         = F.mse_loss(a, b) (mean over all elements)
// Log-softmax is max-shifted and computed in double per row. Rows are independent and their losses are added
// in order, so results do not depend on the thread count.
// argmax_rows and count_topk_correct rank NaN above every number (as torch.argmax does) and break ties toward
// the lower index.
// logits, student, teacher: [N,K]; labels: N values in [0, K)
#pragma once

#include "ironclad/autograd/elementwise.hpp"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <span>
#include <stdexcept>
#include <string>
#include <vector>

namespace ironclad {

namespace detail {

inline void check_logits(const char* op, const Tensor<float>& logits) {
    if (logits.ndim() != 2 || logits.dim(1) < 1)
        throw std::invalid_argument(std::string(op) + ": expected logits [N,K] with K >= 1, got " +
                                    shape_str(logits.shape()));
}

inline void check_labels(const char* op, const Tensor<float>& logits, std::span<const std::int32_t> labels) {
    check_logits(op, logits);
    if (static_cast<std::int64_t>(labels.size()) != logits.dim(0))
        throw std::invalid_argument(std::string(op) + ": " + std::to_string(labels.size()) + " labels for logits " +
                                    shape_str(logits.shape()));
    for (std::size_t i = 0; i < labels.size(); ++i)
        if (labels[i] < 0 || labels[i] >= logits.dim(1))
            throw std::invalid_argument(std::string(op) + ": label " + std::to_string(labels[i]) + " of row " +
                                        std::to_string(i) + " outside [0, " + std::to_string(logits.dim(1)) + ")");
}

// log softmax(z / temperature) of each row.
inline Tensor<float> log_softmax_rows(const Tensor<float>& z, float temperature) {
    const std::int64_t rows = z.dim(0), k = z.dim(1);
    const double inv_t = 1.0 / temperature;
    Tensor<float> out(z.shape());
#pragma omp parallel for schedule(static) if (z.numel() >= kElementwiseGrain)
    for (std::int64_t i = 0; i < rows; ++i) {
        const float* zi = z.data() + i * k;
        float* oi = out.data() + i * k;
        double top = -std::numeric_limits<double>::infinity();
        for (std::int64_t j = 0; j < k; ++j) top = std::max(top, zi[j] * inv_t);
        double s = 0;
        for (std::int64_t j = 0; j < k; ++j) s += std::exp(zi[j] * inv_t - top);
        const double log_norm = top + std::log(s);
        for (std::int64_t j = 0; j < k; ++j) oi[j] = static_cast<float>(zi[j] * inv_t - log_norm);
    }
    return out;
}

// Mean over rows of row_loss(i), added in row order.
template <class RowLoss>
float batch_mean(std::int64_t rows, RowLoss row_loss) {
    std::vector<double> per_row(static_cast<std::size_t>(rows));
#pragma omp parallel for schedule(static) if (rows >= 64)
    for (std::int64_t i = 0; i < rows; ++i) per_row[static_cast<std::size_t>(i)] = row_loss(i);
    double total = 0;
    for (double v : per_row) total += v;
    return static_cast<float>(total / static_cast<double>(rows));
}

// Rank order for classification: NaN above every number.
inline bool ranks_above(float a, float b) { return (std::isnan(a) && !std::isnan(b)) || a > b; }

}  // namespace detail

// Target distribution per row: 1 - eps + eps/K on the label, eps/K elsewhere.
inline Var cross_entropy(const Var& logits, std::span<const std::int32_t> labels, float label_smoothing = 0.0f) {
    detail::check_labels("cross_entropy", logits.value(), labels);
    if (!(label_smoothing >= 0 && label_smoothing <= 1))
        throw std::invalid_argument("cross_entropy: label_smoothing " + std::to_string(label_smoothing) +
                                    " not in [0, 1]");
    const std::int64_t rows = logits.dim(0), k = logits.dim(1);
    const Tensor<float> log_p = detail::log_softmax_rows(logits.value(), 1.0f);
    const double on_label = 1.0 - label_smoothing, uniform = static_cast<double>(label_smoothing) / k;
    Tensor<float> loss(Shape{});
    loss[0] = detail::batch_mean(rows, [&](std::int64_t i) {
        const float* lp = log_p.data() + i * k;
        double all = 0;
        for (std::int64_t j = 0; j < k; ++j) all += lp[j];
        return -(on_label * lp[labels[static_cast<std::size_t>(i)]] + uniform * all);
    });
    std::vector<std::int32_t> kept(labels.begin(), labels.end());
    return make_result(
        std::move(loss), {&logits}, [log_p, kept = std::move(kept), rows, k, on_label, uniform](Node& n) {
            const double seed = n.grad[0] / static_cast<double>(rows);
            float* d = n.parents[0]->grad_buffer().data();
#pragma omp parallel for schedule(static) if (rows * k >= detail::kElementwiseGrain)
            for (std::int64_t i = 0; i < rows; ++i)
                for (std::int64_t j = 0; j < k; ++j) {
                    const double target = uniform + (j == kept[static_cast<std::size_t>(i)] ? on_label : 0.0);
                    d[i * k + j] += static_cast<float>(seed * (std::exp(double(log_p[i * k + j])) - target));
                }
        });
}

// Per row: sum_k p_t (log p_t - log p_s), p = softmax(logits / T).
inline Var kl_div_tempered(const Var& student, const Var& teacher, float temperature) {
    detail::check_logits("kl_div_tempered", student.value());
    if (student.shape() != teacher.shape())
        throw std::invalid_argument("kl_div_tempered: student " + shape_str(student.shape()) + " and teacher " +
                                    shape_str(teacher.shape()) + " differ");
    if (!(temperature > 0))
        throw std::invalid_argument("kl_div_tempered: temperature " + std::to_string(temperature) + " not positive");
    const std::int64_t rows = student.dim(0), k = student.dim(1);
    const Tensor<float> log_ps = detail::log_softmax_rows(student.value(), temperature);
    const Tensor<float> log_pt = detail::log_softmax_rows(teacher.value(), temperature);
    std::vector<double> row_kl(static_cast<std::size_t>(rows));
    Tensor<float> loss(Shape{});
    loss[0] = detail::batch_mean(rows, [&](std::int64_t i) {
        double s = 0;
        for (std::int64_t j = i * k; j < (i + 1) * k; ++j)
            s += std::exp(double(log_pt[j])) * (double(log_pt[j]) - double(log_ps[j]));
        return row_kl[static_cast<std::size_t>(i)] = s;
    });
    // d/ds_j = (p_s,j - p_t,j) / T;  d/dt_j = p_t,j (log p_t,j - log p_s,j - row_kl) / T.
    return make_result(
        std::move(loss), {&student, &teacher},
        [log_ps, log_pt, row_kl = std::move(row_kl), rows, k, temperature](Node& n) {
            const double seed = n.grad[0] / (static_cast<double>(rows) * temperature);
            float* ds = n.parents[0]->requires_grad ? n.parents[0]->grad_buffer().data() : nullptr;
            float* dt = n.parents[1]->requires_grad ? n.parents[1]->grad_buffer().data() : nullptr;
#pragma omp parallel for schedule(static) if (rows * k >= detail::kElementwiseGrain)
            for (std::int64_t i = 0; i < rows; ++i)
                for (std::int64_t j = i * k; j < (i + 1) * k; ++j) {
                    const double pt = std::exp(double(log_pt[j]));
                    if (ds) ds[j] += static_cast<float>(seed * (std::exp(double(log_ps[j])) - pt));
                    if (dt)
                        dt[j] += static_cast<float>(
                            seed * pt * (double(log_pt[j]) - double(log_ps[j]) - row_kl[static_cast<std::size_t>(i)]));
                }
        });
}

// Mean of (a - b)^2 over all elements.
inline Var mse_loss(const Var& a, const Var& b) {
    detail::check_equal_shapes("mse_loss", a, b);
    const float* ap = a.value().data();
    const float* bp = b.value().data();
    const std::int64_t count = a.value().numel();
    Tensor<float> loss(Shape{});
    const double squares = detail::block_sum(count, [=](std::int64_t i) {
        const double d = double(ap[i]) - double(bp[i]);
        return d * d;
    });
    loss[0] = static_cast<float>(squares / static_cast<double>(count));
    return make_result(std::move(loss), {&a, &b}, [count](Node& n) {
        const float s = 2 * n.grad[0] / static_cast<float>(count);
        const float* x = n.parents[0]->value.data();
        const float* y = n.parents[1]->value.data();
        for (int side = 0; side < 2; ++side) {
            if (!n.parents[side]->requires_grad) continue;
            float* d = n.parents[side]->grad_buffer().data();
            const float sign = side == 0 ? s : -s;
            detail::elementwise_for(count, [=](std::int64_t i) { d[i] += sign * (x[i] - y[i]); });
        }
    });
}

// logits: [N,K] -> N class indices.
inline std::vector<std::int32_t> argmax_rows(const Tensor<float>& logits) {
    detail::check_logits("argmax_rows", logits);
    const std::int64_t k = logits.dim(1);
    std::vector<std::int32_t> out(static_cast<std::size_t>(logits.dim(0)));
    for (std::size_t i = 0; i < out.size(); ++i) {
        const float* row = logits.data() + static_cast<std::int64_t>(i) * k;
        std::int32_t best = 0;
        for (std::int32_t j = 1; j < k; ++j)
            if (detail::ranks_above(row[j], row[best])) best = j;
        out[i] = best;
    }
    return out;
}

// Rows whose label is among the k highest logits (top-1 = argmax_rows agrees with the label).
inline std::int64_t count_topk_correct(const Tensor<float>& logits, std::span<const std::int32_t> labels,
                                       std::int64_t k) {
    detail::check_labels("count_topk_correct", logits, labels);
    if (k < 1) throw std::invalid_argument("count_topk_correct: k = " + std::to_string(k) + " must be positive");
    const std::int64_t classes = logits.dim(1);
    std::int64_t correct = 0;
    for (std::size_t i = 0; i < labels.size(); ++i) {
        const float* row = logits.data() + static_cast<std::int64_t>(i) * classes;
        const std::int32_t y = labels[i];
        std::int64_t rank = 0;  // classes ordered before the label
        for (std::int32_t j = 0; j < classes; ++j)
            if (detail::ranks_above(row[j], row[y]) || (j < y && !detail::ranks_above(row[y], row[j]))) ++rank;
        correct += rank < k;
    }
    return correct;
}

}  // namespace ironclad

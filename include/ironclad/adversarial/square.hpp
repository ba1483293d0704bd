// Square attack (Andriushchenko, Croce, Flammarion, Hein, ECCV 2020): a black-box, score-based random search that
// only reads the model's logits (no gradients), in Linf and in L2.
//
// Contract (the paper's Algorithms 1-3, the schedule and loss of fra31/auto-attack's square.py):
// - Margin loss z_y - max_{j!=y} z_j; a proposal is kept when it lowers an image's margin (or fools the model).
//   Query budget: `queries` iterations (AutoAttack: 5000). The square's pixel fraction p follows p_init, /2, /4,
//   ... /512 at iterations 10, 50, 200, 500, 1000, 2000, 4000, 6000, 8000 of a budget rescaled to 10,000.
// - Linf: start x + eps * s per (channel, column), s = +-1 (vertical stripes), clipped to [0,1]. Each iteration a
//   square of side round(sqrt(p * H*W)) (at least 1, at most H-1) at a random position is shifted by 2 * eps *
//   (+-1 per channel) and the point projected to the threat model.
// - L2: start from a grid of H/5-sided blocks, each a pseudo-Gaussian bump (eta: concentric rectangles weighted
//   1/(k+1)^2, positive in one half, negative in the other, unit norm) with a random sign per channel, scaled to
//   norm eps and clipped. Each iteration picks two windows W1, W2 of odd side max(round(sqrt(p * H*W)), 3) (at
//   most H): W1's content, per channel, becomes its own normalised direction plus a fresh signed eta, rescaled to
//   carry the energy of W1 and W2 plus an equal share of the budget still unused; W2 is cleared (its mass moves to
//   W1); the whole perturbation is rescaled to norm eps and the point clipped to [0,1].
// - Unlike the reference (one square position per batch and iteration), each image draws its squares, signs and
//   bump orientations from its own stream (seed, restart, id), so an image's result does not depend on its batch.
// - Images already misclassified and images never fooled are returned unchanged (x), as AutoAttack does; restarts
//   (threat.restarts) run again on the images still robust. threat.step and threat.steps are not used.
#pragma once

#include "ironclad/adversarial/attack.hpp"
#include "ironclad/adversarial/input_gradient.hpp"

#include <cmath>

namespace ironclad {

struct SquareOptions {
    int queries = 5000;
    double p_init = 0.8;
};

class Square : public Attack {
public:
    Square(ThreatModel threat, SquareOptions options = {}) : Attack(threat), opt_(options) {
        if (opt_.queries < 1) throw std::invalid_argument("square: the query budget must be at least 1");
        if (!(opt_.p_init > 0 && opt_.p_init <= 1)) throw std::invalid_argument("square: p_init must be in (0, 1]");
    }
    std::string name() const override { return "square"; }
    nlohmann::ordered_json parameters() const override {
        return {{"queries", opt_.queries}, {"p_init", opt_.p_init}, {"loss", "margin"}};
    }

    // Fraction of the pixels a square covers at iteration `it`.
    double p_selection(int it) const {
        const int i = static_cast<int>(static_cast<double>(it) / opt_.queries * 10000);
        const int halvings = i <= 10 ? 0 : i <= 50 ? 1 : i <= 200 ? 2 : i <= 500 ? 3 : i <= 1000 ? 4 : i <= 2000 ? 5
                           : i <= 4000 ? 6 : i <= 6000 ? 7 : i <= 8000 ? 8 : 9;
        return opt_.p_init / static_cast<double>(1 << halvings);
    }

    Tensor<float> perturb(Module& model, const Tensor<float>& x, std::span<const std::int32_t> labels,
                          std::span<const std::int64_t> ids) override {
        const auto clean = detail::predict(model, x);
        std::vector<char> open(labels.size());
        for (std::size_t i = 0; i < labels.size(); ++i) open[i] = clean[i] == labels[i];
        Tensor<float> adv = x.clone();
        for (int r = 0; r < threat_.restarts; ++r) {
            const auto rows = detail::rows_where(open);
            if (rows.empty()) break;
            const Tensor<float> xs = detail::select_rows(x, rows);
            std::vector<Rng> streams;
            for (std::int64_t row : rows) streams.push_back(image_stream(static_cast<std::uint64_t>(r), ids[static_cast<std::size_t>(row)]));
            const Tensor<float> found = single_run(model, xs, detail::select(labels, rows), streams);
            const auto pred = detail::predict(model, found);
            for (std::size_t j = 0; j < rows.size(); ++j)
                if (pred[j] != labels[static_cast<std::size_t>(rows[j])]) {
                    detail::assign_row(adv, rows[j], found, static_cast<std::int64_t>(j));
                    open[static_cast<std::size_t>(rows[j])] = 0;
                }
        }
        return adv;
    }

private:
    static float random_sign(Rng& rng) { return rng.bernoulli(0.5) ? 1.0f : -1.0f; }

    // One image's planes: c planes of h x w floats.
    struct Planes {
        std::int64_t c, h, w;
        std::int64_t at(std::int64_t ch, std::int64_t row, std::int64_t col) const { return (ch * h + row) * w + col; }
    };

    Tensor<float> single_run(Module& model, const Tensor<float>& x, const std::vector<std::int32_t>& labels,
                             std::vector<Rng>& streams) const {
        const std::int64_t n = x.dim(0), c = x.dim(1), h = x.dim(2), w = x.dim(3), per = c * h * w;
        const Planes g{c, h, w};
        Tensor<float> best = x.clone();
        for (std::int64_t i = 0; i < n; ++i) {
            Rng& rng = streams[static_cast<std::size_t>(i)];
            if (threat_.norm == Norm::linf)
                linf_start(best.data() + i * per, g, rng);
            else
                l2_start(best.data() + i * per, x.data() + i * per, g, rng);
        }
        std::vector<float> margin = margins(logits_of(model, best), labels);
        for (int it = 0; it < opt_.queries; ++it) {
            std::vector<std::int64_t> open;
            for (std::int64_t i = 0; i < n; ++i)
                if (margin[static_cast<std::size_t>(i)] > 0) open.push_back(i);
            if (open.empty()) break;
            const auto area_side = std::llround(std::sqrt(p_selection(it) * static_cast<double>(h * w)));
            Tensor<float> proposal = detail::select_rows(best, open);
            const Tensor<float> centre = detail::select_rows(x, open);
            for (std::size_t j = 0; j < open.size(); ++j) {
                Rng& rng = streams[static_cast<std::size_t>(open[j])];
                float* a = proposal.data() + static_cast<std::int64_t>(j) * per;
                const float* x0 = centre.data() + static_cast<std::int64_t>(j) * per;
                if (threat_.norm == Norm::linf)
                    linf_proposal(a, g, std::min<std::int64_t>(std::max<std::int64_t>(area_side, 1), std::min(h, w) - 1), rng);
                else
                    l2_proposal(a, x0, g, std::min<std::int64_t>(std::max<std::int64_t>(area_side, 3) | 1, std::min(h, w)), rng);
            }
            threat_.project(proposal, centre);
            const auto open_labels = detail::select(std::span<const std::int32_t>(labels), open);
            const std::vector<float> proposed = margins(logits_of(model, proposal), open_labels);
            for (std::size_t j = 0; j < open.size(); ++j) {
                const auto i = static_cast<std::size_t>(open[j]);
                if (proposed[j] < margin[i] || proposed[j] <= 0) {
                    margin[i] = proposed[j];
                    detail::assign_row(best, open[j], proposal, static_cast<std::int64_t>(j));
                }
            }
        }
        return best;
    }

    void linf_start(float* a, const Planes& g, Rng& rng) const {
        for (std::int64_t ch = 0; ch < g.c; ++ch)
            for (std::int64_t col = 0; col < g.w; ++col) {
                const float shift = threat_.eps * random_sign(rng);
                for (std::int64_t row = 0; row < g.h; ++row) a[g.at(ch, row, col)] = std::clamp(a[g.at(ch, row, col)] + shift, 0.0f, 1.0f);
            }
    }

    void linf_proposal(float* a, const Planes& g, std::int64_t side, Rng& rng) const {
        const std::int64_t top = rng.uniform_int(0, g.h - side - 1), left = rng.uniform_int(0, g.w - side - 1);
        for (std::int64_t ch = 0; ch < g.c; ++ch) {
            const float shift = 2.0f * threat_.eps * random_sign(rng);
            for (std::int64_t row = top; row < top + side; ++row)
                for (std::int64_t col = left; col < left + side; ++col) a[g.at(ch, row, col)] += shift;
        }
    }

    // rows x cols of concentric rectangles around the centre, ring k weighted 1/(k+1)^2, unit L2 norm.
    static std::vector<double> rectangles(std::int64_t rows, std::int64_t cols) {
        std::vector<double> v(static_cast<std::size_t>(rows * cols), 0.0);
        const std::int64_t cr = rows / 2, cc = cols / 2;
        for (std::int64_t k = 0; k <= std::max(cr, cc); ++k) {
            const double weight = 1.0 / static_cast<double>((k + 1) * (k + 1));
            for (std::int64_t r = std::max<std::int64_t>(cr - k, 0); r < std::min(cr + k + 1, rows); ++r)
                for (std::int64_t q = std::max<std::int64_t>(cc - k, 0); q < std::min(cc + k + 1, cols); ++q)
                    v[static_cast<std::size_t>(r * cols + q)] += weight;
        }
        return unit(std::move(v));
    }

    static std::vector<double> unit(std::vector<double> v) {
        double sq = 0;
        for (double e : v) sq += e * e;
        if (sq > 0)
            for (double& e : v) e /= std::sqrt(sq);
        return v;
    }

    // The pseudo-Gaussian bump eta of side s: rectangles in the first half of the rows, their negation in the
    // second, unit norm, transposed at random.
    static std::vector<double> eta(std::int64_t s, Rng& rng) {
        const std::int64_t upper = s / 2;
        const std::vector<double> top = rectangles(upper, s), bottom = rectangles(s - upper, s);
        std::vector<double> v(top);
        for (double e : bottom) v.push_back(-e);
        v = unit(std::move(v));
        if (rng.bernoulli(0.5))
            for (std::int64_t r = 0; r < s; ++r)
                for (std::int64_t q = r + 1; q < s; ++q)
                    std::swap(v[static_cast<std::size_t>(r * s + q)], v[static_cast<std::size_t>(q * s + r)]);
        return v;
    }

    // a <- clip(x + eps * delta / ||delta||, 0, 1).
    void l2_place(float* a, const float* x, const std::vector<double>& delta) const {
        double sq = 0;
        for (double d : delta) sq += d * d;
        const double scale = sq > 0 ? threat_.eps / std::sqrt(sq) : 0.0;
        for (std::size_t k = 0; k < delta.size(); ++k)
            a[k] = std::clamp(static_cast<float>(static_cast<double>(x[k]) + delta[k] * scale), 0.0f, 1.0f);
    }

    void l2_start(float* a, const float* x, const Planes& g, Rng& rng) const {
        std::vector<double> delta(static_cast<std::size_t>(g.c * g.h * g.w), 0.0);
        const std::int64_t s = std::max<std::int64_t>(g.h / 5, 1);
        for (std::int64_t top = (g.h - s * (g.h / s)) / 2; top + s <= g.h; top += s)
            for (std::int64_t left = (g.w - s * (g.w / s)) / 2; left + s <= g.w; left += s) {
                const std::vector<double> bump = eta(s, rng);
                for (std::int64_t ch = 0; ch < g.c; ++ch) {
                    const double sign = random_sign(rng);
                    for (std::int64_t r = 0; r < s; ++r)
                        for (std::int64_t q = 0; q < s; ++q)
                            delta[static_cast<std::size_t>(g.at(ch, top + r, left + q))] += sign * bump[static_cast<std::size_t>(r * s + q)];
                }
            }
        l2_place(a, x, delta);
    }

    void l2_proposal(float* a, const float* x, const Planes& g, std::int64_t s, Rng& rng) const {
        const std::size_t count = static_cast<std::size_t>(g.c * g.h * g.w);
        std::vector<double> delta(count);
        double image_sq = 0;
        for (std::size_t k = 0; k < count; ++k) {
            delta[k] = static_cast<double>(a[k]) - static_cast<double>(x[k]);
            image_sq += delta[k] * delta[k];
        }
        const std::int64_t top1 = rng.uniform_int(0, g.h - s), left1 = rng.uniform_int(0, g.w - s);
        const std::int64_t top2 = rng.uniform_int(0, g.h - s), left2 = rng.uniform_int(0, g.w - s);
        auto in_window = [s](std::int64_t row, std::int64_t col, std::int64_t top, std::int64_t left) {
            return row >= top && row < top + s && col >= left && col < left + s;
        };
        double windows_sq = 0;  // energy on W1 u W2, all channels
        for (std::int64_t ch = 0; ch < g.c; ++ch)
            for (std::int64_t row = 0; row < g.h; ++row)
                for (std::int64_t col = 0; col < g.w; ++col)
                    if (in_window(row, col, top1, left1) || in_window(row, col, top2, left2))
                        windows_sq += delta[static_cast<std::size_t>(g.at(ch, row, col))] * delta[static_cast<std::size_t>(g.at(ch, row, col))];
        const double eps = threat_.eps;
        const double target = std::sqrt(std::max(eps * eps - image_sq, 0.0) / static_cast<double>(g.c) + windows_sq);
        const std::vector<double> bump = eta(s, rng);
        std::vector<std::vector<double>> fresh(static_cast<std::size_t>(g.c));
        for (std::int64_t ch = 0; ch < g.c; ++ch) {
            std::vector<double> old(static_cast<std::size_t>(s * s));
            double old_sq = 0;
            for (std::int64_t r = 0; r < s; ++r)
                for (std::int64_t q = 0; q < s; ++q) {
                    const double d = delta[static_cast<std::size_t>(g.at(ch, top1 + r, left1 + q))];
                    old[static_cast<std::size_t>(r * s + q)] = d;
                    old_sq += d * d;
                }
            const double sign = random_sign(rng), old_norm = std::sqrt(old_sq) + 1e-12;
            std::vector<double> v(static_cast<std::size_t>(s * s));
            for (std::size_t k = 0; k < v.size(); ++k) v[k] = sign * bump[k] + old[k] / old_norm;
            v = unit(std::move(v));
            for (double& e : v) e *= target;
            fresh[static_cast<std::size_t>(ch)] = std::move(v);
        }
        for (std::int64_t ch = 0; ch < g.c; ++ch)
            for (std::int64_t r = 0; r < s; ++r)
                for (std::int64_t q = 0; q < s; ++q) delta[static_cast<std::size_t>(g.at(ch, top2 + r, left2 + q))] = 0;
        for (std::int64_t ch = 0; ch < g.c; ++ch)
            for (std::int64_t r = 0; r < s; ++r)
                for (std::int64_t q = 0; q < s; ++q)
                    delta[static_cast<std::size_t>(g.at(ch, top1 + r, left1 + q))] =
                        fresh[static_cast<std::size_t>(ch)][static_cast<std::size_t>(r * s + q)];
        l2_place(a, x, delta);
    }

    static Tensor<float> logits_of(Module& model, const Tensor<float>& x) {
        NoGradGuard no_grad;
        return model(Var(x)).value();
    }

    SquareOptions opt_;
};

}  // namespace ironclad

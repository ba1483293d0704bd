// Square attack (Andriushchenko, Croce, Flammarion, Hein, ECCV 2020): a black-box, score-based random search that
// only reads the model's logits (no gradients), Linf.
//
// Contract, following fra31/auto-attack's square.py (Linf, margin loss):
// - Start: x + eps * s per (channel, column), s = +-1 at random (vertical stripes), clipped to [0,1]. Query budget:
//   `queries` iterations (AutoAttack: 5000). In iteration i, every image not yet fooled proposes its best point plus
//   a square of side round(sqrt(p * C*H*W / C)) (at least 1, at most H-1) at a random position, shifted by 2 * eps *
//   (+-1 per channel), projected to the threat model; the proposal is kept when its margin z_y - max_{j!=y} z_j is
//   lower than the best so far, or <= 0 (fooled). p follows the schedule p_init, /2, /4, ... /512 at iterations
//   10, 50, 200, 500, 1000, 2000, 4000, 6000, 8000 of a budget rescaled to 10,000.
// - Unlike the reference (one square position per batch and iteration), each image draws its own square and signs
//   from its own stream (seed, restart, id), so an image's result does not depend on its batch.
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
        if (threat_.norm != Norm::linf)
            throw std::invalid_argument("square: only the Linf version is implemented (got norm l2)");
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

    Tensor<float> single_run(Module& model, const Tensor<float>& x, const std::vector<std::int32_t>& labels,
                             std::vector<Rng>& streams) const {
        const std::int64_t n = x.dim(0), c = x.dim(1), h = x.dim(2), w = x.dim(3), per = c * h * w;
        const float eps = threat_.eps;
        Tensor<float> best = x.clone();
        for (std::int64_t i = 0; i < n; ++i)
            for (std::int64_t ch = 0; ch < c; ++ch)
                for (std::int64_t col = 0; col < w; ++col) {
                    const float shift = eps * random_sign(streams[static_cast<std::size_t>(i)]);
                    for (std::int64_t row = 0; row < h; ++row) {
                        float& v = best[i * per + (ch * h + row) * w + col];
                        v = std::clamp(v + shift, 0.0f, 1.0f);
                    }
                }
        std::vector<float> margin = margins(logits_of(model, best), labels);
        for (int it = 0; it < opt_.queries; ++it) {
            std::vector<std::int64_t> open;
            for (std::int64_t i = 0; i < n; ++i)
                if (margin[static_cast<std::size_t>(i)] > 0) open.push_back(i);
            if (open.empty()) break;
            const std::int64_t side = std::min<std::int64_t>(
                std::max<std::int64_t>(std::llround(std::sqrt(p_selection(it) * static_cast<double>(per) / static_cast<double>(c))), 1), h - 1);
            Tensor<float> proposal = detail::select_rows(best, open);
            const Tensor<float> centre = detail::select_rows(x, open);
            for (std::size_t j = 0; j < open.size(); ++j) {
                Rng& rng = streams[static_cast<std::size_t>(open[j])];
                const std::int64_t top = rng.uniform_int(0, h - side - 1), left = rng.uniform_int(0, w - side - 1);
                for (std::int64_t ch = 0; ch < c; ++ch) {
                    const float shift = 2.0f * eps * random_sign(rng);
                    for (std::int64_t row = top; row < top + side; ++row)
                        for (std::int64_t col = left; col < left + side; ++col)
                            proposal[static_cast<std::int64_t>(j) * per + (ch * h + row) * w + col] += shift;
                }
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

    static Tensor<float> logits_of(Module& model, const Tensor<float>& x) {
        NoGradGuard no_grad;
        return model(Var(x)).value();
    }

    SquareOptions opt_;
};

}  // namespace ironclad

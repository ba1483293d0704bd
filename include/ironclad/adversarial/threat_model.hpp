// ThreatModel: the set of inputs an attacker may choose, as one printable value (DESIGN.md: "threat models are
// values"), and the geometry of that set that every gradient attack uses.
//
// Contract: images live in [0,1] pixel space (the model's normalisation is inside the model, see
// normalized_model.hpp). The allowed set around a clean image x is the eps-ball of the norm (Linf or L2) intersected
// with [0,1]. project() maps any point into that set (Linf: clip to [x-eps, x+eps] then to [0,1]; L2: scale x'-x
// down to norm eps, then clip to [0,1], which only shrinks the norm), so every attack's output stays inside it up to
// float rounding of x+-eps. ascend() takes one steepest-ascent step of a given length per image (Linf: step*sign(g), zero
// where g is zero; L2: step*g/(||g||+1e-10)); random_start_point() draws a start point in the ball from a caller-given stream
// per image (Linf: uniform per pixel in [-eps, eps]; L2: a Gaussian direction with a radius uniform in [0, eps],
// as torchattacks), then clips to [0,1]. Image norms are accumulated per image in double, serially, so results do
// not depend on the thread count or on the other images of the batch.
// parse_strength() reads "8/255" as a fraction as well as plain numbers ("0.031").
// images: [N,C,H,W]; each function treats the N images independently.
#pragma once

#include "ironclad/core/parallel.hpp"
#include "ironclad/core/random.hpp"
#include "ironclad/core/tensor.hpp"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <charconv>
#include <cstdio>
#include <cmath>
#include <cstdint>
#include <functional>
#include <span>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

namespace ironclad {

enum class Norm { linf, l2 };

inline const char* to_string(Norm n) { return n == Norm::linf ? "linf" : "l2"; }

inline Norm parse_norm(const std::string& text) {
    if (text == "linf" || text == "Linf" || text == "inf") return Norm::linf;
    if (text == "l2" || text == "L2") return Norm::l2;
    throw std::invalid_argument("unknown norm '" + text + "': expected linf or l2");
}

// "0.031", "8/255", "2e-3": a finite number, or a finite fraction a/b with b != 0.
inline double parse_strength(std::string_view text) {
    auto number = [&](std::string_view s) {
        double v = 0;
        const auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
        if (s.empty() || ec != std::errc{} || end != s.data() + s.size() || !std::isfinite(v))
            throw std::invalid_argument("'" + std::string(text) + "' is not a number or a fraction such as 8/255");
        return v;
    };
    const std::size_t slash = text.find('/');
    if (slash == std::string_view::npos) return number(text);
    const double denominator = number(text.substr(slash + 1));
    if (denominator == 0) throw std::invalid_argument("'" + std::string(text) + "' divides by zero");
    return number(text.substr(0, slash)) / denominator;
}

struct ThreatModel {
    Norm norm = Norm::linf;
    float eps = 8.0f / 255.0f;
    float step = 2.0f / 255.0f;
    int steps = 10;
    int restarts = 1;
    bool random_start = true;
    std::uint64_t seed = 0;  // names the random streams of the start points (and of score-based search)

    // Throws std::invalid_argument naming the field and the problem.
    void validate() const {
        if (!std::isfinite(eps) || eps < 0) throw std::invalid_argument("eps " + std::to_string(eps) + " is negative or not finite");
        if (norm == Norm::linf && eps > 1)
            throw std::invalid_argument("Linf eps " + std::to_string(eps) +
                                        " is above 1: attacks work in [0,1] pixel space (8/255, not 8)");
        if (!std::isfinite(step) || step < 0 || (step == 0 && eps > 0))  // eps 0: the ball is one point
            throw std::invalid_argument("step " + std::to_string(step) + " must be positive");
        if (steps < 1) throw std::invalid_argument("steps must be at least 1, got " + std::to_string(steps));
        if (restarts < 1) throw std::invalid_argument("restarts must be at least 1, got " + std::to_string(restarts));
    }

    nlohmann::ordered_json to_json() const {
        return {{"norm", to_string(norm)}, {"eps", eps},       {"eps_x255", eps * 255.0},
                {"step", step},            {"step_x255", step * 255.0}, {"steps", steps},
                {"restarts", restarts},    {"random_start", random_start}, {"seed", seed}};
    }

    // One line for logs: "linf eps 8/255 step 2/255, 10 steps, 1 restart, random start, seed 0".
    std::string describe() const {
        auto x255 = [](float v) {
            char buf[32];
            std::snprintf(buf, sizeof buf, "%g/255", static_cast<double>(v) * 255.0);
            return std::string(buf);
        };
        return std::string(to_string(norm)) + " eps " + x255(eps) + " step " + x255(step) + ", " +
               std::to_string(steps) + " step" + (steps == 1 ? "" : "s") + ", " + std::to_string(restarts) +
               " restart" + (restarts == 1 ? "" : "s") + ", " + (random_start ? "random start" : "no random start") +
               ", seed " + std::to_string(seed);
    }

    // adv <- the point of the allowed set around x nearest to adv (per image).
    void project(Tensor<float>& adv, const Tensor<float>& x) const {
        check_pair("project", adv, x);
        const std::int64_t n = x.dim(0), per = x.numel() / std::max<std::int64_t>(n, 1);
        const float e = eps;
        parallel_for(n, [&](std::int64_t i) {
            float* a = adv.data() + i * per;
            const float* c = x.data() + i * per;
            if (norm == Norm::linf) {
                for (std::int64_t k = 0; k < per; ++k) a[k] = std::clamp(std::min(std::max(a[k], c[k] - e), c[k] + e), 0.0f, 1.0f);
                return;
            }
            double sq = 0;
            for (std::int64_t k = 0; k < per; ++k) sq += double(a[k] - c[k]) * double(a[k] - c[k]);
            const float factor = static_cast<float>(std::min(1.0, e / (std::sqrt(sq) + 1e-10)));
            for (std::int64_t k = 0; k < per; ++k) a[k] = std::clamp(c[k] + (a[k] - c[k]) * factor, 0.0f, 1.0f);
        }, per);
    }

    // adv <- adv + step_sizes[i] * (steepest ascent direction of g in this norm), per image i (not projected).
    void ascend(Tensor<float>& adv, const Tensor<float>& grad, std::span<const float> step_sizes) const {
        check_pair("ascend", adv, grad);
        const std::int64_t n = adv.dim(0), per = adv.numel() / std::max<std::int64_t>(n, 1);
        if (static_cast<std::int64_t>(step_sizes.size()) != n)
            throw std::invalid_argument("ThreatModel::ascend: " + std::to_string(step_sizes.size()) + " step sizes for " +
                                        std::to_string(n) + " images");
        parallel_for(n, [&](std::int64_t i) {
            float* a = adv.data() + i * per;
            const float* g = grad.data() + i * per;
            const float size = step_sizes[static_cast<std::size_t>(i)];
            if (norm == Norm::linf) {
                for (std::int64_t k = 0; k < per; ++k) a[k] += size * static_cast<float>((g[k] > 0) - (g[k] < 0));
                return;
            }
            double sq = 0;
            for (std::int64_t k = 0; k < per; ++k) sq += double(g[k]) * double(g[k]);
            const float scale = static_cast<float>(size / (std::sqrt(sq) + 1e-10));
            for (std::int64_t k = 0; k < per; ++k) a[k] += scale * g[k];
        }, per);
    }
    // The same step size for every image.
    void ascend(Tensor<float>& adv, const Tensor<float>& grad, float step_size) const {
        ascend(adv, grad, std::vector<float>(static_cast<std::size_t>(adv.ndim() ? adv.dim(0) : 0), step_size));
    }

    // adv <- clip(x + a random point of the eps-ball, 0, 1); image i draws from stream_of(i) only.
    void random_start_point(Tensor<float>& adv, const Tensor<float>& x, const std::function<Rng(std::int64_t)>& stream_of) const {
        check_pair("random_start", adv, x);
        const std::int64_t n = x.dim(0), per = x.numel() / std::max<std::int64_t>(n, 1);
        for (std::int64_t i = 0; i < n; ++i) {  // serial: stream_of may not be thread-safe; the work is small
            Rng rng = stream_of(i);
            float* a = adv.data() + i * per;
            const float* c = x.data() + i * per;
            if (norm == Norm::linf) {
                for (std::int64_t k = 0; k < per; ++k)
                    a[k] = std::clamp(c[k] + (2.0f * rng.uniform<float>() - 1.0f) * eps, 0.0f, 1.0f);
                continue;
            }
            double sq = 0;
            for (std::int64_t k = 0; k < per; ++k) {
                a[k] = static_cast<float>(rng.normal());
                sq += double(a[k]) * double(a[k]);
            }
            const float scale = static_cast<float>(rng.uniform() * eps / (std::sqrt(sq) + 1e-10));
            for (std::int64_t k = 0; k < per; ++k) a[k] = std::clamp(c[k] + a[k] * scale, 0.0f, 1.0f);
        }
    }

private:
    static void check_pair(const char* op, const Tensor<float>& a, const Tensor<float>& b) {
        if (a.shape() != b.shape() || a.ndim() < 1)
            throw std::invalid_argument(std::string("ThreatModel::") + op + ": shapes " + shape_str(a.shape()) +
                                        " and " + shape_str(b.shape()) + " must be equal [N,...]");
    }
};

// Per-image distance of adv from x in both norms (double accumulation, serial per image).
struct PerturbationSize {
    double linf = 0, l2 = 0;
};

inline PerturbationSize perturbation_size(const float* adv, const float* x, std::int64_t count) {
    PerturbationSize s;
    double sq = 0;
    for (std::int64_t k = 0; k < count; ++k) {
        const double d = double(adv[k]) - double(x[k]);
        s.linf = std::max(s.linf, std::abs(d));
        sq += d * d;
    }
    s.l2 = std::sqrt(sq);
    return s;
}

}  // namespace ironclad

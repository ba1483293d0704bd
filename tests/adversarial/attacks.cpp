// Attacks (FGSM, PGD, APGD, Square, the AutoAttack-style sequence): they stay inside their threat model and
// [0,1], never increase accuracy, match closed forms where one exists, and give the same images at any thread
// count and batch size.
#include "adversarial/fixtures.hpp"
#include "ironclad/adversarial/autoattack.hpp"
#include "ironclad/adversarial/pgd.hpp"

#include <doctest/doctest.h>

#include <memory>

using namespace ironclad;
using namespace ironclad::testing;

namespace {

struct Case {
    std::string label;
    std::function<std::unique_ptr<Attack>()> make;
};

ThreatModel threat(Norm norm, float eps, int steps, int restarts = 1) {
    return {.norm = norm, .eps = eps, .step = eps / 4, .steps = steps, .restarts = restarts, .random_start = true, .seed = 3};
}

std::vector<Case> all_attacks() {
    return {
        {"fgsm linf", [] { return std::make_unique<Pgd>(fgsm(Norm::linf, 8.0f / 255), "fgsm"); }},
        {"fgsm l2", [] { return std::make_unique<Pgd>(fgsm(Norm::l2, 0.5f), "fgsm"); }},
        {"pgd linf", [] { return std::make_unique<Pgd>(threat(Norm::linf, 8.0f / 255, 5, 2)); }},
        {"pgd l2", [] { return std::make_unique<Pgd>(threat(Norm::l2, 0.5f, 5, 2)); }},
        {"apgd-ce linf", [] { return std::make_unique<Apgd>(threat(Norm::linf, 8.0f / 255, 10)); }},
        {"apgd-ce l2", [] { return std::make_unique<Apgd>(threat(Norm::l2, 0.5f, 10)); }},
        {"apgd-t", [] { return std::make_unique<Apgd>(threat(Norm::linf, 8.0f / 255, 5), ApgdOptions{.loss = ApgdLoss::dlr_targeted, .target_classes = 3}); }},
        {"square", [] { return std::make_unique<Square>(threat(Norm::linf, 8.0f / 255, 1), SquareOptions{.queries = 40}); }},
        {"square l2", [] { return std::make_unique<Square>(threat(Norm::l2, 0.5f, 1), SquareOptions{.queries = 40}); }},
        {"autoattack", [] {
             return std::make_unique<AutoAttack>(threat(Norm::linf, 8.0f / 255, 1),
                                                 AutoAttackOptions{.apgd_iterations = 5, .target_classes = 2, .square_queries = 20});
         }},
    };
}

bool same_images(const std::vector<Tensor<float>>& a, const std::vector<Tensor<float>>& b) {
    std::vector<float> flat_a, flat_b;
    for (auto& t : a) flat_a.insert(flat_a.end(), t.begin(), t.end());
    for (auto& t : b) flat_b.insert(flat_b.end(), t.begin(), t.end());
    return flat_a == flat_b;
}

}  // namespace

TEST_CASE("every attack stays inside its eps-ball and [0,1], and never increases accuracy") {
    auto model = small_resnet();
    const Dataset data = random_images(*model, 24, 1);
    for (const auto& c : all_attacks()) {
        CAPTURE(c.label);
        auto attack = c.make();
        const AttackReport r = run_attack(*model, data, *attack, {.batch_size = 16, .keep_adversarial = true, .on_batch = {}});
        REQUIRE(r.images == 24);
        CHECK(r.robust_correct <= r.clean_correct);
        CHECK(r.clean_correct >= 12);  // half the labels are the model's own predictions
        const ThreatModel& t = attack->threat();
        for (const auto& im : r.per_image) {
            CHECK((t.norm == Norm::linf ? im.linf : im.l2) <= t.eps * (1 + 1e-5) + 1e-6);
            if (im.adversarial_prediction == im.label) CHECK(im.clean_prediction == im.label);
            if (im.clean_prediction != im.label) CHECK(im.l2 == 0);
        }
        for (const auto& batch : r.adversarial)
            for (float v : batch) {
                CHECK(v >= 0.0f);
                CHECK(v <= 1.0f);
            }
        // The attack does something: a random ResNet is not robust at these budgets.
        CHECK(r.robust_correct < r.clean_correct);
        CHECK(attack->to_json()["threat_model"]["eps"] == t.eps);
    }
}

TEST_CASE("FGSM is x + eps * sign of the cross-entropy gradient, clipped") {
    auto model = small_resnet();
    const Dataset data = random_images(*model, 16, 2);
    Tensor<float> x({16, 3, 8, 8});
    for (std::int64_t i = 0; i < x.numel(); ++i) x[i] = static_cast<float>(data.images[i]) / 255.0f;
    // The batch-mean cross-entropy gradient through autograd, independently of the attack code (16 images: the
    // 1/16 of the mean is exact, so the signs are those of the per-image sum).
    Var input(x.clone(), true);
    Var loss = cross_entropy((*model)(input), data.labels);
    loss.backward();
    const auto clean = detail::predict(*model, x);
    const float eps = 4.0f / 255;
    Pgd attack(fgsm(Norm::linf, eps), "fgsm");
    std::vector<std::int64_t> ids(16);
    std::iota(ids.begin(), ids.end(), 0);
    const Tensor<float> adv = attack.perturb(*model, x, data.labels, ids);
    for (std::int64_t k = 0; k < x.numel(); ++k) {
        const float g = input.grad()[k];
        const bool attacked = clean[static_cast<std::size_t>(k / 192)] == data.labels[static_cast<std::size_t>(k / 192)];
        const float want = attacked ? std::clamp(x[k] + eps * static_cast<float>((g > 0) - (g < 0)), 0.0f, 1.0f) : x[k];
        CHECK(adv[k] == want);
    }
}

TEST_CASE("PGD reaches the analytic worst case of a linear classifier") {
    // Two classes, z = W x + b: the cross-entropy of class y grows with (w_o - w_y) . x, so inside [0,1] the
    // Linf worst case is x + eps * sign(w_o - w_y) and the L2 one x + eps * (w_o - w_y) / ||w_o - w_y||.
    Rng rng = Rng::stream(4, 0);
    auto net = std::make_shared<Sequential>();
    net->add(std::make_shared<Flatten>());
    auto linear = net->add(std::make_shared<Linear>(12, 2, rng));
    auto model = NormalizedModel::identity(net, 3);
    model->eval();
    Tensor<float> x({2, 3, 2, 2});
    for (auto& v : x) v = 0.3f + 0.4f * rng.uniform<float>();
    const auto labels = detail::predict(*model, x);
    const std::vector<std::int64_t> ids{0, 1};
    const Tensor<float>& w = linear->weight().value();
    for (Norm norm : {Norm::linf, Norm::l2}) {
        CAPTURE(to_string(norm));
        const float eps = norm == Norm::linf ? 0.05f : 0.2f;
        Pgd attack({.norm = norm, .eps = eps, .step = eps, .steps = 3, .random_start = false});
        const Tensor<float> adv = attack.perturb(*model, x, labels, ids);
        for (std::int64_t i = 0; i < 2; ++i) {
            const std::int32_t y = labels[static_cast<std::size_t>(i)];
            double length = 0;
            for (std::int64_t k = 0; k < 12; ++k) length += std::pow(double(w[(1 - y) * 12 + k]) - w[y * 12 + k], 2);
            for (std::int64_t k = 0; k < 12; ++k) {
                const double d = double(w[(1 - y) * 12 + k]) - w[y * 12 + k];
                const double want = norm == Norm::linf ? x[i * 12 + k] + eps * ((d > 0) - (d < 0))
                                                       : x[i * 12 + k] + eps * d / std::sqrt(length);
                CHECK(adv[i * 12 + k] == doctest::Approx(want).epsilon(1e-6));
            }
        }
    }
}

TEST_CASE("APGD-CE ends in the Linf worst case of a linear classifier") {
    // From any start, a first step of 2 eps along sign(w_o - w_y) reaches the corner x + eps * sign(w_o - w_y), the
    // loss maximum, and the momentum steps stay there; with eps large enough the corner is misclassified and kept.
    Rng rng = Rng::stream(6, 0);
    auto net = std::make_shared<Sequential>();
    net->add(std::make_shared<Flatten>());
    auto linear = net->add(std::make_shared<Linear>(12, 2, rng));
    auto model = NormalizedModel::identity(net, 3);
    model->eval();
    Tensor<float> x({4, 3, 2, 2});
    for (auto& v : x) v = 0.3f + 0.4f * rng.uniform<float>();
    const auto labels = detail::predict(*model, x);
    const float eps = 0.25f;
    const Tensor<float>& w = linear->weight().value();
    Tensor<float> corner = x.clone();
    for (std::int64_t i = 0; i < 4; ++i)
        for (std::int64_t k = 0; k < 12; ++k) {
            const std::int32_t y = labels[static_cast<std::size_t>(i)];
            const double d = double(w[(1 - y) * 12 + k]) - w[y * 12 + k];
            corner[i * 12 + k] = x[i * 12 + k] + eps * static_cast<float>((d > 0) - (d < 0));
        }
    const auto corner_pred = detail::predict(*model, corner);
    Apgd apgd({.norm = Norm::linf, .eps = eps, .steps = 10, .seed = 1});
    const Tensor<float> adv = apgd.perturb(*model, x, labels, std::vector<std::int64_t>{0, 1, 2, 3});
    int fooled = 0;
    for (std::int64_t i = 0; i < 4; ++i) {
        const bool broken = corner_pred[static_cast<std::size_t>(i)] != labels[static_cast<std::size_t>(i)];
        fooled += broken;
        for (std::int64_t k = 0; k < 12; ++k) CHECK(adv[i * 12 + k] == (broken ? corner[i * 12 + k] : x[i * 12 + k]));
    }
    CHECK(fooled >= 2);
}

TEST_CASE("attacks give the same images at 1 and 2 threads and at any batch size") {
    auto model = small_resnet();
    const Dataset data = random_images(*model, 20, 3);
    const std::vector<Case> cases{all_attacks()[3], all_attacks()[4], all_attacks()[7], all_attacks()[8], all_attacks()[9]};
    for (const auto& c : cases) {
        CAPTURE(c.label);
        auto run = [&](int threads, std::int64_t batch) {
            return with_threads(threads, [&] {
                auto attack = c.make();
                return run_attack(*model, data, *attack, {.batch_size = batch, .keep_adversarial = true, .on_batch = {}});
            });
        };
        const AttackReport a = run(1, 20), b = run(2, 20), d = run(2, 6);
        CHECK(same_images(a.adversarial, b.adversarial));
        CHECK(same_images(a.adversarial, d.adversarial));
        for (std::size_t i = 0; i < a.per_image.size(); ++i)
            CHECK(a.per_image[i].adversarial_prediction == d.per_image[i].adversarial_prediction);
    }
}

TEST_CASE("more restarts and more stages only break more images") {
    auto model = small_resnet(9);
    const Dataset data = random_images(*model, 32, 4);
    auto fooled = [&](Attack& attack) {
        const AttackReport r = run_attack(*model, data, attack, {.batch_size = 32, .keep_adversarial = false, .on_batch = {}});
        std::vector<bool> out;
        for (auto& im : r.per_image) out.push_back(im.adversarial_prediction != im.label);
        return out;
    };
    const float eps = 1.0f / 255;  // small: most images survive one restart
    Pgd one(threat(Norm::linf, eps, 3, 1)), three(threat(Norm::linf, eps, 3, 3));
    const auto f1 = fooled(one), f3 = fooled(three);
    for (std::size_t i = 0; i < f1.size(); ++i)
        if (f1[i]) CHECK(f3[i]);
    Apgd apgd(threat(Norm::linf, eps, 5));
    AutoAttack sequence(threat(Norm::linf, eps, 1), {.apgd_iterations = 5, .target_classes = 2, .square_queries = 10});
    const auto fa = fooled(apgd), fs = fooled(sequence);
    for (std::size_t i = 0; i < fa.size(); ++i)
        if (fa[i]) CHECK(fs[i]);
    const auto stats = sequence.statistics();
    CHECK(stats["robust_clean"].get<int>() >= stats["robust_after_apgd-ce"].get<int>());
    CHECK(stats["robust_after_apgd-ce"].get<int>() >= stats["robust_after_apgd-t"].get<int>());
    CHECK(stats["robust_after_apgd-t"].get<int>() >= stats["robust_after_square"].get<int>());
}

TEST_CASE("Square's square size schedule follows the reference") {
    Square square(ThreatModel{}, {.queries = 10000, .p_init = 0.8});
    CHECK(square.p_selection(0) == 0.8);
    CHECK(square.p_selection(10) == 0.8);
    CHECK(square.p_selection(11) == 0.4);
    CHECK(square.p_selection(500) == 0.1);
    CHECK(square.p_selection(501) == 0.05);
    CHECK(square.p_selection(9999) == 0.8 / 512);
    Square short_budget(ThreatModel{}, {.queries = 100, .p_init = 0.8});
    CHECK(short_budget.p_selection(1) == 0.2);  // rescaled: iteration 1 of 100 is 100 of 10,000, in (50, 200]
}

TEST_CASE("L2 Square fools images with perturbations that use most of the eps budget") {
    // Every L2 proposal is rescaled to norm eps before clipping to [0,1], so a fooling image sits on (or, after
    // clipping, a little inside) the eps sphere, never outside the ball.
    auto model = small_resnet(7);
    const Dataset data = random_images(*model, 16, 8);
    const float eps = 0.3f;
    Square square(threat(Norm::l2, eps, 1), SquareOptions{.queries = 200});
    const AttackReport r = run_attack(*model, data, square, {.batch_size = 16, .keep_adversarial = false, .on_batch = {}});
    int fooled = 0;
    for (const auto& im : r.per_image) {
        CHECK(im.l2 <= eps * (1 + 1e-5));
        if (im.clean_prediction == im.label && im.adversarial_prediction != im.label) {
            ++fooled;
            CHECK(im.l2 > 0.5 * eps);
        }
    }
    CHECK(fooled > 0);
    CHECK(r.robust_correct < r.clean_correct);
}

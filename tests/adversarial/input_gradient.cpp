// Input gradients of the attack objectives, checked by central finite differences: first the objectives'
// gradients with respect to the logits, then whole input gradients through a normalised ResNet.
#include "adversarial/fixtures.hpp"
#include "ironclad/adversarial/input_gradient.hpp"
#include "ironclad/data/transforms.hpp"
#include "support/grad_check.hpp"

#include <doctest/doctest.h>

using namespace ironclad;
using namespace ironclad::testing;

namespace {

double total_loss(const LogitObjective& f, const Tensor<float>& logits) {
    double s = 0;
    for (double v : f(logits).loss) s += v;
    return s;
}

// Central differences of sum_i loss_i at every logit, against the objective's own gradient.
void check_logit_gradient(const LogitObjective& f, const Tensor<float>& logits) {
    const Tensor<float> analytic = f(logits).grad;
    REQUIRE(analytic.shape() == logits.shape());
    const float h = 1e-3f;
    for (std::int64_t k = 0; k < logits.numel(); ++k) {
        Tensor<float> up = logits.clone(), down = logits.clone();
        up[k] += h;
        down[k] -= h;
        const double numeric = (total_loss(f, up) - total_loss(f, down)) / (double(up[k]) - double(down[k]));
        CAPTURE(k);
        CHECK(analytic[k] == doctest::Approx(numeric).epsilon(2e-3).scale(1.0));
    }
}

}  // namespace

TEST_CASE("objective gradients with respect to the logits match finite differences") {
    const Tensor<float> logits = random_tensor({5, 6}, 11, -3.0f, 3.0f);
    const std::vector<std::int32_t> labels{0, 3, 5, 2, 2}, targets{1, 0, 4, 5, 3};
    SUBCASE("cross-entropy") { check_logit_gradient(cross_entropy_objective(labels), logits); }
    SUBCASE("KL to a target distribution") {
        check_logit_gradient(kl_objective(softmax_rows(random_tensor({5, 6}, 12, -2.0f, 2.0f))), logits);
    }
    SUBCASE("DLR") { check_logit_gradient(dlr_objective(labels), logits); }
    SUBCASE("targeted DLR") { check_logit_gradient(dlr_targeted_objective(labels, targets), logits); }
}

TEST_CASE("objective values equal their definitions") {
    const Tensor<float> z({1, 5}, {2.0f, 5.0f, 1.0f, 4.0f, 3.0f});
    const std::vector<std::int32_t> y{3}, t{2};
    // DLR: -(z_y - max_{j!=y} z_j) / (z_(1) - z_(3)) = -(4 - 5) / (5 - 3).
    CHECK(dlr_objective(y)(z).loss[0] == doctest::Approx(0.5));
    // Targeted: -(z_y - z_t) / (z_(1) - (z_(3) + z_(4)) / 2) = -(4 - 1) / (5 - 2.5).
    CHECK(dlr_targeted_objective(y, t)(z).loss[0] == doctest::Approx(-1.2));
    double norm = 0;
    for (float v : {2.0f, 5.0f, 1.0f, 4.0f, 3.0f}) norm += std::exp(double(v));
    CHECK(cross_entropy_objective(y)(z).loss[0] == doctest::Approx(std::log(norm) - 4.0));
    CHECK(margins(z, y)[0] == -1.0f);
    CHECK(kl_objective(softmax_rows(z))(z).loss[0] == doctest::Approx(0.0).scale(1.0));
}

TEST_CASE("normalize_channels: values and gradient") {
    const std::vector<float> mean{0.1f, 0.5f}, stddev{0.2f, 0.4f};
    const Tensor<float> x = random_tensor({2, 2, 3, 3}, 4, 0.0f, 1.0f);
    const Var y = normalize_channels(Var(x), mean, stddev);
    CHECK(y.value()[0] == (x[0] - 0.1f) / 0.2f);
    CHECK(y.value()[9] == (x[9] - 0.5f) / 0.4f);
    check_gradients([&](std::vector<Var>& v) { return normalize_channels(v[0], mean, stddev); }, {x});
    CHECK_THROWS_WITH(normalize_channels(Var(Tensor<float>({1, 3, 2, 2})), mean, stddev), doctest::Contains("C = 2"));
}

TEST_CASE("normalize_channels of pixel/255 equals the data loader's normalisation bit for bit") {
    // Attacked images and clean images must reach the network identically (the attack grid relies on it).
    const std::vector<float> mean{0.485f, 0.456f, 0.406f}, stddev{0.229f, 0.224f, 0.225f};
    const ImageTransform loader(3, 16, 16, mean, stddev);
    Tensor<float> pixels({1, 3, 16, 16});
    for (std::int64_t k = 0; k < pixels.numel(); ++k) pixels[k] = static_cast<float>(k % 256) / 255.0f;
    const Tensor<float> y = normalize_channels(Var(pixels), mean, stddev).value();
    for (std::int64_t k = 0; k < pixels.numel(); ++k)
        CHECK(y[k] == loader.normalized(static_cast<int>(k / 256), static_cast<std::uint8_t>(k % 256)));
}

TEST_CASE("a NormalizedModel saves and loads with its network's names") {
    auto model = small_resnet();
    auto net = resnet_cifar({.depth = 8, .num_classes = 10, .in_channels = 3});
    const auto a = model->state_dict(), b = net->state_dict();
    REQUIRE(a.size() == b.size());
    for (std::size_t i = 0; i < a.size(); ++i) CHECK(a[i].first == b[i].first);
    CHECK(model->parameters().size() == net->parameters().size());
}

TEST_CASE("input gradients through a normalised ResNet match finite differences") {
    auto model = small_resnet();
    const Tensor<float> x = random_tensor({3, 3, 8, 8}, 21, 0.1f, 0.9f);
    Tensor<float> clean_logits;
    {
        NoGradGuard no_grad;
        clean_logits = (*model)(Var(x)).value();
    }
    const std::vector<std::int32_t> labels{1, 4, 7}, targets{2, 0, 3};
    const std::vector<std::pair<std::string, LogitObjective>> objectives{
        {"cross-entropy", cross_entropy_objective(labels)},
        {"KL", kl_objective(softmax_rows(random_tensor({3, 10}, 5, -1.0f, 1.0f)))},
        {"DLR", dlr_objective(labels)},
        {"targeted DLR", dlr_targeted_objective(labels, targets)}};
    for (const auto& [name, objective] : objectives) {
        CAPTURE(name);
        const InputGradient g = input_gradient(*model, x, objective);
        REQUIRE(g.grad.shape() == x.shape());
        // The gradient pass runs conv and batch norm one by one, inference folds them (nn/fused_conv.hpp): equal up
        // to float rounding.
        for (std::int64_t i = 0; i < clean_logits.numel(); ++i)
            CHECK(g.logits[i] == doctest::Approx(clean_logits[i]).epsilon(1e-5).scale(1.0));
        auto loss_at = [&](const Tensor<float>& probe) {
            NoGradGuard no_grad;
            return total_loss(objective, (*model)(Var(probe)).value());
        };
        Rng rng = Rng::stream(8, 0);
        // A step of 3e-4 stays clear of most ReLU kinks and is still far above float noise.
        for (int check = 0; check < 24; ++check) {
            const std::int64_t k = rng.uniform_int(0, x.numel() - 1);
            Tensor<float> up = x.clone(), down = x.clone();
            up[k] += 3e-4f;
            down[k] -= 3e-4f;
            const double numeric = (loss_at(up) - loss_at(down)) / (double(up[k]) - double(down[k]));
            CAPTURE(k);
            CAPTURE(numeric);
            CHECK(std::abs(numeric - g.grad[k]) <= 2e-3 + 3e-2 * std::abs(numeric));
        }
    }
    // The parameters are trainable again and hold no gradient from the attack.
    for (auto& p : model->parameters()) {
        CHECK(p.requires_grad());
        CHECK_FALSE(p.grad().defined());
    }
    NoGradGuard no_grad;
    CHECK_THROWS_AS(input_gradient(*model, x, cross_entropy_objective(labels)), std::logic_error);
}

#include "ironclad/autograd/losses.hpp"

#include "../support/grad_check.hpp"

#include <doctest/doctest.h>

#include <omp.h>

#include <cmath>
#include <limits>

using namespace ironclad;
using ironclad::testing::check_gradients;
using ironclad::testing::random_tensor;

namespace {

// PyTorch computes in float, we in double per row: allow float rounding of the row's scale.
void check_close(const Tensor<float>& got, const std::vector<float>& want) {
    REQUIRE(got.numel() == static_cast<std::int64_t>(want.size()));
    for (std::size_t i = 0; i < want.size(); ++i) {
        const double g = got[static_cast<std::int64_t>(i)], w = want[i];
        CAPTURE(i);
        CAPTURE(g);
        CAPTURE(w);
        CHECK(std::abs(g - w) <= 1e-7 + 1e-5 * std::abs(w));
    }
}

// Inputs and golden outputs from scripts/golden/losses_golden.py (PyTorch 1.13).
const Tensor<float> ce_logits({4, 5}, {1.5f,  -0.25f, 0.75f, 2.0f,  -1.0f, 0.0f,  0.5f,  -0.5f, 1.0f,  0.25f,
                                       30.0f, 28.5f,  -4.0f, 29.0f, 0.0f,  -2.0f, -1.5f, -3.0f, -0.5f, -2.5f});
const std::vector<std::int32_t> ce_labels = {3, 1, 1, 4};
const std::vector<float> ce_plain_loss = {1.68896079f};
const std::vector<float> ce_plain_grad = {0.0740313679f, 0.0128647247f, 0.0349699445f,   -0.127942905f, 0.00607686583f,
                                          0.0344468467f, -0.193206757f, 0.0208930671f,   0.0936362296f, 0.044230625f,
                                          0.157132924f,  -0.214938909f, 2.69311955e-16f, 0.0578059703f, 1.47039058e-14f,
                                          0.0308458414f, 0.0508561954f, 0.0113475509f,   0.13824147f,   -0.231291056f};
const std::vector<float> ce_ls_loss = {2.01021075f};
const std::vector<float> ce_ls_grad = {0.0690313652f, 0.00786472391f, 0.0299699418f,   -0.107942902f, 0.00107686559f,
                                       0.0294468421f, -0.173206747f,  0.0158930644f,   0.0886362195f, 0.0392306186f,
                                       0.152132899f,  -0.194938898f,  -0.00499999989f, 0.0528059639f, -0.00499999989f,
                                       0.0258458406f, 0.0458561927f,  0.00634755054f,  0.13324146f,   -0.211291045f};

const Tensor<float> kl_student({3, 4},
                               {0.5f, -1.0f, 2.0f, 0.25f, 3.0f, 1.0f, -2.0f, 0.0f, -0.75f, 0.125f, 1.5f, -1.25f});
const Tensor<float> kl_teacher({3, 4}, {1.0f, 0.0f, 1.5f, -0.5f, 2.0f, 2.5f, -1.0f, 0.5f, 0.0f, -0.5f, 4.0f, -3.0f});
const std::vector<float> kl_t1_loss = {0.357364625f};
const std::vector<float> kl_t1_grad_student = {-0.0514776073f, -0.026379345f, 0.0607751757f,   0.0170817096f,
                                               0.165583581f,   -0.150254756f, -0.00379583309f, -0.0115330061f,
                                               0.0187784564f,  0.0556676276f, -0.0891347677f,  0.0146886697f};
const std::vector<float> kl_t1_grad_teacher = {0.05537723f,    0.0392975658f,  -0.0783340186f, -0.0163407791f,
                                               -0.177916557f,  0.176926792f,   0.00250259205f, -0.00151275413f,
                                               -0.0099632768f, -0.0109847421f, 0.0221815668f,  -0.00123357016f};
const std::vector<float> kl_t4_loss = {0.042260576f};
const std::vector<float> kl_t4_grad_student = {-0.00273668393f, -0.00399966352f, 0.00346979289f,  0.00326655665f,
                                               0.00992238522f,  -0.00730926124f, -0.00186092535f, -0.000752199558f,
                                               0.000642892497f, 0.00674681738f,  -0.0146940108f,  0.00730430195f};
const std::vector<float> kl_t4_grad_teacher = {0.00257770321f,  0.00426146807f,  -0.00363804004f, -0.00320113311f,
                                               -0.00923932157f, 0.00745385094f,  0.00161291426f,  0.000172557615f,
                                               -0.00191250327f, -0.00667085405f, 0.014336301f,    -0.00575294346f};

}  // namespace

TEST_CASE("losses: cross-entropy matches PyTorch, with and without label smoothing") {
    for (float eps : {0.0f, 0.1f}) {
        CAPTURE(eps);
        Var z(ce_logits.clone(), true);
        Var loss = cross_entropy(z, ce_labels, eps);
        CHECK(loss.shape() == Shape{});
        loss.backward();
        check_close(loss.value(), eps == 0 ? ce_plain_loss : ce_ls_loss);
        check_close(z.grad(), eps == 0 ? ce_plain_grad : ce_ls_grad);
    }
}

TEST_CASE("losses: tempered KL matches PyTorch, gradients into both arguments") {
    for (float t : {1.0f, 4.0f}) {
        CAPTURE(t);
        Var s(kl_student.clone(), true), te(kl_teacher.clone(), true);
        Var loss = kl_div_tempered(s, te, t);
        loss.backward();
        check_close(loss.value(), t == 1 ? kl_t1_loss : kl_t4_loss);
        check_close(s.grad(), t == 1 ? kl_t1_grad_student : kl_t4_grad_student);
        check_close(te.grad(), t == 1 ? kl_t1_grad_teacher : kl_t4_grad_teacher);
    }
    // A fixed teacher (distillation) gets no gradient; identical logits give zero divergence.
    Var s(kl_student.clone(), true), fixed(kl_teacher.clone(), false);
    kl_div_tempered(s, fixed, 2.0f).backward();
    CHECK_FALSE(fixed.grad().defined());
    CHECK(kl_div_tempered(Var(kl_student), Var(kl_student), 3.0f).value()[0] == doctest::Approx(0.0).scale(1));
}

TEST_CASE("losses: finite-difference gradients") {
    const Tensor<float> a = random_tensor({5, 7}, 1, -3.0f, 3.0f), b = random_tensor({5, 7}, 2, -3.0f, 3.0f);
    const std::vector<std::int32_t> labels = {0, 6, 3, 3, 1};
    check_gradients([&](std::vector<Var>& v) { return cross_entropy(v[0], labels, 0.2f); }, {a});
    check_gradients([](std::vector<Var>& v) { return kl_div_tempered(v[0], v[1], 2.5f); }, {a, b});
    check_gradients([](std::vector<Var>& v) { return mse_loss(v[0], v[1]); }, {a, b});
}

TEST_CASE("losses: mse value, shape and label checks") {
    Var a(Tensor<float>({2, 2}, {1, 2, 3, 4})), b(Tensor<float>({2, 2}, {1, 0, 5, 4}));
    CHECK(mse_loss(a, b).value()[0] == doctest::Approx(2.0));  // (0 + 4 + 4 + 0) / 4
    CHECK_THROWS_AS(mse_loss(a, Var(Tensor<float>({4}))), std::invalid_argument);
    Var z(ce_logits);
    CHECK_THROWS_WITH_AS(cross_entropy(z, std::vector<std::int32_t>{3, 1, 5, 0}), doctest::Contains("label 5"),
                         std::invalid_argument);
    CHECK_THROWS_AS(cross_entropy(z, std::vector<std::int32_t>{3, 1, -1, 0}), std::invalid_argument);
    CHECK_THROWS_AS(cross_entropy(z, std::vector<std::int32_t>{3, 1}), std::invalid_argument);
    CHECK_THROWS_AS(cross_entropy(Var(Tensor<float>({4})), std::vector<std::int32_t>{0}), std::invalid_argument);
    CHECK_THROWS_AS(kl_div_tempered(z, Var(Tensor<float>({4, 4})), 1.0f), std::invalid_argument);
    CHECK_THROWS_AS(kl_div_tempered(z, z, 0.0f), std::invalid_argument);
}

TEST_CASE("losses: cross-entropy is bit-identical on 1 and 2 threads") {
    const Tensor<float> logits = random_tensor({512, 100}, 3, -5.0f, 5.0f);
    std::vector<std::int32_t> labels(512);
    for (std::size_t i = 0; i < labels.size(); ++i) labels[i] = static_cast<std::int32_t>(i * 37 % 100);
    auto run = [&](int threads) {
        const int previous = omp_get_max_threads();
        omp_set_num_threads(threads);
        Var z(logits.clone(), true);
        Var loss = cross_entropy(z, labels, 0.1f);
        loss.backward();
        omp_set_num_threads(previous);
        return std::pair{loss.value()[0], z.grad()};
    };
    const auto [loss1, grad1] = run(1);
    const auto [loss2, grad2] = run(2);
    CHECK(loss1 == loss2);
    std::int64_t equal = 0;
    for (std::int64_t i = 0; i < grad1.numel(); ++i) equal += grad1[i] == grad2[i];
    CHECK(equal == grad1.numel());
}

TEST_CASE("losses: argmax and top-k accuracy") {
    const float nan = std::numeric_limits<float>::quiet_NaN();
    const Tensor<float> logits({4, 3}, {0.1f, 0.7f, 0.2f,    // argmax 1
                                        0.5f, 0.5f, 0.1f,    // tie: first wins
                                        -1.0f, nan, 3.0f,    // NaN ranks first, as torch.argmax
                                        2.0f, 1.0f, 3.0f});  // argmax 2
    CHECK(argmax_rows(logits) == std::vector<std::int32_t>{1, 0, 1, 2});
    const std::vector<std::int32_t> labels = {1, 1, 2, 0};
    CHECK(count_topk_correct(logits, labels, 1) == 1);  // row 0
    CHECK(count_topk_correct(logits, labels, 2) == 4);  // tie loser is second; 3.0 after NaN; 2.0 second
    CHECK(count_topk_correct(logits, labels, 3) == 4);
    CHECK_THROWS_AS(count_topk_correct(logits, labels, 0), std::invalid_argument);
    CHECK_THROWS_AS(count_topk_correct(logits, std::vector<std::int32_t>{0, 0, 3, 0}, 1), std::invalid_argument);
}

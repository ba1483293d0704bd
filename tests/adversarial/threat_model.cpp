// ThreatModel: strength parsing, validation, and the geometry every attack relies on (projection into the
// eps-ball and [0,1], steepest-ascent steps, random starts inside the ball).
#include "ironclad/adversarial/threat_model.hpp"

#include <doctest/doctest.h>

#include <cmath>

using namespace ironclad;

namespace {

Tensor<float> uniform_tensor(Shape shape, std::uint64_t seed, float lo, float hi) {
    Tensor<float> t(std::move(shape));
    Rng rng = Rng::stream(seed, 0);
    for (auto& v : t) v = lo + (hi - lo) * rng.uniform<float>();
    return t;
}

}  // namespace

TEST_CASE("parse_strength reads fractions and plain numbers") {
    CHECK(parse_strength("8/255") == 8.0 / 255.0);
    CHECK(parse_strength("0.5/255") == 0.5 / 255.0);
    CHECK(parse_strength("0.031") == 0.031);
    CHECK(parse_strength("2e-3") == 2e-3);
    CHECK_THROWS_WITH(parse_strength("8/0"), "'8/0' divides by zero");
    CHECK_THROWS_WITH(parse_strength("eight"), "'eight' is not a number or a fraction such as 8/255");
    CHECK_THROWS(parse_strength("8/"));
    CHECK_THROWS(parse_strength("nan"));
    CHECK(parse_norm("linf") == Norm::linf);
    CHECK(parse_norm("L2") == Norm::l2);
    CHECK_THROWS_WITH(parse_norm("l1"), "unknown norm 'l1': expected linf or l2");
}

TEST_CASE("ThreatModel::validate names the bad field") {
    ThreatModel t;
    CHECK_NOTHROW(t.validate());
    t.eps = -0.1f;
    CHECK_THROWS_WITH(t.validate(), doctest::Contains("is negative"));
    t.eps = 8.0f;
    CHECK_THROWS_WITH(t.validate(), doctest::Contains("above 1"));
    t.norm = Norm::l2;  // an L2 radius above 1 is meaningful (the image has 3072 pixels)
    CHECK_NOTHROW(t.validate());
    t.steps = 0;
    CHECK_THROWS_WITH(t.validate(), doctest::Contains("steps must be at least 1"));
    t.steps = 1;
    t.step = 0;
    CHECK_THROWS_WITH(t.validate(), doctest::Contains("step 0"));
    const auto j = ThreatModel{}.to_json();
    CHECK(j["norm"] == "linf");
    CHECK(std::abs(j["eps_x255"].get<double>() - 8.0) < 1e-5);
    CHECK(j["steps"] == 10);
}

TEST_CASE("project maps any point into the eps-ball intersected with [0,1]") {
    const Tensor<float> x = uniform_tensor({6, 3, 4, 4}, 1, 0.0f, 1.0f);
    for (Norm norm : {Norm::linf, Norm::l2}) {
        CAPTURE(to_string(norm));
        ThreatModel t;
        t.norm = norm;
        t.eps = norm == Norm::linf ? 0.05f : 0.3f;
        Tensor<float> adv = uniform_tensor({6, 3, 4, 4}, 2, -0.5f, 1.5f);
        t.project(adv, x);
        const std::int64_t per = 48;
        for (std::int64_t i = 0; i < 6; ++i) {
            const auto size = perturbation_size(adv.data() + i * per, x.data() + i * per, per);
            CHECK((norm == Norm::linf ? size.linf : size.l2) <= t.eps * (1 + 1e-6) + 1e-7);
            for (std::int64_t k = 0; k < per; ++k) {
                CHECK(adv[i * per + k] >= 0.0f);
                CHECK(adv[i * per + k] <= 1.0f);
            }
        }
        // A point already inside stays where it is.
        Tensor<float> again = adv.clone();
        t.project(again, x);
        for (std::int64_t k = 0; k < adv.numel(); ++k) CHECK(again[k] == doctest::Approx(adv[k]).epsilon(1e-6));
    }
}

TEST_CASE("ascend takes sign steps in Linf and normalised steps in L2") {
    Tensor<float> g({2, 1, 1, 3}, {0.5f, -2.0f, 0.0f, 3.0f, 4.0f, 0.0f});
    ThreatModel linf;
    Tensor<float> a({2, 1, 1, 3}, 0.5f);
    linf.ascend(a, g, 0.1f);
    CHECK(a[0] == 0.5f + 0.1f);
    CHECK(a[1] == 0.5f - 0.1f);
    CHECK(a[2] == 0.5f);  // zero gradient: no move, as torch.sign(0) = 0
    ThreatModel l2;
    l2.norm = Norm::l2;
    Tensor<float> b({2, 1, 1, 3}, 0.0f);
    const std::vector<float> sizes{1.0f, 0.5f};
    l2.ascend(b, g, sizes);
    CHECK(b[3] == doctest::Approx(0.5 * 3.0 / 5.0));
    CHECK(b[4] == doctest::Approx(0.5 * 4.0 / 5.0));
    CHECK(b[0] == doctest::Approx(0.5 / std::sqrt(4.25)));
}

TEST_CASE("random starts lie in the ball, depend only on their stream, and fill it") {
    const Tensor<float> x = uniform_tensor({4, 3, 8, 8}, 3, 0.2f, 0.8f);
    for (Norm norm : {Norm::linf, Norm::l2}) {
        ThreatModel t;
        t.norm = norm;
        t.eps = 0.1f;
        Tensor<float> a = x.clone();
        t.random_start_point(a, x, [](std::int64_t i) { return Rng::stream(9, static_cast<std::uint64_t>(i)); });
        // Image 2 alone, from the same stream: the same start point.
        const Tensor<float> x2 = x.slice(2, 3).clone();
        Tensor<float> c = x2.clone();
        t.random_start_point(c, x2, [](std::int64_t) { return Rng::stream(9, 2); });
        const std::int64_t per = 192;
        for (std::int64_t k = 0; k < per; ++k) CHECK(c[k] == a[2 * per + k]);
        double largest = 0;
        for (std::int64_t i = 0; i < 4; ++i) {
            const auto size = perturbation_size(a.data() + i * per, x.data() + i * per, per);
            const double d = norm == Norm::linf ? size.linf : size.l2;
            CHECK(d <= 0.1 + 1e-6);
            largest = std::max(largest, d);
        }
        CHECK(largest > 0.05);  // not stuck at the centre
    }
}

#include "ironclad/optim/schedule.hpp"

#include <doctest/doctest.h>

#include <cmath>

using namespace ironclad;

TEST_CASE("schedule: step decay multiplies by gamma at each milestone reached") {
    const StepSchedule s{0.1f, {3, 6}, 0.1f};
    CHECK(s.lr(0) == 0.1f);
    CHECK(s.lr(2) == 0.1f);
    CHECK(s.lr(3) == doctest::Approx(0.01f));
    CHECK(s.lr(5) == doctest::Approx(0.01f));
    CHECK(s.lr(6) == doctest::Approx(0.001f));
    CHECK(s.lr(1000) == doctest::Approx(0.001f));
    CHECK(StepSchedule{0.5f, {}, 0.1f}.lr(50) == 0.5f);
    CHECK_THROWS_AS(s.lr(-1), std::invalid_argument);
}

TEST_CASE("schedule: cosine with linear warm-up") {
    const CosineSchedule s{1.0f, 110, 10, 0.1f};
    CHECK(s.lr(0) == doctest::Approx(0.1f));   // warm-up start: base / warmup_steps
    CHECK(s.lr(4) == doctest::Approx(0.5f));
    CHECK(s.lr(9) == doctest::Approx(1.0f));   // warm-up end
    CHECK(s.lr(10) == doctest::Approx(1.0f));  // cosine start
    CHECK(s.lr(60) == doctest::Approx(0.55f)); // cosine midpoint: halfway between base and min
    CHECK(s.lr(35) == doctest::Approx(0.1 + 0.9 * 0.5 * (1 + std::cos(3.14159265358979 / 4))));
    CHECK(s.lr(109) > 0.1f);
    CHECK(s.lr(110) == 0.1f);
    CHECK(s.lr(500) == 0.1f);
    for (std::int64_t t = 11; t <= 110; ++t) CHECK(s.lr(t) < s.lr(t - 1));

    const CosineSchedule no_warmup{0.2f, 100};
    CHECK(no_warmup.lr(0) == 0.2f);
    CHECK(no_warmup.lr(50) == doctest::Approx(0.1f));
    CHECK(no_warmup.lr(100) == 0.0f);
    CHECK_THROWS_AS((CosineSchedule{1.0f, 10, 11}.lr(0)), std::invalid_argument);
    CHECK_THROWS_AS((CosineSchedule{1.0f, 0}.lr(0)), std::invalid_argument);
    CHECK_THROWS_AS(s.lr(-1), std::invalid_argument);
}

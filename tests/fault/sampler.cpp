// Fault sampling: exact BER counts, distinct positions, the reference toolbox's count rule.
#include "ironclad/fault/sampler.hpp"
#include "ironclad/fault/statistics.hpp"

#include <doctest/doctest.h>

#include <cmath>
#include <set>

using namespace ironclad;

namespace {
FaultModel model_with(CountMode mode, double rate, std::int64_t count = 0) {
    FaultModel fm;
    fm.count_mode = mode;
    fm.rate = rate;
    fm.count = count;
    return fm;
}
}  // namespace

TEST_CASE("BER sampling: counts follow Binomial(bits, p) and positions are distinct and in range") {
    const std::int64_t numels[] = {1000, 17, 5000};
    const double p = 2e-4;
    const double bits = (1000 + 17 + 5000) * 32.0;
    const FaultModel fm = model_with(CountMode::ber, p);
    const int trials = 4000;
    double sum = 0, sum2 = 0;
    std::vector<double> per_target(3, 0), per_bit(32, 0);
    for (int t = 0; t < trials; ++t) {
        Rng rng = Rng::stream(7, static_cast<std::uint64_t>(t));
        auto f = sample_faults(numels, fm, rng);
        std::set<std::tuple<int, std::int64_t, int>> seen;
        for (auto& x : f) {
            REQUIRE(x.target >= 0);
            REQUIRE(x.target < 3);
            REQUIRE(x.element < numels[x.target]);
            REQUIRE(x.bit >= 0);
            REQUIRE(x.bit < 32);
            CHECK(seen.insert({x.target, x.element, x.bit}).second);
            per_target[static_cast<std::size_t>(x.target)] += 1;
            per_bit[static_cast<std::size_t>(x.bit)] += 1;
        }
        sum += static_cast<double>(f.size());
        sum2 += static_cast<double>(f.size() * f.size());
    }
    const double mean = sum / trials, var = sum2 / trials - mean * mean;
    const double expect = bits * p, expect_var = bits * p * (1 - p);
    CHECK(std::abs(mean - expect) < 4 * std::sqrt(expect_var / trials));  // 4 sigma of the mean
    CHECK(var == doctest::Approx(expect_var).epsilon(0.1));
    // Targets are hit in proportion to their size, bits uniformly.
    CHECK(per_target[2] / sum == doctest::Approx(5000.0 / 6017).epsilon(0.05));
    for (double b : per_bit) CHECK(b / sum == doctest::Approx(1.0 / 32).epsilon(0.2));
}

TEST_CASE("BER 1 flips every bit, BER 0 none; bit ranges restrict the bits") {
    const std::int64_t numels[] = {3, 2};
    Rng rng = Rng::stream(1, 0);
    CHECK(sample_faults(numels, model_with(CountMode::ber, 1.0), rng).size() == 5 * 32);
    CHECK(sample_faults(numels, model_with(CountMode::ber, 0.0), rng).empty());
    FaultModel fm = model_with(CountMode::ber, 1.0);
    fm.bit_lo = 16;
    fm.bit_hi = 30;
    auto f = sample_faults(numels, fm, rng);
    CHECK(f.size() == 5 * 15);
    for (auto& x : f) CHECK((x.bit >= 16 && x.bit <= 30));
}

TEST_CASE("exact count: k distinct positions, uniform") {
    const std::int64_t numels[] = {4};  // 128 bits
    std::vector<int> hits(128, 0);
    for (int t = 0; t < 2000; ++t) {
        Rng rng = Rng::stream(3, static_cast<std::uint64_t>(t));
        auto f = sample_faults(numels, model_with(CountMode::count, 0, 8), rng);
        REQUIRE(f.size() == 8);
        std::set<std::int64_t> distinct;
        for (auto& x : f) distinct.insert(x.element * 32 + x.bit), ++hits[static_cast<std::size_t>(x.element * 32 + x.bit)];
        CHECK(distinct.size() == 8);
    }
    // Each position is chosen with probability 8/128 per trial: 125 expected, sd ~10.8.
    for (int h : hits) CHECK(std::abs(h - 125) < 55);
    Rng rng = Rng::stream(3, 0);
    CHECK_THROWS_AS(sample_faults(numels, model_with(CountMode::count, 0, 129), rng), std::invalid_argument);
}

TEST_CASE("reference count rule reproduces the toolbox's documented ResNet-20 counts") {
    // The toolbox's ResNet-20 conv/linear tensors (reference-rrelu.md 3.2: 270,896 weights + 10 biases; its
    // downsampling shortcuts are 1x1 convolutions of 16x32 and 32x64 weights): at 1e-6 exactly one flip in each of
    // the five 64x64x3x3 convolutions and none elsewhere; totals 0, 0, 5, 16, 71, 249 over the six rates.
    std::vector<std::int64_t> numels{3 * 16 * 9};
    for (int i = 0; i < 6; ++i) numels.push_back(16 * 16 * 9);
    numels.push_back(16 * 32 * 9);
    for (int i = 0; i < 5; ++i) numels.push_back(32 * 32 * 9);
    numels.push_back(32 * 64 * 9);
    numels.push_back(16 * 32);
    numels.push_back(32 * 64);
    for (int i = 0; i < 5; ++i) numels.push_back(64 * 64 * 9);
    numels.push_back(640);
    numels.push_back(10);  // the linear bias
    std::int64_t weights = 0;
    for (auto n : numels) weights += n;
    REQUIRE(weights == 270896 + 10);
    const double rates[] = {1e-7, 3e-7, 1e-6, 3e-6, 1e-5, 3e-5};
    const std::int64_t expected[] = {0, 0, 5, 16, 71, 249};
    for (int i = 0; i < 6; ++i) {
        Rng rng = Rng::stream(11, 0);
        auto f = sample_faults(numels, model_with(CountMode::reference, rates[i]), rng);
        CHECK(static_cast<std::int64_t>(f.size()) == expected[i]);
        if (i == 2)
            for (auto& x : f) CHECK(numels[static_cast<std::size_t>(x.target)] == 64 * 64 * 9);
    }
}

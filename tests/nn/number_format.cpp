#include "ironclad/nn/number_format.hpp"

#include "ironclad/core/random.hpp"
#include "ironclad/models/resnet_cifar.hpp"

#include "../support/fixed_point_policies.hpp"

#include <doctest/doctest.h>

#include <bit>
#include <cmath>
#include <cstdint>
#include <limits>
#include <string>
#include <vector>

using namespace ironclad;

namespace {

template <class Q>
std::string text_of() {
    std::string s = "q" + std::to_string(Q::int_bits) + "." + std::to_string(Q::frac_bits);
    s += Q::rounding == Rounding::toward_zero ? "-zero" : Q::rounding == Rounding::nearest_even ? "-even" : "-floor";
    return s + (Q::overflow == Overflow::saturate ? "-sat" : "-wrap");
}

// Compares the run-time rounding with the template's bit for bit; reports the first mismatch.
template <class Q>
struct Comparison {
    NumberFormat format = parse_number_format(text_of<Q>());
    std::int64_t checked = 0, mismatches = 0;
    std::string first;

    void check(float x) {
        ++checked;
        const float got = format.round(x), want = static_cast<float>(Q(x));
        if (std::bit_cast<std::uint32_t>(got) == std::bit_cast<std::uint32_t>(want)) return;
        if (mismatches++ == 0)
            first = text_of<Q>() + ": x = " + std::to_string(x) + " (bits " +
                    std::to_string(std::bit_cast<std::uint32_t>(x)) + ") gave " + std::to_string(got) + ", want " +
                    std::to_string(want);
    }
    void report() const {
        INFO(first);
        CHECK(mismatches == 0);
    }
};

// Every rounding situation of a small format: each multiple of lsb/8 over three times its range (exact values,
// ties, and values on both sides of them, in and out of range), the floats adjacent to each, and the specials.
template <class Q>
void check_dense(Comparison<Q>& c) {
    const double lsb = std::ldexp(1.0, -Q::frac_bits), span = 3.0 * std::ldexp(1.0, Q::int_bits + 1);
    for (double v = -span; v <= span; v += lsb / 8) {
        const auto x = static_cast<float>(v);
        c.check(x);
        c.check(std::nextafter(x, -INFINITY));
        c.check(std::nextafter(x, INFINITY));
    }
    constexpr float inf = std::numeric_limits<float>::infinity();
    for (float x : {0.0f, -0.0f, inf, -inf, std::numeric_limits<float>::quiet_NaN(),
                    std::numeric_limits<float>::denorm_min(), -std::numeric_limits<float>::denorm_min(),
                    std::numeric_limits<float>::max(), std::numeric_limits<float>::lowest(), 1e20f, -1e20f})
        c.check(x);
}

// Strided sweep over all 2^32 float bit patterns (every exponent, NaNs included).
template <class Q>
void check_bit_patterns(Comparison<Q>& c, std::uint32_t stride) {
    for (std::uint64_t bits = 0; bits < (std::uint64_t{1} << 32); bits += stride)
        c.check(std::bit_cast<float>(static_cast<std::uint32_t>(bits)));
}

}  // namespace

TEST_CASE("number_format: parses float and qI.F with policy suffixes; name() round-trips") {
    CHECK(parse_number_format("float").is_float());
    CHECK(parse_number_format("float").name() == "float");
    const NumberFormat q = parse_number_format("q15.16");
    CHECK(q.kind == NumberKind::fixed);
    CHECK(q.int_bits == 15);
    CHECK(q.frac_bits == 16);
    CHECK(q.total_bits() == 32);
    CHECK(q.rounding == Rounding::toward_zero);
    CHECK(q.overflow == Overflow::saturate);
    CHECK(q.name() == "q15.16");
    CHECK(parse_number_format("Q15.16-zero-sat") == q);

    const NumberFormat w = parse_number_format("q7.8-wrap-even");
    CHECK(w.rounding == Rounding::nearest_even);
    CHECK(w.overflow == Overflow::wrap);
    CHECK(w.name() == "q7.8-even-wrap");
    for (const char* text : {"q0.0", "q31.0", "q0.31", "q3.4-floor", "q3.4-wrap", "q3.4-floor-wrap", "q7.8-even"})
        CHECK(parse_number_format(parse_number_format(text).name()) == parse_number_format(text));
    CHECK(parse_number_format("q0.7").total_bits() == 8);
}

TEST_CASE("number_format: bad text is rejected with a message naming it") {
    for (const char* text : {"q15.x", "q15", "q15.16.1", "", "q", "q.16", "q15.", "q-1.3", "q1.-3", "double", "q15.16-",
                             "q15.16-up", "q 15.16", "q+1.2", "q15.16wrap"}) {
        CAPTURE(text);
        const std::string expected =
            std::string("unknown number format '") + text + "': expected float or qI.F, e.g. q15.16";
        CHECK_THROWS_WITH_AS(parse_number_format(text), doctest::Contains(expected.c_str()), std::invalid_argument);
    }
    CHECK_THROWS_WITH_AS(parse_number_format("q20.20"), doctest::Contains("1 + 20 + 20 bits; at most 32"),
                         std::invalid_argument);
    CHECK_THROWS_WITH_AS(parse_number_format("q99999999999.1"), doctest::Contains("unknown number format"),
                         std::invalid_argument);
    CHECK_THROWS_WITH_AS(parse_number_format("q4000000000.1"), doctest::Contains("unknown number format"),
                         std::invalid_argument);
    CHECK_THROWS_WITH_AS(parse_number_format("q2000000000.2000000000"), doctest::Contains("at most 32"),
                         std::invalid_argument);
    CHECK_THROWS_WITH_AS(parse_number_format("q3.4-even-floor"), doctest::Contains("more than one rounding"),
                         std::invalid_argument);
    CHECK_THROWS_WITH_AS(parse_number_format("q3.4-wrap-sat"), doctest::Contains("more than one overflow"),
                         std::invalid_argument);
}

TEST_CASE_TEMPLATE("number_format: small formats round bit-identically to FixedPoint, every rounding situation", Q,
                   ALL_POLICIES(3, 4), ALL_POLICIES(0, 7), ALL_POLICIES(0, 0), ALL_POLICIES(2, 0)) {
    Comparison<Q> c;
    check_dense(c);
    check_bit_patterns(c, 65537);
    c.report();
}

TEST_CASE_TEMPLATE("number_format: q15.16, q7.8 and 32-bit edge formats match FixedPoint on random floats", Q,
                   ALL_POLICIES(15, 16), ALL_POLICIES(7, 8), ALL_POLICIES(31, 0), ALL_POLICIES(0, 31)) {
    Comparison<Q> c;
    Rng rng(static_cast<std::uint64_t>(Q::int_bits * 64 + Q::frac_bits));
    const double range = std::ldexp(1.0, Q::int_bits);
    const double lsb = std::ldexp(1.0, -Q::frac_bits);
    for (int i = 0; i < 40000; ++i) {
        // Uniform over twice the range (in and out of it), near-ties, and arbitrary bit patterns.
        c.check(static_cast<float>((2 * rng.uniform() - 1) * 2 * range));
        c.check(static_cast<float>((static_cast<double>(rng.uniform_int(-1 << 20, 1 << 20)) + 0.5) * lsb));
        c.check(std::bit_cast<float>(static_cast<std::uint32_t>(rng.next_u64())));
    }
    check_bit_patterns(c, 1000003);
    c.report();
}

TEST_CASE("number_format: quantize_parameters / quantize_activations equal the templated ones") {
    const Shape input{2, 1, 8, 8};
    Tensor<float> x(input);
    Rng rng(7);
    for (std::int64_t i = 0; i < x.numel(); ++i) x.data()[i] = 4 * rng.uniform<float>() - 2;

    auto forward = [&](Module& m) {
        NoGradGuard no_grad;
        m.eval();
        return m(Var(x)).value().clone();
    };
    auto same_bits = [](const Tensor<float>& a, const Tensor<float>& b) {
        return a.shape() == b.shape() && std::equal(a.data(), a.data() + a.numel(), b.data(), [](float u, float v) {
                   return std::bit_cast<std::uint32_t>(u) == std::bit_cast<std::uint32_t>(v);
               });
    };
    const ResNetCifarConfig cfg{.depth = 8, .num_classes = 10, .in_channels = 1, .seed = 3};
    auto float_model = resnet_cifar(cfg);
    const Tensor<float> float_out = forward(*float_model);

    auto templated = resnet_cifar(cfg), runtime = resnet_cifar(cfg);
    quantize_parameters<FixedPoint<3, 4>>(*templated);
    quantize_activations<FixedPoint<3, 4>>(*templated);
    const NumberFormat q = parse_number_format("q3.4");
    quantize_parameters(*runtime, q);
    quantize_activations(*runtime, q);

    const auto tp = templated->named_parameters(), rp = runtime->named_parameters();
    REQUIRE(tp.size() == rp.size());
    for (std::size_t i = 0; i < tp.size(); ++i) {
        CAPTURE(tp[i].first);
        CHECK(same_bits(tp[i].second.value(), rp[i].second.value()));
    }
    const Tensor<float> t_out = forward(*templated), r_out = forward(*runtime);
    CHECK(same_bits(t_out, r_out));
    CHECK_FALSE(same_bits(float_out, r_out));  // q3.4 is coarse enough to change the logits

    // A float format rounds nothing and removes the rounding hooks.
    const NumberFormat f = parse_number_format("float");
    auto reset = resnet_cifar(cfg);
    quantize_activations(*reset, q);
    quantize_activations(*reset, f);
    quantize_parameters(*reset, f);
    CHECK(same_bits(forward(*reset), float_out));
}

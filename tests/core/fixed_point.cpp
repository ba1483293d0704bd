#include "ironclad/core/fixed_point.hpp"

#include "../support/fixed_point_policies.hpp"

#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <random>
#include <sstream>
#include <string>

using namespace ironclad;

namespace {

// Independent reference: num / den (den > 0) rounded by the definition of each rule, found by stepping
// rather than by the division-and-remainder logic of the code under test.
std::int64_t ref_round(std::int64_t num, std::int64_t den, Rounding rule) {
    auto k = static_cast<std::int64_t>(std::floor(static_cast<double>(num) / static_cast<double>(den)));
    while (k * den > num) --k;
    while ((k + 1) * den <= num) ++k;  // now k = floor(num / den) by definition
    const std::int64_t below = num - k * den, above = (k + 1) * den - num;
    switch (rule) {
        case Rounding::floor: return k;
        case Rounding::toward_zero: return num < 0 && below != 0 ? k + 1 : k;
        case Rounding::nearest_even:
            if (below != above) return below < above ? k : k + 1;
            return k % 2 == 0 ? k : k + 1;
    }
    return 0;
}

// v brought into `bits`-bit two's complement by clamping or by arithmetic modulo 2^bits.
std::int64_t ref_fit(std::int64_t v, int bits, Overflow policy) {
    const std::int64_t lo = -(std::int64_t{1} << (bits - 1)), hi = -lo - 1, modulus = std::int64_t{1} << bits;
    if (policy == Overflow::saturate) return std::clamp(v, lo, hi);
    return ((v - lo) % modulus + modulus) % modulus + lo;
}

bool ref_fits(std::int64_t v, int bits) { return ref_fit(v, bits, Overflow::saturate) == v; }

// Collects mismatches so exhaustive loops make one assertion and report the first failure.
struct Mismatches {
    int count = 0;
    std::string first;
    template <class Describe>
    void expect(bool ok, Describe describe) {
        if (!ok && count++ == 0) first = describe();
    }
};

template <class Q>
std::string describe(const char* op, std::int64_t a, std::int64_t b, std::int64_t got, std::int64_t want) {
    std::ostringstream os;
    os << "R=" << static_cast<int>(Q::rounding) << " O=" << static_cast<int>(Q::overflow) << ": raw " << a << ' ' << op
       << " raw " << b << " gave raw " << got << ", want " << want;
    return os.str();
}

}  // namespace

TEST_CASE_TEMPLATE("fixed_point: Q3.4 arithmetic is exact for every pair of raws", Q, ALL_POLICIES(3, 4)) {
    constexpr int N = Q::total_bits, F = Q::frac_bits, one = 1 << F;
    static_assert(N == 8 && std::is_same_v<typename Q::Raw, std::int8_t>);
    Mismatches m;
    for (std::int64_t a = Q::raw_min; a <= Q::raw_max; ++a) {
        const Q qa = Q::from_raw(a);
        for (std::int64_t b = Q::raw_min; b <= Q::raw_max; ++b) {
            const Q qb = Q::from_raw(b);
            auto check = [&](const char* op, Q (*fn)(Q, Q, bool*), std::int64_t exact) {
                bool overflowed = false;
                const std::int64_t got = fn(qa, qb, &overflowed).raw();
                const std::int64_t want = ref_fit(exact, N, Q::overflow);
                m.expect(got == want && overflowed == !ref_fits(exact, N),
                         [&] { return describe<Q>(op, a, b, got, want); });
            };
            check("+", Q::add, a + b);
            check("-", Q::sub, a - b);
            check("*", Q::mul, ref_round(a * b, one, Q::rounding));
            if (b != 0)
                check("/", Q::div, b > 0 ? ref_round(a * one, b, Q::rounding) : ref_round(-a * one, -b, Q::rounding));
        }
        bool overflowed = false;
        const std::int64_t negated = Q::neg(qa, &overflowed).raw();
        m.expect(negated == ref_fit(-a, N, Q::overflow) && overflowed == (a == Q::raw_min),
                 [&] { return describe<Q>("neg", a, 0, negated, ref_fit(-a, N, Q::overflow)); });
        // Operators agree with the flagged helpers.
        const Q qb = Q::from_raw(a * 37 + 11);
        m.expect(
            qa + qb == Q::add(qa, qb) && qa - qb == Q::sub(qa, qb) && qa * qb == Q::mul(qa, qb) && -qa == Q::neg(qa),
            [&] { return describe<Q>("operator", a, qb.raw(), 0, 0); });
    }
    INFO(m.first);
    CHECK(m.count == 0);
}

TEST_CASE_TEMPLATE("fixed_point: Q3.4 conversions are exact and follow the policies", Q, ALL_POLICIES(3, 4)) {
    constexpr int N = Q::total_bits;
    Mismatches m;
    for (std::int64_t a = Q::raw_min; a <= Q::raw_max; ++a) {
        const Q q = Q::from_raw(a);
        m.expect(q.to_double() == static_cast<double>(a) / 16 && q.to_float() == static_cast<float>(a) / 16,
                 [&] { return "to_double/to_float of raw " + std::to_string(a); });
        m.expect(Q(q.to_double()) == q && Q(q.to_float()) == q,
                 [&] { return "round trip of raw " + std::to_string(a); });
    }
    // Every multiple of 2^-9 in [-16, 16): the scaled value k / 32 covers ties, non-ties and both overflow sides.
    for (std::int64_t k = -(1 << 13); k < (1 << 13); ++k) {
        const double x = std::ldexp(static_cast<double>(k), -9);
        bool overflowed = false;
        const std::int64_t got = Q::from_double(x, &overflowed).raw();
        const std::int64_t exact = ref_round(k, 32, Q::rounding);
        m.expect(got == ref_fit(exact, N, Q::overflow) && overflowed == !ref_fits(exact, N),
                 [&] { return "from_double(" + std::to_string(x) + ") gave raw " + std::to_string(got); });
        m.expect(Q(static_cast<float>(x)).raw() == got,
                 [&] { return "float and double disagree at " + std::to_string(x); });
    }
    INFO(m.first);
    CHECK(m.count == 0);

    bool overflowed = false;
    CHECK(Q::from_double(std::numeric_limits<double>::quiet_NaN(), &overflowed) == Q{});
    CHECK(overflowed);
    CHECK(Q(std::numeric_limits<float>::infinity()) == Q::max());
    CHECK(Q(-std::numeric_limits<double>::infinity()) == Q::min());
    CHECK(Q(-0.0).raw() == 0);
    // 1e300 * 16 is a multiple of 2^8, so its low 8 bits are zero.
    CHECK(Q(1e300).raw() == (Q::overflow == Overflow::wrap ? 0 : Q::raw_max));
    const std::int64_t tiny_negative = Q(-std::numeric_limits<double>::denorm_min()).raw();
    CHECK(tiny_negative == (Q::rounding == Rounding::floor ? -1 : 0));
    CHECK(Q(std::numeric_limits<double>::denorm_min()).raw() == 0);
}

TEST_CASE_TEMPLATE("fixed_point: division by zero behaves like the converted float quotient", Q, ALL_POLICIES(3, 4)) {
    bool overflowed = false;
    CHECK(Q::div(Q(1.5), Q{}, &overflowed) == Q::max());
    CHECK(overflowed);
    CHECK(Q(-1.5) / Q{} == Q::min());
    CHECK(Q{} / Q{} == Q{});
}

TEST_CASE("fixed_point: Q15.16 is the reference toolbox's 32-bit format") {
    static_assert(std::is_same_v<Q15_16, FixedPoint<15, 16, Rounding::toward_zero, Overflow::saturate>>);
    static_assert(Q15_16::total_bits == 32 && sizeof(Q15_16) == 4);
    static_assert(std::is_same_v<Q15_16::Raw, std::int32_t>);
    static_assert(is_fixed_point_v<Q15_16> && !is_fixed_point_v<float> && !is_fixed_point_v<std::int32_t>);
    CHECK(Q15_16::min().to_double() == -32768.0);
    CHECK(Q15_16::max().to_double() == 32767.9999847412109375);
    CHECK(Q15_16::max().raw() == std::numeric_limits<std::int32_t>::max());
    CHECK(Q15_16::lsb().to_double() == std::ldexp(1.0, -16));

    // fxpmath's trunc rounds toward zero: one LSB above floor for a negative non-representable value.
    using Floor = FixedPoint<15, 16, Rounding::floor>;
    CHECK(Q15_16(-2046.3867).raw() == -134111998);
    CHECK(Floor(-2046.3867).raw() == -134111999);
    CHECK(Q15_16(2046.3867).raw() == Floor(2046.3867).raw());
    CHECK(FixedPoint<15, 0>(-2046.3867).to_double() == -2046.0);
    CHECK(FixedPoint<15, 0, Rounding::floor>(-2046.3867).to_double() == -2047.0);
    CHECK(FixedPoint<15, 0, Rounding::nearest_even>(-2046.5).to_double() == -2046.0);
    CHECK(FixedPoint<15, 0, Rounding::nearest_even>(-2047.5).to_double() == -2048.0);

    bool overflowed = false;
    CHECK(Q15_16::from_double(-32768.0, &overflowed) == Q15_16::min());
    CHECK_FALSE(overflowed);
    CHECK(Q15_16::from_double(32768.0, &overflowed) == Q15_16::max());
    CHECK(overflowed);
    CHECK(Q15_16(1e30f) == Q15_16::max());
    CHECK(Q15_16(-32768.00001) == Q15_16::min());
}

TEST_CASE("fixed_point: Q15.16 saturation and wrap at the boundaries") {
    using Sat = Q15_16;
    using Wrap = FixedPoint<15, 16, Rounding::toward_zero, Overflow::wrap>;
    bool overflowed = false;
    CHECK(Sat::add(Sat::max(), Sat::lsb(), &overflowed) == Sat::max());
    CHECK(overflowed);
    CHECK(Wrap::max() + Wrap::lsb() == Wrap::min());
    CHECK(Sat::min() - Sat::lsb() == Sat::min());
    CHECK(Wrap::min() - Wrap::lsb() == Wrap::max());
    CHECK(-Sat::min() == Sat::max());
    CHECK(-Wrap::min() == Wrap::min());
    CHECK(Sat(200.0) * Sat(200.0) == Sat::max());
    CHECK(Sat(-200.0) * Sat(200.0) == Sat::min());
    CHECK((Wrap(200.0) * Wrap(200.0)).to_double() == 40000.0 - 65536.0);
    CHECK(Wrap(32768.0) == Wrap::min());
    CHECK(Wrap(65536.0 + 1.5).to_double() == 1.5);
    CHECK(Wrap(-65536.0 * 3 - 0.25).to_double() == -0.25);
    CHECK(Wrap(std::numeric_limits<double>::infinity()) == Wrap::max());

    // Products below one LSB: only the rounding rule decides.
    using Nearest = FixedPoint<15, 16, Rounding::nearest_even>;
    using Floor = FixedPoint<15, 16, Rounding::floor>;
    CHECK((Sat::lsb() * Sat(0.5)).raw() == 0);
    CHECK((-Sat::lsb() * Sat(0.5)).raw() == 0);
    CHECK((-Floor::lsb() * Floor(0.5)).raw() == -1);
    CHECK((Nearest::from_raw(3) * Nearest(0.5)).raw() == 2);
    CHECK((Nearest::from_raw(5) * Nearest(0.5)).raw() == 2);
    CHECK((Sat::from_raw(3) * Sat(0.5)).raw() == 1);
    CHECK((Sat(1.0) / Sat(3.0)).raw() == 21845);
    CHECK((Nearest(2.0) / Nearest(3.0)).raw() == 43691);

    CHECK(Sat(1.0) < Sat(2.0));
    CHECK(Sat(-1.0) < Sat::lsb());
    CHECK((Sat(2.5) <=> Sat(2.5)) == std::strong_ordering::equal);
    CHECK(Sat(1.25) + Sat(2.5) == Sat(3.75));
    Sat acc{};
    for (int i = 0; i < 4; ++i) acc += Sat(0.75);
    CHECK(acc == Sat(3.0));
    CHECK(static_cast<float>(Sat(0.5)) == 0.5f);
    CHECK(static_cast<double>(Sat(-7)) == -7.0);
    std::ostringstream os;
    os << Sat(-1.5);
    CHECK(os.str() == "-1.5");
}

TEST_CASE("fixed_point: Q7.8 and Q0.7 boundaries") {
    using Q78 = FixedPoint<7, 8>;
    static_assert(std::is_same_v<Q78::Raw, std::int16_t>);
    CHECK(Q78::max().to_double() == 127.99609375);
    CHECK(Q78::min().to_double() == -128.0);
    CHECK(Q78(300.0) == Q78::max());
    CHECK(Q78(12.0) * Q78(11.0) == Q78::max());
    CHECK((FixedPoint<7, 8, Rounding::toward_zero, Overflow::wrap>(128.5)).to_double() == -127.5);

    using Q07 = FixedPoint<0, 7>;
    static_assert(std::is_same_v<Q07::Raw, std::int8_t> && Q07::total_bits == 8);
    CHECK(Q07::max().to_double() == 127.0 / 128);
    CHECK(Q07::min().to_double() == -1.0);
    CHECK(Q07(1.0) == Q07::max());
    CHECK(Q07(-1.0) * Q07(-1.0) == Q07::max());
    CHECK((Q07(0.5) * Q07(0.5)).to_double() == 0.25);

    // A width that is not a storage width: raws are kept sign-extended from bit 6.
    using Q33 = FixedPoint<3, 3, Rounding::toward_zero, Overflow::wrap>;
    static_assert(Q33::total_bits == 7 && Q33::raw_max == 63);
    CHECK(Q33::from_raw(64) == Q33::min());
    CHECK(Q33::max() + Q33::lsb() == Q33::min());
    CHECK(Q33(8.0).to_double() == -8.0);
}

TEST_CASE_TEMPLATE("fixed_point: random doubles convert like exact rational rounding", Q, ALL_POLICIES(15, 16),
                   ALL_POLICIES(7, 8), ALL_POLICIES(0, 7)) {
    constexpr int N = Q::total_bits, F = Q::frac_bits;
    std::mt19937_64 gen(1234);
    std::uniform_int_distribution<std::int64_t> mantissa(-(std::int64_t{1} << 40), std::int64_t{1} << 40);
    std::uniform_int_distribution<int> shift(-8, 40);  // x * 2^F = num / 2^t
    Mismatches m;
    for (int i = 0; i < 20000; ++i) {
        const std::int64_t num = mantissa(gen);
        const int t = shift(gen);
        const double x = std::ldexp(static_cast<double>(num), -t - F);
        const std::int64_t exact =
            t <= 0 ? num * (std::int64_t{1} << -t) : ref_round(num, std::int64_t{1} << t, Q::rounding);
        bool overflowed = false;
        const std::int64_t got = Q::from_double(x, &overflowed).raw();
        m.expect(got == ref_fit(exact, N, Q::overflow) && overflowed == !ref_fits(exact, N),
                 [&] { return "from_double(" + std::to_string(x) + ") gave raw " + std::to_string(got); });
    }
    INFO(m.first);
    CHECK(m.count == 0);
}

TEST_CASE("fixed_point: Q15.16 float round trip stays within one LSB in the policy's direction") {
    using Nearest = FixedPoint<15, 16, Rounding::nearest_even>;
    using Floor = FixedPoint<15, 16, Rounding::floor>;
    const double lsb = Q15_16::lsb().to_double();
    std::mt19937 gen(99);
    std::uniform_real_distribution<float> dist(-32000.0f, 32000.0f);
    Mismatches m;
    for (int i = 0; i < 20000; ++i) {
        const float f = i % 2 ? dist(gen) : dist(gen) / 4096.0f;
        const double x = f;
        const double trunc = Q15_16(f).to_double(), floor = Floor(f).to_double(), nearest = Nearest(f).to_double();
        m.expect(std::fabs(trunc) <= std::fabs(x) && std::fabs(trunc - x) < lsb,
                 [&] { return "trunc of " + std::to_string(x); });
        m.expect(floor <= x && x - floor < lsb, [&] { return "floor of " + std::to_string(x); });
        m.expect(std::fabs(nearest - x) <= lsb / 2, [&] { return "nearest of " + std::to_string(x); });
        // to_float is correctly rounded: the exact double, rounded once.
        m.expect(Q15_16(f).to_float() == static_cast<float>(trunc), [&] { return "to_float of " + std::to_string(x); });
    }
    INFO(m.first);
    CHECK(m.count == 0);
}

TEST_CASE("fixed_point: 64-bit format uses 128-bit intermediates") {
    using Q = FixedPoint<31, 32, Rounding::nearest_even>;
    static_assert(std::is_same_v<Q::Raw, std::int64_t> && Q::total_bits == 64);
    CHECK((Q(1.5) * Q(2.25)).to_double() == 3.375);
    CHECK(Q(65536.0) * Q(65536.0) == Q::max());
    CHECK((Q(1.0) / Q(3.0)).raw() == 1431655765);  // 2^32 / 3 = 1431655765.33
    CHECK((Q(-2.0) / Q(3.0)).raw() == -2863311531);
    CHECK(Q::max() + Q::lsb() == Q::max());
    CHECK(Q::min().to_double() == -2147483648.0);
    CHECK(Q(-2147483648.0) == Q::min());
    CHECK(Q(2147483648.0) == Q::max());
}

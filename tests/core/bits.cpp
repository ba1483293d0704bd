#include "ironclad/core/bits.hpp"

#include <doctest/doctest.h>

#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <random>
#include <string>

using namespace ironclad;

namespace {

// The pattern read with memcpy, independent of BitTraits.
template <class T>
std::uint64_t stored_bits(T v) {
    std::uint64_t bits = 0;
    std::memcpy(&bits, &v, sizeof(T));
    return bits;
}

}  // namespace

TEST_CASE("bits: widths and raw types") {
    static_assert(BitTraits<float>::width == 32 && std::is_same_v<BitTraits<float>::Raw, std::uint32_t>);
    static_assert(BitTraits<double>::width == 64);
    static_assert(BitTraits<std::int8_t>::width == 8 && std::is_same_v<BitTraits<std::int8_t>::Raw, std::uint8_t>);
    static_assert(BitTraits<std::int16_t>::width == 16 && BitTraits<std::int32_t>::width == 32);
    static_assert(BitTraits<Q15_16>::width == 32 && std::is_same_v<BitTraits<Q15_16>::Raw, std::uint32_t>);
    static_assert(BitTraits<FixedPoint<3, 3>>::width == 7);
    static_assert(HasBitView<float> && HasBitView<Q15_16> && !HasBitView<Tensor<float>>);
    CHECK(BitTraits<float>::to_raw(1.0f) == 0x3F800000u);
    CHECK(BitTraits<Q15_16>::to_raw(Q15_16(-1.0)) == 0xFFFF0000u);
    CHECK(BitTraits<FixedPoint<3, 3>>::to_raw(FixedPoint<3, 3>(-0.125)) == 0x7Fu);  // 7 bits, no sign copies
}

TEST_CASE("bits: float sign, exponent and mantissa bits") {
    float v = 1.0f;  // 0x3F800000
    flip_bit(v, 30);
    CHECK(stored_bits(v) == 0x7F800000u);
    CHECK(std::isinf(v));
    CHECK(v > 0);
    flip_bit(v, 30);
    CHECK(v == 1.0f);
    flip_bit(v, 31);
    CHECK(v == -1.0f);
    v = 1.0f;
    flip_bit(v, 22);
    CHECK(v == 1.5f);
    v = 1.0f;
    flip_bit(v, 23);
    CHECK(v == 0.5f);
    v = std::numeric_limits<float>::infinity();
    flip_bit(v, 0);
    CHECK(std::isnan(v));  // a fault may produce NaN, and it is kept
    CHECK(get_bit(1.0f, 29));
    CHECK_FALSE(get_bit(1.0f, 30));
    double d = 2.0;
    flip_bit(d, 63);
    CHECK(d == -2.0);
}

TEST_CASE("bits: flipping a bit twice restores the exact pattern, NaN payloads included") {
    std::mt19937_64 gen(5);
    for (int i = 0; i < 200; ++i) {
        const auto word = gen();
        const float f = std::bit_cast<float>(static_cast<std::uint32_t>(word));
        const double d = std::bit_cast<double>(word);
        const auto q = Q15_16::from_raw(static_cast<std::int32_t>(word));
        const auto i8 = static_cast<std::int8_t>(word);
        for (int bit = 0; bit < 64; ++bit) {
            double dd = d;
            flip_bit(dd, bit);
            CHECK(stored_bits(dd) == (stored_bits(d) ^ (std::uint64_t{1} << bit)));
            flip_bit(dd, bit);
            CHECK(stored_bits(dd) == stored_bits(d));
            if (bit < 32) {
                float ff = f;
                flip_bit(ff, bit);
                CHECK(stored_bits(ff) == (stored_bits(f) ^ (std::uint64_t{1} << bit)));
                flip_bit(ff, bit);
                CHECK(stored_bits(ff) == stored_bits(f));
                Q15_16 qq = q;
                flip_bit(qq, bit);
                flip_bit(qq, bit);
                CHECK(qq.raw() == q.raw());
            }
            if (bit < 8) {
                std::int8_t ii = i8;
                flip_bit(ii, bit);
                CHECK(ii != i8);
                flip_bit(ii, bit);
                CHECK(ii == i8);
            }
        }
    }
}

TEST_CASE("bits: a Q15.16 flip of bit k moves the value by exactly 2^(k-16), the sign bit by 32768") {
    std::mt19937 gen(17);
    std::uniform_real_distribution<double> dist(-30000.0, 30000.0);
    for (int i = 0; i < 100; ++i) {
        const Q15_16 q(dist(gen));
        for (int bit = 0; bit < 32; ++bit) {
            Q15_16 f = q;
            flip_bit(f, bit);
            const double step = bit < 31 ? std::ldexp(1.0, bit - 16) : -32768.0;
            CHECK(f.to_double() - q.to_double() == (get_bit(q, bit) ? -step : step));
            CHECK(get_bit(f, bit) != get_bit(q, bit));
        }
    }
    Q15_16 zero{};
    flip_bit(zero, 31);
    CHECK(zero == Q15_16::min());
}

TEST_CASE("bits: integers and narrow fixed point") {
    std::int8_t v = 0;
    flip_bit(v, 7);
    CHECK(v == -128);
    flip_bit(v, 0);
    CHECK(v == -127);
    std::int16_t w = 1;
    flip_bit(w, 15);
    CHECK(w == -32767);
    std::int32_t x = -1;
    flip_bit(x, 31);
    CHECK(x == std::numeric_limits<std::int32_t>::max());
    using Q33 = FixedPoint<3, 3>;  // 7 bits in an int8_t: bit 6 is the sign
    Q33 q{};
    flip_bit(q, 6);
    CHECK(q == Q33::min());
    CHECK_THROWS_AS(flip_bit(q, 7), std::out_of_range);
}

TEST_CASE("bits: stuck-at writes") {
    float v = 1.0f;
    set_bit(v, 31, true);
    CHECK(v == -1.0f);
    set_bit(v, 31, true);
    CHECK(v == -1.0f);
    set_bit(v, 31, false);
    CHECK(v == 1.0f);
    set_bit(v, 31, false);  // stuck at 0 leaves a 0 alone
    CHECK(v == 1.0f);
    Q15_16 q(3.0);
    set_bit(q, 16, false);
    CHECK(q.to_double() == 2.0);
    set_bit(q, 15, true);
    CHECK(q.to_double() == 2.5);
}

TEST_CASE("bits: out-of-range bits name the bit and the width") {
    float v = 1.0f;
    CHECK_THROWS_AS(flip_bit(v, 32), std::out_of_range);
    CHECK_THROWS_AS(flip_bit(v, -1), std::out_of_range);
    CHECK_THROWS_AS(get_bit(std::int8_t{1}, 8), std::out_of_range);
    try {
        flip_bit(v, 40);
        FAIL("no exception");
    } catch (const std::out_of_range& e) {
        const std::string what = e.what();
        CHECK(what.find("40") != std::string::npos);
        CHECK(what.find("32-bit") != std::string::npos);
    }
    CHECK(v == 1.0f);
}

TEST_CASE("bits: tensor elements are flipped in place in shared storage") {
    Tensor<float> t({2, 3}, {1, 2, 3, 4, 5, 6});
    Tensor<float> view = t.view({6});
    flip_bit(view, 4, 31);
    CHECK(t.at({1, 1}) == -5.0f);
    CHECK(get_bit(t, 4, 31));
    set_bit(t, 4, 31, false);
    CHECK(t[4] == 5.0f);
    for (std::int64_t i = 0; i < 6; ++i) CHECK(t[i] == static_cast<float>(i + 1));
    CHECK_THROWS_AS(flip_bit(t, 6, 0), std::out_of_range);
    CHECK_THROWS_AS(flip_bit(t, -1, 0), std::out_of_range);
    CHECK_THROWS_AS(flip_bit(t, 0, 32), std::out_of_range);

    Tensor<Q15_16> q = t.cast<Q15_16>();
    CHECK(q[2] == Q15_16(3.0));
    flip_bit(q, 2, 16);
    CHECK(q[2].to_double() == 2.0);
    CHECK(q.cast<float>()[2] == 2.0f);
    Tensor<std::int8_t> b({3}, std::int8_t{0});
    flip_bit(b, 1, 7);
    CHECK(b[1] == -128);
}

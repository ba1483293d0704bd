// Bit flips in every storage format are exact: flip, compare raw patterns, restore.
#include "ironclad/core/bits.hpp"
#include "ironclad/fault/injector.hpp"
#include "support/grad_check.hpp"

#include <doctest/doctest.h>

#include <bit>
#include <cmath>

using namespace ironclad;

TEST_CASE("storage formats parse and name themselves") {
    CHECK(parse_storage_format("float").kind == StorageKind::float32);
    CHECK(parse_storage_format("q15.16").bits() == 32);
    CHECK(parse_storage_format("q3.4-even-wrap").name() == "q3.4-even-wrap");
    CHECK(parse_storage_format("int8").bits() == 8);
    CHECK(parse_storage_format("int8-channel").per_channel);
    CHECK_THROWS_WITH_AS(parse_storage_format("int7"), doctest::Contains("unknown storage format 'int7'"),
                         std::invalid_argument);
}

TEST_CASE("float32 flips are IEEE-754 bit flips, Inf and NaN kept") {
    Tensor<float> t({3});
    t[0] = 1.5f;
    t[1] = -2.0f;
    t[2] = 1.0f;
    Injector inj({{"t", t, TensorCodec(parse_storage_format("float"), t), {}}});
    const FaultPosition faults[] = {{0, 0, 31}, {0, 1, 3}, {0, 2, 30}};
    auto& rec = inj.apply(faults, FaultEffect::flip);
    REQUIRE(rec.size() == 3);
    CHECK(t[0] == -1.5f);
    CHECK(std::bit_cast<std::uint32_t>(t[1]) == (std::bit_cast<std::uint32_t>(-2.0f) ^ 8u));
    CHECK(std::isinf(t[2]));  // 1.0 = 0x3F800000; bit 30 makes the exponent all ones: +Inf
    CHECK(rec[0].raw_before == std::bit_cast<std::uint32_t>(1.5f));
    CHECK(rec[0].raw_after == std::bit_cast<std::uint32_t>(-1.5f));
    CHECK(inj.non_finite_values() == 1);
    inj.restore();
    CHECK(t[0] == 1.5f);
    CHECK(t[1] == -2.0f);
    CHECK(t[2] == 1.0f);
}

TEST_CASE("fixed-point flips equal FixedPoint bit flips for every raw value and bit of Q3.4") {
    using Q = FixedPoint<3, 4>;
    const StorageFormat fmt = parse_storage_format("q3.4");
    Tensor<float> t({256});
    for (int r = -128; r < 128; ++r) t[r + 128] = static_cast<float>(Q::from_raw(r));
    const Tensor<float> original = t.clone();
    TensorCodec codec(fmt, t);
    for (int bit = 0; bit < 8; ++bit) {
        Injector inj({{"t", t, codec, {}}});
        std::vector<FaultPosition> faults;
        for (int i = 0; i < 256; ++i) faults.push_back({0, i, bit});
        auto& rec = inj.apply(faults, FaultEffect::flip);
        for (int i = 0; i < 256; ++i) {
            Q expected = Q::from_raw(i - 128);
            flip_bit(expected, bit);
            CHECK(t[i] == static_cast<float>(expected));
            CHECK(rec[static_cast<std::size_t>(i)].raw_before == BitTraits<Q>::to_raw(Q::from_raw(i - 128)));
            CHECK(rec[static_cast<std::size_t>(i)].raw_after == BitTraits<Q>::to_raw(expected));
        }
        inj.restore();
        for (int i = 0; i < 256; ++i) CHECK(t[i] == original[i]);
    }
}

TEST_CASE("Q15.16: a repeated flip undoes itself and stuck-at sets the bit") {
    Tensor<float> t({2});
    t[0] = 0.75f;
    t[1] = -1.25f;
    TensorCodec codec(parse_storage_format("q15.16"), t);
    Injector inj({{"t", t, codec, {}}});
    const FaultPosition twice[] = {{0, 0, 20}, {0, 0, 20}};
    inj.apply(twice, FaultEffect::flip);
    CHECK(t[0] == 0.75f);
    inj.restore();
    const FaultPosition sign[] = {{0, 0, 31}};
    inj.apply(sign, FaultEffect::flip);
    CHECK(t[0] == 0.75f - 32768.0f);  // the sign bit shifts the value by -2^15, as the reference documents
    inj.restore();
    const FaultPosition s1[] = {{0, 1, 16}, {0, 0, 16}};
    inj.apply(s1, FaultEffect::stuck1);
    CHECK(t[1] == -0.25f);         // -1.25 = ...1110.11 (two's complement): bit 16 was 0, so +1
    CHECK(t[0] == 1.75f);          // 0.75 + 1
    inj.restore();
    const FaultPosition s0[] = {{0, 0, 15}};
    inj.apply(s0, FaultEffect::stuck0);
    CHECK(t[0] == 0.25f);
    inj.restore();
    CHECK(t[0] == 0.75f);
}

TEST_CASE("int8 per-tensor and per-channel storage: flips act on the stored integer") {
    Tensor<float> w({2, 3});
    const float v[] = {0.5f, -1.0f, 0.25f, 4.0f, 2.0f, -0.5f};
    for (int i = 0; i < 6; ++i) w[i] = v[i];
    Tensor<float> per_tensor = w.clone(), per_channel = w.clone();
    TensorCodec ct = store_in(per_tensor, parse_storage_format("int8"));
    TensorCodec cc = store_in(per_channel, parse_storage_format("int8-channel"));
    REQUIRE(ct.scales().size() == 1);
    CHECK(ct.scales()[0] == doctest::Approx(4.0 / 127));
    REQUIRE(cc.scales().size() == 2);
    CHECK(cc.scales()[0] == doctest::Approx(1.0 / 127));
    CHECK(per_channel[1] == doctest::Approx(-1.0f));
    CHECK(ct.encode(3, per_tensor[3]) == 127u);
    CHECK(cc.encode(1, per_channel[1]) == static_cast<std::uint8_t>(-127));
    CHECK(cc.encode(4, per_channel[4]) == 64u);  // 2 / (4/127) = 63.5, rounded to even
    Injector inj({{"w", per_channel, cc, {}}});
    const FaultPosition f[] = {{0, 1, 7}, {0, 4, 0}};
    inj.apply(f, FaultEffect::flip);
    CHECK(per_channel[1] == doctest::Approx(1.0 * cc.scales()[0]));  // -127 ^ 0x80 = 1
    CHECK(per_channel[4] == doctest::Approx(65 * cc.scales()[1]));
    inj.restore();
    CHECK(per_channel[1] == doctest::Approx(-1.0f));
}

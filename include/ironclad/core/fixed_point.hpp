// FixedPoint<IntBits, FracBits, Rounding, Overflow>: signed two's-complement fixed point, bit-exact.
//
// Contract: a value is raw * 2^-FracBits, where raw is a total_bits = 1 + IntBits + FracBits two's-complement
// integer (the sign bit is implied, not counted in IntBits), stored in the smallest standard signed integer that
// holds it. FixedPoint<15,16> (alias Q15_16) is the reference toolbox's Q15.16: fxpmath Fxp(x, True, 32, 16) with
// fxpmath's defaults, trunc (= round toward zero, not floor) and saturate.
// Every operation forms its exact result (in an integer twice as wide, or by exact double operations for
// conversions), rounds it once by Rounding, then brings it into range by Overflow: saturate clamps to
// [min(), max()], wrap keeps the low total_bits bits as an accelerator register would.
// Special inputs: NaN converts to 0; +-inf converts to max()/min() under either policy (inf has no low bits to
// wrap); x/0 gives what converting the float quotient would (+-inf or NaN). The static helpers that take
// `bool* overflowed` set it to true when the exact result did not fit (or was NaN) and leave it alone otherwise,
// so a caller can count saturation events; the operators are those helpers without a flag.
// to_double() is exact for total_bits <= 53; to_float() is correctly rounded.
#pragma once

#include <cmath>
#include <compare>
#include <cstdint>
#include <iosfwd>
#include <type_traits>

namespace ironclad {

enum class Rounding { toward_zero, nearest_even, floor };
enum class Overflow { saturate, wrap };

namespace detail {
template <int Bits>
using SmallestSignedInt =
    std::conditional_t<Bits <= 8, std::int8_t,
                       std::conditional_t<Bits <= 16, std::int16_t,
                                          std::conditional_t<Bits <= 32, std::int32_t, std::int64_t>>>;

__extension__ typedef __int128 Int128;

constexpr double pow2(int e) {
    double v = 1.0;
    for (; e > 0; --e) v *= 2.0;
    for (; e < 0; ++e) v /= 2.0;
    return v;
}
}  // namespace detail

template <int IntBits, int FracBits, Rounding R = Rounding::toward_zero, Overflow O = Overflow::saturate>
class FixedPoint {
    static_assert(IntBits >= 0 && FracBits >= 0, "FixedPoint: IntBits and FracBits must be non-negative");
    static_assert(1 + IntBits + FracBits <= 64, "FixedPoint: at most 64 bits in all, sign included");

public:
    static constexpr int int_bits = IntBits;
    static constexpr int frac_bits = FracBits;
    static constexpr int total_bits = 1 + IntBits + FracBits;
    static constexpr Rounding rounding = R;
    static constexpr Overflow overflow = O;
    using Raw = detail::SmallestSignedInt<total_bits>;
    // Holds the exact sum, product or shifted dividend of two raws.
    using Wide = std::conditional_t<total_bits <= 32, std::int64_t, detail::Int128>;
    static constexpr std::int64_t raw_max = static_cast<std::int64_t>((std::uint64_t{1} << (total_bits - 1)) - 1);
    static constexpr std::int64_t raw_min = -raw_max - 1;

    constexpr FixedPoint() = default;
    // From any arithmetic value, by from_double (integers beyond 2^53 are first rounded to double).
    template <class A>
        requires std::is_arithmetic_v<A>
    explicit FixedPoint(A x) : FixedPoint(from_double(static_cast<double>(x))) {}

    // The bit pattern: the low total_bits bits of `raw`, sign-extended. Out-of-range raws therefore wrap whatever
    // the overflow policy, so a pattern written by a bit flip reads back as the register would hold it.
    static constexpr FixedPoint from_raw(std::int64_t raw) {
        constexpr int unused = 64 - total_bits;
        FixedPoint f;
        f.raw_ = static_cast<Raw>(static_cast<std::int64_t>(static_cast<std::uint64_t>(raw) << unused) >> unused);
        return f;
    }
    // The value raw * 2^-FracBits for an exact (e.g. accumulated) raw, with the overflow policy applied.
    static constexpr FixedPoint from_raw_wide(Wide raw, bool* overflowed = nullptr) {
        if (raw >= raw_min && raw <= raw_max) return from_raw(static_cast<std::int64_t>(raw));
        if (overflowed) *overflowed = true;
        if constexpr (O == Overflow::saturate)
            return raw > 0 ? max() : min();
        else
            return from_raw(static_cast<std::int64_t>(static_cast<std::uint64_t>(raw)));
    }
    static FixedPoint from_double(double x, bool* overflowed = nullptr) {
        if (std::isnan(x)) {
            if (overflowed) *overflowed = true;
            return FixedPoint{};
        }
        // Scaling by 2^k, trunc/floor/round and fmod are exact in binary floating point, so the policy's rounding
        // is the only one that happens.
        const double scaled = round_integral(x * scale);
        if (scaled >= -half_modulus && scaled < half_modulus) return from_raw(static_cast<std::int64_t>(scaled));
        if (overflowed) *overflowed = true;
        if (O == Overflow::saturate || std::isinf(x)) return scaled > 0 ? max() : min();
        // Reducing x modulo 2^(total_bits - FracBits) first keeps the sign and moves the scaled value by a multiple
        // of 2^total_bits, an even integer, so it commutes with every rounding rule.
        double w = round_integral(std::fmod(x, detail::pow2(IntBits + 1)) * scale);
        if (w >= half_modulus)
            w -= 2 * half_modulus;
        else if (w < -half_modulus)
            w += 2 * half_modulus;
        return from_raw(static_cast<std::int64_t>(w));
    }

    static constexpr FixedPoint min() { return from_raw(raw_min); }
    static constexpr FixedPoint max() { return from_raw(raw_max); }
    static constexpr FixedPoint lsb() { return from_raw(1); }

    constexpr Raw raw() const { return raw_; }
    constexpr double to_double() const { return static_cast<double>(raw_) * inv_scale; }
    constexpr float to_float() const { return static_cast<float>(raw_) * static_cast<float>(inv_scale); }
    explicit constexpr operator double() const { return to_double(); }
    explicit constexpr operator float() const { return to_float(); }

    static constexpr FixedPoint add(FixedPoint a, FixedPoint b, bool* overflowed = nullptr) {
        return from_raw_wide(Wide{a.raw_} + b.raw_, overflowed);
    }
    static constexpr FixedPoint sub(FixedPoint a, FixedPoint b, bool* overflowed = nullptr) {
        return from_raw_wide(Wide{a.raw_} - b.raw_, overflowed);
    }
    static constexpr FixedPoint neg(FixedPoint a, bool* overflowed = nullptr) {
        return from_raw_wide(-Wide{a.raw_}, overflowed);
    }
    static constexpr FixedPoint mul(FixedPoint a, FixedPoint b, bool* overflowed = nullptr) {
        return from_raw_wide(round_quotient(Wide{a.raw_} * b.raw_, Wide{1} << FracBits), overflowed);
    }
    static constexpr FixedPoint div(FixedPoint a, FixedPoint b, bool* overflowed = nullptr) {
        if (b.raw_ == 0) {
            if (overflowed) *overflowed = true;
            return a.raw_ > 0 ? max() : a.raw_ < 0 ? min() : FixedPoint{};
        }
        const Wide num = Wide{a.raw_} * (Wide{1} << FracBits);
        return from_raw_wide(b.raw_ > 0 ? round_quotient(num, b.raw_) : round_quotient(-num, -Wide{b.raw_}),
                             overflowed);
    }

    friend constexpr FixedPoint operator+(FixedPoint a, FixedPoint b) { return add(a, b); }
    friend constexpr FixedPoint operator-(FixedPoint a, FixedPoint b) { return sub(a, b); }
    friend constexpr FixedPoint operator*(FixedPoint a, FixedPoint b) { return mul(a, b); }
    friend constexpr FixedPoint operator/(FixedPoint a, FixedPoint b) { return div(a, b); }
    constexpr FixedPoint operator-() const { return neg(*this); }
    constexpr FixedPoint& operator+=(FixedPoint b) { return *this = *this + b; }
    constexpr FixedPoint& operator-=(FixedPoint b) { return *this = *this - b; }
    constexpr FixedPoint& operator*=(FixedPoint b) { return *this = *this * b; }
    constexpr FixedPoint& operator/=(FixedPoint b) { return *this = *this / b; }
    friend constexpr auto operator<=>(const FixedPoint&, const FixedPoint&) = default;

    template <class Char, class Traits>
    friend std::basic_ostream<Char, Traits>& operator<<(std::basic_ostream<Char, Traits>& os, FixedPoint v) {
        return os << v.to_double();
    }

private:
    static constexpr double scale = detail::pow2(FracBits);
    static constexpr double inv_scale = detail::pow2(-FracBits);
    static constexpr double half_modulus = detail::pow2(total_bits - 1);

    // num / den rounded by R; den > 0.
    static constexpr Wide round_quotient(Wide num, Wide den) {
        const Wide q = num / den, r = num % den;  // C++ division truncates toward zero
        if constexpr (R == Rounding::toward_zero) {
            return q;
        } else if constexpr (R == Rounding::floor) {
            return r < 0 ? q - 1 : q;
        } else {
            const Wide twice_r = 2 * (r < 0 ? -r : r);
            const bool away = twice_r > den || (twice_r == den && q % 2 != 0);
            return away ? (num < 0 ? q - 1 : q + 1) : q;
        }
    }
    // y rounded to an integer by R (inf stays inf).
    static double round_integral(double y) {
        if constexpr (R == Rounding::toward_zero) {
            return std::trunc(y);
        } else if constexpr (R == Rounding::floor) {
            return std::floor(y);
        } else {
            // std::round breaks ties away from zero; r - y is exact (Sterbenz), so a tie is recognised exactly.
            const double r = std::round(y);
            return std::fabs(r - y) == 0.5 && std::fmod(r, 2.0) != 0 ? r - std::copysign(1.0, y) : r;
        }
    }

    Raw raw_ = 0;
};

// The reference toolbox's weight format.
using Q15_16 = FixedPoint<15, 16>;

template <class T>
inline constexpr bool is_fixed_point_v = false;
template <int I, int F, Rounding R, Overflow O>
inline constexpr bool is_fixed_point_v<FixedPoint<I, F, R, O>> = true;

}  // namespace ironclad

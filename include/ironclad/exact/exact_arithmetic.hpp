// ExactArithmetic: the integer arithmetic of a fixed-point accelerator, the engine's "exact" mode.
//
// Contract: a value of the format Q = qI.F is its raw r (value r * 2^-F, 1 + I + F <= 32 bits) held in int32.
//  - A multiply-accumulate forms every product w * x exactly (int64: |w * x| <= 2^62) at scale 2^-2F and adds it
//    to an A-bit two's-complement accumulator (A = accumulator_bits, 2..64) that starts at bias * 2^F; products
//    come in the order of the weight taps (input channel, kernel row, kernel column). accumulator_overflow
//    saturate: every addition clamps to [-2^(A-1), 2^(A-1) - 1], so the order is part of the result; wrap: the
//    sum modulo 2^A (any order gives the same).
//  - A result at scale 2^-2F returns to Q by dividing by 2^F with Q's rounding (toward zero, floor, nearest-even),
//    then narrowing to 1 + I + F bits with Q's overflow policy (saturate or wrap). Sums at scale 2^-F (residual
//    additions, average pooling) are narrowed the same way.
//  - An overflow is counted, per layer, once per output element whose accumulation overflowed ("accumulator")
//    and once per output element whose narrowing overflowed ("narrowing").
// Text form of the accumulator option: "64", "48-wrap", "32-sat" (saturate is the default).
#pragma once

#include "ironclad/nn/number_format.hpp"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstdint>
#include <stdexcept>
#include <string>
#include <string_view>
#include <type_traits>

namespace ironclad {

struct SaturationCounts {
    std::int64_t accumulator = 0;  // outputs whose accumulation overflowed
    std::int64_t narrowing = 0;    // outputs that did not fit the format
    SaturationCounts& operator+=(const SaturationCounts& o) {
        accumulator += o.accumulator;
        narrowing += o.narrowing;
        return *this;
    }
    std::int64_t total() const { return accumulator + narrowing; }
    friend bool operator==(const SaturationCounts&, const SaturationCounts&) = default;
};

struct ExactArithmetic {
    NumberFormat format;  // must be fixed point
    int accumulator_bits = 64;
    Overflow accumulator_overflow = Overflow::saturate;

    void validate() const {
        if (format.is_float()) throw std::invalid_argument("exact arithmetic needs a fixed-point format, not 'float'");
        if (accumulator_bits < format.total_bits() || accumulator_bits > 64)
            throw std::invalid_argument("accumulator of " + std::to_string(accumulator_bits) + " bits: must be " +
                                        std::to_string(format.total_bits()) + " (the format's width) to 64");
    }
    std::string accumulator_name() const {
        return std::to_string(accumulator_bits) + (accumulator_overflow == Overflow::wrap ? "-wrap" : "-sat");
    }
    std::int64_t accumulator_max() const {
        return accumulator_bits == 64 ? INT64_MAX : (std::int64_t{1} << (accumulator_bits - 1)) - 1;
    }
    std::int64_t accumulator_min() const { return -accumulator_max() - 1; }
    std::int64_t raw_max() const { return (std::int64_t{1} << (format.total_bits() - 1)) - 1; }
    std::int64_t raw_min() const { return -raw_max() - 1; }

    // acc + p in the accumulator; sets `overflowed` when the exact sum did not fit.
    std::int64_t accumulate(std::int64_t acc, std::int64_t p, bool& overflowed) const {
        std::int64_t sum;
        if (accumulator_bits == 64) {
            if (!__builtin_add_overflow(acc, p, &sum)) return sum;
            overflowed = true;
            if (accumulator_overflow == Overflow::saturate) return p > 0 ? INT64_MAX : INT64_MIN;
            return static_cast<std::int64_t>(static_cast<std::uint64_t>(acc) + static_cast<std::uint64_t>(p));
        }
        sum = acc + p;  // |acc| <= 2^62 and |p| <= 2^62 here, so the int64 sum is exact
        if (sum >= accumulator_min() && sum <= accumulator_max()) return sum;
        overflowed = true;
        if (accumulator_overflow == Overflow::saturate) return sum > 0 ? accumulator_max() : accumulator_min();
        return sign_extend(sum, accumulator_bits);
    }

    // An integer quotient acc / 2^shift rounded by the format's rule.
    std::int64_t shift_round(std::int64_t acc, int shift) const {
        if (shift == 0) return acc;
        const std::int64_t floor_q = acc >> shift;  // arithmetic shift: floor
        switch (format.rounding) {
            case Rounding::floor:
                return floor_q;
            case Rounding::toward_zero:
                return (acc < 0 && (acc & ((std::int64_t{1} << shift) - 1)) != 0) ? floor_q + 1 : floor_q;
            case Rounding::nearest_even: {
                const std::uint64_t rest = static_cast<std::uint64_t>(acc) & ((std::uint64_t{1} << shift) - 1);
                const std::uint64_t half = std::uint64_t{1} << (shift - 1);
                return (rest > half || (rest == half && (floor_q & 1))) ? floor_q + 1 : floor_q;
            }
        }
        return floor_q;
    }
    // An integer quotient num / den (den > 0) rounded by the format's rule.
    std::int64_t divide_round(std::int64_t num, std::int64_t den) const {
        std::int64_t q = num / den, r = num % den;  // truncates toward zero
        switch (format.rounding) {
            case Rounding::toward_zero:
                return q;
            case Rounding::floor:
                return r < 0 ? q - 1 : q;
            case Rounding::nearest_even: {
                const std::int64_t twice = 2 * (r < 0 ? -r : r);
                if (twice > den || (twice == den && q % 2 != 0)) q += num < 0 ? -1 : 1;
                return q;
            }
        }
        return q;
    }
    // A raw at scale 2^-F into the format; sets `overflowed` when it did not fit.
    std::int32_t narrow(std::int64_t raw, bool& overflowed) const {
        if (raw >= raw_min() && raw <= raw_max()) return static_cast<std::int32_t>(raw);
        overflowed = true;
        if (format.overflow == Overflow::saturate) return static_cast<std::int32_t>(raw > 0 ? raw_max() : raw_min());
        return static_cast<std::int32_t>(sign_extend(raw, format.total_bits()));
    }
    // Calls body(narrow) once, narrow(v, overflows) being narrow(shift_round(v, shift)) with `overflows` counting
    // the values that did not fit, and the rounding and overflow rules fixed at compile time, so that loops
    // written in body vectorise (a per-element switch does not).
    template <class Body>
    void with_narrowing(int shift, Body body) const {
        const std::int64_t lo = raw_min(), hi = raw_max();
        const std::int64_t mask = (std::int64_t{1} << shift) - 1;
        const std::int64_t half = shift > 0 ? std::int64_t{1} << (shift - 1) : 1;  // 1: never a tie when shift is 0
        const int bits = format.total_bits();
        auto with_overflow = [&](auto round) {
            if (format.overflow == Overflow::wrap)
                body([=](std::int64_t v, std::int64_t& overflows) {
                    const std::int64_t r = round(v);
                    overflows += (r < lo) | (r > hi);
                    return static_cast<std::int32_t>(sign_extend(r, bits));
                });
            else
                body([=](std::int64_t v, std::int64_t& overflows) {
                    const std::int64_t r = round(v);
                    overflows += (r < lo) | (r > hi);
                    return static_cast<std::int32_t>(std::clamp(r, lo, hi));
                });
        };
        switch (format.rounding) {
            case Rounding::floor:
                with_overflow([shift](std::int64_t v) { return v >> shift; });
                break;
            case Rounding::toward_zero:  // a negative value with a remainder rounds up: add mask before the floor
                with_overflow([shift, mask](std::int64_t v) { return (v + ((v >> 63) & mask)) >> shift; });
                break;
            case Rounding::nearest_even:
                with_overflow([shift, mask, half](std::int64_t v) {
                    const std::int64_t q = v >> shift, rest = v & mask;
                    return q + ((rest > half) | ((rest == half) & (q & 1)));
                });
                break;
        }
    }
    // store(i, narrow(shift_round(value(i), shift))) for i in [0, n); returns how many values overflowed. The same
    // results as the two calls, vectorised (with_narrowing).
    template <class Value, class Store>
    std::int64_t narrow_rounded(std::int64_t n, int shift, Value value, Store store) const {
        std::int64_t overflows = 0;
        with_narrowing(shift, [&](auto narrow) {
            std::int64_t count = 0;
            for (std::int64_t i = 0; i < n; ++i) store(i, narrow(static_cast<std::int64_t>(value(i)), count));
            overflows = count;
        });
        return overflows;
    }
    // A real number's raw in the format (the format's rounding, then its overflow policy); NaN gives 0.
    std::int32_t raw_of(double x, bool& overflowed) const {
        if (std::isnan(x)) {
            overflowed = true;
            return 0;
        }
        double y = std::ldexp(x, format.frac_bits);
        y = format.rounding == Rounding::toward_zero ? std::trunc(y)
            : format.rounding == Rounding::floor     ? std::floor(y)
                                                     : std::nearbyint(y);  // default mode: ties to even
        if (y >= static_cast<double>(raw_min()) && y <= static_cast<double>(raw_max()))
            return static_cast<std::int32_t>(y);
        overflowed = true;
        if (format.overflow == Overflow::saturate || std::isinf(y))
            return static_cast<std::int32_t>(y > 0 ? raw_max() : raw_min());
        // |y| may exceed int64: reduce modulo 2^total_bits first (exact for integral doubles).
        const double modulus = std::ldexp(1.0, format.total_bits());
        return static_cast<std::int32_t>(sign_extend(static_cast<std::int64_t>(std::fmod(y, modulus)),
                                                     format.total_bits()));
    }
    double value_of(std::int64_t raw) const { return std::ldexp(static_cast<double>(raw), -format.frac_bits); }

    static std::int64_t sign_extend(std::int64_t v, int bits) {
        const int unused = 64 - bits;
        return static_cast<std::int64_t>(static_cast<std::uint64_t>(v) << unused) >> unused;
    }
};

// "A" or "A-sat" or "A-wrap" (A accumulator bits) into `arith`'s accumulator settings.
inline void parse_accumulator(std::string_view text, ExactArithmetic& arith) {
    const std::string quoted = std::string("'").append(text).append("'");  // not "'" + ...: GCC 12 -Wrestrict
    const std::size_t dash = std::min(text.find('-'), text.size());
    int bits = 0;
    const auto [end, ec] = std::from_chars(text.data(), text.data() + dash, bits);
    const std::string_view suffix = dash < text.size() ? text.substr(dash + 1) : std::string_view("sat");
    if (ec != std::errc{} || end != text.data() + dash || (suffix != "sat" && suffix != "wrap"))
        throw std::invalid_argument("accumulator " + quoted + ": expected BITS, BITS-sat or BITS-wrap, e.g. 64 or 40-wrap");
    arith.accumulator_bits = bits;
    arith.accumulator_overflow = suffix == "wrap" ? Overflow::wrap : Overflow::saturate;
}

}  // namespace ironclad

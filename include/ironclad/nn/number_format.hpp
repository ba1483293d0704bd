// NumberFormat: a storage number format chosen at run time ("float", "q15.16", "q7.8-even-wrap"), for programs
// that read the format from a command line or a file and so cannot name FixedPoint<I,F,R,O> at compile time.
//
// Contract: for a fixed-point format, round(x) is bit-identical to static_cast<float>(FixedPoint<I,F,R,O>(x)), so
// round_through / quantize_parameters / quantize_activations here equal the templated ones in nn/quantize.hpp.
// The rounding is FixedPoint's own: x * 2^F is exact for a float x, and FixedPoint<31,0,R,O> rounds it as
// FixedPoint<I,F,R,O> rounds x; only the narrowing from 32 to 1 + I + F bits is done here. A float format
// rounds nothing.
// Text form: "float", or "qI.F" with I, F >= 0 and 1 + I + F <= 32 (the sign bit is implied, as in FixedPoint),
// then at most one rounding suffix (-zero: toward zero, the default; -even: nearest, ties to even; -floor) and
// at most one overflow suffix (-sat: saturate, the default; -wrap). "q15.16" is the reference toolbox's Q15.16.
// name() gives the shortest text that parses back to the same format.
#pragma once

#include "ironclad/core/fixed_point.hpp"
#include "ironclad/nn/quantize.hpp"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstdint>
#include <stdexcept>
#include <string>
#include <string_view>

namespace ironclad {

enum class NumberKind { floating, fixed };

namespace detail {

// One fixed-point format's rounding, with its constants computed once for a whole tensor.
template <Rounding R, Overflow O>
struct FixedRounder {
    int total_bits;
    double scale;     // 2^F
    float inv_scale;  // 2^-F, exact in float for F <= 31

    float operator()(float x) const {
        const std::int64_t hi = (std::int64_t{1} << (total_bits - 1)) - 1, lo = -hi - 1;
        std::int64_t raw;
        if (std::isinf(x)) {
            raw = x > 0 ? hi : lo;  // infinity has no low bits to wrap
        } else {
            raw = FixedPoint<31, 0, R, O>::from_double(static_cast<double>(x) * scale).raw();
            if constexpr (O == Overflow::saturate) {
                raw = std::clamp(raw, lo, hi);
            } else {
                const int unused = 64 - total_bits;
                raw = static_cast<std::int64_t>(static_cast<std::uint64_t>(raw) << unused) >> unused;
            }
        }
        return static_cast<float>(raw) * inv_scale;  // as FixedPoint::to_float
    }
};

}  // namespace detail

struct NumberFormat {
    NumberKind kind = NumberKind::floating;
    int int_bits = 0;
    int frac_bits = 0;
    Rounding rounding = Rounding::toward_zero;
    Overflow overflow = Overflow::saturate;

    bool is_float() const { return kind == NumberKind::floating; }
    int total_bits() const { return is_float() ? 32 : 1 + int_bits + frac_bits; }

    std::string name() const {
        if (is_float()) return "float";
        // Appended piece by piece: GCC 12 warns falsely (-Wrestrict) on "literal" + std::string temporaries.
        std::string s = "q";
        s.append(std::to_string(int_bits)).append(".").append(std::to_string(frac_bits));
        if (rounding == Rounding::nearest_even) s += "-even";
        if (rounding == Rounding::floor) s += "-floor";
        if (overflow == Overflow::wrap) s += "-wrap";
        return s;
    }

    // Calls f with this fixed-point format's rounder (a float -> float callable), typed by policy so that a
    // loop over a tensor is compiled once per policy pair rather than testing the policies per element.
    template <class F>
    decltype(auto) with_rounder(F&& f) const {
        if (is_float()) throw std::logic_error("NumberFormat::with_rounder: 'float' has no rounder");
        const double scale = std::ldexp(1.0, frac_bits);
        const auto inv = static_cast<float>(std::ldexp(1.0, -frac_bits));
        auto call = [&]<Rounding R, Overflow O>() { return f(detail::FixedRounder<R, O>{total_bits(), scale, inv}); };
        const bool wrap = overflow == Overflow::wrap;
        switch (rounding) {
            case Rounding::nearest_even:
                return wrap ? call.template operator()<Rounding::nearest_even, Overflow::wrap>()
                            : call.template operator()<Rounding::nearest_even, Overflow::saturate>();
            case Rounding::floor:
                return wrap ? call.template operator()<Rounding::floor, Overflow::wrap>()
                            : call.template operator()<Rounding::floor, Overflow::saturate>();
            case Rounding::toward_zero:
                break;
        }
        return wrap ? call.template operator()<Rounding::toward_zero, Overflow::wrap>()
                    : call.template operator()<Rounding::toward_zero, Overflow::saturate>();
    }

    float round(float x) const {
        return is_float() ? x : with_rounder([x](auto rounder) { return rounder(x); });
    }

    friend bool operator==(const NumberFormat&, const NumberFormat&) = default;
};

inline NumberFormat parse_number_format(std::string_view text) {
    const std::string quoted = std::string("'").append(text).append("'");  // not "'" + ...: GCC 12 -Wrestrict
    const std::string unknown = "unknown number format " + quoted +
                                ": expected float or qI.F, e.g. q15.16 (suffixes: -zero, -even or -floor "
                                "rounding; -sat or -wrap overflow)";
    if (text == "float") return {};
    if (text.size() < 2 || (text[0] != 'q' && text[0] != 'Q')) throw std::invalid_argument(unknown);

    NumberFormat f{NumberKind::fixed};
    auto number = [&](std::string_view s, int& out) {
        const auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), out);
        return !s.empty() && ec == std::errc{} && end == s.data() + s.size();
    };
    const std::size_t dash = std::min(text.find('-'), text.size());
    const std::string_view base = text.substr(1, dash - 1);
    const std::size_t dot = base.find('.');
    if (dot == std::string_view::npos || !number(base.substr(0, dot), f.int_bits) ||
        !number(base.substr(dot + 1), f.frac_bits))
        throw std::invalid_argument(unknown);
    // '-' starts a suffix, so neither count is negative; testing each first keeps 1 + I + F from overflowing.
    if (f.int_bits > 31 || f.frac_bits > 31 || f.total_bits() > 32)
        throw std::invalid_argument("number format " + quoted + " has 1 + " + std::to_string(f.int_bits) + " + " +
                                    std::to_string(f.frac_bits) + " bits; at most 32 are supported");

    bool rounding_given = false, overflow_given = false;
    for (std::size_t pos = dash; pos < text.size();) {
        const std::size_t next = std::min(text.find('-', pos + 1), text.size());
        const std::string_view suffix = text.substr(pos + 1, next - pos - 1);
        pos = next;
        if (suffix == "zero" || suffix == "even" || suffix == "floor") {
            if (rounding_given)
                throw std::invalid_argument("number format " + quoted + ": more than one rounding suffix");
            rounding_given = true;
            f.rounding = suffix == "zero"   ? Rounding::toward_zero
                         : suffix == "even" ? Rounding::nearest_even
                                            : Rounding::floor;
        } else if (suffix == "sat" || suffix == "wrap") {
            if (overflow_given)
                throw std::invalid_argument("number format " + quoted + ": more than one overflow suffix");
            overflow_given = true;
            f.overflow = suffix == "sat" ? Overflow::saturate : Overflow::wrap;
        } else {
            throw std::invalid_argument(unknown);
        }
    }
    return f;
}

// Round every element through q (nothing to do for float).
inline void round_through(Tensor<float>& t, const NumberFormat& q) {
    if (q.is_float()) return;
    q.with_rounder([&t](auto rounder) { round_each(t, rounder); });
}

inline void quantize_parameters(Module& model, const NumberFormat& q) {
    for (auto& [name, p] : model.named_parameters()) round_through(p.value(), q);
}

// Replaces the output hook of every leaf module by rounding through q; float removes them (it rounds nothing).
inline void quantize_activations(Module& model, const NumberFormat& q) {
    if (q.is_float())
        set_leaf_output_hooks(model, {});
    else
        set_leaf_output_hooks(model, [q](Tensor<float>& y) { round_through(y, q); });
}

}  // namespace ironclad

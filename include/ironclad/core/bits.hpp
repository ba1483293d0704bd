// Bit view of a stored scalar: its width, its raw pattern, and the single-bit faults the injector applies.
//
// Contract: bit 0 is the least significant bit of the stored pattern and bit width-1 the most significant, which
// is the sign for every type here (as in the reference toolbox, where "bit 31" of Q15.16 is the sign).
//   float / double   IEEE-754 via std::bit_cast (float: 31 sign, 30..23 exponent, 22..0 mantissa)
//   FixedPoint       the total_bits two's-complement raw; writing bit total_bits-1 changes the sign
//   signed integers  two's complement (int8_t, int16_t, int32_t, int64_t)
// A flip can turn a float into Inf or NaN; that is what faulty storage would hold, so it is kept, never masked.
// A bit outside [0, width) or an element outside the tensor throws std::out_of_range.
#pragma once

#include "ironclad/core/fixed_point.hpp"
#include "ironclad/core/tensor.hpp"

#include <bit>
#include <concepts>
#include <cstdint>
#include <stdexcept>
#include <string>
#include <type_traits>

namespace ironclad {

template <class T>
struct BitTraits;  // no bit view unless specialised below

namespace detail {
template <class T, class R>
struct BitCastTraits {
    using Raw = R;
    static constexpr int width = 8 * sizeof(T);
    static constexpr Raw to_raw(T v) { return std::bit_cast<Raw>(v); }
    static constexpr T from_raw(Raw r) { return std::bit_cast<T>(r); }
};
}  // namespace detail

template <>
struct BitTraits<float> : detail::BitCastTraits<float, std::uint32_t> {};
template <>
struct BitTraits<double> : detail::BitCastTraits<double, std::uint64_t> {};
template <std::signed_integral T>
struct BitTraits<T> : detail::BitCastTraits<T, std::make_unsigned_t<T>> {};

template <int I, int F, Rounding R, Overflow O>
struct BitTraits<FixedPoint<I, F, R, O>> {
    using Value = FixedPoint<I, F, R, O>;
    using Raw = std::make_unsigned_t<typename Value::Raw>;
    static constexpr int width = Value::total_bits;
    // Storage bits above total_bits are only sign copies, so they are not part of the pattern.
    static constexpr Raw to_raw(Value v) {
        return static_cast<Raw>(static_cast<std::uint64_t>(v.raw()) & (~std::uint64_t{0} >> (64 - width)));
    }
    static constexpr Value from_raw(Raw r) { return Value::from_raw(static_cast<std::int64_t>(r)); }
};

template <class T>
concept HasBitView = requires(T v, typename BitTraits<T>::Raw r) {
    { BitTraits<T>::width } -> std::convertible_to<int>;
    { BitTraits<T>::to_raw(v) } -> std::same_as<typename BitTraits<T>::Raw>;
    { BitTraits<T>::from_raw(r) } -> std::same_as<T>;
};

namespace detail {
template <class T>
typename BitTraits<T>::Raw bit_mask(int bit) {
    if (bit < 0 || bit >= BitTraits<T>::width)
        throw std::out_of_range("bit " + std::to_string(bit) + " is out of range for a " +
                                std::to_string(BitTraits<T>::width) + "-bit value");
    return static_cast<typename BitTraits<T>::Raw>(typename BitTraits<T>::Raw{1} << bit);
}
template <class TensorT>
auto& element(TensorT& t, std::int64_t index) {
    if (index < 0 || index >= t.numel())
        throw std::out_of_range("element " + std::to_string(index) + " is out of range for a tensor of shape " +
                                shape_str(t.shape()));
    return t[index];
}
}  // namespace detail

template <HasBitView T>
bool get_bit(T v, int bit) {
    return (BitTraits<T>::to_raw(v) & detail::bit_mask<T>(bit)) != 0;
}
template <HasBitView T>
void flip_bit(T& v, int bit) {
    using B = BitTraits<T>;
    v = B::from_raw(static_cast<typename B::Raw>(B::to_raw(v) ^ detail::bit_mask<T>(bit)));
}
// Stuck-at fault: the bit reads `value` whatever it held.
template <HasBitView T>
void set_bit(T& v, int bit, bool value) {
    using B = BitTraits<T>;
    const auto mask = detail::bit_mask<T>(bit);
    const auto raw = B::to_raw(v);
    v = B::from_raw(static_cast<typename B::Raw>(value ? raw | mask : raw & ~mask));
}

// The same on element `index` of a tensor's contiguous storage (flat, row-major).
template <HasBitView T>
bool get_bit(const Tensor<T>& t, std::int64_t index, int bit) {
    return get_bit(detail::element(t, index), bit);
}
template <HasBitView T>
void flip_bit(Tensor<T>& t, std::int64_t index, int bit) {
    flip_bit(detail::element(t, index), bit);
}
template <HasBitView T>
void set_bit(Tensor<T>& t, std::int64_t index, int bit, bool value) {
    set_bit(detail::element(t, index), bit, value);
}

}  // namespace ironclad

// StorageFormat: how a tensor is held in the memory of the deployed model, the bits a fault flips.
//
// Contract: the engine computes in float; a tensor "stored" in a format holds only values that format represents
// (store_in rounds it once, as deployment would). A TensorCodec then maps each element to its stored raw pattern
// and back, so that a fault acts on exactly the bits the deployed memory holds:
//   float    IEEE-754 binary32 bits (31 sign, 30..23 exponent, 22..0 mantissa); a flip may give Inf or NaN.
//   qI.F     the 1+I+F-bit two's-complement raw of FixedPoint<I,F> (any rounding/overflow policy); decode gives
//            raw * 2^-F rounded to float, exact while |raw| < 2^24 (Q15.16: |value| < 256).
//   int8     symmetric int8 with scale max|x|/127 per tensor, or per output channel (dimension 0) for
//            "int8-channel"; raw is the 8-bit two's complement of round(x/scale), decode gives q * scale.
// encode(i, x) needs x to be a value of the format (the result of store_in); bit 0 is the least significant.
// Text form: "float", "qI.F[-suffixes]" (see NumberFormat), "int8", "int8-channel".
#pragma once

#include "ironclad/nn/number_format.hpp"

#include <bit>
#include <cmath>
#include <cstdint>
#include <stdexcept>
#include <string>
#include <vector>

namespace ironclad {

enum class StorageKind { float32, fixed, int8 };

struct StorageFormat {
    StorageKind kind = StorageKind::float32;
    NumberFormat fixed;        // when kind == fixed
    bool per_channel = false;  // int8: one scale per output channel instead of one per tensor

    int bits() const { return kind == StorageKind::int8 ? 8 : kind == StorageKind::fixed ? fixed.total_bits() : 32; }
    std::string name() const {
        if (kind == StorageKind::fixed) return fixed.name();
        if (kind == StorageKind::int8) return per_channel ? "int8-channel" : "int8";
        return "float";
    }
    friend bool operator==(const StorageFormat&, const StorageFormat&) = default;
};

inline StorageFormat parse_storage_format(const std::string& text) {
    if (text == "float") return {};
    if (text == "int8") return {StorageKind::int8, {}, false};
    if (text == "int8-channel") return {StorageKind::int8, {}, true};
    try {
        return {StorageKind::fixed, parse_number_format(text), false};
    } catch (const std::invalid_argument&) {
        throw std::invalid_argument("unknown storage format '" + text +
                                    "': expected float, qI.F (e.g. q15.16, q7.8-even-wrap), int8 or int8-channel");
    }
}

// Raw patterns and values of one tensor's elements in a storage format.
class TensorCodec {
public:
    TensorCodec() = default;
    // For int8 the scales come from `values` (call on the unrounded tensor, or on its stored copy: same scales).
    TensorCodec(const StorageFormat& format, const Tensor<float>& values) : format_(format) {
        if (format.kind != StorageKind::int8) return;
        const std::int64_t channels = format.per_channel && values.ndim() > 1 ? values.dim(0) : 1;
        const std::int64_t per = values.numel() / std::max<std::int64_t>(channels, 1);
        scales_.assign(static_cast<std::size_t>(channels), 1.0f);
        for (std::int64_t c = 0; c < channels; ++c) {
            float m = 0;
            for (std::int64_t i = c * per; i < (c + 1) * per; ++i) m = std::max(m, std::abs(values[i]));
            // An all-zero (or non-finite) channel keeps scale 1: its stored integers are all 0 either way.
            if (m > 0 && std::isfinite(m)) scales_[static_cast<std::size_t>(c)] = m / 127.0f;
        }
        per_channel_elements_ = per;
    }

    const StorageFormat& format() const { return format_; }
    int bits() const { return format_.bits(); }
    const std::vector<float>& scales() const { return scales_; }

    std::uint64_t encode(std::int64_t index, float x) const {
        switch (format_.kind) {
            case StorageKind::float32:
                return std::bit_cast<std::uint32_t>(x);
            case StorageKind::fixed: {
                const auto raw = static_cast<std::int64_t>(std::llround(std::ldexp(static_cast<double>(x),
                                                                                   format_.fixed.frac_bits)));
                return static_cast<std::uint64_t>(raw) & mask();
            }
            case StorageKind::int8:
                return static_cast<std::uint64_t>(std::llround(x / scale(index))) & 0xFFu;
        }
        return 0;
    }
    float decode(std::int64_t index, std::uint64_t raw) const {
        switch (format_.kind) {
            case StorageKind::float32:
                return std::bit_cast<float>(static_cast<std::uint32_t>(raw));
            case StorageKind::fixed:
                return static_cast<float>(std::ldexp(static_cast<double>(sign_extend(raw)), -format_.fixed.frac_bits));
            case StorageKind::int8:
                return static_cast<float>(sign_extend(raw)) * scale(index);
        }
        return 0;
    }
    // The value x holds in this format (round, saturate or wrap as the format says).
    float store(std::int64_t index, float x) const {
        switch (format_.kind) {
            case StorageKind::float32:
                return x;
            case StorageKind::fixed:
                return format_.fixed.round(x);
            case StorageKind::int8: {
                const float s = scale(index);
                return static_cast<float>(std::clamp(std::nearbyint(x / s), -127.0f, 127.0f)) * s;
            }
        }
        return x;
    }

private:
    std::uint64_t mask() const { return ~std::uint64_t{0} >> (64 - bits()); }
    std::int64_t sign_extend(std::uint64_t raw) const {
        const int unused = 64 - bits();
        return static_cast<std::int64_t>((raw & mask()) << unused) >> unused;
    }
    float scale(std::int64_t index) const {
        return scales_[scales_.size() == 1 ? 0 : static_cast<std::size_t>(index / per_channel_elements_)];
    }

    StorageFormat format_;
    std::vector<float> scales_;
    std::int64_t per_channel_elements_ = 1;
};

// Rounds t in place to what `format` stores and returns the codec of the stored tensor.
inline TensorCodec store_in(Tensor<float>& t, const StorageFormat& format) {
    TensorCodec codec(format, t);
    if (format.kind == StorageKind::fixed) {
        round_through(t, format.fixed);
    } else if (format.kind == StorageKind::int8) {
        for (std::int64_t i = 0; i < t.numel(); ++i) t[i] = codec.store(i, t[i]);
    }
    return codec;
}

}  // namespace ironclad

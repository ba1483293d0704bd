// Injector: applies faults to tensors in place and puts every touched value back afterwards.
//
// Contract: a FaultTarget is a tensor of the model (sharing its storage) with the codec of the format it is stored
// in. apply() acts on the positions in order (so a repeated flip undoes itself, as in the reference toolbox), keeps
// the current raw pattern of every touched element (exact even where float cannot hold a wide fixed-point value),
// and returns one FaultRecord per fault: (tensor, element, bit, raw before, raw after, values before and after).
// restore() writes back the original floats, bit-exactly, and forgets the records. No model copy is ever made.
// A target of the exact-arithmetic engine also names its raw storage (`raw`: the sign-extended patterns the
// integer kernels read); faults and restore then write the raw there as well.
#pragma once

#include "ironclad/fault/fault_model.hpp"
#include "ironclad/fault/sampler.hpp"

#include <cmath>
#include <cstdint>
#include <span>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

namespace ironclad {

struct FaultTarget {
    std::string name;       // e.g. "layer3.0.conv1.weight"
    Tensor<float> values;   // shares storage with the model
    TensorCodec codec;
    Tensor<std::int32_t> raw;  // exact arithmetic's stored raws (shares storage); empty otherwise
};

struct FaultRecord {
    int target;
    std::int64_t element;
    int bit;
    std::uint64_t raw_before, raw_after;
    float before, after;
};

// The raw pattern after one fault of `effect` at `bit`.
inline std::uint64_t apply_effect(std::uint64_t raw, int bit, FaultEffect effect) {
    const std::uint64_t mask = std::uint64_t{1} << bit;
    switch (effect) {
        case FaultEffect::flip:
            return raw ^ mask;
        case FaultEffect::stuck0:
            return raw & ~mask;
        case FaultEffect::stuck1:
            return raw | mask;
    }
    return raw;
}

class Injector {
public:
    explicit Injector(std::vector<FaultTarget> targets) : targets_(std::move(targets)) {}
    Injector(const Injector&) = delete;
    Injector& operator=(const Injector&) = delete;
    ~Injector() { restore(); }

    const std::vector<FaultTarget>& targets() const { return targets_; }
    const std::vector<FaultRecord>& records() const { return records_; }

    const std::vector<FaultRecord>& apply(std::span<const FaultPosition> faults, FaultEffect effect) {
        for (const FaultPosition& f : faults) {
            FaultTarget& t = targets_.at(static_cast<std::size_t>(f.target));
            float& slot = t.values[f.element];
            const std::uint64_t key = (static_cast<std::uint64_t>(f.target) << 40) | static_cast<std::uint64_t>(f.element);
            auto [it, fresh] = current_raw_.try_emplace(key, 0);
            if (fresh) {
                it->second = t.raw.numel() ? static_cast<std::uint64_t>(t.raw[f.element]) & raw_mask(t)
                                           : t.codec.encode(f.element, slot);
                originals_.push_back({f.target, f.element, slot, it->second});
            }
            const std::uint64_t before = it->second;
            const std::uint64_t after = apply_effect(before, f.bit, effect);
            const float old_value = slot;
            slot = t.codec.decode(f.element, after);
            if (t.raw.numel()) t.raw[f.element] = sign_extended(t, after);
            it->second = after;
            records_.push_back({f.target, f.element, f.bit, before, after, old_value, slot});
        }
        return records_;
    }

    // Number of faulted values that are now Inf or NaN.
    std::int64_t non_finite_values() const {
        std::int64_t n = 0;
        for (auto& o : originals_) n += !std::isfinite(targets_[static_cast<std::size_t>(o.target)].values[o.element]);
        return n;
    }

    void restore() {
        for (auto it = originals_.rbegin(); it != originals_.rend(); ++it) {
            FaultTarget& t = targets_[static_cast<std::size_t>(it->target)];
            t.values[it->element] = it->value;
            if (t.raw.numel()) t.raw[it->element] = sign_extended(t, it->raw);
        }
        originals_.clear();
        current_raw_.clear();
        records_.clear();
    }

private:
    struct Original {
        int target;
        std::int64_t element;
        float value;
        std::uint64_t raw;
    };
    static std::uint64_t raw_mask(const FaultTarget& t) { return ~std::uint64_t{0} >> (64 - t.codec.bits()); }
    static std::int32_t sign_extended(const FaultTarget& t, std::uint64_t raw) {
        const int unused = 64 - t.codec.bits();
        return static_cast<std::int32_t>(static_cast<std::int64_t>(raw << unused) >> unused);
    }

    std::vector<FaultTarget> targets_;
    std::vector<Original> originals_;  // first value of each touched element
    std::unordered_map<std::uint64_t, std::uint64_t> current_raw_;
    std::vector<FaultRecord> records_;
};

}  // namespace ironclad

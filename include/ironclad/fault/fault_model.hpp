// FaultModel: what a fault campaign does to a model, as one printable value (DESIGN.md: "fault models are values").
//
// Contract: every field has a meaning independent of the others' defaults, to_json() writes all of them, and the
// same FaultModel with the same seed and data gives the same faults at any thread count.
//   site        weights (conv/linear weights and biases, plus BN parameters with include_bn), activations (the
//               output buffer of the chosen layers / activation slots), or both.
//   format      the storage format the bits belong to (fault/storage_format.hpp).
//   count_mode  ber: every eligible bit flips independently with probability `rate` (counts sampled exactly);
//               count: `count` distinct (element, bit) positions, uniform over all eligible bits;
//               reference: the toolbox's rule, per tensor floor(elements x bits x rate) faults at uniformly drawn
//               elements and bits, with replacement (a repeated position undoes itself), weights only.
//   effect      flip (transient), stuck0 / stuck1 (the bit reads 0 / 1: a permanent fault of that device).
//   bit_lo..bit_hi  the eligible bit positions (0 = least significant), inclusive; -1 = the format's top bit.
//   layers      dotted name prefixes the faults are restricted to (empty: all eligible layers).
#pragma once

#include "ironclad/fault/storage_format.hpp"

#include <nlohmann/json.hpp>

#include <cstdint>
#include <stdexcept>
#include <string>
#include <vector>

namespace ironclad {

enum class FaultSite { weights, activations, both };
enum class CountMode { ber, count, reference };
enum class FaultEffect { flip, stuck0, stuck1 };

inline const char* to_string(FaultSite s) {
    return s == FaultSite::weights ? "weights" : s == FaultSite::activations ? "activations" : "both";
}
inline const char* to_string(CountMode m) {
    return m == CountMode::ber ? "ber" : m == CountMode::count ? "count" : "reference";
}
inline const char* to_string(FaultEffect e) {
    return e == FaultEffect::flip ? "flip" : e == FaultEffect::stuck0 ? "stuck0" : "stuck1";
}

inline FaultSite parse_fault_site(const std::string& s) {
    if (s == "weights") return FaultSite::weights;
    if (s == "activations") return FaultSite::activations;
    if (s == "both") return FaultSite::both;
    throw std::invalid_argument("unknown fault site '" + s + "': expected weights, activations or both");
}
inline CountMode parse_count_mode(const std::string& s) {
    if (s == "ber") return CountMode::ber;
    if (s == "count") return CountMode::count;
    if (s == "reference") return CountMode::reference;
    throw std::invalid_argument("unknown count mode '" + s + "': expected ber, count or reference");
}
inline FaultEffect parse_fault_effect(const std::string& s) {
    if (s == "flip") return FaultEffect::flip;
    if (s == "stuck0" || s == "stuck-at-0") return FaultEffect::stuck0;
    if (s == "stuck1" || s == "stuck-at-1") return FaultEffect::stuck1;
    throw std::invalid_argument("unknown fault effect '" + s + "': expected flip, stuck0 or stuck1");
}

struct FaultModel {
    FaultSite site = FaultSite::weights;
    StorageFormat format{StorageKind::fixed, NumberFormat{NumberKind::fixed, 15, 16}, false};
    CountMode count_mode = CountMode::ber;
    double rate = 0;          // ber and reference modes
    std::int64_t count = 0;   // count mode: flips per trial (per image for activations)
    FaultEffect effect = FaultEffect::flip;
    int bit_lo = 0, bit_hi = -1;
    std::vector<std::string> layers;
    bool include_bn = false;  // BN weight/bias are weight sites too
    std::uint64_t seed = 0;

    int top_bit() const { return bit_hi < 0 ? format.bits() - 1 : bit_hi; }
    int eligible_bits() const { return top_bit() - bit_lo + 1; }
    bool faults_weights() const { return site != FaultSite::activations; }
    bool faults_activations() const { return site != FaultSite::weights; }

    // Throws std::invalid_argument naming the field and the problem.
    void validate() const {
        if (!(rate >= 0 && rate <= 1)) throw std::invalid_argument("fault rate must be in [0, 1], got " + std::to_string(rate));
        if (count < 0) throw std::invalid_argument("fault count must not be negative");
        if (bit_lo < 0 || bit_lo > top_bit() || top_bit() >= format.bits())
            throw std::invalid_argument("bit range " + std::to_string(bit_lo) + "-" + std::to_string(top_bit()) +
                                        " is outside the " + std::to_string(format.bits()) + " bits of " +
                                        format.name());
        if (count_mode == CountMode::reference && site != FaultSite::weights)
            throw std::invalid_argument("count mode 'reference' is the toolbox's weight-fault rule: use site weights");
    }

    nlohmann::ordered_json to_json() const {
        return {{"site", to_string(site)},
                {"format", format.name()},
                {"count_mode", to_string(count_mode)},
                {"effect", to_string(effect)},
                {"bits", {bit_lo, top_bit()}},
                {"layers", layers},
                {"include_bn", include_bn},
                {"seed", seed}};
    }
};

}  // namespace ironclad

// Fault sampling: where the faults of one trial fall, given the sizes of the eligible tensors.
//
// Contract: positions are (target, element, bit) with bit in [bit_lo, top_bit]; all eligible bits of all targets
// form one sequence of B = sum(numel) x eligible_bits positions, target by target, element by element, bit by bit.
//   ber        each of the B positions is chosen independently with probability rate, sampled by geometric
//              skipping (cost proportional to the number of faults, never one draw per bit); sorted, distinct.
//   count      `count` distinct positions, uniform over all subsets of that size (Floyd's algorithm); sorted.
//   reference  per target, floor(numel x eligible_bits x rate) faults, each at a uniform element and a uniform bit,
//              with replacement, in draw order (apply them one after the other, as the toolbox does).
// The draws depend only on the Rng passed in, so a trial is replayable from its (seed, trial) stream.
#pragma once

#include "ironclad/core/random.hpp"
#include "ironclad/fault/fault_model.hpp"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <set>
#include <span>
#include <stdexcept>
#include <vector>

namespace ironclad {

struct FaultPosition {
    int target;
    std::int64_t element;
    int bit;
    friend bool operator==(const FaultPosition&, const FaultPosition&) = default;
};

// The reference toolbox's count for one tensor: floor(numel x bits x rate).
inline std::int64_t reference_fault_count(std::int64_t numel, int bits, double rate) {
    return static_cast<std::int64_t>(std::floor(static_cast<double>(numel) * bits * rate));
}

inline std::vector<FaultPosition> sample_faults(std::span<const std::int64_t> numels, const FaultModel& fm, Rng& rng) {
    const int nb = fm.eligible_bits();
    std::vector<std::int64_t> starts{0};  // first flat position of each target
    for (std::int64_t n : numels) starts.push_back(starts.back() + n * nb);
    const std::int64_t total = starts.back();
    auto locate = [&](std::int64_t pos) {
        const auto t = static_cast<int>(std::upper_bound(starts.begin(), starts.end(), pos) - starts.begin() - 1);
        const std::int64_t local = pos - starts[static_cast<std::size_t>(t)];
        return FaultPosition{t, local / nb, fm.bit_lo + static_cast<int>(local % nb)};
    };

    std::vector<FaultPosition> out;
    switch (fm.count_mode) {
        case CountMode::ber: {
            if (fm.rate <= 0 || total == 0) break;
            for (std::int64_t pos = fm.rate >= 1 ? 0 : rng.geometric(fm.rate); pos < total;) {
                out.push_back(locate(pos));
                if (fm.rate >= 1) {
                    ++pos;
                    continue;
                }
                const std::int64_t gap = rng.geometric(fm.rate);
                if (gap >= total - pos) break;  // also guards against overflow of pos + 1 + gap
                pos += 1 + gap;
            }
            break;
        }
        case CountMode::count: {
            if (fm.count > total)
                throw std::invalid_argument("cannot place " + std::to_string(fm.count) + " distinct faults in " +
                                            std::to_string(total) + " eligible bits");
            std::set<std::int64_t> chosen;
            for (std::int64_t j = total - fm.count; j < total; ++j) {  // Floyd: uniform k-subset in k draws
                const std::int64_t t = rng.uniform_int(0, j);
                if (!chosen.insert(t).second) chosen.insert(j);
            }
            for (std::int64_t pos : chosen) out.push_back(locate(pos));
            break;
        }
        case CountMode::reference: {
            for (std::size_t t = 0; t < numels.size(); ++t) {
                const std::int64_t k = reference_fault_count(numels[t], nb, fm.rate);
                for (std::int64_t j = 0; j < k; ++j) {
                    const std::int64_t element = rng.uniform_int(0, numels[t] - 1);
                    const int bit = fm.bit_lo + static_cast<int>(rng.uniform_int(0, nb - 1));
                    out.push_back({static_cast<int>(t), element, bit});
                }
            }
            break;
        }
    }
    return out;
}

}  // namespace ironclad

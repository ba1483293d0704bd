// The parts of a training split that the bound searches use, drawn from one seeded permutation so they are
// reproducible and disjoint where it matters.
//
// Contract: with p = the permutation of the split's indices drawn from Rng::stream(seed, 0):
//   held_out     p[0, held_out)                               ProAct's accept/reject check, FitAct's before/after
//                                                             check (never trained on)
//   calibration  p[held_out, held_out + calibration)          Ranger's maxima, FT-ClipAct's campaigns
//   train        p[held_out, held_out + train)                FitAct / ProAct bound training (holds calibration)
// Each part keeps the split's stored order. A count larger than what is left is an error naming the part.
#pragma once

#include "ironclad/core/random.hpp"
#include "ironclad/data/dataset.hpp"

#include <algorithm>
#include <cstring>
#include <numeric>
#include <span>
#include <stdexcept>
#include <string>
#include <vector>

namespace ironclad {

struct SubsetSizes {
    std::int64_t held_out = 0;
    std::int64_t calibration = 1024;
    std::int64_t train = 0;
};

struct TrainingSubsets {
    Dataset held_out, calibration, train;
};

// The images at `indices` (in that order), copied.
inline Dataset gather_images(const Dataset& ds, std::span<const std::int64_t> indices) {
    const std::int64_t item = ds.channels() * ds.height() * ds.width();
    Dataset out{Tensor<std::uint8_t>({static_cast<std::int64_t>(indices.size()), ds.channels(), ds.height(), ds.width()}),
                {}, ds.num_classes, ds.class_names, ds.source};
    for (std::size_t k = 0; k < indices.size(); ++k) {
        std::memcpy(out.images.data() + static_cast<std::int64_t>(k) * item, ds.images.data() + indices[k] * item,
                    static_cast<std::size_t>(item));
        out.labels.push_back(ds.labels[static_cast<std::size_t>(indices[k])]);
    }
    return out;
}

inline TrainingSubsets training_subsets(const Dataset& split, const SubsetSizes& sizes, std::uint64_t seed) {
    const std::int64_t n = split.size();
    auto check = [&](const char* part, std::int64_t count, std::int64_t available) {
        if (count < 0 || count > available)
            throw std::invalid_argument(std::string(part) + " subset of " + std::to_string(count) +
                                        " images does not fit: the training split has " + std::to_string(n) +
                                        " images, " + std::to_string(available) + " of them available for it");
    };
    check("held-out", sizes.held_out, n);
    check("calibration", sizes.calibration, n - sizes.held_out);
    check("training", sizes.train, n - sizes.held_out);
    std::vector<std::int64_t> order(static_cast<std::size_t>(n));
    std::iota(order.begin(), order.end(), std::int64_t{0});
    Rng rng = Rng::stream(seed, 0);
    rng.shuffle(std::span(order));
    auto part = [&](std::int64_t begin, std::int64_t count) {
        std::vector<std::int64_t> idx(order.begin() + begin, order.begin() + begin + count);
        std::sort(idx.begin(), idx.end());
        return gather_images(split, idx);
    };
    return {part(0, sizes.held_out), part(sizes.held_out, sizes.calibration), part(sizes.held_out, sizes.train)};
}

}  // namespace ironclad

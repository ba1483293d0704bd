// Dataset: decoded images as raw bytes plus integer labels, the common result of every reader in data/.
//
// Contract: images are uint8 [N,C,H,W] exactly as stored (no scaling); labels are in [0, num_classes);
// class_names has num_classes entries. Stored order is the order the source defines (record order for
// binary formats, sorted class then sorted file name for image folders), and every helper here keeps it,
// so "the first K images of a class" means the same thing for every format. A Dataset is treated as
// immutable: take() shares image storage with its parent.
#pragma once

#include "ironclad/core/tensor.hpp"

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <stdexcept>
#include <string>
#include <vector>

namespace ironclad {

struct Dataset {
    Tensor<std::uint8_t> images;        // [N,C,H,W]
    std::vector<std::int32_t> labels;   // [N]
    int num_classes = 0;
    std::vector<std::string> class_names;
    std::string source;                 // where it was read from, for reports and error messages

    std::int64_t size() const { return static_cast<std::int64_t>(labels.size()); }
    std::int64_t channels() const { return images.dim(1); }
    std::int64_t height() const { return images.dim(2); }
    std::int64_t width() const { return images.dim(3); }
};

// Images per class for a class-balanced subset of at most `limit` images: limit / num_classes.
inline std::int64_t balanced_per_class(std::int64_t limit, int num_classes) {
    if (num_classes <= 0 || limit < num_classes)
        throw std::invalid_argument("balanced subset: limit " + std::to_string(limit) + " is below the " +
                                    std::to_string(num_classes) + " classes (need at least one image per class)");
    return limit / num_classes;
}

// The first limit/num_classes images of each class in stored order, kept in stored order. A class with
// fewer images contributes all it has (the result is then smaller than limit); limit need not be a
// multiple of num_classes, the remainder is dropped so that classes stay balanced.
inline Dataset subset_balanced(const Dataset& ds, std::int64_t limit) {
    const std::int64_t per_class = balanced_per_class(limit, ds.num_classes);
    std::vector<std::int64_t> taken(static_cast<std::size_t>(ds.num_classes), 0);
    std::vector<std::int64_t> keep;
    for (std::int64_t i = 0; i < ds.size(); ++i) {
        auto& count = taken[static_cast<std::size_t>(ds.labels[static_cast<std::size_t>(i)])];
        if (count < per_class) {
            ++count;
            keep.push_back(i);
        }
    }
    Dataset out{Tensor<std::uint8_t>({static_cast<std::int64_t>(keep.size()), ds.channels(), ds.height(), ds.width()}),
                {}, ds.num_classes, ds.class_names, ds.source};
    const std::int64_t item = ds.channels() * ds.height() * ds.width();
    out.labels.reserve(keep.size());
    for (std::size_t k = 0; k < keep.size(); ++k) {
        std::memcpy(out.images.data() + static_cast<std::int64_t>(k) * item, ds.images.data() + keep[k] * item,
                    static_cast<std::size_t>(item));
        out.labels.push_back(ds.labels[static_cast<std::size_t>(keep[k])]);
    }
    return out;
}

// Items [begin, end) in stored order; the images share storage with ds.
inline Dataset take(const Dataset& ds, std::int64_t begin, std::int64_t end) {
    if (begin < 0 || end > ds.size() || begin > end)
        throw std::out_of_range("take: [" + std::to_string(begin) + "," + std::to_string(end) +
                                ") out of range for a dataset of " + std::to_string(ds.size()) + " images");
    return {ds.images.slice(begin, end),
            {ds.labels.begin() + begin, ds.labels.begin() + end},
            ds.num_classes,
            ds.class_names,
            ds.source};
}

}  // namespace ironclad

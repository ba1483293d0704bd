// BatchLoader: epochs of normalised, optionally augmented float batches from a Dataset.
//
// Contract: an epoch visits every image once (the last, smaller batch is dropped with drop_last), in
// stored order or, with shuffle, in a permutation drawn from the random stream Rng::stream(seed, epoch).
// The same stream then draws each batch's crop offsets and flips, serially and in visiting order; only
// the pixel conversion runs in parallel. So (seed, epoch) fixes every batch bit for bit, whatever the
// OpenMP thread count.
// next() writes into the Batch's existing buffers when the shape allows, so steady-state batches
// allocate nothing: clone() a batch's images to keep them past the next call.
#pragma once

#include "ironclad/core/random.hpp"
#include "ironclad/core/tensor.hpp"
#include "ironclad/data/dataset.hpp"
#include "ironclad/data/transforms.hpp"

#include <algorithm>
#include <cstdint>
#include <numeric>
#include <span>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

namespace ironclad {

struct LoaderOptions {
    std::int64_t batch_size = 128;
    bool shuffle = false;
    std::uint64_t seed = 0;
    std::vector<float> mean = {};  // per channel; empty: 0
    std::vector<float> std = {};   // per channel; empty: 1
    int augment_crop_pad = 0;   // random crop with this much black padding per side; 0: off
    bool augment_flip = false;  // random horizontal flip, probability 1/2
    int pad_to = 0;             // centre each image on a black pad_to x pad_to canvas first (28 -> 32); 0: off
    bool drop_last = false;
};

struct Batch {
    Tensor<float> images;               // [B,C,H,W]
    std::vector<std::int32_t> labels;   // [B]
    std::vector<std::int64_t> indices;  // [B] positions in the dataset
};

class BatchLoader {
public:
    // Keeps its own handle on the dataset (images are shared, not copied) and starts epoch 0.
    BatchLoader(Dataset data, LoaderOptions opts)
        : data_(std::move(data)),
          opts_(std::move(opts)),
          transform_(static_cast<int>(data_.channels()), static_cast<int>(data_.height()),
                     static_cast<int>(data_.width()), opts_.mean, opts_.std, opts_.pad_to, opts_.augment_crop_pad) {
        if (opts_.batch_size <= 0)
            throw std::invalid_argument("BatchLoader: batch_size must be positive, got " +
                                        std::to_string(opts_.batch_size));
        start_epoch(0);
    }

    const Dataset& dataset() const { return data_; }
    const ImageTransform& transform() const { return transform_; }
    std::int64_t num_batches() const {
        const std::int64_t n = data_.size(), b = opts_.batch_size;
        return opts_.drop_last ? n / b : (n + b - 1) / b;
    }

    void start_epoch(int epoch) {
        rng_ = Rng::stream(opts_.seed, static_cast<std::uint64_t>(epoch));
        order_.resize(static_cast<std::size_t>(data_.size()));
        std::iota(order_.begin(), order_.end(), std::int64_t{0});
        if (opts_.shuffle) rng_.shuffle(std::span(order_));
        pos_ = 0;
    }

    // Fills batch with the next batch of the epoch; false when the epoch is over.
    bool next(Batch& batch) {
        const std::int64_t b = std::min(opts_.batch_size, data_.size() - pos_);
        if (b <= 0 || (opts_.drop_last && b < opts_.batch_size)) return false;
        const Shape shape{b, transform_.channels(), transform_.out_height(), transform_.out_width()};
        if (batch.images.shape() != shape) batch.images = Tensor<float>(shape);
        batch.indices.assign(order_.begin() + pos_, order_.begin() + pos_ + b);
        batch.labels.resize(static_cast<std::size_t>(b));
        augments_.resize(static_cast<std::size_t>(b));
        for (std::size_t i = 0; i < augments_.size(); ++i) {
            batch.labels[i] = data_.labels[static_cast<std::size_t>(batch.indices[i])];
            Augment& a = augments_[i];
            const int max_offset = 2 * opts_.augment_crop_pad;
            a.dy = max_offset ? static_cast<int>(rng_.uniform_int(0, max_offset)) : 0;
            a.dx = max_offset ? static_cast<int>(rng_.uniform_int(0, max_offset)) : 0;
            a.flip = opts_.augment_flip && rng_.bernoulli(0.5);
        }
        const std::int64_t in_item = data_.channels() * data_.height() * data_.width();
        const std::int64_t out_item = shape_numel(shape) / b;
        const std::uint8_t* src = data_.images.data();
        float* dst = batch.images.data();
#pragma omp parallel for schedule(static)
        for (std::int64_t i = 0; i < b; ++i) {
            const auto k = static_cast<std::size_t>(i);
            transform_.apply(src + batch.indices[k] * in_item, augments_[k], dst + i * out_item);
        }
        pos_ += b;
        return true;
    }

private:
    Dataset data_;
    LoaderOptions opts_;
    ImageTransform transform_;
    Rng rng_{0};
    std::vector<std::int64_t> order_;
    std::vector<Augment> augments_;  // this batch's random decisions, drawn before the parallel conversion
    std::int64_t pos_ = 0;
};

}  // namespace ironclad

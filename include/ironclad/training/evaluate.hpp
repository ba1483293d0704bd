// Evaluation of a classifier on a dataset: top-1, top-5 (percent) and mean cross-entropy, in inference
// mode (no tape), batch by batch.
#pragma once

#include "ironclad/autograd/losses.hpp"
#include "ironclad/data/loader.hpp"
#include "ironclad/nn/module.hpp"

#include <functional>

namespace ironclad {

struct EvalResult {
    double top1 = 0;  // percent
    double top5 = 0;  // percent
    double loss = 0;  // mean cross-entropy
    std::int64_t images = 0;
};

// progress(done_images, total_images) is called after each batch.
inline EvalResult evaluate(Module& model, const Dataset& data, LoaderOptions opt,
                           const std::function<void(std::int64_t, std::int64_t)>& progress = {}) {
    NoGradGuard no_grad;
    const bool was_training = model.is_training();
    model.eval();
    opt.shuffle = false;
    opt.augment_flip = false;
    opt.augment_crop_pad = 0;
    opt.drop_last = false;
    BatchLoader loader(data, opt);
    loader.start_epoch(0);
    Batch batch;
    EvalResult r;
    double loss_sum = 0, top1 = 0, top5 = 0;
    while (loader.next(batch)) {
        Var logits = model(Var(batch.images));
        const auto n = static_cast<std::int64_t>(batch.labels.size());
        loss_sum += static_cast<double>(cross_entropy(logits, batch.labels).value()[0]) * static_cast<double>(n);
        top1 += static_cast<double>(count_topk_correct(logits.value(), batch.labels, 1));
        top5 += static_cast<double>(count_topk_correct(logits.value(), batch.labels, std::min<std::int64_t>(5, logits.dim(1))));
        r.images += n;
        if (progress) progress(r.images, data.images.dim(0));
    }
    if (r.images > 0) {
        r.top1 = 100.0 * top1 / static_cast<double>(r.images);
        r.top5 = 100.0 * top5 / static_cast<double>(r.images);
        r.loss = loss_sum / static_cast<double>(r.images);
    }
    model.train(was_training);
    return r;
}

}  // namespace ironclad

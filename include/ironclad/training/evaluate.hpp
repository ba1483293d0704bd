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

using EvalProgress = std::function<void(std::int64_t, std::int64_t)>;
// The logits of a batch of images, computed by the model in eval mode (e.g. through an inference plan).
using EvalForward = std::function<Tensor<float>(const Tensor<float>&)>;

// progress(done_images, total_images) is called after each batch. forward, when given, computes the logits in
// place of model(x) (the model is still switched to eval mode and back).
inline EvalResult evaluate(Module& model, const Dataset& data, LoaderOptions opt, const EvalProgress& progress = {},
                           const EvalForward& forward = {}) {
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
        Var logits = forward ? Var(forward(batch.images)) : model(Var(batch.images));
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

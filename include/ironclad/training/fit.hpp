// Supervised training of a classifier: SGD with momentum, cosine schedule with linear warm-up (stepped per
// iteration), cross-entropy with optional label smoothing, per-epoch evaluation and resumable checkpoints.
//
// Contract: the same options and seed give the same weights at any thread count. After every epoch the model
// (PyTorch names, plus metadata) is written atomically to `checkpoint`, and the optimizer state to
// `checkpoint` + ".train-state"; a later call with the same checkpoint resumes after the last finished epoch.
#pragma once

#include "ironclad/autograd/losses.hpp"
#include "ironclad/data/loader.hpp"
#include "ironclad/io/safetensors.hpp"
#include "ironclad/nn/module.hpp"
#include "ironclad/optim/schedule.hpp"
#include "ironclad/optim/sgd.hpp"
#include "ironclad/training/checkpoint.hpp"
#include "ironclad/training/evaluate.hpp"

#include <chrono>
#include <filesystem>
#include <functional>
#include <optional>

namespace ironclad {

struct TrainOptions {
    int epochs = 10;
    LoaderOptions loader;  // batch size, normalisation, augmentation, shuffling seed
    float lr = 0.1f;
    float momentum = 0.9f;
    bool nesterov = false;
    float weight_decay = 5e-4f;
    bool decay_norm_and_bias = true;  // false: 1-D parameters (BN, biases) get no weight decay
    float label_smoothing = 0.0f;
    int warmup_epochs = 0;
    std::filesystem::path checkpoint;  // empty: no checkpoints, no resume
    std::map<std::string, std::string> metadata;  // copied into every checkpoint (arch, normalisation, ...)
};

struct EpochReport {
    int epoch = 0;  // 1-based
    int epochs = 0;
    double lr = 0;
    double train_loss = 0;
    double train_top1 = 0;  // percent, on augmented training batches
    double seconds = 0;     // training time of the epoch (no evaluation)
    double images_per_s = 0;
    std::optional<EvalResult> test;
};

struct TrainCallbacks {
    std::function<void(std::int64_t batch, std::int64_t batches, double running_loss)> on_batch;
    std::function<void(const EpochReport&)> on_epoch;
};

inline std::vector<ParamGroup> weight_decay_groups(const Module& model, float weight_decay, bool decay_norm_and_bias) {
    ParamGroup decay{{}, weight_decay}, no_decay{{}, 0.0f};
    for (auto& [name, p] : model.named_parameters())
        (decay_norm_and_bias || p.value().ndim() > 1 ? decay : no_decay).params.push_back(p);
    std::vector<ParamGroup> groups{decay};
    if (!no_decay.params.empty()) groups.push_back(no_decay);
    return groups;
}

// Trains `model` on `train`; evaluates on `test` after each epoch when given. Returns one report per epoch run.
inline std::vector<EpochReport> fit(Module& model, const Dataset& train, const Dataset* test, const TrainOptions& opt,
                                    const TrainCallbacks& cb = {}) {
    if (opt.epochs < 1) throw std::invalid_argument("fit: epochs must be >= 1, got " + std::to_string(opt.epochs));
    BatchLoader loader(train, opt.loader);
    const std::int64_t batches = loader.num_batches();
    if (batches == 0) throw std::invalid_argument("fit: the training set has fewer images than one batch");
    Sgd sgd(weight_decay_groups(model, opt.weight_decay, opt.decay_norm_and_bias),
            SgdOptions{.lr = opt.lr, .momentum = opt.momentum, .nesterov = opt.nesterov});
    const CosineSchedule schedule{opt.lr, static_cast<std::int64_t>(opt.epochs) * batches,
                                  static_cast<std::int64_t>(opt.warmup_epochs) * batches, 0.0f};

    int start_epoch = 0;
    if (!opt.checkpoint.empty() && std::filesystem::exists(opt.checkpoint))
        start_epoch = resume_training(opt.checkpoint, model, sgd);

    std::vector<EpochReport> reports;
    Batch batch;
    for (int epoch = start_epoch; epoch < opt.epochs; ++epoch) {
        model.train();
        loader.start_epoch(epoch);
        const auto t0 = std::chrono::steady_clock::now();
        double loss_sum = 0, correct = 0;
        std::int64_t seen = 0, b = 0;
        while (loader.next(batch)) {
            sgd.set_lr(schedule.lr(static_cast<std::int64_t>(epoch) * batches + b));
            Var logits = model(Var(batch.images));
            Var loss = cross_entropy(logits, batch.labels, opt.label_smoothing);
            sgd.zero_grad();
            loss.backward();
            sgd.step();
            const auto n = static_cast<std::int64_t>(batch.labels.size());
            loss_sum += static_cast<double>(loss.value()[0]) * static_cast<double>(n);
            correct += static_cast<double>(count_topk_correct(logits.value(), batch.labels, 1));
            seen += n;
            ++b;
            if (cb.on_batch) cb.on_batch(b, batches, loss_sum / static_cast<double>(seen));
        }
        EpochReport r;
        r.epoch = epoch + 1;
        r.epochs = opt.epochs;
        r.lr = sgd.lr();
        r.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
        r.train_loss = loss_sum / static_cast<double>(seen);
        r.train_top1 = 100.0 * correct / static_cast<double>(seen);
        r.images_per_s = static_cast<double>(seen) / r.seconds;
        if (test) r.test = evaluate(model, *test, opt.loader);
        if (!opt.checkpoint.empty()) save_training_state(opt.checkpoint, model, sgd, epoch + 1, opt.metadata);
        if (cb.on_epoch) cb.on_epoch(r);
        reports.push_back(r);
    }
    return reports;
}

}  // namespace ironclad

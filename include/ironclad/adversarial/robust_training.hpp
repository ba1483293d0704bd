// Adversarial training: PGD-AT (Madry et al. 2018), TRADES (Zhang et al. 2019), ARD (Goldblum et al. 2020) and
// RSLAD (Zi et al. 2021, the distillation loss of ProARD), with resumable checkpoints and per-epoch clean and robust
// accuracy on a held-out set.
//
// Contract (the formulas of ../shared/spec/reference-proard.md section 3; B = batch, C = classes, KL(p||q) per row
// summed over classes, "batchmean" = averaged over rows):
// - Every batch: the inner maximisation runs with the student in eval mode (BN running statistics) and frozen
//   parameters, then the loss is computed in train mode, with separate forward passes for clean and adversarial
//   images (separate BN batch statistics), as the references do.
//     pgd_at  x' = PGD on CE from a uniform random start in the ball;            L = CE(S(x'), y)
//     trades  x' = PGD on KL(softmax S(x) || softmax S(x')) from x + 0.001 N(0,1);
//             L = CE(S(x), y) + beta * batchmean KL(softmax S(x) || softmax S(x'))   (the target is not detached)
//     ard     x' = PGD on KL(softmax T(x) || softmax S(x')) from x + 0.001 N(0,1);
//             L = alpha * tau^2 * KL(softmax T(x)/tau || softmax S(x')/tau) / (B C) + (1 - alpha) * CE(S(x), y)
//     rslad   x' as for ard;  L = 5/6 * KL(softmax T(x) || softmax S(x')) / (B C) + 1/6 * KL(softmax T(x) || softmax S(x)) / (B C)
//   ("/ (B C)" is the elementwise mean of torch's KLDivLoss(reduction='mean') the references use. RSLAD's reference
//   writes t * log(t + 1e-5) for the teacher's entropy term; that term has no gradient, so training is identical.)
//   The teacher T is used in eval mode, without gradients.
// - The inner attack is `attack` (norm, eps, step, steps; restarts are not used); image i of epoch e draws its start
//   from the stream (attack.seed, e, i), so training is deterministic at any thread count.
// - Optimisation, schedule and checkpoints are those of training/fit.hpp (SGD with momentum, cosine schedule per
//   iteration with warm-up, weight-decay groups, the model and optimizer state written after every epoch; a rerun
//   with the same checkpoint resumes after the last finished epoch).
// - After every epoch, with a held-out set: clean top-1 and robust top-1 under `eval_attack` (PGD) on it.
// The student and the teacher take [0,1] images (NormalizedModel); train.loader must not normalise.
#pragma once

#include "ironclad/adversarial/normalized_model.hpp"
#include "ironclad/adversarial/pgd.hpp"
#include "ironclad/training/fit.hpp"

#include <chrono>
#include <optional>

namespace ironclad {

enum class RobustLoss { pgd_at, trades, ard, rslad };

inline const char* to_string(RobustLoss l) {
    return l == RobustLoss::pgd_at ? "pgd-at" : l == RobustLoss::trades ? "trades" : l == RobustLoss::ard ? "ard" : "rslad";
}

inline RobustLoss parse_robust_loss(const std::string& text) {
    for (RobustLoss l : {RobustLoss::pgd_at, RobustLoss::trades, RobustLoss::ard, RobustLoss::rslad})
        if (text == to_string(l)) return l;
    throw std::invalid_argument("unknown robust loss '" + text + "': expected pgd-at, trades, ard or rslad");
}

inline bool needs_teacher(RobustLoss l) { return l == RobustLoss::ard || l == RobustLoss::rslad; }

struct RobustTrainOptions {
    TrainOptions train;  // epochs, batches, optimiser, schedule, checkpoint (train.loader: no mean/std)
    RobustLoss loss = RobustLoss::trades;
    ThreatModel attack{.norm = Norm::linf, .eps = 8.0f / 255, .step = 2.0f / 255, .steps = 10};
    float beta = 6.0f;          // TRADES
    float temperature = 30.0f;  // ARD
    float alpha = 1.0f;         // ARD: weight of the distillation term
    ThreatModel eval_attack{.norm = Norm::linf, .eps = 8.0f / 255, .step = 2.0f / 255, .steps = 20};
    std::int64_t eval_batch = 256;
};

struct RobustEpochReport {
    int epoch = 0;  // 1-based
    int epochs = 0;
    double lr = 0;
    double train_loss = 0;
    double train_adversarial_top1 = 0;  // percent, of the student (train mode) on the batches' adversarial images
    double seconds = 0;                 // training time of the epoch (no evaluation)
    double images_per_s = 0;
    std::optional<AttackReport> held_out;  // clean and robust top-1 on the held-out set
};

struct RobustTrainCallbacks {
    std::function<void(std::int64_t batch, std::int64_t batches, double running_loss)> on_batch;
    std::function<void(const RobustEpochReport&)> on_epoch;
};

namespace detail {

// x + 0.001 N(0,1) per pixel, image i from `stream_of(i)` (the TRADES start; not clipped, as the reference).
inline Tensor<float> jittered(const Tensor<float>& x, const std::function<Rng(std::int64_t)>& stream_of) {
    Tensor<float> out = x.clone();
    const std::int64_t n = x.dim(0), per = x.numel() / n;
    for (std::int64_t i = 0; i < n; ++i) {
        Rng rng = stream_of(i);
        for (std::int64_t k = i * per; k < (i + 1) * per; ++k) out[k] += static_cast<float>(0.001 * rng.normal());
    }
    return out;
}

inline Tensor<float> logits_without_tape(Module& model, const Tensor<float>& x) {
    NoGradGuard no_grad;
    return model(Var(x)).value();
}

}  // namespace detail

inline std::vector<RobustEpochReport> robust_fit(NormalizedModel& student, const Dataset& train, const Dataset* held_out,
                                                 const RobustTrainOptions& opt, NormalizedModel* teacher = nullptr,
                                                 const RobustTrainCallbacks& cb = {}) {
    const TrainOptions& t = opt.train;
    if (t.epochs < 1) throw std::invalid_argument("robust_fit: epochs must be >= 1, got " + std::to_string(t.epochs));
    if (!t.loader.mean.empty() || !t.loader.std.empty())
        throw std::invalid_argument("robust_fit: the loader must not normalise; the normalisation belongs inside the "
                                    "NormalizedModel, so that attacks bound pixels");
    if (needs_teacher(opt.loss) && !teacher)
        throw std::invalid_argument(std::string("robust_fit: loss ") + to_string(opt.loss) + " needs a teacher");
    if (!(opt.beta >= 0) || !(opt.temperature > 0) || !(opt.alpha >= 0 && opt.alpha <= 1))
        throw std::invalid_argument("robust_fit: need beta >= 0, temperature > 0 and alpha in [0, 1]");
    opt.attack.validate();
    opt.eval_attack.validate();
    BatchLoader loader(train, t.loader);
    const std::int64_t batches = loader.num_batches();
    if (batches == 0) throw std::invalid_argument("robust_fit: the training set has fewer images than one batch");
    Sgd sgd(weight_decay_groups(student, t.weight_decay, t.decay_norm_and_bias),
            SgdOptions{.lr = t.lr, .momentum = t.momentum, .nesterov = t.nesterov});
    const CosineSchedule schedule{t.lr, static_cast<std::int64_t>(t.epochs) * batches,
                                  static_cast<std::int64_t>(t.warmup_epochs) * batches, 0.0f};
    int start_epoch = 0;
    if (!t.checkpoint.empty() && std::filesystem::exists(t.checkpoint)) start_epoch = resume_training(t.checkpoint, student, sgd);
    if (teacher) teacher->eval();
    const float classes = static_cast<float>(train.num_classes);

    std::vector<RobustEpochReport> reports;
    Batch batch;
    for (int epoch = start_epoch; epoch < t.epochs; ++epoch) {
        loader.start_epoch(epoch);
        const auto t0 = std::chrono::steady_clock::now();
        double loss_sum = 0, correct = 0;
        std::int64_t seen = 0, b = 0;
        while (loader.next(batch)) {
            const Tensor<float>& x = batch.images;
            const std::span<const std::int32_t> y = batch.labels;
            auto stream_of = [&](std::int64_t i) {
                return Rng::stream(opt.attack.seed, static_cast<std::uint64_t>(epoch))
                    .split(static_cast<std::uint64_t>(batch.indices[static_cast<std::size_t>(i)]));
            };
            // Inner maximisation, student in eval mode.
            student.eval();
            const Tensor<float> teacher_logits = teacher && needs_teacher(opt.loss) ? detail::logits_without_tape(*teacher, x) : Tensor<float>();
            Tensor<float> x_adv;
            if (opt.loss == RobustLoss::pgd_at) {
                Tensor<float> start = x.clone();
                opt.attack.random_start_point(start, x, stream_of);
                x_adv = pgd_ascent(student, x, std::move(start), opt.attack, cross_entropy_objective(y));
            } else {
                const Tensor<float> target = opt.loss == RobustLoss::trades ? detail::logits_without_tape(student, x) : teacher_logits;
                x_adv = pgd_ascent(student, x, detail::jittered(x, stream_of), opt.attack, kl_objective(softmax_rows(target)));
            }
            student.train();
            sgd.set_lr(schedule.lr(static_cast<std::int64_t>(epoch) * batches + b));
            Var logits_adv = student(Var(x_adv));
            Var loss;
            switch (opt.loss) {
                case RobustLoss::pgd_at: loss = cross_entropy(logits_adv, y); break;
                case RobustLoss::trades: {
                    Var logits_nat = student(Var(x));
                    loss = add(cross_entropy(logits_nat, y), scale(kl_div_tempered(logits_adv, logits_nat, 1.0f), opt.beta));
                    break;
                }
                case RobustLoss::ard: {
                    const Var soft = Var(teacher_logits);
                    loss = scale(kl_div_tempered(logits_adv, soft, opt.temperature),
                                 opt.alpha * opt.temperature * opt.temperature / classes);
                    if (opt.alpha < 1) loss = add(loss, scale(cross_entropy(student(Var(x)), y), 1.0f - opt.alpha));
                    break;
                }
                case RobustLoss::rslad: {
                    const Var soft = Var(teacher_logits);
                    Var logits_nat = student(Var(x));
                    loss = add(scale(kl_div_tempered(logits_adv, soft, 1.0f), 5.0f / 6.0f / classes),
                               scale(kl_div_tempered(logits_nat, soft, 1.0f), 1.0f / 6.0f / classes));
                    break;
                }
            }
            sgd.zero_grad();
            loss.backward();
            sgd.step();
            const auto n = static_cast<std::int64_t>(y.size());
            loss_sum += static_cast<double>(loss.value()[0]) * static_cast<double>(n);
            correct += static_cast<double>(count_topk_correct(logits_adv.value(), y, 1));
            seen += n;
            ++b;
            if (cb.on_batch) cb.on_batch(b, batches, loss_sum / static_cast<double>(seen));
        }
        RobustEpochReport r;
        r.epoch = epoch + 1;
        r.epochs = t.epochs;
        r.lr = sgd.lr();
        r.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
        r.train_loss = loss_sum / static_cast<double>(seen);
        r.train_adversarial_top1 = 100.0 * correct / static_cast<double>(seen);
        r.images_per_s = static_cast<double>(seen) / r.seconds;
        if (held_out) {
            Pgd eval_attack(opt.eval_attack);
            r.held_out = run_attack(student, *held_out, eval_attack, {.batch_size = opt.eval_batch, .keep_adversarial = false, .on_batch = {}});
        }
        student.train();
        if (!t.checkpoint.empty()) save_training_state(t.checkpoint, student, sgd, epoch + 1, t.metadata);
        if (cb.on_epoch) cb.on_epoch(r);
        reports.push_back(std::move(r));
    }
    return reports;
}

}  // namespace ironclad

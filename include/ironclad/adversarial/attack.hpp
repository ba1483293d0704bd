// Attack: the interface every evasion attack implements, and run_attack(), which attacks a dataset and reports
// clean and robust top-1 with the per-image results.
//
// Contract:
// - perturb(model, x, labels, ids) takes clean images in [0,1] (the model holds its normalisation, see
//   normalized_model.hpp) and returns images inside the attack's threat model around x. ids are the images'
//   positions in the dataset: every random draw for image i comes from streams named by (seed, ids[i]), so an
//   image's result depends on the seed and the image alone, not on the thread count. The model is used in the mode
//   it is in (run_attack puts it in eval mode) and its parameters are left as they were.
// - run_attack() visits the dataset in stored order in batches. An image the model already misclassifies is its own
//   adversarial example (perturbation 0): robust top-1 can never exceed clean top-1, whatever the attack returns
//   for such an image. robust_top1 = the percentage of images whose adversarial image is still classified correctly.
// - Every result carries the attack's identity (to_json(): name, threat model, own parameters).
// x: [B,C,H,W]; labels: B; ids: B.
#pragma once

#include "ironclad/adversarial/threat_model.hpp"
#include "ironclad/autograd/losses.hpp"
#include "ironclad/data/loader.hpp"
#include "ironclad/nn/module.hpp"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <functional>
#include <span>
#include <string>
#include <vector>

namespace ironclad {

class Attack {
public:
    explicit Attack(ThreatModel threat) : threat_(threat) { threat_.validate(); }
    virtual ~Attack() = default;

    virtual Tensor<float> perturb(Module& model, const Tensor<float>& x, std::span<const std::int32_t> labels,
                                  std::span<const std::int64_t> ids) = 0;
    virtual std::string name() const = 0;
    // The attack's own settings beyond the threat model (e.g. a query budget); an object.
    virtual nlohmann::ordered_json parameters() const { return nlohmann::ordered_json::object(); }
    // What happened over all perturb() calls so far (e.g. images left robust after each stage); null if nothing.
    virtual nlohmann::ordered_json statistics() const { return nullptr; }

    const ThreatModel& threat() const { return threat_; }
    nlohmann::ordered_json to_json() const {
        nlohmann::ordered_json j{{"name", name()}, {"threat_model", threat_.to_json()}};
        const nlohmann::ordered_json own = parameters();
        for (auto& [key, value] : own.items()) j[key] = value;
        return j;
    }

protected:
    // The stream image `id` draws from in run `run` (a restart, a target class, ...) of this attack.
    Rng image_stream(std::uint64_t run, std::int64_t id) const {
        return Rng::stream(threat_.seed, run).split(static_cast<std::uint64_t>(id));
    }

    ThreatModel threat_;
};

namespace detail {

// Rows `rows` of a [N,...] tensor, as a new [rows.size(),...] tensor.
inline Tensor<float> select_rows(const Tensor<float>& t, std::span<const std::int64_t> rows) {
    Shape shape = t.shape();
    const std::int64_t per = t.numel() / std::max<std::int64_t>(shape[0], 1);
    shape[0] = static_cast<std::int64_t>(rows.size());
    auto out = Tensor<float>::uninitialized(shape);
    for (std::size_t r = 0; r < rows.size(); ++r)
        std::copy_n(t.data() + rows[r] * per, per, out.data() + static_cast<std::int64_t>(r) * per);
    return out;
}

// Row `row` of dst <- row `src_row` of src.
inline void assign_row(Tensor<float>& dst, std::int64_t row, const Tensor<float>& src, std::int64_t src_row) {
    const std::int64_t per = dst.numel() / std::max<std::int64_t>(dst.dim(0), 1);
    std::copy_n(src.data() + src_row * per, per, dst.data() + row * per);
}

template <class T>
std::vector<T> select(std::span<const T> values, std::span<const std::int64_t> rows) {
    std::vector<T> out;
    out.reserve(rows.size());
    for (std::int64_t r : rows) out.push_back(values[static_cast<std::size_t>(r)]);
    return out;
}

// Positions i with keep[i] true.
inline std::vector<std::int64_t> rows_where(const std::vector<char>& keep) {
    std::vector<std::int64_t> out;
    for (std::size_t i = 0; i < keep.size(); ++i)
        if (keep[i]) out.push_back(static_cast<std::int64_t>(i));
    return out;
}

// Predicted classes of x (inference, no tape).
inline std::vector<std::int32_t> predict(Module& model, const Tensor<float>& x) {
    NoGradGuard no_grad;
    return argmax_rows(model(Var(x)).value());
}

}  // namespace detail

struct ImageResult {
    std::int64_t index = 0;  // position in the dataset
    std::int32_t label = 0;
    std::int32_t clean_prediction = 0;
    std::int32_t adversarial_prediction = 0;
    double linf = 0, l2 = 0;  // size of the perturbation
};

struct AttackReport {
    std::int64_t images = 0, clean_correct = 0, robust_correct = 0;
    std::vector<ImageResult> per_image;
    std::vector<Tensor<float>> adversarial;  // the adversarial batches in [0,1], with keep_adversarial
    std::vector<std::int32_t> labels;        // with keep_adversarial
    double seconds = 0;
    double clean_top1() const { return images ? 100.0 * static_cast<double>(clean_correct) / static_cast<double>(images) : 0; }
    double robust_top1() const { return images ? 100.0 * static_cast<double>(robust_correct) / static_cast<double>(images) : 0; }
};

struct AttackRunOptions {
    std::int64_t batch_size = 128;
    bool keep_adversarial = false;
    std::function<void(std::int64_t done, std::int64_t total)> on_batch;
};

// model takes [0,1] images (a NormalizedModel); data: uint8 images, converted to pixel/255.
inline AttackReport run_attack(Module& model, const Dataset& data, Attack& attack, const AttackRunOptions& opt = {}) {
    const auto start = std::chrono::steady_clock::now();
    const bool was_training = model.is_training();
    model.eval();
    LoaderOptions lo;
    lo.batch_size = opt.batch_size;
    BatchLoader loader(data, lo);
    Batch batch;
    AttackReport report;
    while (loader.next(batch)) {
        const Tensor<float>& x = batch.images;
        const auto clean = detail::predict(model, x);
        Tensor<float> adv = attack.perturb(model, x, batch.labels, batch.indices);
        if (adv.shape() != x.shape())
            throw std::logic_error(attack.name() + ": returned images of shape " + shape_str(adv.shape()) + " for " +
                                   shape_str(x.shape()));
        const std::int64_t n = x.dim(0), per = x.numel() / n;
        for (std::int64_t i = 0; i < n; ++i)
            if (clean[static_cast<std::size_t>(i)] != batch.labels[static_cast<std::size_t>(i)]) detail::assign_row(adv, i, x, i);
        const auto adversarial = detail::predict(model, adv);
        for (std::int64_t i = 0; i < n; ++i) {
            const auto k = static_cast<std::size_t>(i);
            const PerturbationSize size = perturbation_size(adv.data() + i * per, x.data() + i * per, per);
            report.per_image.push_back({batch.indices[k], batch.labels[k], clean[k], adversarial[k], size.linf, size.l2});
            report.clean_correct += clean[k] == batch.labels[k];
            report.robust_correct += adversarial[k] == batch.labels[k];
        }
        report.images += n;
        if (opt.keep_adversarial) {
            report.adversarial.push_back(std::move(adv));
            report.labels.insert(report.labels.end(), batch.labels.begin(), batch.labels.end());
        }
        if (opt.on_batch) opt.on_batch(report.images, data.size());
    }
    model.train(was_training);
    report.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    return report;
}

}  // namespace ironclad

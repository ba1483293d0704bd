// StageChain: the forward pass a fault campaign restarts from cached stage inputs, in one of the two arithmetic
// modes: float modules (storage emulation) or an ExactNetwork built on the same stages (exact integer arithmetic).
// In float mode an InferencePlan of the same model, when given, runs the restarts (bit for bit the modules'
// result, faster); single stages always run as modules.
//
// Contract: a StageValue is what flows between stages (float activations, or raws of the exact format); stage s of
// the chain is stage s of the model in both modes, so cached values, fault sites and restart points agree.
// Predictions are the first maximum of each row (raws order as their values do); only float logits can be
// non-finite.
#pragma once

#include "ironclad/autograd/losses.hpp"
#include "ironclad/exact/exact_network.hpp"
#include "ironclad/inference/inference_plan.hpp"

#include <span>
#include <variant>
#include <vector>

namespace ironclad {

using StageValue = std::variant<Tensor<float>, RawTensor>;

class StageChain {
public:
    StageChain() = default;
    explicit StageChain(std::vector<Module*> stages, ExactNetwork* exact = nullptr, InferencePlan* plan = nullptr)
        : stages_(std::move(stages)), exact_(exact), plan_(exact ? nullptr : plan) {
        if (plan_ && plan_->stages() != stages_.size())
            throw std::logic_error("StageChain: the inference plan was built on other stages");
    }

    std::size_t size() const { return stages_.size(); }
    const std::vector<Module*>& stages() const { return stages_; }
    ExactNetwork* exact() const { return exact_; }

    StageValue input(const Tensor<float>& batch) const {
        if (exact_) return exact_->input(batch);
        return batch;
    }
    StageValue run_stage(std::size_t s, const StageValue& x) const {
        if (exact_) return exact_->run_stage(s, std::get<RawTensor>(x));
        return (*stages_[s])(Var(std::get<Tensor<float>>(x))).value();
    }
    StageValue run(std::size_t from, const StageValue& x) const {
        if (exact_) return exact_->run(from, std::get<RawTensor>(x));
        if (plan_) return plan_->run(from, std::get<Tensor<float>>(x));
        return run_stages(stages_, from, Var(std::get<Tensor<float>>(x))).value();
    }

    static std::vector<std::int32_t> predictions(const StageValue& logits) {
        if (const auto* f = std::get_if<Tensor<float>>(&logits)) return argmax_rows(*f);
        const auto& raw = std::get<RawTensor>(logits);
        const std::int64_t n = raw.dim(0), k = raw.dim(1);
        std::vector<std::int32_t> out(static_cast<std::size_t>(n));
        for (std::int64_t r = 0; r < n; ++r) {
            const std::int32_t* row = raw.data() + r * k;
            out[static_cast<std::size_t>(r)] = static_cast<std::int32_t>(std::max_element(row, row + k) - row);
        }
        return out;
    }
    static bool row_finite(const StageValue& logits, std::int64_t row) {
        const auto* f = std::get_if<Tensor<float>>(&logits);
        if (!f) return true;
        const std::int64_t k = f->dim(1);
        for (std::int64_t j = 0; j < k; ++j)
            if (!std::isfinite(f->data()[row * k + j])) return false;
        return true;
    }
    // Rows `rows` of a [N,...] value as a new [rows.size(),...] value.
    static StageValue gather_rows(const StageValue& v, std::span<const std::int64_t> rows) {
        return std::visit(
            [&](const auto& t) -> StageValue {
                using T = std::decay_t<decltype(t)>;
                auto shape = t.shape();
                const std::int64_t per = t.numel() / shape[0];
                shape[0] = static_cast<std::int64_t>(rows.size());
                auto out = T::uninitialized(shape);
                for (std::size_t r = 0; r < rows.size(); ++r)
                    std::copy_n(t.data() + rows[r] * per, per, out.data() + static_cast<std::int64_t>(r) * per);
                return out;
            },
            v);
    }

private:
    std::vector<Module*> stages_;
    ExactNetwork* exact_ = nullptr;
    InferencePlan* plan_ = nullptr;
};

}  // namespace ironclad

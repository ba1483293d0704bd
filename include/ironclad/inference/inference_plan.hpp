// InferencePlan: a model's eval-mode float forward pass compiled for throughput. Each image runs through the
// network's convolutional trunk on one thread, its activations in per-thread buffers that stay in cache, instead
// of every layer streaming the whole batch through memory; weights are folded and packed once, not per call.
//
// Contract: InferencePlan(model) compiles the model's flattened stages (nn/stages.hpp) from the first, as long as
// they are Conv2d, BatchNorm2d, ReLU/ReLU6 slots, MaxPool2d, GlobalAvgPool, or the zoo's BasicBlock and
// InvertedResidual blocks; the first other stage (Linear, Flatten, a bounded ReLU, a ShuffleNet unit) ends the
// trunk, and the stages from there run as modules on the batch. Inside a
// block, conv + batch norm [+ residual] [+ ReLU/ReLU6] run fused as the block's forward does (nn/fused_conv.hpp);
// stages are not fused with each other, as in forward(). Every per-image kernel is the one the batch kernels
// use, so forward(x) equals model.forward(x) in eval mode with gradients off bit for bit, at any thread count.
// run(from, x) restarts at any stage as run_stages does (fault campaigns); each run re-reads the parameters of the
// stages it runs, so weights changed in place take effect, and a stage whose modules carry an output hook at that
// moment runs as modules, with every stage after it. The model must be in eval mode and outlive the plan; a plan is
// not reentrant (one run at a time).
#pragma once

#include "ironclad/autograd/norm.hpp"
#include "ironclad/autograd/pool.hpp"
#include "ironclad/models/mobilenet_v2.hpp"
#include "ironclad/models/resnet_cifar.hpp"
#include "ironclad/nn/fused_conv.hpp"
#include "ironclad/nn/stages.hpp"
#include "ironclad/training/evaluate.hpp"

#include <memory>
#include <optional>
#include <stdexcept>
#include <tuple>
#include <string>
#include <vector>

namespace ironclad {

namespace detail {

// One image's activation: a slot of the per-thread arena and its [C, H, W].
struct PlanValue {
    int slot = -1;
    std::int64_t c = 0, h = 0, w = 0;
    std::int64_t size() const { return c * h * w; }
};

struct PlanOp {
    virtual ~PlanOp() = default;
    virtual void refresh() {}
    // The values the op reads and the one it writes (for buffer reuse).
    virtual std::vector<PlanValue*> inputs() = 0;
    virtual PlanValue* output() = 0;
    // Runs on one image; slots[k] is the arena's slot k.
    virtual void run(float* const* slots) const = 0;
};

// conv [+ folded batch norm] [+ residual] [+ clamp], or a conv alone.
struct PlanConv : PlanOp {
    Conv2d* conv = nullptr;
    BatchNorm2d* bn = nullptr;  // folded when set
    PlanValue in, out, residual;
    std::vector<PlanValue*> inputs() override {
        if (residual.slot >= 0) return {&in, &residual};
        return {&in};
    }
    PlanValue* output() override { return &out; }
    float lo = -std::numeric_limits<float>::infinity(), hi = std::numeric_limits<float>::infinity();
    ConvShape s{};
    Tensor<float> weights, bias;  // packed (GEMM), by tap (channels-last depthwise) or as stored; bias may be undefined
    ConvTables tables;
    DepthwisePlan depthwise;

    void refresh() override {
        Tensor<float> w = conv->weight().value();
        bias = conv->bias().defined() ? conv->bias().value().clone() : Tensor<float>();
        if (bn) std::tie(w, bias) = fold_batch_norm(*conv, *bn);
        if (depthwise_channels_last(s)) {
            weights = depthwise_weights_by_tap(w, s);
        } else if (s.cg == 1) {
            weights = w.clone();
            depthwise = depthwise_plan(s);
        } else {
            weights = pack_forward_weights(w, s);
            tables = conv_tables(s);
        }
    }
    void run(float* const* slots) const override {
        const ImageEpilogue e{bias.numel() ? bias.data() : nullptr, residual.slot >= 0 ? slots[residual.slot] : nullptr,
                              lo, hi};
        if (depthwise_channels_last(s)) {
            depthwise_image_channels_last(slots[in.slot], weights.data(), s, e, slots[out.slot]);
            return;
        }
        if (s.cg == 1) {
            for (std::int64_t o = 0; o < s.o; ++o)
                depthwise_plane(slots[in.slot], weights.data(), depthwise, s, o, e, slots[out.slot] + o * s.pixels());
            return;
        }
        conv_image(slots[in.slot], weights.data(), tables, s, e, slots[out.slot]);
    }
};

struct PlanBatchNorm : PlanOp {
    BatchNorm2d* bn = nullptr;
    PlanValue in, out;
    std::vector<PlanValue*> inputs() override { return {&in}; }
    PlanValue* output() override { return &out; }
    std::vector<float> mean, scale, shift;
    void refresh() override {
        const std::int64_t c = in.c;
        mean.assign(static_cast<std::size_t>(c), 0.0f), scale = mean, shift = mean;
        for (std::int64_t k = 0; k < c; ++k) {  // as batch_norm2d's eval mode
            const float invstd = 1.0f / std::sqrt(bn->running_var()[k] + bn->eps());
            mean[k] = bn->running_mean()[k];
            scale[k] = bn->weight().value()[k] * invstd;
            shift[k] = bn->bias().value()[k];
        }
    }
    void run(float* const* slots) const override {
        const std::int64_t plane = in.h * in.w;
        for (std::int64_t k = 0; k < in.c; ++k)
            normalize_plane(slots[in.slot] + k * plane, slots[out.slot] + k * plane, plane, mean[k], scale[k], shift[k]);
    }
};

struct PlanClamp : PlanOp {
    PlanValue in, out;
    std::vector<PlanValue*> inputs() override { return {&in}; }
    PlanValue* output() override { return &out; }
    float lo = 0, hi = 0;
    void run(float* const* slots) const override {
        const float* x = slots[in.slot];
        float* y = slots[out.slot];
        for (std::int64_t i = 0; i < in.size(); ++i) y[i] = x[i] < lo ? lo : (x[i] > hi ? hi : x[i]);
    }
};

struct PlanAdd : PlanOp {  // out = a + b, as add()
    PlanValue a, b, out;
    std::vector<PlanValue*> inputs() override { return {&a, &b}; }
    PlanValue* output() override { return &out; }
    void run(float* const* slots) const override {
        const float* x = slots[a.slot];
        const float* y = slots[b.slot];
        float* z = slots[out.slot];
        for (std::int64_t i = 0; i < a.size(); ++i) z[i] = x[i] + y[i];
    }
};

struct PlanShortcutA : PlanOp {  // shortcut_option_a: every stride-th pixel, zero channels on both sides
    PlanValue in, out;
    std::vector<PlanValue*> inputs() override { return {&in}; }
    PlanValue* output() override { return &out; }
    std::int64_t stride = 1;
    void run(float* const* slots) const override {
        const float* x = slots[in.slot];
        float* y = slots[out.slot];
        std::fill(y, y + out.size(), 0.0f);
        const std::int64_t pad = (out.c - in.c) / 2;
        for (std::int64_t c = 0; c < in.c; ++c)
            for (std::int64_t i = 0; i < out.h; ++i)
                for (std::int64_t j = 0; j < out.w; ++j)
                    y[((pad + c) * out.h + i) * out.w + j] = x[(c * in.h + i * stride) * in.w + j * stride];
    }
};

struct PlanMaxPool : PlanOp {
    PlanValue in, out;
    std::vector<PlanValue*> inputs() override { return {&in}; }
    PlanValue* output() override { return &out; }
    PoolGeometry g{};
    void run(float* const* slots) const override {
        for (std::int64_t c = 0; c < in.c; ++c)
            max_pool_plane(slots[in.slot] + c * in.h * in.w, g, slots[out.slot] + c * out.h * out.w, nullptr);
    }
};

struct PlanAvgPool : PlanOp {
    PlanValue in, out;
    std::vector<PlanValue*> inputs() override { return {&in}; }
    PlanValue* output() override { return &out; }
    void run(float* const* slots) const override {
        for (std::int64_t c = 0; c < in.c; ++c) slots[out.slot][c] = plane_mean(slots[in.slot] + c * in.h * in.w, in.h * in.w);
    }
};

}  // namespace detail

class InferencePlan {
public:
    // input: one image's [C, H, W]. Stages whose parameters exceed max_stage_bytes end the trunk: per image they
    // would stream their weights once per image instead of once per batch (VGG's wide layers).
    explicit InferencePlan(Module& model, const Shape& input, std::int64_t max_stage_bytes = 1 << 20)
        : model_(model), stages_(flatten_stages(model)) {
        if (input.size() != 3) throw std::invalid_argument("InferencePlan: input must be [C,H,W], got " + shape_str(input));
        if (model.is_training()) throw std::invalid_argument("InferencePlan: the model must be in eval mode");
        input_ = {alloc(input[0] * input[1] * input[2]), input[0], input[1], input[2]};
        detail::PlanValue x = input_;
        for (; trunk_end_ < stages_.size(); ++trunk_end_) {
            Module& stage = *stages_[trunk_end_];
            if (stage.parameter_count() * static_cast<std::int64_t>(sizeof(float)) > max_stage_bytes) break;
            const std::size_t ops_before = ops_.size();
            const auto y = compile(stage, x);
            if (!y) {
                ops_.resize(ops_before);
                break;
            }
            stage_begin_.push_back(ops_before);
            stage_input_.push_back(x);
            x = *y;
        }
        stage_begin_.push_back(ops_.size());
        stage_input_.push_back(x);
        share_buffers();
    }

    // Stages [0, trunk_stages()) run per image; the rest as modules.
    std::size_t trunk_stages() const { return trunk_end_; }
    std::size_t stages() const { return stages_.size(); }

    // x: [N, C, H, W] -> the model's output.
    Tensor<float> forward(const Tensor<float>& x) { return run(0, x); }

    // x: the batch's input of stage `from` -> the model's output. Parameters are re-read for the stages that run, so
    // weights changed in place (faults) take effect; a stage whose modules carry an output hook now (activation
    // faults) and every stage after it run as modules.
    Tensor<float> run(std::size_t from, const Tensor<float>& x) {
        if (model_.is_training()) throw std::logic_error("InferencePlan::run: the model is in training mode");
        if (from > stages_.size()) throw std::out_of_range("InferencePlan::run: no stage " + std::to_string(from));
        NoGradGuard no_grad;
        std::size_t until = from;
        while (until < trunk_end_ && !hooked(*stages_[until])) ++until;
        if (until == from) return run_stages(stages_, from, Var(x)).value();
        const detail::PlanValue in = stage_input_[from], out = stage_input_[until];
        if (x.ndim() < 1 || x.numel() != x.dim(0) * in.size())
            throw std::invalid_argument("InferencePlan::run: stage " + std::to_string(from) + " takes [N," +
                                        std::to_string(in.c) + "," + std::to_string(in.h) + "," +
                                        std::to_string(in.w) + "], got " + shape_str(x.shape()));
        for (std::size_t k = stage_begin_[from]; k < stage_begin_[until]; ++k) ops_[k]->refresh();
        const std::int64_t n = x.dim(0);
        // A global average pool's module output is [N, C], not [N, C, 1, 1].
        const bool flat = dynamic_cast<GlobalAvgPool*>(stages_[until - 1]) != nullptr;
        auto y = Tensor<float>::uninitialized(flat ? Shape{n, out.c} : Shape{n, out.c, out.h, out.w});
        arenas_.resize(static_cast<std::size_t>(num_threads()));
        parallel_for(n, [&](std::int64_t i) {
#ifdef _OPENMP
            Arena& arena = arenas_[static_cast<std::size_t>(omp_get_thread_num())];
#else
            Arena& arena = arenas_[0];
#endif
            float* const* slots = arena_slots(arena);
            copy_floats(slots[in.slot], x.data() + i * in.size(), in.size());
            for (std::size_t k = stage_begin_[from]; k < stage_begin_[until]; ++k) ops_[k]->run(slots);
            copy_floats(y.data() + i * out.size(), slots[out.slot], out.size());
        });
        return until == stages_.size() ? y : run_stages(stages_, until, Var(y)).value();
    }

private:
    struct Arena {
        std::vector<std::unique_ptr<float[]>> buffers;
        std::vector<float*> pointers;
    };

    float* const* arena_slots(Arena& a) const {
        if (a.buffers.size() != slot_sizes_.size()) {
            a.buffers.clear(), a.pointers.clear();
            for (std::int64_t size : slot_sizes_) {
                a.buffers.emplace_back(new float[static_cast<std::size_t>(size)]);
                a.pointers.push_back(a.buffers.back().get());
            }
        }
        return a.pointers.data();
    }

    // Maps the one-value-per-slot numbering of compilation onto few buffers: a value's buffer is free again once
    // the last op reading it has run (an op never writes into a buffer it reads).
    void share_buffers() {
        const std::size_t values = slot_sizes_.size();
        std::vector<std::size_t> last_use(values, 0);
        for (std::size_t i = 0; i < ops_.size(); ++i)
            for (auto* v : ops_[i]->inputs()) last_use[static_cast<std::size_t>(v->slot)] = i;
        last_use[static_cast<std::size_t>(stage_input_.back().slot)] = ops_.size();
        std::vector<int> physical(values, -1);
        std::vector<std::int64_t> sizes;
        std::vector<std::size_t> busy_until;  // per buffer: the last op that reads its current value
        auto take = [&](std::size_t value, std::size_t from_op) {
            for (std::size_t b = 0; b < sizes.size(); ++b)
                if (busy_until[b] < from_op) {
                    physical[value] = static_cast<int>(b);
                    sizes[b] = std::max(sizes[b], slot_sizes_[value]);
                    busy_until[b] = last_use[value];
                    return;
                }
            physical[value] = static_cast<int>(sizes.size());
            sizes.push_back(slot_sizes_[value]);
            busy_until.push_back(last_use[value]);
        };
        // Values are numbered in definition order, so taking them in that order allocates as the ops run; a stage's
        // input value is written by the copy-in when a run starts there.
        take(static_cast<std::size_t>(input_.slot), 0);
        for (std::size_t i = 0; i < ops_.size(); ++i) take(static_cast<std::size_t>(ops_[i]->output()->slot), i);
        for (auto& op : ops_) {
            for (auto* v : op->inputs()) v->slot = physical[static_cast<std::size_t>(v->slot)];
            op->output()->slot = physical[static_cast<std::size_t>(op->output()->slot)];
        }
        input_.slot = physical[static_cast<std::size_t>(input_.slot)];
        for (auto& v : stage_input_) v.slot = physical[static_cast<std::size_t>(v.slot)];
        slot_sizes_ = sizes;
    }

    int alloc(std::int64_t size) {
        slot_sizes_.push_back(size);
        return static_cast<int>(slot_sizes_.size()) - 1;
    }
    detail::PlanValue value(std::int64_t c, std::int64_t h, std::int64_t w) { return {alloc(c * h * w), c, h, w}; }
    // Appends op to the program; its output value.
    detail::PlanValue push(std::unique_ptr<detail::PlanOp> op) {
        const detail::PlanValue out = *op->output();
        ops_.push_back(std::move(op));
        return out;
    }

    static bool hooked(Module& m) {
        if (m.has_output_hook()) return true;
        for (auto& [n, c] : m.children())
            if (hooked(*c)) return true;
        return false;
    }

    detail::PlanValue add_conv(Conv2d& conv, BatchNorm2d* bn, const detail::PlanValue& x, float lo, float hi,
                               const detail::PlanValue* residual = nullptr) {
        auto op = std::make_unique<detail::PlanConv>();
        const Conv2dSpec& spec = conv.spec();
        if (x.c != spec.in_channels)
            throw std::invalid_argument("InferencePlan: conv expects " + std::to_string(spec.in_channels) +
                                        " channels, gets " + std::to_string(x.c));
        detail::ConvShape& s = op->s;
        s.n = 1, s.c = x.c, s.h = x.h, s.w = x.w, s.o = spec.out_channels, s.kh = s.kw = spec.kernel;
        s.groups = spec.groups, s.cg = s.c / s.groups, s.og = s.o / s.groups, s.stride = spec.stride, s.pad = spec.padding;
        s.ho = (s.hp() - s.kh) / s.stride + 1, s.wo = (s.wp() - s.kw) / s.stride + 1;
        op->conv = &conv, op->bn = bn, op->in = x, op->lo = lo, op->hi = hi;
        op->out = value(s.o, s.ho, s.wo);
        if (residual) op->residual = *residual;
        return push(std::move(op));
    }

    // A sequence run as forward_fused runs it; nullopt when it holds something the plan does not know.
    std::optional<detail::PlanValue> compile_fused(Sequential& seq, detail::PlanValue x) {
        const auto& parts = seq.children();
        for (std::size_t i = 0; i < parts.size(); ++i) {
            Module& m = *parts[i].second;
            if (auto* inner = dynamic_cast<Sequential*>(&m)) {
                const auto y = compile_fused(*inner, x);
                if (!y) return std::nullopt;
                x = *y;
                continue;
            }
            auto* conv = dynamic_cast<Conv2d*>(&m);
            auto* bn = i + 1 < parts.size() ? dynamic_cast<BatchNorm2d*>(parts[i + 1].second.get()) : nullptr;
            if (conv && bn) {
                auto* act = i + 2 < parts.size() ? dynamic_cast<ActivationSlot*>(parts[i + 2].second.get()) : nullptr;
                detail::ConvEpilogue e;
                if (act && !detail::fusable_activation(act, e)) return std::nullopt;
                x = add_conv(*conv, bn, x, e.lo, e.hi);
                i += act ? 2 : 1;
                continue;
            }
            const auto y = compile_layer(m, x);
            if (!y) return std::nullopt;
            x = *y;
        }
        return x;
    }

    // A single layer (not a block); nullopt when unknown.
    std::optional<detail::PlanValue> compile_layer(Module& m, const detail::PlanValue& x) {
        if (auto* conv = dynamic_cast<Conv2d*>(&m)) return add_conv(*conv, nullptr, x, -kInf, kInf);
        if (auto* bn = dynamic_cast<BatchNorm2d*>(&m)) {
            auto op = std::make_unique<detail::PlanBatchNorm>();
            op->bn = bn, op->in = x, op->out = value(x.c, x.h, x.w);
            return push(std::move(op));
        }
        if (auto* act = dynamic_cast<ActivationSlot*>(&m)) {
            detail::ConvEpilogue e;
            if (!detail::fusable_activation(act, e)) return std::nullopt;
            auto op = std::make_unique<detail::PlanClamp>();
            op->in = x, op->out = value(x.c, x.h, x.w), op->lo = e.lo, op->hi = e.hi;
            return push(std::move(op));
        }
        if (auto* pool = dynamic_cast<MaxPool2d*>(&m)) {
            auto op = std::make_unique<detail::PlanMaxPool>();
            const std::int64_t k = pool->kernel(), st = pool->stride(), p = pool->padding();
            if (x.h + 2 * p < k || x.w + 2 * p < k) return std::nullopt;
            op->g = {1, x.h, x.w, (x.h + 2 * p - k) / st + 1, (x.w + 2 * p - k) / st + 1, k, st, p};
            op->in = x, op->out = value(x.c, op->g.oh, op->g.ow);
            return push(std::move(op));
        }
        if (dynamic_cast<GlobalAvgPool*>(&m)) {
            auto op = std::make_unique<detail::PlanAvgPool>();
            op->in = x, op->out = value(x.c, 1, 1);
            return push(std::move(op));
        }
        return std::nullopt;
    }

    std::optional<detail::PlanValue> compile(Module& m, const detail::PlanValue& x) {
        if (auto* block = dynamic_cast<BasicBlock*>(&m)) {
            auto* conv1 = dynamic_cast<Conv2d*>(block->child("conv1"));
            auto* bn1 = dynamic_cast<BatchNorm2d*>(block->child("bn1"));
            auto* conv2 = dynamic_cast<Conv2d*>(block->child("conv2"));
            auto* bn2 = dynamic_cast<BatchNorm2d*>(block->child("bn2"));
            auto* relu1 = dynamic_cast<ActivationSlot*>(block->child("relu1"));
            auto* relu2 = dynamic_cast<ActivationSlot*>(block->child("relu2"));
            detail::ConvEpilogue e1, e2;
            if (!conv1 || !bn1 || !conv2 || !bn2 || !detail::fusable_activation(relu1, e1) ||
                !detail::fusable_activation(relu2, e2))
                return std::nullopt;
            detail::PlanValue skip = x;
            if (auto* down = dynamic_cast<Sequential*>(block->child("downsample"))) {
                const auto y = compile_fused(*down, x);
                if (!y) return std::nullopt;
                skip = *y;
            }
            const detail::PlanValue y = add_conv(*conv1, bn1, x, e1.lo, e1.hi);
            const std::int64_t out_c = conv2->spec().out_channels, stride = conv1->spec().stride;
            if (!block->child("downsample") && (stride != 1 || x.c != out_c)) {
                auto op = std::make_unique<detail::PlanShortcutA>();
                op->in = x, op->stride = stride;
                op->out = value(out_c, (x.h + stride - 1) / stride, (x.w + stride - 1) / stride);
                skip = push(std::move(op));
            }
            return add_conv(*conv2, bn2, y, e2.lo, e2.hi, &skip);
        }
        if (auto* block = dynamic_cast<InvertedResidual*>(&m)) {
            auto* seq = dynamic_cast<Sequential*>(block->child("conv"));
            if (!seq) return std::nullopt;
            const auto y = compile_fused(*seq, x);
            if (!y) return std::nullopt;
            if (y->c != x.c || y->h != x.h || y->w != x.w) return y;  // no residual: the shape changes
            auto op = std::make_unique<detail::PlanAdd>();
            op->a = x, op->b = *y, op->out = value(x.c, x.h, x.w);
            return push(std::move(op));
        }
        return compile_layer(m, x);
    }

    static constexpr float kInf = std::numeric_limits<float>::infinity();
    Module& model_;
    std::vector<Module*> stages_;
    std::size_t trunk_end_ = 0;
    std::vector<std::unique_ptr<detail::PlanOp>> ops_;
    std::vector<std::size_t> stage_begin_;           // stage k's ops: [stage_begin_[k], stage_begin_[k + 1])
    std::vector<detail::PlanValue> stage_input_;     // stage k's input; the last is the trunk's output
    std::vector<std::int64_t> slot_sizes_;
    detail::PlanValue input_;
    std::vector<Arena> arenas_;
};

// evaluate() with the logits from an InferencePlan of the model (bit for bit model(x), faster); a model whose root
// carries an output hook is evaluated through the module, which runs the hook.
inline EvalResult evaluate_planned(Module& model, const Dataset& data, LoaderOptions opt,
                                   const EvalProgress& progress = {}) {
    if (model.has_output_hook()) return evaluate(model, data, opt, progress);
    std::unique_ptr<InferencePlan> plan;  // built on the first batch, whose shape the loader decides
    return evaluate(model, data, opt, progress, [&](const Tensor<float>& x) {
        if (x.ndim() != 4) return model(Var(x)).value();
        if (!plan) plan = std::make_unique<InferencePlan>(model, Shape{x.dim(1), x.dim(2), x.dim(3)});
        return plan->forward(x);
    });
}

}  // namespace ironclad

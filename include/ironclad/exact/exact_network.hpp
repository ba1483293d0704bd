// ExactNetwork: a model's inference in exact integer fixed-point arithmetic, stage by stage.
//
// Contract: built from a model and its stages (nn/stages.hpp), it holds the raw pattern of every parameter in the
// format (raw_parameter(name): the deployed weight memory, where a fault injector flips bits) and one integer
// program per stage, so run(from, x) restarts at any stage as Module stages do. Layers: Conv2d, Linear,
// BatchNorm2d (scale gamma/sqrt(var+eps) and shift beta - mean*scale rounded into the format from the stored
// gamma and beta and the float running statistics, then one multiply-accumulate per element), ReLU and ReLU6
// slots, bounded ReLUs in zero, clamp and threshold mode (integer comparisons with the stored bound and fill raws,
// faultable like weights; the smooth mode's sigmoid has no integer kernel), max and global average pooling, flatten, dropout (identity), and the blocks of the model zoo (BasicBlock,
// MobileNetV2's and ShuffleNetV2's units). Anything else is refused when the network is built, naming the layer.
// A hook set on a module runs on that module's integer output (activation faults). Overflow counts accumulate
// per layer (the input quantisation is "input"; a block's residual addition counts under the block's name).
// A convolution's batch norm, residual sum and ReLU run inside it (conv_norm_act) up to the first output a hook
// must see, which changes no raw and no count.
#pragma once

#include "ironclad/bounds/bounded_relu.hpp"
#include "ironclad/exact/exact_kernels.hpp"
#include "ironclad/models/mobilenet_v2.hpp"
#include "ironclad/models/resnet_cifar.hpp"
#include "ironclad/models/shufflenet_v2.hpp"
#include "ironclad/nn/dropout.hpp"
#include "ironclad/nn/stages.hpp"

#include <functional>
#include <utility>
#include <map>
#include <memory>
#include <string>
#include <vector>

namespace ironclad {

class ExactNetwork;

namespace detail {

struct ExactOp {
    const Module* source = nullptr;
    std::string name;
    virtual ~ExactOp() = default;
    virtual RawTensor run(const RawTensor& x, ExactNetwork& net) = 0;
};

}  // namespace detail

class ExactNetwork {
public:
    using Hook = std::function<void(RawTensor&)>;

    ExactNetwork(Module& model, const std::vector<Module*>& stages, ExactArithmetic arith) : arith_(arith) {
        arith_.validate();
        for (auto& [name, m] : model.named_modules()) names_[m] = name;
        for (auto& [name, p] : model.named_parameters()) {
            RawTensor raw(p.value().shape());
            bool overflowed = false;
            for (std::int64_t i = 0; i < raw.numel(); ++i)
                raw.data()[i] = arith_.raw_of(static_cast<double>(p.value()[i]), overflowed);
            raw_params_[name] = raw;
        }
        for (Module* s : stages) stages_.push_back(compile(*s));
    }
    ExactNetwork(const ExactNetwork&) = delete;
    ExactNetwork& operator=(const ExactNetwork&) = delete;

    const ExactArithmetic& arithmetic() const { return arith_; }
    std::size_t size() const { return stages_.size(); }

    // The stored raw pattern of a parameter (shares storage: writing into it changes the network).
    RawTensor& raw_parameter(const std::string& name) {
        const auto it = raw_params_.find(name);
        if (it == raw_params_.end()) throw std::invalid_argument("exact network: no parameter '" + name + "'");
        return it->second;
    }

    void set_hook(const Module* m, Hook hook) {
        if (hook)
            hooks_[m] = std::move(hook);
        else
            hooks_.erase(m);
    }

    // The input batch in the format (normalised floats in, raws out).
    RawTensor input(const Tensor<float>& x) { return exact_quantize(x, arith_, counts_["input"]); }
    // Stages from..end on x, the output of stage from-1 (or the input for from = 0).
    RawTensor run(std::size_t from, RawTensor x) {
        for (std::size_t i = from; i < stages_.size(); ++i) x = apply(*stages_[i], x);
        return x;
    }
    RawTensor run_stage(std::size_t stage, const RawTensor& x) { return apply(*stages_.at(stage), x); }
    // Float input -> float logits (the exact result dequantised).
    Tensor<float> forward(const Tensor<float>& x) { return exact_dequantize(run(0, input(x)), arith_); }

    const std::map<std::string, SaturationCounts>& counts() const { return counts_; }
    // The counts since the last take, per layer (and starts afresh).
    std::map<std::string, SaturationCounts> take_counts() { return std::exchange(counts_, {}); }

    // Runs op and then the hook of its module, if any; used by the composite ops for their parts.
    RawTensor apply(detail::ExactOp& op, const RawTensor& x) {
        RawTensor y = op.run(x, *this);
        run_hook(op, y);
        return y;
    }
    // act(norm(conv(x)) [+ residual]) as the parts would run through apply, the add counted under add_layer; the
    // steps after the convolution run inside it (exact_conv2d's post ops) up to the first output a hook must see.
    RawTensor conv_norm_act(detail::ExactOp& conv, detail::ExactOp& norm, const RawTensor* residual,
                            const std::string& add_layer, detail::ExactOp* act, const RawTensor& x);
    SaturationCounts& counts_of(const std::string& layer) { return counts_[layer]; }

    bool hooked(const detail::ExactOp& op) const { return hooks_.count(op.source) != 0; }

private:
    std::unique_ptr<detail::ExactOp> compile(Module& m);
    void run_hook(const detail::ExactOp& op, RawTensor& y) {
        if (const auto it = hooks_.find(op.source); it != hooks_.end()) it->second(y);
    }

    ExactArithmetic arith_;
    std::map<const Module*, std::string> names_;
    std::map<std::string, RawTensor> raw_params_;
    std::vector<std::unique_ptr<detail::ExactOp>> stages_;
    std::map<const Module*, Hook> hooks_;
    std::map<std::string, SaturationCounts> counts_;
};

namespace detail {

struct ExactConv : ExactOp {
    RawTensor weight, bias;
    Conv2dOptions options;
    RawTensor run(const RawTensor& x, ExactNetwork& net) override {
        return exact_conv2d(x, weight, bias, options, net.arithmetic(), net.counts_of(name));
    }
};

struct ExactLinear : ExactOp {
    RawTensor weight, bias;
    RawTensor run(const RawTensor& x, ExactNetwork& net) override {
        return exact_linear(x, weight, bias, net.arithmetic(), net.counts_of(name));
    }
};

struct ExactBatchNorm : ExactOp {
    RawTensor gamma, beta;
    Tensor<float> mean, var;
    float eps = 1e-5f;
    // The per-channel scale and shift in the format, from the stored (faultable) gamma and beta.
    void constants(const ExactArithmetic& a, SaturationCounts& counts, std::vector<std::int32_t>& scale,
                   std::vector<std::int32_t>& shift) const {
        const std::int64_t c = gamma.numel();
        scale.resize(static_cast<std::size_t>(c));
        shift.resize(static_cast<std::size_t>(c));
        for (std::int64_t i = 0; i < c; ++i) {
            const double s = a.value_of(gamma.data()[i]) / std::sqrt(static_cast<double>(var[i]) + eps);
            bool fs = false, fb = false;
            scale[static_cast<std::size_t>(i)] = a.raw_of(s, fs);
            shift[static_cast<std::size_t>(i)] = a.raw_of(a.value_of(beta.data()[i]) - mean[i] * s, fb);
            counts.narrowing += fs + fb;  // a constant the format cannot hold
        }
    }
    RawTensor run(const RawTensor& x, ExactNetwork& net) override {
        SaturationCounts& counts = net.counts_of(name);
        std::vector<std::int32_t> scale, shift;
        constants(net.arithmetic(), counts, scale, shift);
        return exact_channel_affine(x, scale, shift, net.arithmetic(), counts);
    }
};

struct ExactClamp : ExactOp {
    double upper = 0;  // 0: no upper bound (ReLU)
    std::int32_t upper_raw(const ExactArithmetic& a) const {
        bool overflowed = false;
        return upper <= 0 ? INT32_MAX : a.raw_of(upper, overflowed);
    }
    RawTensor run(const RawTensor& x, ExactNetwork& net) override {
        return exact_clamp(x, 0, upper_raw(net.arithmetic()));
    }
};

// max(0, x > b ? (zero: 0, threshold: t) : x) or max(0, min(x, b)), b and t broadcast as autograd/bounded.hpp says.
struct ExactBoundedReLU : ExactOp {
    RawTensor bound, fill;
    BoundMode mode = BoundMode::zero;
    RawTensor run(const RawTensor& x, ExactNetwork&) override {
        const std::int64_t n = x.dim(0), per = x.numel() / std::max<std::int64_t>(n, 1);
        const std::int64_t channels = x.ndim() > 1 ? x.dim(1) : 1, inner = per / std::max<std::int64_t>(channels, 1);
        auto index = [&](std::int64_t e) -> std::int64_t {  // e: position within one sample
            if (bound.numel() == 1) return 0;
            if (bound.numel() == channels && bound.ndim() == 1) return e / inner;
            return e;
        };
        if (bound.numel() != 1 && bound.numel() != channels && bound.numel() != per)
            throw std::invalid_argument("exact bounded ReLU '" + name + "': bound " + shape_str(bound.shape()) +
                                        " does not fit input " + shape_str(x.shape()));
        auto y = RawTensor::uninitialized(x.shape());
        for (std::int64_t i = 0; i < x.numel(); ++i) {
            const std::int64_t j = index(i % per);
            const std::int32_t v = x.data()[i], b = bound.data()[j];
            const std::int32_t cut = mode == BoundMode::clamp ? std::min(v, b) : v > b ? (mode == BoundMode::threshold ? fill.data()[j] : 0) : v;
            y.data()[i] = std::max<std::int32_t>(0, cut);
        }
        return y;
    }
};

struct ExactMaxPool : ExactOp {
    int kernel = 2, stride = 2, padding = 0;
    RawTensor run(const RawTensor& x, ExactNetwork&) override { return exact_max_pool2d(x, kernel, stride, padding); }
};

struct ExactGlobalAvgPool : ExactOp {
    RawTensor run(const RawTensor& x, ExactNetwork& net) override {
        return exact_global_avg_pool(x, net.arithmetic(), net.counts_of(name));
    }
};

struct ExactFlatten : ExactOp {
    RawTensor run(const RawTensor& x, ExactNetwork&) override { return x.view({x.dim(0), x.numel() / x.dim(0)}); }
};

struct ExactIdentity : ExactOp {
    RawTensor run(const RawTensor& x, ExactNetwork&) override { return x; }
};

// Parts in order; a convolution followed by a batch norm (and a ReLU/ReLU6) runs as one conv_norm_act.
struct ExactChain : ExactOp {
    std::vector<std::unique_ptr<ExactOp>> parts;
    RawTensor run(const RawTensor& x, ExactNetwork& net) override {
        RawTensor y = x;
        for (std::size_t i = 0; i < parts.size(); ++i) {
            const bool conv_norm = i + 1 < parts.size() && dynamic_cast<ExactConv*>(parts[i].get()) &&
                                   dynamic_cast<ExactBatchNorm*>(parts[i + 1].get());
            if (!conv_norm) {
                y = net.apply(*parts[i], y);
                continue;
            }
            ExactOp* act = i + 2 < parts.size() && dynamic_cast<ExactClamp*>(parts[i + 2].get()) ? parts[i + 2].get()
                                                                                                 : nullptr;
            y = net.conv_norm_act(*parts[i], *parts[i + 1], nullptr, name, act, y);
            i += act ? 2 : 1;
        }
        return y;
    }
};

// y = relu2(bn2(conv2(relu1(bn1(conv1(x))))) + shortcut(x)).
struct ExactBasicBlock : ExactOp {
    std::unique_ptr<ExactOp> conv1, bn1, relu1, conv2, bn2, downsample, relu2;
    std::int64_t out_channels = 0;
    int stride = 1;
    RawTensor run(const RawTensor& x, ExactNetwork& net) override {
        const RawTensor y = net.conv_norm_act(*conv1, *bn1, nullptr, name, relu1.get(), x);
        auto shortcut = [&] {
            if (downsample) return net.apply(*downsample, x);
            return stride != 1 || x.dim(1) != out_channels ? exact_shortcut_option_a(x, out_channels, stride) : x;
        };
        // The residual joins the second convolution's post ops unless a hook must see conv2 or bn2 first (the
        // shortcut then runs after them, as in the unfused order, so that hooks fire in the same order).
        if (!net.hooked(*conv2) && !net.hooked(*bn2)) {
            const RawTensor skip = shortcut();
            return net.conv_norm_act(*conv2, *bn2, &skip, name, relu2.get(), y);
        }
        const RawTensor z = net.conv_norm_act(*conv2, *bn2, nullptr, name, nullptr, y);
        return net.apply(*relu2, exact_add(z, shortcut(), net.arithmetic(), net.counts_of(name)));
    }
};

// MobileNetV2: conv(x), plus x when the block keeps the shape.
struct ExactInvertedResidual : ExactOp {
    std::unique_ptr<ExactOp> conv;
    bool residual = false;
    RawTensor run(const RawTensor& x, ExactNetwork& net) override {
        RawTensor y = net.apply(*conv, x);
        return residual ? exact_add(x, y, net.arithmetic(), net.counts_of(name)) : y;
    }
};

// ShuffleNetV2: stride 1 keeps half the channels and transforms the other half; stride 2 feeds both branches.
struct ExactShuffleUnit : ExactOp {
    std::unique_ptr<ExactOp> branch1, branch2;  // branch1 only with stride 2
    RawTensor run(const RawTensor& x, ExactNetwork& net) override {
        RawTensor y;
        if (!branch1) {
            const std::int64_t half = x.dim(1) / 2;
            y = exact_concat_channels(exact_channels(x, 0, half),
                                      net.apply(*branch2, exact_channels(x, half, x.dim(1) - half)));
        } else {
            y = exact_concat_channels(net.apply(*branch1, x), net.apply(*branch2, x));
        }
        return exact_channel_shuffle(y, 2);
    }
};

inline void collect_convs(Module& m, std::vector<Conv2d*>& out) {
    if (auto* conv = dynamic_cast<Conv2d*>(&m)) out.push_back(conv);
    for (auto& [n, c] : m.children()) collect_convs(*c, out);
}

}  // namespace detail

inline RawTensor ExactNetwork::conv_norm_act(detail::ExactOp& conv, detail::ExactOp& norm, const RawTensor* residual,
                                             const std::string& add_layer, detail::ExactOp* act, const RawTensor& x) {
    using namespace detail;
    auto* c = dynamic_cast<ExactConv*>(&conv);
    auto* bn = dynamic_cast<ExactBatchNorm*>(&norm);
    auto* clamp = dynamic_cast<ExactClamp*>(act);
    std::vector<std::int32_t> scale, shift;
    SaturationCounts constant_counts;
    RawTensor y;
    ExactPostOps post;
    if (c && bn && !hooked(conv)) bn->constants(arith_, constant_counts, scale, shift);
    if (!scale.empty() && exact_affine_fusable(scale, shift, arith_)) {
        counts_of(bn->name) += constant_counts;
        post.scale = scale;
        post.shift = shift;
        post.norm_counts = &counts_of(bn->name);
        const bool past_norm = !hooked(norm);  // the hook must see the batch norm's output
        if (residual && past_norm) {
            post.residual = residual;
            post.add_counts = &counts_of(add_layer);
        }
        if (clamp && past_norm && (!residual || post.residual)) {
            post.clamp = true;
            post.hi = clamp->upper_raw(arith_);
        }
        y = exact_conv2d(x, c->weight, c->bias, c->options, arith_, counts_of(c->name), post);
        if (!post.residual && !post.clamp) run_hook(norm, y);
    } else {
        y = apply(norm, apply(conv, x));
    }
    if (residual && !post.residual) y = exact_add(y, *residual, arith_, counts_of(add_layer));
    if (act) {
        if (post.clamp)
            run_hook(*act, y);
        else
            y = apply(*act, y);
    }
    return y;
}

inline std::unique_ptr<detail::ExactOp> ExactNetwork::compile(Module& m) {
    using namespace detail;
    const std::string name = names_.count(&m) ? names_.at(&m) : std::string();
    const std::string prefix = name.empty() ? "" : name + ".";
    auto make = [&](auto op) {
        op->source = &m;
        op->name = name.empty() ? m.type_name() : name;
        return std::unique_ptr<ExactOp>(std::move(op));
    };
    auto sub = [&](const std::string& child_name) -> std::unique_ptr<ExactOp> {
        Module* c = m.child(child_name);
        return c ? compile(*c) : nullptr;
    };
    if (auto* conv = dynamic_cast<Conv2d*>(&m)) {
        auto op = std::make_unique<ExactConv>();
        op->weight = raw_parameter(prefix + "weight");
        if (conv->spec().bias) op->bias = raw_parameter(prefix + "bias");
        op->options = {conv->spec().stride, conv->spec().padding, conv->spec().groups};
        return make(std::move(op));
    }
    if (auto* linear = dynamic_cast<Linear*>(&m)) {
        auto op = std::make_unique<ExactLinear>();
        op->weight = raw_parameter(prefix + "weight");
        if (linear->bias().defined()) op->bias = raw_parameter(prefix + "bias");
        return make(std::move(op));
    }
    if (auto* bn = dynamic_cast<BatchNorm2d*>(&m)) {
        auto op = std::make_unique<ExactBatchNorm>();
        op->gamma = raw_parameter(prefix + "weight");
        op->beta = raw_parameter(prefix + "bias");
        op->mean = bn->running_mean();
        op->var = bn->running_var();
        op->eps = bn->eps();
        return make(std::move(op));
    }
    if (auto* bounded = dynamic_cast<BoundedReLU*>(&m)) {
        if (bounded->mode() == BoundMode::smooth)
            throw std::invalid_argument("exact arithmetic has no integer kernel for the smooth bounded ReLU '" + name +
                                        "' (a sigmoid): use --arith emulate, or a zero/clamp/threshold bound");
        auto op = std::make_unique<ExactBoundedReLU>();
        op->bound = raw_parameter(prefix + "bound");
        if (bounded->mode() == BoundMode::threshold) op->fill = raw_parameter(prefix + "fill");
        op->mode = bounded->mode();
        return make(std::move(op));
    }
    if (auto* slot = dynamic_cast<ActivationSlot*>(&m)) {
        if (dynamic_cast<BoundedReLU*>(&slot->impl())) {  // the slot is the site: its op is the bound's, renamed
            auto op = compile(slot->impl());
            op->source = &m;
            return op;
        }
        auto op = std::make_unique<ExactClamp>();
        if (dynamic_cast<ReLU6*>(&slot->impl()))
            op->upper = 6.0;
        else if (!dynamic_cast<ReLU*>(&slot->impl()))
            throw std::invalid_argument("exact arithmetic has no integer kernel for the " + slot->type_name() +
                                        " activation '" + name + "'");
        return make(std::move(op));
    }
    if (auto* pool = dynamic_cast<MaxPool2d*>(&m)) {
        auto op = std::make_unique<ExactMaxPool>();
        op->kernel = pool->kernel();
        op->stride = pool->stride();
        op->padding = pool->padding();
        return make(std::move(op));
    }
    if (dynamic_cast<GlobalAvgPool*>(&m)) return make(std::make_unique<ExactGlobalAvgPool>());
    if (dynamic_cast<Flatten*>(&m)) return make(std::make_unique<ExactFlatten>());
    if (dynamic_cast<Dropout*>(&m)) return make(std::make_unique<ExactIdentity>());
    if (dynamic_cast<Sequential*>(&m)) {
        auto op = std::make_unique<ExactChain>();
        for (auto& [n, c] : m.children()) op->parts.push_back(compile(*c));
        return make(std::move(op));
    }
    if (dynamic_cast<BasicBlock*>(&m)) {
        auto op = std::make_unique<ExactBasicBlock>();
        op->conv1 = sub("conv1");
        op->bn1 = sub("bn1");
        op->relu1 = sub("relu1");
        op->conv2 = sub("conv2");
        op->bn2 = sub("bn2");
        op->downsample = sub("downsample");
        op->relu2 = sub("relu2");
        const auto& spec = dynamic_cast<Conv2d&>(*m.child("conv1")).spec();
        op->out_channels = spec.out_channels;
        op->stride = spec.stride;
        return make(std::move(op));
    }
    if (dynamic_cast<InvertedResidual*>(&m)) {
        auto op = std::make_unique<ExactInvertedResidual>();
        op->conv = sub("conv");
        std::vector<Conv2d*> convs;
        collect_convs(m, convs);
        op->residual = convs.front()->spec().in_channels == convs.back()->spec().out_channels;
        for (Conv2d* c : convs) op->residual = op->residual && c->spec().stride == 1;
        return make(std::move(op));
    }
    if (dynamic_cast<ShuffleUnit*>(&m)) {
        auto op = std::make_unique<ExactShuffleUnit>();
        op->branch1 = sub("branch1");
        op->branch2 = sub("branch2");
        return make(std::move(op));
    }
    if (const auto parts = m.stages(); !parts.empty()) {  // any other chain of known layers
        auto op = std::make_unique<ExactChain>();
        for (Module* part : parts) op->parts.push_back(compile(*part));
        return make(std::move(op));
    }
    throw std::invalid_argument("exact arithmetic has no integer kernel for the " + m.type_name() + " layer '" +
                                (name.empty() ? m.type_name() : name) + "'");
}

}  // namespace ironclad

namespace ironclad {

// The exact network behind the Module interface (float input in, dequantised logits out, no gradients), for code
// written against modules, such as evaluation loops.
class ExactModule : public Module {
public:
    explicit ExactModule(std::shared_ptr<ExactNetwork> net) : net_(std::move(net)) {}
    Var forward(const Var& x) override { return Var(net_->forward(x.value())); }
    std::string type_name() const override { return "ExactNetwork"; }
    ExactNetwork& network() { return *net_; }

private:
    std::shared_ptr<ExactNetwork> net_;
};

}  // namespace ironclad

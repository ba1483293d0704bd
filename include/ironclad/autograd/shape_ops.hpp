// Ops that move elements without arithmetic: flatten / reshape (views), channel concat and split,
// ShuffleNetV2's channel shuffle, and the zero-padding "option A" shortcut of the CIFAR ResNets.
//
// Contract: flatten and reshape return a view of the input's storage, and their backward adds the output
// gradient through a view (no copy). The others copy. Channel ops work on dimension 1 of any [N,C,...]
// tensor; "inner" below is the product of the dimensions after C.
#pragma once

#include "ironclad/autograd/elementwise.hpp"

#include <algorithm>
#include <cstdint>
#include <stdexcept>
#include <string>
#include <vector>

namespace ironclad {

namespace detail {

inline void check_channel_dim(const char* op, const Var& x) {
    if (x.value().ndim() < 2)
        throw std::invalid_argument(std::string(op) + ": expected [N,C,...], got " + shape_str(x.shape()));
}

// For every sample: copy `count` channels of `inner` elements, from channel `src_c` of a tensor with `src_ch`
// channels to channel `dst_c` of one with `dst_ch` channels, adding when `accumulate`.
inline void copy_channels(const float* src, std::int64_t src_ch, std::int64_t src_c, float* dst, std::int64_t dst_ch,
                          std::int64_t dst_c, std::int64_t batch, std::int64_t count, std::int64_t inner,
                          bool accumulate) {
    const std::int64_t len = count * inner;
#pragma omp parallel for schedule(static) if (batch * len >= kElementwiseGrain)
    for (std::int64_t b = 0; b < batch; ++b) {
        const float* s = src + (b * src_ch + src_c) * inner;
        float* d = dst + (b * dst_ch + dst_c) * inner;
        if (accumulate) {
#pragma omp simd
            for (std::int64_t i = 0; i < len; ++i) d[i] += s[i];
        } else {
            std::copy(s, s + len, d);
        }
    }
}

}  // namespace detail

// x: [N,...] -> same storage as `shape` (one entry may be -1).
inline Var reshape(const Var& x, Shape shape) {
    Tensor<float> y;
    try {
        y = x.value().view(std::move(shape));
    } catch (const std::invalid_argument& e) {
        throw std::invalid_argument(std::string("reshape: ") + e.what());
    }
    return make_result(std::move(y), {&x}, [](Node& n) {
        Node& p = *n.parents[0];
        detail::add_scaled(p, n.grad.view(p.value.shape()), 1.0f);
    });
}

// x: [N,...] -> [N, rest], sharing storage.
inline Var flatten(const Var& x) {
    if (x.value().ndim() < 1) throw std::invalid_argument("flatten: expected [N,...], got a 0-d tensor");
    const std::int64_t n = x.dim(0);
    return reshape(x, {n, n ? x.value().numel() / n : 0});
}

// parts[k]: [N,C_k,...] with equal N and trailing dims -> [N, sum C_k, ...]
inline Var concat_channels(const std::vector<Var>& parts) {
    if (parts.empty()) throw std::invalid_argument("concat_channels: no inputs");
    Shape shape = parts[0].shape();
    detail::check_channel_dim("concat_channels", parts[0]);
    shape[1] = 0;
    for (const Var& p : parts) {
        detail::check_channel_dim("concat_channels", p);
        Shape s = p.shape();
        s[1] = 0;
        if (s != shape)
            throw std::invalid_argument("concat_channels: shape " + shape_str(p.shape()) +
                                        " does not match the first input " + shape_str(parts[0].shape()) +
                                        " outside dimension 1");
    }
    for (const Var& p : parts) shape[1] += p.dim(1);
    const std::int64_t batch = shape[0], channels = shape[1];
    const std::int64_t inner = shape_numel(shape) / std::max<std::int64_t>(1, batch * channels);
    Tensor<float> y(shape);
    std::int64_t c = 0;
    for (const Var& p : parts) {
        detail::copy_channels(p.value().data(), p.dim(1), 0, y.data(), channels, c, batch, p.dim(1), inner, false);
        c += p.dim(1);
    }
    return make_result(std::move(y), parts, [batch, channels, inner](Node& n) {
        std::int64_t c = 0;
        for (auto& p : n.parents) {
            const std::int64_t pc = p->value.dim(1);
            if (p->requires_grad)
                detail::copy_channels(n.grad.data(), channels, c, p->grad_buffer().data(), pc, 0, batch, pc, inner,
                                      true);
            c += pc;
        }
    });
}

// x: [N,C,...] -> parts [N,sizes[k],...]; sizes must add up to C. Each part is its own node.
inline std::vector<Var> split_channels(const Var& x, const std::vector<std::int64_t>& sizes) {
    detail::check_channel_dim("split_channels", x);
    std::int64_t total = 0;
    for (std::int64_t s : sizes) {
        if (s < 0) throw std::invalid_argument("split_channels: negative size " + std::to_string(s));
        total += s;
    }
    if (total != x.dim(1))
        throw std::invalid_argument("split_channels: sizes " + shape_str(sizes) + " do not add up to the " +
                                    std::to_string(x.dim(1)) + " channels of " + shape_str(x.shape()));
    const std::int64_t batch = x.dim(0), channels = x.dim(1);
    const std::int64_t inner = x.value().numel() / std::max<std::int64_t>(1, batch * channels);
    std::vector<Var> parts;
    std::int64_t c = 0;
    for (std::int64_t s : sizes) {
        Shape shape = x.shape();
        shape[1] = s;
        Tensor<float> y(shape);
        detail::copy_channels(x.value().data(), channels, c, y.data(), s, 0, batch, s, inner, false);
        parts.push_back(make_result(std::move(y), {&x}, [c, s, batch, channels, inner](Node& n) {
            detail::copy_channels(n.grad.data(), s, 0, n.parents[0]->grad_buffer().data(), channels, c, batch, s, inner,
                                  true);
        }));
        c += s;
    }
    return parts;
}

// x: [N,C,...] -> [N,C,...]: viewed as [N,g,C/g,...], dims 1 and 2 swapped, so output channel j*g + i is
// input channel i*(C/g) + j (ShuffleNetV2).
inline Var channel_shuffle(const Var& x, std::int64_t groups) {
    detail::check_channel_dim("channel_shuffle", x);
    const std::int64_t batch = x.dim(0), channels = x.dim(1);
    if (groups < 1 || channels % groups != 0)
        throw std::invalid_argument("channel_shuffle: " + std::to_string(groups) + " groups do not divide the " +
                                    std::to_string(channels) + " channels of " + shape_str(x.shape()));
    const std::int64_t inner = x.value().numel() / std::max<std::int64_t>(1, batch * channels);
    const std::int64_t per_group = channels / groups;
    const bool parallel = x.value().numel() >= detail::kElementwiseGrain;
    // The input channel that output channel o reads.
    auto source = [=](std::int64_t o) { return (o % groups) * per_group + o / groups; };
    Tensor<float> y(x.shape());
    const float* xp = x.value().data();
    float* yp = y.data();
#pragma omp parallel for schedule(static) if (parallel)
    for (std::int64_t b = 0; b < batch; ++b)
        for (std::int64_t o = 0; o < channels; ++o) {
            const float* s = xp + (b * channels + source(o)) * inner;
            std::copy(s, s + inner, yp + (b * channels + o) * inner);
        }
    return make_result(std::move(y), {&x}, [=](Node& n) {
        const float* g = n.grad.data();
        float* d = n.parents[0]->grad_buffer().data();
#pragma omp parallel for schedule(static) if (parallel)
        for (std::int64_t b = 0; b < batch; ++b)
            for (std::int64_t o = 0; o < channels; ++o) {
                const float* s = g + (b * channels + o) * inner;
                float* t = d + (b * channels + source(o)) * inner;
#pragma omp simd
                for (std::int64_t i = 0; i < inner; ++i) t[i] += s[i];
            }
    });
}

// x: [N,C,H,W] -> [N,out_channels,ceil(H/stride),ceil(W/stride)]: the parameter-free shortcut of the CIFAR
// ResNets (akamaster/pytorch_resnet_cifar10, option A):
// F.pad(x[:, :, ::stride, ::stride], (0, 0, 0, 0, pad, pad)) with pad = (out_channels - C) / 2 zero channels
// on each side.
inline Var shortcut_option_a(const Var& x, std::int64_t out_channels, std::int64_t stride) {
    const Tensor<float>& xv = x.value();
    if (xv.ndim() != 4 || stride < 1 || out_channels < xv.dim(1) || (out_channels - xv.dim(1)) % 2 != 0)
        throw std::invalid_argument("shortcut_option_a: cannot map " + shape_str(x.shape()) + " to " +
                                    std::to_string(out_channels) + " channels with stride " + std::to_string(stride) +
                                    " (needs [N,C,H,W], stride >= 1, an even channel increase)");
    const std::int64_t batch = xv.dim(0), channels = xv.dim(1), h = xv.dim(2), w = xv.dim(3);
    const std::int64_t oh = (h + stride - 1) / stride, ow = (w + stride - 1) / stride;
    const std::int64_t pad = (out_channels - channels) / 2;
    // Walks every kept input element with its output position; `f(in_index, out_index)`.
    auto for_each_kept = [=](auto f) {
        const std::int64_t planes = batch * channels;
#pragma omp parallel for schedule(static) if (planes * oh * ow >= detail::kElementwiseGrain)
        for (std::int64_t plane = 0; plane < planes; ++plane) {
            const std::int64_t b = plane / channels, c = plane % channels;
            const std::int64_t in0 = plane * h * w, out0 = (b * out_channels + pad + c) * oh * ow;
            for (std::int64_t i = 0; i < oh; ++i)
                for (std::int64_t j = 0; j < ow; ++j) f(in0 + i * stride * w + j * stride, out0 + i * ow + j);
        }
    };
    Tensor<float> y({batch, out_channels, oh, ow});
    const float* xp = xv.data();
    float* yp = y.data();
    for_each_kept([=](std::int64_t in, std::int64_t out) { yp[out] = xp[in]; });
    return make_result(std::move(y), {&x}, [for_each_kept](Node& n) {
        const float* g = n.grad.data();
        float* d = n.parents[0]->grad_buffer().data();
        for_each_kept([=](std::int64_t in, std::int64_t out) { d[in] += g[out]; });
    });
}

}  // namespace ironclad

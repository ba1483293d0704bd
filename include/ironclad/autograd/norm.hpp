// batch_norm2d: per-channel batch normalisation, as torch.nn.functional.batch_norm.
//
// x: [N,C,H,W]; gamma, beta: [C], or both undefined for no affine map; running_mean, running_var: [C].
// Training normalises with the batch mean and biased variance and, when the running buffers are defined,
// updates them in place: running = (1 - momentum) * running + momentum * batch, with the UNBIASED variance
// for running_var (as PyTorch). Eval normalises with the running statistics, so the op is a per-channel
// affine map and its backward is that map. Both modes have a full backward.
// Each channel is reduced by one thread over its planes in order (plane sums in float SIMD, channel totals in
// double, shifted by the channel's first value against cancellation): bit-identical for any thread count.
#pragma once

#include "ironclad/autograd/elementwise.hpp"
#include "ironclad/autograd/variable.hpp"
#include "ironclad/core/gemm.hpp"
#include "ironclad/core/parallel.hpp"

#include <cmath>
#include <cstdint>
#include <limits>
#include <stdexcept>
#include <string>
#include <vector>

namespace ironclad {

namespace detail {

// Adds sum(a - sa) to s1 and sum((a - sa) * (b - sb)) to s2 over one plane: SIMD partial sums in float (a plane
// is short enough for that), totals in double.
inline void plane_sums(const float* a, const float* b, std::int64_t n, float sa, float sb, double& s1, double& s2) {
    SimdFloat v1 = {}, v2 = {};
    const SimdFloat va = simd_splat(sa), vb = simd_splat(sb);
    std::int64_t i = 0;
    for (; i + kLanes <= n; i += kLanes) {
        const SimdFloat da = simd_load(a + i) - va;
        v1 += da;
        v2 += da * (simd_load(b + i) - vb);
    }
    float t1 = simd_hsum(v1), t2 = simd_hsum(v2);
    for (; i < n; ++i) {
        t1 += a[i] - sa;
        t2 += (a[i] - sa) * (b[i] - sb);
    }
    s1 += t1;
    s2 += t2;
}

struct NormShape {
    std::int64_t n, c, plane;
    std::int64_t count() const { return n * plane; }  // values per channel
};

// Per channel c: out plane = (in - mean[c]) * scale[c] + shift[c].
// dst = (src - m) * k + b over one plane; shared with the inference plan so both round alike.
inline void normalize_plane(const float* src, float* dst, std::int64_t count, float m, float k, float b) {
    for (std::int64_t j = 0; j < count; ++j) dst[j] = (src[j] - m) * k + b;
}

inline void normalize_planes(const float* in, float* out, const NormShape& s, const float* mean, const float* scale,
                             const float* shift) {
    parallel_for(s.n * s.c, [&](std::int64_t i) {
        const std::int64_t c = i % s.c;
        normalize_plane(in + i * s.plane, out + i * s.plane, s.plane, mean[c], scale[c], shift[c]);
    }, s.plane);
}

// normalize_planes, then + residual (when given) and the clip to [lo, hi] (NaN passes) on each plane while it is
// in cache: the same roundings as the three passes, one trip through memory.
inline void normalize_planes_act(const float* in, const float* residual, float* out, const NormShape& s,
                                 const float* mean, const float* scale, const float* shift, float lo, float hi) {
    // By value: a captured reference could alias the output, which would keep the loops scalar.
    parallel_for(s.n * s.c, [=](std::int64_t i) {
        const std::int64_t c = i % s.c, count = s.plane;
        float* y = out + i * count;
        normalize_plane(in + i * count, y, count, mean[c], scale[c], shift[c]);
        if (residual) {
            const float* r = residual + i * count;
            for (std::int64_t j = 0; j < count; ++j) {
                const float v = y[j] + r[j];
                y[j] = v < lo ? lo : (v > hi ? hi : v);
            }
        } else {
            for (std::int64_t j = 0; j < count; ++j) y[j] = y[j] < lo ? lo : (y[j] > hi ? hi : y[j]);
        }
    }, 2 * s.plane);
}

}  // namespace detail

// batch_norm_act: clip(batch_norm2d(x, ...) [+ residual], lo, hi) as one tape node, in training and eval mode.
// The forward rounds exactly as the three ops in a row; the backward masks the output's gradient from the output
// itself (lo < y < hi, NaN passing: relu/relu6's rule when lo = 0 and hi = +inf or 6), passes it to the residual
// and then through the batch norm, giving the unfused gradients bit for bit. The tape keeps only x and y (not
// the normalised tensor nor the sum), which is what training memory needs. lo = -inf, hi = +inf: no clip.
inline Var batch_norm_act(const Var& x, const Var& gamma, const Var& beta, Tensor<float>& running_mean,
                          Tensor<float>& running_var, bool training, float momentum, float eps, const Var* residual,
                          float lo, float hi);

inline Var batch_norm2d(const Var& x, const Var& gamma, const Var& beta, Tensor<float>& running_mean,
                        Tensor<float>& running_var, bool training, float momentum = 0.1f, float eps = 1e-5f) {
    return batch_norm_act(x, gamma, beta, running_mean, running_var, training, momentum, eps, nullptr,
                          -std::numeric_limits<float>::infinity(), std::numeric_limits<float>::infinity());
}

inline Var batch_norm_act(const Var& x, const Var& gamma, const Var& beta, Tensor<float>& running_mean,
                          Tensor<float>& running_var, bool training, float momentum, float eps, const Var* residual,
                          float lo, float hi) {
    if (!x.defined()) throw std::invalid_argument("batch_norm2d: input must be defined");
    const Shape& xs = x.shape();
    auto fail = [&](const std::string& problem) {
        throw std::invalid_argument("batch_norm2d: " + problem + " (input " + shape_str(xs) +
                                    (gamma.defined() ? ", gamma " + shape_str(gamma.shape()) : "") +
                                    (beta.defined() ? ", beta " + shape_str(beta.shape()) : "") + ", running_mean " +
                                    shape_str(running_mean.shape()) + ", running_var " +
                                    shape_str(running_var.shape()) + ")");
    };
    if (xs.size() != 4) fail("input must be [N,C,H,W]");
    const detail::NormShape s{xs[0], xs[1], xs[2] * xs[3]};
    const Shape channels{s.c};
    if (gamma.defined() != beta.defined()) fail("gamma and beta must both be given or both be undefined");
    if (gamma.defined() && (gamma.shape() != channels || beta.shape() != channels)) fail("gamma and beta must be [C]");
    const bool track = running_mean.defined() || running_var.defined();
    if (track && (running_mean.shape() != channels || running_var.shape() != channels))
        fail("running_mean and running_var must be [C]");
    if (!training && !track) fail("eval mode needs running statistics");
    if (training && s.count() < 2) fail("training needs more than one value per channel");
    if (!(eps > 0.0f) || !(momentum >= 0.0f && momentum <= 1.0f)) fail("need eps > 0 and momentum in [0, 1]");
    if (residual && (!residual->defined() || residual->shape() != xs)) fail("the residual must have the input's shape");
    if (!(lo < hi)) fail("the clip needs lo < hi");
    const bool clips = lo > -std::numeric_limits<float>::infinity() || hi < std::numeric_limits<float>::infinity();

    // Statistics used to normalise, and the affine map they give: y = (x - mean) * scale + shift.
    Tensor<float> mean({s.c}), invstd({s.c}), scale({s.c}), shift({s.c});
    const float* xd = x.value().data();
    if (training) {
        parallel_for(s.c, [&](std::int64_t c) {
            const float origin = xd[c * s.plane];
            double s1 = 0.0, s2 = 0.0;
            for (std::int64_t n = 0; n < s.n; ++n) {
                const float* plane = xd + (n * s.c + c) * s.plane;
                detail::plane_sums(plane, plane, s.plane, origin, origin, s1, s2);
            }
            const double m = static_cast<double>(s.count());
            const double var = std::max(0.0, s2 / m - (s1 / m) * (s1 / m));
            mean[c] = static_cast<float>(origin + s1 / m);
            invstd[c] = static_cast<float>(1.0 / std::sqrt(var + eps));
            if (track) {
                running_mean[c] = (1.0f - momentum) * running_mean[c] + momentum * mean[c];
                running_var[c] = static_cast<float>((1.0 - momentum) * running_var[c] + momentum * var * m / (m - 1.0));
            }
        }, s.count());
    } else {
        for (std::int64_t c = 0; c < s.c; ++c) {
            mean[c] = running_mean[c];
            invstd[c] = 1.0f / std::sqrt(running_var[c] + eps);
        }
    }
    for (std::int64_t c = 0; c < s.c; ++c) {
        scale[c] = gamma.defined() ? gamma.value()[c] * invstd[c] : invstd[c];
        shift[c] = beta.defined() ? beta.value()[c] : 0.0f;
    }
    auto y = Tensor<float>::uninitialized(xs);
    if (residual || clips)
        detail::normalize_planes_act(xd, residual ? residual->value().data() : nullptr, y.data(), s, mean.data(),
                                     scale.data(), shift.data(), lo, hi);
    else
        detail::normalize_planes(xd, y.data(), s, mean.data(), scale.data(), shift.data());

    const bool affine = gamma.defined();
    auto backward = [xv = x.value(), s, training, mean, invstd, scale, affine, has_residual = residual != nullptr,
                     clips, lo, hi](Node& node) {
        Node* px = node.parents[0].get();
        Node* pg = affine ? node.parents[1].get() : nullptr;
        Node* pb = affine ? node.parents[2].get() : nullptr;
        Node* pr = has_residual && node.parents.back()->requires_grad ? node.parents.back().get() : nullptr;
        // This node's gradient is complete and read by nothing else: it is masked in place by the clip while the
        // channel sums read it. NaN kinks are never met.
        float* dy = node.grad.data();
        const float* yv = node.value.data();
        const float inf = std::numeric_limits<float>::infinity();
        const float lo_kink = clips && lo > -inf ? lo : std::numeric_limits<float>::quiet_NaN();
        const float hi_kink = clips && hi < inf ? hi : std::numeric_limits<float>::quiet_NaN();
        float* dgamma = pg && pg->requires_grad ? pg->grad_buffer().data() : nullptr;
        float* dbeta = pb && pb->requires_grad ? pb->grad_buffer().data() : nullptr;
        const double m = static_cast<double>(s.count());
        std::vector<float> dy_mean(static_cast<std::size_t>(s.c)), dyx_mean(static_cast<std::size_t>(s.c));
        parallel_for(s.c, [&, dy, yv, lo_kink, hi_kink](std::int64_t c) {
            // sum(dy) and sum(dy * xhat) = invstd * sum(dy * (x - mean)).
            double sum_dy = 0.0, sum_dy_xc = 0.0;
            for (std::int64_t n = 0; n < s.n; ++n) {
                const std::int64_t at = (n * s.c + c) * s.plane;
                if (clips) {  // a select, not a branch: the mask is as random as the activations
                    float* g = dy + at;
                    const float* yp = yv + at;
                    for (std::int64_t j = 0; j < s.plane; ++j)
                        g[j] = yp[j] <= lo_kink || yp[j] >= hi_kink ? 0.0f : g[j];
                }
                detail::plane_sums(dy + at, xv.data() + at, s.plane, 0.0f, mean[c], sum_dy, sum_dy_xc);
            }
            const double sum_dy_xhat = sum_dy_xc * invstd[c];
            if (dgamma) dgamma[c] += static_cast<float>(sum_dy_xhat);
            if (dbeta) dbeta[c] += static_cast<float>(sum_dy);
            // Training: the batch statistics depend on x, which removes the gradient's mean and its xhat part.
            dy_mean[static_cast<std::size_t>(c)] = training ? static_cast<float>(sum_dy / m) : 0.0f;
            dyx_mean[static_cast<std::size_t>(c)] = training ? static_cast<float>(sum_dy_xhat / m) : 0.0f;
        }, s.count());
        // The residual's gradient is the masked one; it is passed on in the same sweep as dx when the two are
        // different buffers.
        const bool dx_wanted = px->requires_grad;
        if (pr && (pr == px || !dx_wanted)) {
            detail::add_scaled(*pr, node.grad, 1.0f);
            pr = nullptr;
        }
        if (!dx_wanted && !pr) return;
        const bool dx_accumulates = dx_wanted && px->grad_accumulates();
        float* dx = dx_wanted ? px->grad.data() : nullptr;
        const bool dr_accumulates = pr && pr->grad_accumulates();
        float* dr = pr ? pr->grad.data() : nullptr;
        const float* xd = xv.data();
        parallel_for(s.n * s.c, [&, dx, dr, dy, xd, dx_accumulates, dr_accumulates](std::int64_t i) {
            const std::int64_t c = i % s.c, at = i * s.plane, count = s.plane;
            const float k = scale[c], mu = mean[c], is = invstd[c];
            const float dm = dy_mean[static_cast<std::size_t>(c)], dxm = dyx_mean[static_cast<std::size_t>(c)];
            const float* g = dy + at;
            const float* xp = xd + at;
            if (float* d = dx ? dx + at : nullptr; d && dx_accumulates)
                for (std::int64_t j = 0; j < count; ++j) d[j] += k * (g[j] - dm - (xp[j] - mu) * is * dxm);
            else if (d)
                for (std::int64_t j = 0; j < count; ++j) d[j] = k * (g[j] - dm - (xp[j] - mu) * is * dxm);
            if (float* d = dr ? dr + at : nullptr; d && dr_accumulates)
                for (std::int64_t j = 0; j < count; ++j) d[j] += g[j];
            else if (d)
                for (std::int64_t j = 0; j < count; ++j) d[j] = g[j];
        }, 3 * s.plane);
    };
    if (affine && residual) return make_result(std::move(y), {&x, &gamma, &beta, residual}, std::move(backward));
    if (affine) return make_result(std::move(y), {&x, &gamma, &beta}, std::move(backward));
    if (residual) return make_result(std::move(y), {&x, residual}, std::move(backward));
    return make_result(std::move(y), {&x}, std::move(backward));
}

}  // namespace ironclad

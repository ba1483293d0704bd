// Integer kernels of the exact mode: every layer of the model zoo on raw fixed-point tensors (int32, NCHW),
// with the arithmetic of exact/exact_arithmetic.hpp and per-call overflow counts.
//
// Contract: results are bit-exact functions of the raw inputs, independent of the thread count (images are split
// over threads; counts are integer sums). A multiply-accumulate first bounds its sums (max |x| times the largest
// sum of |w| over an output's taps, plus the bias): when no partial sum can leave the accumulator, products are
// summed in plain int64 in any order (vectorised), which is then exactly the contract's result; otherwise every
// addition goes through ExactArithmetic::accumulate in tap order. Zero inputs are skipped: adding a zero product
// never changes an accumulator, saturating or not. The convolution can apply a following batch norm, residual
// sum and clamp to each image's output while it is in cache (ExactPostOps): the same raws and counts as the calls.
#pragma once

#include "ironclad/autograd/conv.hpp"
#include "ironclad/exact/exact_arithmetic.hpp"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <span>
#include <stdexcept>
#include <string>
#include <vector>

namespace ironclad {

using RawTensor = Tensor<std::int32_t>;

namespace detail {

inline std::int64_t max_abs(const RawTensor& t) {
    std::int64_t m = 0;
    const std::int32_t* p = t.data();
    const std::int64_t n = t.numel();
#pragma omp parallel for reduction(max : m) schedule(static) if (n > 65536)
    for (std::int64_t i = 0; i < n; ++i) m = std::max<std::int64_t>(m, std::abs(static_cast<std::int64_t>(p[i])));
    return m;
}

}  // namespace detail

// What exact_conv2d may apply to each image's output while it is in cache, in this order: the batch norm's
// per-channel multiply-accumulate (exact_channel_affine), the residual sum (exact_add) and the clamp (exact_clamp).
// The results and counts are those of the separate calls; each step's narrowings count where that call's would.
struct ExactPostOps {
    std::span<const std::int32_t> scale, shift;  // the batch norm; empty: none
    SaturationCounts* norm_counts = nullptr;
    const RawTensor* residual = nullptr;  // the conv output's shape; null: none
    SaturationCounts* add_counts = nullptr;
    bool clamp = false;
    std::int32_t lo = 0, hi = INT32_MAX;
};

// Whether a batch norm with these constants can follow a convolution inside it: no multiply-accumulate on any raw
// of the format can leave the accumulator (exact_channel_affine checks the actual values instead, which the fused
// path does not have).
inline bool exact_affine_fusable(std::span<const std::int32_t> scale, std::span<const std::int32_t> shift,
                                 const ExactArithmetic& a) {
    const double limit = static_cast<double>(a.accumulator_max()) * (1 - 1e-9);
    for (std::size_t c = 0; c < scale.size(); ++c)
        if (std::ldexp(std::abs(static_cast<double>(shift[c])), a.format.frac_bits) +
                std::abs(static_cast<double>(scale[c])) * static_cast<double>(-a.raw_min()) >= limit)
            return false;
    return true;
}

// Float values into raws of the format (the input layer of a deployed model).
inline RawTensor exact_quantize(const Tensor<float>& x, const ExactArithmetic& a, SaturationCounts& counts) {
    auto y = RawTensor::uninitialized(x.shape());
    std::int64_t overflows = 0;
    const std::int64_t n = x.numel();
#pragma omp parallel for reduction(+ : overflows) schedule(static) if (n > 65536)
    for (std::int64_t i = 0; i < n; ++i) {
        bool o = false;
        y.data()[i] = a.raw_of(static_cast<double>(x.data()[i]), o);
        overflows += o;
    }
    counts.narrowing += overflows;
    return y;
}

inline Tensor<float> exact_dequantize(const RawTensor& x, const ExactArithmetic& a) {
    auto y = Tensor<float>::uninitialized(x.shape());
    for (std::int64_t i = 0; i < x.numel(); ++i) y.data()[i] = static_cast<float>(a.value_of(x.data()[i]));
    return y;
}

// x [N,C,H,W], w [O,C/groups,KH,KW], bias [O] or empty -> [N,O,Ho,Wo], then `post`'s steps on each image.
inline RawTensor exact_conv2d(const RawTensor& x, const RawTensor& w, const RawTensor& bias, Conv2dOptions opt,
                              const ExactArithmetic& a, SaturationCounts& counts, const ExactPostOps& post = {}) {
    if (x.ndim() != 4 || w.ndim() != 4 || opt.groups < 1 || x.dim(1) != w.dim(1) * opt.groups ||
        w.dim(0) % opt.groups != 0 || (bias.numel() != 0 && bias.numel() != w.dim(0)))
        throw std::invalid_argument("exact conv2d: input " + shape_str(x.shape()) + " and weight " +
                                    shape_str(w.shape()) + " do not fit (groups " + std::to_string(opt.groups) + ")");
    const std::int64_t n = x.dim(0), c = x.dim(1), h = x.dim(2), wd = x.dim(3);
    const std::int64_t o = w.dim(0), kh = w.dim(2), kw = w.dim(3), g = opt.groups, cg = c / g, og = o / g;
    const std::int64_t s = opt.stride, p = opt.padding, hp = h + 2 * p, wp = wd + 2 * p;
    const std::int64_t ho = (hp - kh) / s + 1, wo = (wp - kw) / s + 1, taps = cg * kh * kw;
    if (ho < 1 || wo < 1) throw std::invalid_argument("exact conv2d: kernel larger than the padded input");
    const int frac = a.format.frac_bits;

    // Weights as [group][tap][og] so the innermost loop runs over output channels; the sum bound per output.
    std::vector<std::int32_t> wt(static_cast<std::size_t>(g * taps * og));
    std::vector<std::int64_t> tap_offset(static_cast<std::size_t>(taps));
    const auto x_max = static_cast<double>(detail::max_abs(x));
    double worst = 0;
    for (std::int64_t oc = 0; oc < o; ++oc) {
        const std::int64_t gi = oc / og, ol = oc % og;
        double sum = 0;
        for (std::int64_t t = 0; t < taps; ++t) {
            const std::int32_t v = w.data()[oc * taps + t];
            wt[static_cast<std::size_t>((gi * taps + t) * og + ol)] = v;
            sum += std::abs(static_cast<double>(v));
        }
        const double b = bias.numel() ? std::ldexp(std::abs(static_cast<double>(bias.data()[oc])), frac) : 0.0;
        worst = std::max(worst, sum * x_max + b);
    }
    for (std::int64_t t = 0; t < taps; ++t) {
        const std::int64_t ci = t / (kh * kw), ky = t / kw % kh, kx = t % kw;
        tap_offset[static_cast<std::size_t>(t)] = ci * hp * wp + ky * wp + kx;
    }
    // Doubles hold every integer up to 2^53 exactly and round up monotonically beyond; the margin covers that.
    const bool no_overflow = worst < static_cast<double>(a.accumulator_max()) * (1 - 1e-9);

    const bool norm = !post.scale.empty();
    const auto channels_of = [o](std::span<const std::int32_t> v) { return static_cast<std::int64_t>(v.size()) == o; };
    if (norm && (!channels_of(post.scale) || !channels_of(post.shift) || !exact_affine_fusable(post.scale, post.shift, a)))
        throw std::invalid_argument("exact conv2d: the batch norm after it needs " + std::to_string(o) +
                                    " scales and shifts whose products cannot leave the accumulator");
    if (post.residual && post.residual->shape() != Shape{n, o, ho, wo})
        throw std::invalid_argument("exact conv2d: residual " + shape_str(post.residual->shape()) +
                                    " does not fit the output " + shape_str(Shape{n, o, ho, wo}));
    std::vector<std::int64_t> norm_start(static_cast<std::size_t>(norm ? o : 0)), norm_scale(norm_start.size());
    for (std::size_t oc = 0; oc < norm_start.size(); ++oc) {
        norm_start[oc] = static_cast<std::int64_t>(post.shift[oc]) * (std::int64_t{1} << frac);
        norm_scale[oc] = post.scale[oc];
    }

    auto y = RawTensor::uninitialized({n, o, ho, wo});
    const std::int64_t pixels = ho * wo;
    std::int64_t acc_events = 0, narrow_events = 0, norm_events = 0, add_events = 0;
    // post's steps on the planes of one image (without the batch norm when the GEMM's epilogue applied it).
    const std::int32_t lo = post.clamp ? post.lo : INT32_MIN, hi = post.clamp ? post.hi : INT32_MAX;
    auto finish_image = [&](std::int64_t img, bool with_norm, std::int64_t& norm_ev, std::int64_t& add_ev) {
        for (std::int64_t oc = 0; oc < o; ++oc) {
            std::int32_t* yp = y.data() + (img * o + oc) * pixels;
            if (with_norm) {
                const std::int64_t st = norm_start[static_cast<std::size_t>(oc)];
                const std::int64_t k = norm_scale[static_cast<std::size_t>(oc)];
                norm_ev += a.narrow_rounded(
                    pixels, frac, [&](std::int64_t i) { return st + k * yp[i]; },
                    [&](std::int64_t i, std::int32_t v) { yp[i] = v; });
            }
            if (post.residual) {
                const std::int32_t* rp = post.residual->data() + (img * o + oc) * pixels;
                add_ev += a.narrow_rounded(
                    pixels, 0, [&](std::int64_t i) { return static_cast<std::int64_t>(yp[i]) + rp[i]; },
                    [&](std::int64_t i, std::int32_t v) { yp[i] = std::min(std::max(v, lo), hi); });
            } else if (post.clamp) {
                for (std::int64_t i = 0; i < pixels; ++i) yp[i] = std::min(std::max(yp[i], lo), hi);
            }
        }
    };
    auto add_counts = [&] {
        counts.accumulator += acc_events;
        counts.narrowing += narrow_events;
        if (post.norm_counts) post.norm_counts->narrowing += norm_events;
        if (post.add_counts) post.add_counts->narrowing += add_events;
    };
    // Below 2^53 every product and partial sum is an integer a double holds exactly, so a double GEMM (any order,
    // fused or not) gives the exact sum: the fast path for all but the widest values. It is the float kernels'
    // gather-GEMM (core/gemm.hpp) in doubles: rows are output pixels read in place from the padded image, columns
    // output channels. Each tile is narrowed (and put through the batch norm) along its channels into a
    // pixel-major copy of the image's output, transposed into place when the image is done.
    const bool addressable = c * hp * wp < (std::int64_t{1} << 31);  // offsets are int32
    if (no_overflow && worst < 0x1p53 && cg > 1 && addressable) {
        constexpr std::int64_t lanes = kLanesOf<double>;
        const std::int64_t ld = (og + lanes - 1) / lanes * lanes;
        std::vector<double> packed(static_cast<std::size_t>(g * taps * ld), 0.0);
        for (std::int64_t gt = 0; gt < g * taps; ++gt)
            for (std::int64_t ol = 0; ol < og; ++ol)
                packed[static_cast<std::size_t>(gt * ld + ol)] = wt[static_cast<std::size_t>(gt * og + ol)];
        std::vector<std::int32_t> rows, red(tap_offset.begin(), tap_offset.end());
        for (std::int64_t oy = 0; oy < ho; ++oy)
            for (std::int64_t ox = 0; ox < wo; ++ox) rows.push_back(static_cast<std::int32_t>(oy * s * wp + ox * s));
        std::vector<std::int64_t> start(static_cast<std::size_t>(o), 0);
        if (bias.numel())
            for (std::int64_t oc = 0; oc < o; ++oc)
                start[static_cast<std::size_t>(oc)] =
                    static_cast<std::int64_t>(bias.data()[oc]) * (std::int64_t{1} << frac);
#pragma omp parallel reduction(+ : narrow_events, norm_events, add_events)
        {
            std::vector<double> xpad(static_cast<std::size_t>(c * hp * wp), 0.0);  // the border stays zero
            std::vector<std::int32_t> by_pixel(static_cast<std::size_t>(pixels * o));  // [pixel][channel]
#pragma omp for schedule(static)
            for (std::int64_t img = 0; img < n; ++img) {
                for (std::int64_t ci = 0; ci < c; ++ci)
                    for (std::int64_t i = 0; i < h; ++i) {
                        const std::int32_t* src = x.data() + ((img * c + ci) * h + i) * wd;
                        double* dst = xpad.data() + ci * hp * wp + (i + p) * wp + p;
                        for (std::int64_t j = 0; j < wd; ++j) dst[j] = src[j];
                    }
                for (std::int64_t gi = 0; gi < g; ++gi)
                    gather_gemm(xpad.data() + gi * cg * hp * wp, rows, red, packed.data() + gi * taps * ld, ld,
                                [&](std::int64_t p0, int nr, std::int64_t c0, const double* tile, int tld) {
                                    const std::int64_t channels = std::min<std::int64_t>(tld, og - c0);
                                    const std::int64_t first = gi * og + c0;
                                    const std::int64_t* st = start.data() + first;
                                    const std::int64_t* ns = norm ? norm_start.data() + first : nullptr;
                                    const std::int64_t* nk = norm ? norm_scale.data() + first : nullptr;
                                    // The conv's narrowing and the batch norm's in one loop over each row.
                                    a.with_narrowing(frac, [&](auto narrow) {
                                        std::int64_t conv_overflows = 0, norm_overflows = 0;
                                        for (int r = 0; r < nr; ++r) {
                                            const double* sums = tile + r * tld;
                                            std::int32_t* out = by_pixel.data() + (p0 + r) * o + first;
                                            if (norm)
                                                for (std::int64_t i = 0; i < channels; ++i) {
                                                    const std::int32_t v = narrow(
                                                        st[i] + static_cast<std::int64_t>(sums[i]), conv_overflows);
                                                    out[i] = narrow(ns[i] + nk[i] * v, norm_overflows);
                                                }
                                            else
                                                for (std::int64_t i = 0; i < channels; ++i)
                                                    out[i] = narrow(st[i] + static_cast<std::int64_t>(sums[i]),
                                                                    conv_overflows);
                                        }
                                        narrow_events += conv_overflows;
                                        norm_events += norm_overflows;
                                    });
                                });
                transpose(by_pixel.data(), pixels, o, o, y.data() + img * o * pixels, pixels);
                finish_image(img, false, norm_events, add_events);
            }
        }
        add_counts();
        return y;
    }
    // One input channel per group without overflow (MobileNetV2's and ShuffleNetV2's depthwise layers): each output
    // plane is the sum over its few taps, taken tap by tap along whole output rows in int64 (exact in any order
    // here) and narrowed once per plane; the per-pixel loop below would narrow one value at a time.
    if (no_overflow && cg == 1) {
#pragma omp parallel reduction(+ : narrow_events, norm_events, add_events)
        {
            std::vector<std::int32_t> plane(static_cast<std::size_t>(hp * wp), 0);  // the border stays zero
            std::vector<std::int64_t> acc(static_cast<std::size_t>(pixels));
#pragma omp for schedule(static)
            for (std::int64_t img = 0; img < n; ++img) {
                for (std::int64_t oc = 0; oc < o; ++oc) {
                    const std::int32_t* src = x.data() + (img * c + oc / og) * h * wd;
                    for (std::int64_t i = 0; i < h; ++i)
                        std::copy_n(src + i * wd, wd, plane.data() + (i + p) * wp + p);
                    const std::int64_t start =
                        bias.numel() ? static_cast<std::int64_t>(bias.data()[oc]) * (std::int64_t{1} << frac) : 0;
                    std::fill(acc.begin(), acc.end(), start);
                    for (std::int64_t t = 0; t < taps; ++t) {
                        const std::int64_t wv = w.data()[oc * taps + t];
                        if (wv == 0) continue;
                        for (std::int64_t oy = 0; oy < ho; ++oy) {
                            const std::int32_t* xr = plane.data() + (oy * s + t / kw) * wp + t % kw;
                            std::int64_t* ar = acc.data() + oy * wo;
                            if (s == 1)
                                for (std::int64_t ox = 0; ox < wo; ++ox) ar[ox] += wv * xr[ox];
                            else
                                for (std::int64_t ox = 0; ox < wo; ++ox) ar[ox] += wv * xr[ox * s];
                        }
                    }
                    std::int32_t* dst = y.data() + (img * o + oc) * pixels;
                    narrow_events += a.narrow_rounded(
                        pixels, frac, [&](std::int64_t i) { return acc[static_cast<std::size_t>(i)]; },
                        [dst](std::int64_t i, std::int32_t v) { dst[i] = v; });
                }
                finish_image(img, norm, norm_events, add_events);
            }
        }
        add_counts();
        return y;
    }
#pragma omp parallel for reduction(+ : acc_events, narrow_events, norm_events, add_events) schedule(static)
    for (std::int64_t img = 0; img < n; ++img) {
        std::vector<std::int32_t> xpad(static_cast<std::size_t>(c * hp * wp), 0);
        for (std::int64_t ci = 0; ci < c; ++ci)
            for (std::int64_t i = 0; i < h; ++i)
                std::copy_n(x.data() + ((img * c + ci) * h + i) * wd, wd,
                            xpad.data() + ci * hp * wp + (i + p) * wp + p);
        std::vector<std::int64_t> acc(static_cast<std::size_t>(og));
        std::vector<char> overflowed(static_cast<std::size_t>(og));
        for (std::int64_t gi = 0; gi < g; ++gi) {
            const std::int32_t* xg = xpad.data() + gi * cg * hp * wp;
            const std::int32_t* wg = wt.data() + gi * taps * og;
            for (std::int64_t oy = 0; oy < ho; ++oy)
                for (std::int64_t ox = 0; ox < wo; ++ox) {
                    const std::int32_t* xo = xg + oy * s * wp + ox * s;
                    for (std::int64_t ol = 0; ol < og; ++ol) {
                        const std::int64_t oc = gi * og + ol;
                        acc[static_cast<std::size_t>(ol)] =
                            bias.numel() ? static_cast<std::int64_t>(bias.data()[oc]) * (std::int64_t{1} << frac) : 0;
                    }
                    std::int64_t* ac = acc.data();
                    if (no_overflow) {
                        for (std::int64_t t = 0; t < taps; ++t) {
                            const std::int64_t xv = xo[tap_offset[static_cast<std::size_t>(t)]];
                            if (xv == 0) continue;
                            const std::int32_t* wr = wg + t * og;
                            for (std::int64_t ol = 0; ol < og; ++ol) ac[ol] += xv * wr[ol];
                        }
                    } else {
                        std::fill(overflowed.begin(), overflowed.end(), 0);
                        for (std::int64_t t = 0; t < taps; ++t) {
                            const std::int64_t xv = xo[tap_offset[static_cast<std::size_t>(t)]];
                            if (xv == 0) continue;
                            const std::int32_t* wr = wg + t * og;
                            for (std::int64_t ol = 0; ol < og; ++ol) {
                                bool f = false;
                                ac[ol] = a.accumulate(ac[ol], xv * wr[ol], f);
                                overflowed[static_cast<std::size_t>(ol)] |= f;
                            }
                        }
                        for (char f : overflowed) acc_events += f;
                    }
                    std::int32_t* dst = y.data() + ((img * o + gi * og) * ho + oy) * wo + ox;
                    narrow_events += a.narrow_rounded(
                        og, frac, [&](std::int64_t ol) { return ac[ol]; },
                        [&](std::int64_t ol, std::int32_t v) { dst[ol * ho * wo] = v; });
                }
        }
        finish_image(img, norm, norm_events, add_events);
    }
    add_counts();
    return y;
}

// x [N,in], w [out,in], bias [out] or empty -> [N,out]: a 1x1 convolution of a 1x1 image.
inline RawTensor exact_linear(const RawTensor& x, const RawTensor& w, const RawTensor& bias,
                              const ExactArithmetic& a, SaturationCounts& counts) {
    if (x.ndim() != 2 || w.ndim() != 2 || x.dim(1) != w.dim(1))
        throw std::invalid_argument("exact linear: input " + shape_str(x.shape()) + " and weight " +
                                    shape_str(w.shape()) + " do not fit");
    const RawTensor y = exact_conv2d(x.view({x.dim(0), x.dim(1), 1, 1}), w.view({w.dim(0), w.dim(1), 1, 1}), bias,
                                     Conv2dOptions{}, a, counts);
    return y.view({x.dim(0), w.dim(0)});
}

// Per-channel affine y = x * scale[c] + shift[c] (BN at inference), one multiply-accumulate per element.
inline RawTensor exact_channel_affine(const RawTensor& x, std::span<const std::int32_t> scale,
                                      std::span<const std::int32_t> shift, const ExactArithmetic& a,
                                      SaturationCounts& counts) {
    const std::int64_t n = x.dim(0), c = x.dim(1), inner = x.numel() / std::max<std::int64_t>(1, n * c);
    if (static_cast<std::int64_t>(scale.size()) != c || static_cast<std::int64_t>(shift.size()) != c)
        throw std::invalid_argument("exact batch norm: " + std::to_string(scale.size()) + " channels for input " +
                                    shape_str(x.shape()));
    const int frac = a.format.frac_bits;
    const auto x_max = static_cast<double>(detail::max_abs(x));
    auto y = RawTensor::uninitialized(x.shape());
    std::int64_t acc_events = 0, narrow_events = 0;
#pragma omp parallel for reduction(+ : acc_events, narrow_events) schedule(static) if (x.numel() > 65536)
    for (std::int64_t plane = 0; plane < n * c; ++plane) {
        const std::int64_t ch = plane % c;
        const std::int64_t start = static_cast<std::int64_t>(shift[static_cast<std::size_t>(ch)]) * (std::int64_t{1} << frac);
        const std::int64_t k = scale[static_cast<std::size_t>(ch)];
        const std::int32_t* xp = x.data() + plane * inner;
        std::int32_t* yp = y.data() + plane * inner;
        if (std::abs(static_cast<double>(start)) + std::abs(static_cast<double>(k)) * x_max <
            static_cast<double>(a.accumulator_max()) * (1 - 1e-9)) {  // no sum can leave the accumulator
            narrow_events += a.narrow_rounded(
                inner, frac, [&](std::int64_t i) { return start + k * xp[i]; },
                [&](std::int64_t i, std::int32_t v) { yp[i] = v; });
            continue;
        }
        for (std::int64_t i = plane * inner; i < (plane + 1) * inner; ++i) {
            bool fa = false, fn = false;
            const std::int64_t acc = a.accumulate(start, k * x.data()[i], fa);
            y.data()[i] = a.narrow(a.shift_round(acc, frac), fn);
            acc_events += fa;
            narrow_events += fn;
        }
    }
    counts.accumulator += acc_events;
    counts.narrowing += narrow_events;
    return y;
}

// max(x, lo) and, when `hi` is given, min(., hi): ReLU (lo 0) and ReLU6 (hi = the raw of 6).
inline RawTensor exact_clamp(const RawTensor& x, std::int32_t lo, std::int32_t hi = INT32_MAX) {
    auto y = RawTensor::uninitialized(x.shape());
    const std::int64_t n = x.numel();
#pragma omp parallel for schedule(static) if (n > 65536)
    for (std::int64_t i = 0; i < n; ++i) y.data()[i] = std::min(std::max(x.data()[i], lo), hi);
    return y;
}

// Element-wise sum of two equal shapes (the residual addition).
inline RawTensor exact_add(const RawTensor& x, const RawTensor& z, const ExactArithmetic& a, SaturationCounts& counts) {
    if (x.shape() != z.shape())
        throw std::invalid_argument("exact add: shapes " + shape_str(x.shape()) + " and " + shape_str(z.shape()));
    auto y = RawTensor::uninitialized(x.shape());
    std::int64_t events = 0;
    const std::int64_t n = x.numel();
#pragma omp parallel for reduction(+ : events) schedule(static) if (n > 65536)
    for (std::int64_t i = 0; i < n; ++i) {
        bool f = false;
        y.data()[i] = a.narrow(static_cast<std::int64_t>(x.data()[i]) + z.data()[i], f);
        events += f;
    }
    counts.narrowing += events;
    return y;
}

// Max pooling with PyTorch's semantics (padding never wins: it is -infinity).
inline RawTensor exact_max_pool2d(const RawTensor& x, int kernel, int stride, int padding) {
    const std::int64_t n = x.dim(0), c = x.dim(1), h = x.dim(2), w = x.dim(3);
    const std::int64_t ho = (h + 2 * padding - kernel) / stride + 1, wo = (w + 2 * padding - kernel) / stride + 1;
    auto y = RawTensor::uninitialized({n, c, ho, wo});
#pragma omp parallel for schedule(static) if (n * c * ho * wo > 65536)
    for (std::int64_t plane = 0; plane < n * c; ++plane)
        for (std::int64_t i = 0; i < ho; ++i)
            for (std::int64_t j = 0; j < wo; ++j) {
                std::int32_t m = INT32_MIN;
                for (std::int64_t ky = 0; ky < kernel; ++ky)
                    for (std::int64_t kx = 0; kx < kernel; ++kx) {
                        const std::int64_t yi = i * stride - padding + ky, xj = j * stride - padding + kx;
                        if (yi >= 0 && yi < h && xj >= 0 && xj < w) m = std::max(m, x.data()[(plane * h + yi) * w + xj]);
                    }
                y.data()[(plane * ho + i) * wo + j] = m;
            }
    return y;
}

// Mean over each plane: the sum in the accumulator, divided by H*W with the format's rounding -> [N,C].
inline RawTensor exact_global_avg_pool(const RawTensor& x, const ExactArithmetic& a, SaturationCounts& counts) {
    const std::int64_t n = x.dim(0), c = x.dim(1), inner = x.numel() / std::max<std::int64_t>(1, n * c);
    const bool no_overflow = static_cast<double>(inner) * static_cast<double>(detail::max_abs(x)) <
                             static_cast<double>(a.accumulator_max()) * (1 - 1e-9);
    auto y = RawTensor::uninitialized({n, c});
    std::int64_t acc_events = 0, narrow_events = 0;
    for (std::int64_t plane = 0; plane < n * c; ++plane) {
        std::int64_t sum = 0;
        bool fa = false, fn = false;
        for (std::int64_t i = plane * inner; i < (plane + 1) * inner; ++i)
            sum = no_overflow ? sum + x.data()[i] : a.accumulate(sum, x.data()[i], fa);
        y.data()[plane] = a.narrow(a.divide_round(sum, inner), fn);
        acc_events += fa;
        narrow_events += fn;
    }
    counts.accumulator += acc_events;
    counts.narrowing += narrow_events;
    return y;
}

// Data movement, bit for bit: option-A shortcut (subsample, zero channels on both sides), channel split,
// concatenation and shuffle (as autograd/shape_ops.hpp's float versions).
inline RawTensor exact_shortcut_option_a(const RawTensor& x, std::int64_t out_channels, std::int64_t stride) {
    const std::int64_t n = x.dim(0), c = x.dim(1), h = x.dim(2), w = x.dim(3);
    const std::int64_t oh = (h + stride - 1) / stride, ow = (w + stride - 1) / stride, pad = (out_channels - c) / 2;
    RawTensor y({n, out_channels, oh, ow});
    for (std::int64_t b = 0; b < n; ++b)
        for (std::int64_t ch = 0; ch < c; ++ch)
            for (std::int64_t i = 0; i < oh; ++i)
                for (std::int64_t j = 0; j < ow; ++j)
                    y.data()[((b * out_channels + pad + ch) * oh + i) * ow + j] =
                        x.data()[((b * c + ch) * h + i * stride) * w + j * stride];
    return y;
}

inline RawTensor exact_channels(const RawTensor& x, std::int64_t first, std::int64_t count) {
    Shape shape = x.shape();
    const std::int64_t n = shape[0], c = shape[1], inner = x.numel() / std::max<std::int64_t>(1, n * c);
    shape[1] = count;
    auto y = RawTensor::uninitialized(shape);
    for (std::int64_t b = 0; b < n; ++b)
        std::copy_n(x.data() + (b * c + first) * inner, count * inner, y.data() + b * count * inner);
    return y;
}

inline RawTensor exact_concat_channels(const RawTensor& x, const RawTensor& z) {
    Shape shape = x.shape();
    const std::int64_t n = shape[0], cx = x.dim(1), cz = z.dim(1), inner = x.numel() / std::max<std::int64_t>(1, n * cx);
    shape[1] = cx + cz;
    auto y = RawTensor::uninitialized(shape);
    for (std::int64_t b = 0; b < n; ++b) {
        std::copy_n(x.data() + b * cx * inner, cx * inner, y.data() + b * (cx + cz) * inner);
        std::copy_n(z.data() + b * cz * inner, cz * inner, y.data() + (b * (cx + cz) + cx) * inner);
    }
    return y;
}

inline RawTensor exact_channel_shuffle(const RawTensor& x, std::int64_t groups) {
    const std::int64_t n = x.dim(0), c = x.dim(1), inner = x.numel() / std::max<std::int64_t>(1, n * c);
    const std::int64_t per_group = c / groups;
    auto y = RawTensor::uninitialized(x.shape());
    for (std::int64_t b = 0; b < n; ++b)
        for (std::int64_t o = 0; o < c; ++o)
            std::copy_n(x.data() + (b * c + (o % groups) * per_group + o / groups) * inner, inner,
                        y.data() + (b * c + o) * inner);
    return y;
}

}  // namespace ironclad

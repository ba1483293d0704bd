// conv2d: 2-d convolution with PyTorch semantics (zero padding, one stride and padding for both axes,
// groups), forward and backward.
//
// x: [N,C,H,W], weight: [O, C/groups, KH, KW], bias: [O] or an undefined Var, y: [N,O,Ho,Wo] with
// Ho = (H + 2*padding - KH) / stride + 1 (likewise Wo).
// Every product is a gather-GEMM (core/gemm.hpp) read straight from a zero-padded copy of one image, so no
// im2col matrix is ever built; the vector dimension is always a channel dimension:
//   forward        y[pixel][o]  = sum over taps (c,ky,kx)  of xpad[pixel + tap]  * W[tap][o]
//   input grad     dx[pixel][c] = sum over taps (o,ky,kx)  of dypad[pixel + tap] * W[tap][c]   (one pass per
//                  stride phase: dx rows/cols congruent mod stride see the same subset of kernel taps)
//   weight grad    dW[tap][o]   = sum over output pixels   of xpad[tap + pixel]  * dy[pixel][o]
// except that stride-1 layers with few output channels (or 1x1 kernels) and whole-vector rows run the forward
// and the input gradient through a direct kernel whose vectors are output pixels (direct_conv below), with the
// same sums in the same order.
// Images are split over threads; weight and bias gradients are summed per fixed chunk of images (or per
// channel) and the chunks added in order, so results are bit-identical for any thread count. A conv with
// one input channel per group (depthwise) has too short a reduction for a GEMM and runs direct per-plane
// loops instead, or channels-last per image (small planes forward, every size backward). Only the gradients of
// inputs that require one are computed.
#pragma once

#include "ironclad/autograd/variable.hpp"
#include "ironclad/core/gemm.hpp"
#include "ironclad/core/parallel.hpp"

#include <algorithm>
#include <cstdint>
#include <limits>
#include <span>
#include <stdexcept>
#include <string>
#include <vector>

namespace ironclad {

struct Conv2dOptions {
    int stride = 1;
    int padding = 0;
    int groups = 1;
};

namespace detail {

struct ConvShape {
    std::int64_t n, c, h, w;   // input
    std::int64_t o, kh, kw;    // weight
    std::int64_t ho, wo;       // output
    std::int64_t groups, cg, og;
    std::int64_t stride, pad;
    std::int64_t hp() const { return h + 2 * pad; }
    std::int64_t wp() const { return w + 2 * pad; }
    std::int64_t taps() const { return cg * kh * kw; }   // reduction depth of the forward GEMM
    std::int64_t pixels() const { return ho * wo; }
};

inline ConvShape conv_shape(const Var& x, const Var& weight, const Var& bias, Conv2dOptions opt) {
    if (!x.defined() || !weight.defined()) throw std::invalid_argument("conv2d: input and weight must be defined");
    const Shape& xs = x.shape();
    const Shape& ws = weight.shape();
    auto fail = [&](const std::string& problem) {
        throw std::invalid_argument("conv2d: " + problem + " (input " + shape_str(xs) + ", weight " + shape_str(ws) +
                                    (bias.defined() ? ", bias " + shape_str(bias.shape()) : "") + ", stride " +
                                    std::to_string(opt.stride) + ", padding " + std::to_string(opt.padding) +
                                    ", groups " + std::to_string(opt.groups) + ")");
    };
    if (opt.stride < 1 || opt.padding < 0 || opt.groups < 1) fail("stride and groups must be >= 1, padding >= 0");
    if (xs.size() != 4) fail("input must be [N,C,H,W]");
    if (ws.size() != 4) fail("weight must be [O,C/groups,KH,KW]");
    if (std::any_of(xs.begin() + 1, xs.end(), [](auto d) { return d < 1; }) ||
        std::any_of(ws.begin(), ws.end(), [](auto d) { return d < 1; }))
        fail("empty channel, spatial or kernel dimension");
    ConvShape s{};
    s.n = xs[0], s.c = xs[1], s.h = xs[2], s.w = xs[3];
    s.o = ws[0], s.kh = ws[2], s.kw = ws[3];
    s.groups = opt.groups, s.stride = opt.stride, s.pad = opt.padding;
    if (s.c % s.groups != 0 || s.o % s.groups != 0) fail("groups must divide the input and output channels");
    s.cg = s.c / s.groups, s.og = s.o / s.groups;
    if (ws[1] != s.cg) fail("weight expects " + std::to_string(ws[1]) + " input channels per group, input has " +
                            std::to_string(s.cg));
    if (s.hp() < s.kh || s.wp() < s.kw) fail("kernel larger than the padded input");
    if (bias.defined() && bias.shape() != Shape{s.o}) fail("bias must be [O]");
    s.ho = (s.hp() - s.kh) / s.stride + 1;
    s.wo = (s.wp() - s.kw) / s.stride + 1;
    // Gather offsets are 32-bit; a padded image (or gradient image) must fit.
    const std::int64_t largest = std::max(s.c * s.hp() * s.wp(), s.o * (s.ho + 2 * s.kh) * (s.wo + 2 * s.kw));
    if (largest >= std::numeric_limits<std::int32_t>::max()) fail("image too large");
    return s;
}

// Weight gradients are summed over this many fixed chunks of the batch, then over the chunks in order.
inline constexpr std::int64_t kGradChunks = 8;
// Thread scratch slots.
inline constexpr int kPaddedInputSlot = 0, kPaddedGradSlot = 1, kGradTransposeSlot = 2, kPixelMajorSlot = 3;

// dst: [planes, hp, wp] holding src [planes, h, w] at (top, left), zeros elsewhere. Loop-to-memset conversion is
// off here: it turns the one- or two-float borders of every row into library calls that cost more than the copy.
__attribute__((optimize("no-tree-loop-distribute-patterns"))) inline void pad_planes(const float* src, std::int64_t planes, std::int64_t h, std::int64_t w, std::int64_t top,
                       std::int64_t left, std::int64_t hp, std::int64_t wp, float* dst) {
    for (std::int64_t p = 0; p < planes; ++p, src += h * w, dst += hp * wp) {
        std::fill(dst, dst + top * wp, 0.0f);
        for (std::int64_t y = 0; y < h; ++y) {
            float* row = dst + (top + y) * wp;
            for (std::int64_t i = 0; i < left; ++i) row[i] = 0.0f;
            copy_floats(row + left, src + y * w, w);
            for (std::int64_t i = left + w; i < wp; ++i) row[i] = 0.0f;
        }
        std::fill(dst + (top + h) * wp, dst + hp * wp, 0.0f);
    }
}

// One image [C,H,W] zero-padded by the conv's padding, in this thread's scratch (or img itself when padding is 0).
inline const float* padded_image(const float* img, const ConvShape& s) {
    if (s.pad == 0) return img;
    float* dst = thread_scratch(kPaddedInputSlot, s.c * s.hp() * s.wp());
    pad_planes(img, s.c, s.h, s.w, s.pad, s.pad, s.hp(), s.wp(), dst);
    return dst;
}

// Offsets into one group's padded image: pixel[p] of output pixel p's top-left tap, tap[t] of tap t = (c,ky,kx).
struct ConvTables {
    std::vector<std::int32_t> pixel, tap;
};

inline ConvTables conv_tables(const ConvShape& s) {
    ConvTables t;
    for (std::int64_t y = 0; y < s.ho; ++y)
        for (std::int64_t x = 0; x < s.wo; ++x)
            t.pixel.push_back(static_cast<std::int32_t>(y * s.stride * s.wp() + x * s.stride));
    for (std::int64_t c = 0; c < s.cg; ++c)
        for (std::int64_t ky = 0; ky < s.kh; ++ky)
            for (std::int64_t kx = 0; kx < s.kw; ++kx)
                t.tap.push_back(static_cast<std::int32_t>((c * s.hp() + ky) * s.wp() + kx));
    return t;
}

// Layers with whole-vector output rows at stride 1 and few output channels (ResNet-20's first two stages) or a
// 1x1 kernel (MobileNetV2's expansions and projections) run a direct kernel instead of the gather-GEMM: the
// output channels are the register tile's broadcast side and kLanes consecutive output pixels of a row its
// vectors, so NV input loads and 8 weight broadcasts feed 8 * NV FMAs (the gather-GEMM's 16-channel tile
// broadcasts one pixel per vector FMA), and the tile lands in the NCHW planes without a transpose. Each output
// is the same FMA chain in tap order.
inline constexpr std::int64_t kDirectChannels = 8;
inline bool direct_conv(const ConvShape& s) {
    return s.groups == 1 && s.cg > 1 && s.stride == 1 && s.wo % kLanes == 0 && s.o % kDirectChannels == 0 &&
           (s.o <= 32 || s.kh * s.kw == 1);
}

// The forward GEMM's B: [groups, taps, og rounded up to kLanes], zero beyond og; for the direct kernel
// [O / 8, taps, 8].
inline Tensor<float> pack_forward_weights(const Tensor<float>& w, const ConvShape& s) {
    if (direct_conv(s)) {
        const std::int64_t taps = s.taps(), blocks = s.o / kDirectChannels;
        Tensor<float> packed = Tensor<float>::uninitialized({blocks, taps, kDirectChannels});
        for (std::int64_t b = 0; b < blocks; ++b)
            transpose(w.data() + b * kDirectChannels * taps, kDirectChannels, taps, taps,
                      packed.data() + b * taps * kDirectChannels, kDirectChannels);
        return packed;
    }
    const std::int64_t taps = s.taps(), ld = round_up_lanes(s.og);
    Tensor<float> packed({s.groups, taps, ld});
    // Blocks of taps per task: VGG's widest layers pack 9 MiB per call, worth both cores and vector transposes.
    const std::int64_t block = 256, blocks = (taps + block - 1) / block;
    parallel_for(s.groups * blocks, [&](std::int64_t i) {
        const std::int64_t g = i / blocks, t0 = i % blocks * block, nt = std::min(block, taps - t0);
        transpose(w.data() + g * s.og * taps + t0, s.og, nt, taps, packed.data() + (g * taps + t0) * ld, ld);
    }, block * s.og);
    return packed;
}

// Depthwise (one input channel per group): too short a reduction for a GEMM, so each plane is convolved
// directly. The zero-padded input plane is split into stride x stride phase planes (rows and columns congruent
// mod stride) of pitch wq; output position q = oy * wq + ox then reads tap (ky, kx) at a constant offset in one
// phase plane, which makes a plane a KH*KW-tap 1-d correlation over q, vectorised (the wq - wo extra columns per
// row are computed and dropped).
struct DepthwisePlan {
    std::int64_t wq, phase_size, span;  // span: positions q computed, a whole number of vectors
    std::vector<std::int64_t> tap;      // (ky, kx) -> its phase plane's offset + (ky / stride) * wq + kx / stride
};

inline DepthwisePlan depthwise_plan(const ConvShape& s) {
    DepthwisePlan p;
    p.wq = (s.wp() + s.stride - 1) / s.stride;
    p.span = round_up_lanes(s.ho * p.wq);
    const std::int64_t hq = (s.hp() + s.stride - 1) / s.stride;
    const std::int64_t reach = (s.kh - 1) / s.stride * p.wq + (s.kw - 1) / s.stride;  // largest in-phase tap offset
    p.phase_size = std::max(hq * p.wq, p.span + reach);
    for (std::int64_t ky = 0; ky < s.kh; ++ky)
        for (std::int64_t kx = 0; kx < s.kw; ++kx)
            p.tap.push_back(((ky % s.stride) * s.stride + kx % s.stride) * p.phase_size + ky / s.stride * p.wq +
                            kx / s.stride);
    return p;
}

// Calls f(phase_row, ix0) for input row iy: phase_row is the row of the phase planes holding padded row
// iy + pad, starting at the phase of column parity 0, and input columns ix0, ix0 + stride, ... land at
// consecutive places of phase plane ((ix0 + pad) mod stride), from (ix0 + pad) / stride on.
template <class F>
void for_phase_runs(std::int64_t iy, const ConvShape& s, const DepthwisePlan& p, F&& f) {
    const std::int64_t y = iy + s.pad;
    const std::int64_t row = (y % s.stride) * s.stride * p.phase_size + y / s.stride * p.wq;
    for (std::int64_t ix0 = 0; ix0 < std::min(s.stride, s.w); ++ix0) {
        const std::int64_t x = ix0 + s.pad;
        f(row + (x % s.stride) * p.phase_size + x / s.stride, ix0);
    }
}

// dst: the phase planes of input plane src [H, W], zero-padded.
inline void split_phases(const float* src, const ConvShape& s, const DepthwisePlan& p, float* dst) {
    std::fill(dst, dst + s.stride * s.stride * p.phase_size, 0.0f);
    for (std::int64_t iy = 0; iy < s.h; ++iy) {
        const float* row = src + iy * s.w;
        if (s.stride == 1) {
            copy_floats(dst + (iy + s.pad) * p.wq + s.pad, row, s.w);
            continue;
        }
        for_phase_runs(iy, s, p, [&](std::int64_t at, std::int64_t ix0) {
            for (std::int64_t ix = ix0, j = at; ix < s.w; ix += s.stride, ++j) dst[j] = row[ix];
        });
    }
}

// dst[iy][ix] += the phase planes' value at padded (iy + pad, ix + pad): the inverse of split_phases.
inline void add_from_phases(const float* phases, const ConvShape& s, const DepthwisePlan& p, float* dst) {
    for (std::int64_t iy = 0; iy < s.h; ++iy)
        for_phase_runs(iy, s, p, [&](std::int64_t at, std::int64_t ix0) {
            for (std::int64_t ix = ix0, j = at; ix < s.w; ix += s.stride, ++j) dst[iy * s.w + ix] += phases[j];
        });
}

// dst[oy * wq + ox] = plane[oy][ox], zero elsewhere up to span: an output gradient plane at pitch wq.
inline void pitch_plane(const float* plane, const ConvShape& s, const DepthwisePlan& p, float* dst) {
    std::fill(dst, dst + p.span, 0.0f);
    for (std::int64_t oy = 0; oy < s.ho; ++oy) copy_floats(dst + oy * p.wq, plane + oy * s.wo, s.wo);
}

// What the forward applies to each output plane while it is still in cache: y = clamp(y + bias[o] + residual,
// lo, hi), with clamp as relu's (NaN passes). Inference fusion (nn/fused_conv.hpp) uses it for a folded batch
// norm's shift, a residual add and ReLU/ReLU6; the plain conv has only the bias.
struct ConvEpilogue {
    const Tensor<float>* residual = nullptr;  // [N,O,Ho,Wo], added after the bias
    float lo = -std::numeric_limits<float>::infinity();
    float hi = std::numeric_limits<float>::infinity();
};

// The epilogue of one image: bias [O] and this image's residual [O,Ho,Wo], either may be null.
struct ImageEpilogue {
    const float* bias = nullptr;
    const float* residual = nullptr;
    float lo = -std::numeric_limits<float>::infinity();
    float hi = std::numeric_limits<float>::infinity();
    bool clamps() const {
        return lo > -std::numeric_limits<float>::infinity() || hi < std::numeric_limits<float>::infinity();
    }
    float apply(float v, std::int64_t o, std::int64_t at) const {
        if (bias) v += bias[o];
        if (residual) v += residual[at];
        return v < lo ? lo : (v > hi ? hi : v);
    }
    SimdFloat apply(SimdFloat v, std::int64_t o, std::int64_t at) const {
        if (bias) v += simd_splat(bias[o]);
        if (residual) v += simd_load(residual + at);
        if (clamps()) {
            v = v < simd_splat(lo) ? simd_splat(lo) : v;  // lane-wise select: NaN compares false and passes
            v = v > simd_splat(hi) ? simd_splat(hi) : v;
        }
        return v;
    }
};

inline ImageEpilogue image_epilogue(const Tensor<float>* bias, const ConvEpilogue& e, const ConvShape& s,
                                    std::int64_t n) {
    return {bias ? bias->data() : nullptr, e.residual ? e.residual->data() + n * s.o * s.pixels() : nullptr, e.lo,
            e.hi};
}

// Output plane o of an image, [pixels], finished in place.
inline void finish_plane(float* plane, std::int64_t o, std::int64_t pixels, const ImageEpilogue& e) {
    if (!e.bias && !e.residual && !e.clamps()) return;
    std::int64_t i = 0;
    for (; i + kLanes <= pixels; i += kLanes) simd_store(plane + i, e.apply(simd_load(plane + i), o, o * pixels + i));
    for (; i < pixels; ++i) plane[i] = e.apply(plane[i], o, o * pixels + i);
}

// out[o][p] = the epilogue of pm[p][o - o0] for p < pixels, o0 <= o < o0 + channels: a GEMM's pixel-major result
// transposed into an image's NCHW planes with the epilogue applied in registers (one pass, not two). pm has
// ld >= channels rounded up to kLanes columns.
inline void transpose_finish(const float* pm, std::int64_t ld, std::int64_t o0, std::int64_t channels,
                             std::int64_t pixels, const ImageEpilogue& e, float* out) {
    std::int64_t p0 = 0;
    for (; p0 + kLanes <= pixels; p0 += kLanes)
        for (std::int64_t c0 = 0; c0 < channels; c0 += kLanes) {
            SimdFloat v[kLanes];
            for (int i = 0; i < kLanes; ++i) v[i] = simd_load(pm + (p0 + i) * ld + c0);
            simd_transpose(v);
            const std::int64_t nc = std::min<std::int64_t>(kLanes, channels - c0);
            for (std::int64_t i = 0; i < nc; ++i) {
                const std::int64_t o = o0 + c0 + i;
                simd_store(out + o * pixels + p0, e.apply(v[i], o, o * pixels + p0));
            }
        }
    for (; p0 < pixels; ++p0)
        for (std::int64_t c = 0; c < channels; ++c)
            out[(o0 + c) * pixels + p0] = e.apply(pm[p0 * ld + c], o0 + c, (o0 + c) * pixels + p0);
}

// acc[q] = b + sum over taps t, in order, of k[t] * phases[tap[t] + q], for q < span (whole vectors). Taps > 0
// fixes the tap count at compile time (3x3 kernels), so the weights and offsets stay in registers.
template <int Taps>
void depthwise_taps(const float* phases, const std::int64_t* tap, const float* k, std::int64_t taps, SimdFloat b,
                    std::int64_t span, float* acc) {
    if constexpr (Taps > 0) {
        SimdFloat kv[Taps];
        const float* src[Taps];
        for (int t = 0; t < Taps; ++t) kv[t] = simd_splat(k[t]), src[t] = phases + tap[t];
        for (std::int64_t q = 0; q < span; q += kLanes) {
            SimdFloat v = b;
#pragma GCC unroll 16
            for (int t = 0; t < Taps; ++t) v += kv[t] * simd_load(src[t] + q);
            simd_store(acc + q, v);
        }
    } else {
        for (std::int64_t q = 0; q < span; q += kLanes) {
            SimdFloat v = b;
            for (std::int64_t t = 0; t < taps; ++t) v += simd_splat(k[t]) * simd_load(phases + tap[t] + q);
            simd_store(acc + q, v);
        }
    }
}

// Depthwise output plane o of one image (img: its [C,H,W] input) into plane [Ho,Wo], bias and epilogue applied.
inline void depthwise_plane(const float* img, const float* w, const DepthwisePlan& p, const ConvShape& s,
                            std::int64_t o, const ImageEpilogue& e, float* plane) {
    const auto taps = static_cast<std::int64_t>(p.tap.size());
    float* phases = thread_scratch(kPaddedInputSlot, s.stride * s.stride * p.phase_size);
    float* acc = thread_scratch(kPixelMajorSlot, p.span);
    split_phases(img + (o / s.og) * s.h * s.w, s, p, phases);
    const float* k = w + o * taps;
    const SimdFloat b = simd_splat(e.bias ? e.bias[o] : 0.0f);
    if (taps == 9)
        depthwise_taps<9>(phases, p.tap.data(), k, taps, b, p.span, acc);
    else
        depthwise_taps<0>(phases, p.tap.data(), k, taps, b, p.span, acc);
    for (std::int64_t oy = 0; oy < s.ho; ++oy) copy_floats(plane + oy * s.wo, acc + oy * p.wq, s.wo);
    ImageEpilogue rest = e;
    rest.bias = nullptr;  // already in the accumulator's start
    finish_plane(plane, o, s.pixels(), rest);
}

// Depthwise layers with one output per input channel and small planes (MobileNetV2's 8x8 and 4x4 outputs, and
// its stride-2 layers) run channels-last instead, one image at a time: the image is transposed to
// [pixel][channel] into a zero-padded buffer, each output pixel is a 16-channel vector summing its taps (bias
// first, then the taps in order, as depthwise_taps: the same values bit for bit), and transpose_finish puts the
// result back into NCHW planes with the epilogue. Per-plane loops spend most of their time on overheads at these
// sizes (16 or 64 outputs a plane); at 16x16 and 32x32 outputs they are faster forward. The backward runs
// channels-last at every size (faster at all of MobileNetV2's).
inline bool depthwise_one_per_channel(const ConvShape& s) { return s.cg == 1 && s.og == 1; }
inline bool depthwise_channels_last(const ConvShape& s) {
    return depthwise_one_per_channel(s) && s.pixels() <= (s.stride > 1 ? 256 : 64);
}

// Depthwise weights [C,1,KH,KW] as [tap][ld], ld = C rounded up to whole vectors, zeros beyond C.
inline Tensor<float> depthwise_weights_by_tap(const Tensor<float>& w, const ConvShape& s) {
    const std::int64_t taps = s.kh * s.kw, ld = round_up_lanes(s.o);
    Tensor<float> wt({taps, ld});
    for (std::int64_t o = 0; o < s.o; ++o)
        for (std::int64_t t = 0; t < taps; ++t) wt[t * ld + o] = w[o * taps + t];
    return wt;
}

// result[pixel * ld] = b + the taps of one 16-channel vector in order, from padded [Hp][Wp][ld]; K > 0 fixes a KxK
// kernel at compile time so that its weights stay in registers.
template <int K>
void depthwise_pixels(const float* padded, const float* wt, std::int64_t ld, const ConvShape& s, SimdFloat b,
                      float* result) {
    const std::int64_t kh = K > 0 ? K : s.kh, kw = K > 0 ? K : s.kw, wp = s.wp();
    constexpr int kStored = K > 0 ? K * K : 1;
    SimdFloat kv[kStored];
    if constexpr (K > 0)
        for (int t = 0; t < K * K; ++t) kv[t] = simd_load(wt + t * ld);
    for (std::int64_t oy = 0; oy < s.ho; ++oy)
        for (std::int64_t ox = 0; ox < s.wo; ++ox) {
            const float* at = padded + (oy * s.stride * wp + ox * s.stride) * ld;
            SimdFloat v = b;
#pragma GCC unroll 9
            for (std::int64_t ky = 0; ky < kh; ++ky)
#pragma GCC unroll 3
                for (std::int64_t kx = 0; kx < kw; ++kx) {
                    const SimdFloat k = K > 0 ? kv[(ky * kw + kx) % kStored] : simd_load(wt + (ky * kw + kx) * ld);
                    v += k * simd_load(at + (ky * wp + kx) * ld);
                }
            simd_store(result + (oy * s.wo + ox) * ld, v);
        }
}

// padded [Hp][Wp][ld]: image [C,H,W] channels-last with the conv's zero padding (by_pixel: [H*W][ld] scratch).
inline void pad_channels_last(const float* img, const ConvShape& s, std::int64_t ld, float* by_pixel, float* padded) {
    transpose(img, s.c, s.h * s.w, s.h * s.w, by_pixel, ld);
    std::fill(padded, padded + s.hp() * s.wp() * ld, 0.0f);
    for (std::int64_t y = 0; y < s.h; ++y)
        copy_floats(padded + ((y + s.pad) * s.wp() + s.pad) * ld, by_pixel + y * s.w * ld, s.w * ld);
}

// One image (img: [C,H,W]) through the channels-last path (depthwise_channels_last(s)) into out [C,Ho,Wo].
inline void depthwise_image_channels_last(const float* img, const float* wt, const ConvShape& s,
                                          const ImageEpilogue& e, float* out) {
    const std::int64_t ld = round_up_lanes(s.c);
    float* by_pixel = thread_scratch(kGradTransposeSlot, s.h * s.w * ld);  // unused by any forward otherwise
    float* padded = thread_scratch(kPaddedInputSlot, s.hp() * s.wp() * ld);
    float* result = thread_scratch(kPixelMajorSlot, s.pixels() * ld);
    pad_channels_last(img, s, ld, by_pixel, padded);
    for (std::int64_t c0 = 0; c0 < ld; c0 += kLanes) {
        alignas(64) float start[kLanes] = {};
        if (e.bias) std::copy_n(e.bias + c0, std::min<std::int64_t>(kLanes, s.c - c0), start);
        if (s.kh == 3 && s.kw == 3)
            depthwise_pixels<3>(padded + c0, wt + c0, ld, s, simd_load(start), result + c0);
        else
            depthwise_pixels<0>(padded + c0, wt + c0, ld, s, simd_load(start), result + c0);
    }
    ImageEpilogue rest = e;
    rest.bias = nullptr;  // already in the start
    transpose_finish(result, ld, 0, s.o, s.pixels(), rest, out);
}

// dw's partial sums acc[tap][ld] += sum over output pixels of g[pixel] * padded[the pixel's tap], for one
// 16-channel vector: pixels outer, one accumulator per tap (K > 0: a KxK kernel's in registers).
template <int K>
void depthwise_weight_sums(const float* g, const float* padded, const ConvShape& s, std::int64_t ld, float* acc) {
    const std::int64_t kh = K > 0 ? K : s.kh, kw = K > 0 ? K : s.kw, wp = s.wp();
    constexpr int kStored = K > 0 ? K * K : 1;
    SimdFloat a[kStored];
    if constexpr (K > 0)
        for (int t = 0; t < K * K; ++t) a[t] = simd_load(acc + t * ld);
    for (std::int64_t oy = 0; oy < s.ho; ++oy)
        for (std::int64_t ox = 0; ox < s.wo; ++ox) {
            const SimdFloat gv = simd_load(g + (oy * s.wo + ox) * ld);
            const float* at = padded + (oy * s.stride * wp + ox * s.stride) * ld;
#pragma GCC unroll 9
            for (std::int64_t ky = 0; ky < kh; ++ky)
#pragma GCC unroll 3
                for (std::int64_t kx = 0; kx < kw; ++kx) {
                    const SimdFloat v = gv * simd_load(at + (ky * wp + kx) * ld);
                    if constexpr (K > 0)
                        a[ky * K + kx] += v;
                    else
                        simd_store(acc + (ky * kw + kx) * ld, simd_load(acc + (ky * kw + kx) * ld) + v);
                }
        }
    if constexpr (K > 0)
        for (int t = 0; t < K * K; ++t) simd_store(acc + t * ld, a[t]);
}

// The backward of the channels-last path, per image with dy transposed to [pixel][ld]. dx at each input pixel
// gathers w[tap] * dy over the taps that reach it, in tap order from zero: the per-plane loops' sums (they add
// tap by tap), bit for bit up to the sign of zeros; transposed back, added or written over. dw is summed over
// pixels in 16-channel vectors per fixed chunk of images, the chunks added in order: bit-identical for any
// thread count.
inline void depthwise_backward_channels_last(const Tensor<float>& dy, const Tensor<float>& x, const Tensor<float>& w,
                                             const ConvShape& s, Tensor<float>* dx, Tensor<float>* dw,
                                             bool dx_assign) {
    const std::int64_t ld = round_up_lanes(s.c), taps = s.kh * s.kw, padded_size = s.hp() * s.wp() * ld;
    const std::int64_t in_size = s.c * s.h * s.w, chunks = std::min(s.n, kGradChunks);
    const Tensor<float> wt = depthwise_weights_by_tap(w, s);
    Tensor<float> partial = dw ? Tensor<float>({chunks, taps * ld}) : Tensor<float>();
    // For each input pixel, the (tap, output pixel) pairs that reach it, in tap order.
    std::vector<std::int32_t> reach_start(static_cast<std::size_t>(s.h * s.w + 1), 0), reach;
    for (std::int64_t iy = 0; iy < s.h; ++iy)
        for (std::int64_t ix = 0; ix < s.w; ++ix) {
            for (std::int64_t ky = 0; ky < s.kh; ++ky)
                for (std::int64_t kx = 0; kx < s.kw; ++kx) {
                    const std::int64_t ty = iy + s.pad - ky, tx = ix + s.pad - kx;
                    if (ty < 0 || tx < 0 || ty % s.stride || tx % s.stride) continue;
                    const std::int64_t oy = ty / s.stride, ox = tx / s.stride;
                    if (oy >= s.ho || ox >= s.wo) continue;
                    reach.push_back(static_cast<std::int32_t>((ky * s.kw + kx) * ld));
                    reach.push_back(static_cast<std::int32_t>((oy * s.wo + ox) * ld));
                }
            reach_start[static_cast<std::size_t>(iy * s.w + ix + 1)] = static_cast<std::int32_t>(reach.size());
        }
    parallel_for(chunks, [&](std::int64_t k) {
        const auto [begin, end] = split_range(s.n, chunks, k);
        float* g = thread_scratch(kGradTransposeSlot, s.pixels() * ld);
        float* padded = thread_scratch(kPaddedInputSlot, padded_size);
        float* by_pixel = thread_scratch(kPixelMajorSlot, s.h * s.w * ld);
        for (std::int64_t n = begin; n < end; ++n) {
            transpose(dy.data() + n * s.o * s.pixels(), s.o, s.pixels(), s.pixels(), g, ld);
            if (dw) {
                pad_channels_last(x.data() + n * in_size, s, ld, by_pixel, padded);
                float* acc = partial.data() + k * taps * ld;
                for (std::int64_t c0 = 0; c0 < ld; c0 += kLanes)
                    if (s.kh == 3 && s.kw == 3)
                        depthwise_weight_sums<3>(g + c0, padded + c0, s, ld, acc + c0);
                    else
                        depthwise_weight_sums<0>(g + c0, padded + c0, s, ld, acc + c0);
            }
            if (dx) {
                for (std::int64_t i = 0; i < s.h * s.w; ++i) {
                    const std::int32_t* r0 = reach.data() + reach_start[static_cast<std::size_t>(i)];
                    const std::int32_t* r1 = reach.data() + reach_start[static_cast<std::size_t>(i + 1)];
                    for (std::int64_t c0 = 0; c0 < ld; c0 += kLanes) {
                        SimdFloat v = {};
                        for (const std::int32_t* r = r0; r < r1; r += 2)
                            v = v + simd_load(wt.data() + r[0] + c0) * simd_load(g + r[1] + c0);
                        simd_store(by_pixel + i * ld + c0, v);
                    }
                }
                // Written over when assigned: a sum from +0 is never -0, so this is 0 + v as the per-plane loops do.
                transpose(by_pixel, s.h * s.w, s.c, ld, dx->data() + n * in_size, s.h * s.w, !dx_assign);
            }
        }
    }, (s.n / chunks + 1) * 2 * s.c * s.pixels() * taps);
    if (!dw) return;
    for (std::int64_t c = 0; c < s.c; ++c)
        for (std::int64_t t = 0; t < taps; ++t) {
            float total = partial[t * ld + c];
            for (std::int64_t k = 1; k < chunks; ++k) total += partial[(k * taps + t) * ld + c];
            (*dw)[c * taps + t] += total;
        }
}

inline void depthwise_backward(const Tensor<float>& dy, const Tensor<float>& x, const Tensor<float>& w,
                               const ConvShape& s, Tensor<float>* dx, Tensor<float>* dw, bool dx_assign) {
    const DepthwisePlan p = depthwise_plan(s);
    const auto taps = static_cast<std::int64_t>(p.tap.size());
    const std::int64_t phases_size = s.stride * s.stride * p.phase_size;
    if (dx)  // per input plane: the adjoint of the forward, every tap adding into its phase plane
        parallel_for(s.n * s.c, [&](std::int64_t i) {
            const std::int64_t n = i / s.c, c = i % s.c;
            float* dphases = thread_scratch(kPaddedGradSlot, phases_size);
            float* g = thread_scratch(kGradTransposeSlot, p.span);
            std::fill(dphases, dphases + phases_size, 0.0f);
            for (std::int64_t o = c * s.og; o < (c + 1) * s.og; ++o) {
                pitch_plane(dy.data() + (n * s.o + o) * s.pixels(), s, p, g);
                for (std::int64_t t = 0; t < taps; ++t) {
                    const SimdFloat wt = simd_splat(w[o * taps + t]);
                    float* d = dphases + p.tap[t];
                    for (std::int64_t q = 0; q < p.span; q += kLanes)
                        simd_store(d + q, simd_load(d + q) + wt * simd_load(g + q));
                }
            }
            if (dx_assign) std::fill_n(dx->data() + i * s.h * s.w, s.h * s.w, 0.0f);
            add_from_phases(dphases, s, p, dx->data() + i * s.h * s.w);
        }, s.og * s.pixels() * taps);
    if (dw)  // per output channel, so the sum over the batch has one fixed order
        parallel_for(s.o, [&](std::int64_t o) {
            std::vector<float> acc(static_cast<std::size_t>(taps), 0.0f);
            float* phases = thread_scratch(kPaddedInputSlot, phases_size);
            float* g = thread_scratch(kGradTransposeSlot, p.span);
            for (std::int64_t n = 0; n < s.n; ++n) {
                split_phases(x.data() + (n * s.c + o / s.og) * s.h * s.w, s, p, phases);
                pitch_plane(dy.data() + (n * s.o + o) * s.pixels(), s, p, g);
                for (std::int64_t t = 0; t < taps; ++t)
                    acc[static_cast<std::size_t>(t)] += dot(g, phases + p.tap[t], p.span);
            }
            for (std::int64_t t = 0; t < taps; ++t) (*dw)[o * taps + t] += acc[static_cast<std::size_t>(t)];
        }, s.n * s.pixels() * taps);
}

// Output channels [o0, o0 + 8) at NV pixel vectors of one padded image: vector v covers pixels [at[v],
// at[v] + kLanes) of one output row, whose top-left taps start at src + base[v]. The accumulators start at zero
// and take the taps in order, one FMA each, then the epilogue, as the gather-GEMM and transpose_finish do.
template <int NV>
void direct_tile(const float* src, const std::int32_t* tap, std::int64_t taps, const float* w,
                 const std::int64_t* base, const std::int64_t* at, std::int64_t o0, std::int64_t pixels,
                 const ImageEpilogue& e, float* out) {
    constexpr int MR = static_cast<int>(kDirectChannels);
    SimdFloat acc[MR][NV] = {};
    const float* rows[NV];
    for (int v = 0; v < NV; ++v) rows[v] = src + base[v];
    for (std::int64_t t = 0; t < taps; ++t, w += MR) {
        const std::int32_t off = tap[t];
        SimdFloat xv[NV];
#pragma GCC unroll 4
        for (int v = 0; v < NV; ++v) xv[v] = simd_load(rows[v] + off);
#pragma GCC unroll 8
        for (int r = 0; r < MR; ++r) {
            const SimdFloat wr = simd_splat(w[r]);
#pragma GCC unroll 4
            for (int v = 0; v < NV; ++v) acc[r][v] += xv[v] * wr;
        }
    }
    for (int r = 0; r < MR; ++r)
        for (int v = 0; v < NV; ++v) {
            const std::int64_t o = o0 + r, i = o * pixels + at[v];
            simd_store(out + i, e.apply(acc[r][v], o, i));
        }
}

// One padded image through the direct kernel (direct_conv(s)), `packed` as pack_forward_weights lays it out;
// pixel and tap as conv_tables makes them.
inline void direct_conv_image(const float* src, const float* packed, std::span<const std::int32_t> pixel,
                              std::span<const std::int32_t> tap, const ConvShape& s, const ImageEpilogue& e,
                              float* out) {
    constexpr int NV = 3;  // 24 accumulators, 3 pixel vectors and a broadcast: 28 of 32 vector registers
    const std::int64_t taps = s.taps(), vectors = s.pixels() / kLanes;
    for (std::int64_t o0 = 0; o0 < s.o; o0 += kDirectChannels) {
        const float* w = packed + o0 * taps;
        std::int64_t base[NV], at[NV];
        for (std::int64_t v0 = 0; v0 < vectors; v0 += NV) {
            const int nv = static_cast<int>(std::min<std::int64_t>(NV, vectors - v0));
            for (int v = 0; v < nv; ++v) {
                at[v] = (v0 + v) * kLanes;
                base[v] = pixel[static_cast<std::size_t>(at[v])];
            }
            if (nv == 3) direct_tile<3>(src, tap.data(), taps, w, base, at, o0, s.pixels(), e, out);
            else if (nv == 2) direct_tile<2>(src, tap.data(), taps, w, base, at, o0, s.pixels(), e, out);
            else direct_tile<1>(src, tap.data(), taps, w, base, at, o0, s.pixels(), e, out);
        }
    }
}

// `count` consecutive images of a convolution with more than one input channel per group: imgs [count,C,H,W] ->
// out [count,O,Ho,Wo], with `packed` from pack_forward_weights, `t` from conv_tables and `rows` the GEMM's rows
// for count images (batch_rows). e is the first image's epilogue; the residual steps by image.
// The images share one GEMM, their pixels its rows, so a wide layer with few pixels streams its weights once
// per call rather than once per image; every output is the same sum as for one image, bit for bit.
inline void conv_images(const float* imgs, std::int64_t count, const float* packed, const ConvTables& t,
                        std::span<const std::int32_t> rows, const ConvShape& s, const ImageEpilogue& e, float* out) {
    const std::int64_t taps = s.taps(), ld = round_up_lanes(s.og), group_in = s.cg * s.hp() * s.wp();
    const std::int64_t pixels = s.pixels(), out_size = s.o * pixels;
    const float* src = imgs;
    if (s.pad != 0) {
        float* padded = thread_scratch(kPaddedInputSlot, count * s.c * s.hp() * s.wp());
        pad_planes(imgs, count * s.c, s.h, s.w, s.pad, s.pad, s.hp(), s.wp(), padded);
        src = padded;
    }
    if (direct_conv(s)) {
        for (std::int64_t k = 0; k < count; ++k) {
            ImageEpilogue ek = e;
            if (ek.residual) ek.residual += k * out_size;
            direct_conv_image(src + k * s.c * s.hp() * s.wp(), packed, t.pixel, t.tap, s, ek, out + k * out_size);
        }
        return;
    }
    // The GEMM yields [pixel][channel] tiles; they are gathered pixel-major and transposed once per group.
    float* pixel_major = thread_scratch(kPixelMajorSlot, count * pixels * ld);
    for (std::int64_t g = 0; g < s.groups; ++g) {
        gather_gemm(src + g * group_in, rows, t.tap, packed + g * taps * ld, ld,
                    [&](std::int64_t p0, int nr, std::int64_t c0, const float* tile, int tld) {
                        for (int r = 0; r < nr; ++r)
                            copy_floats(pixel_major + (p0 + r) * ld + c0, tile + r * tld, tld);
                    });
        for (std::int64_t k = 0; k < count; ++k) {
            ImageEpilogue ek = e;
            if (ek.residual) ek.residual += k * out_size;
            transpose_finish(pixel_major + k * pixels * ld, ld, g * s.og, s.og, pixels, ek, out + k * out_size);
        }
    }
}

// One image: conv_images of a single image.
inline void conv_image(const float* img, const float* packed, const ConvTables& t, const ConvShape& s,
                       const ImageEpilogue& e, float* out) {
    conv_images(img, 1, packed, t, t.pixel, s, e, out);
}

// Images per GEMM call (forward: rows are output pixels of padded inputs; input gradient: input pixels of padded
// output gradients): one while the weights (about the same size in both) fit in L2 with room to spare; otherwise
// enough for about 256 rows (VGG's 512-channel layers have 4-16 pixels an image), as long as every thread still
// gets a group. The count changes no result, only how often the weights are streamed.
inline std::int64_t images_per_gemm(const ConvShape& s, std::int64_t rows_per_image, std::int64_t floats_per_image) {
    const std::int64_t weight_bytes = s.groups * s.taps() * round_up_lanes(s.og) * std::int64_t{sizeof(float)};
    if (weight_bytes <= (std::int64_t{256} << 10)) return 1;
    const std::int64_t per_thread = std::max<std::int64_t>(1, s.n / num_threads());
    // Row offsets are int32: the padded images of a group must stay below 2^31 floats.
    const std::int64_t addressable = std::max<std::int64_t>(1, (std::int64_t{1} << 30) / floats_per_image);
    return std::min({(256 + rows_per_image - 1) / rows_per_image, per_thread, addressable});
}

// rows <- the GEMM rows of `count` images laid out `stride` floats apart: one image's rows shifted by each
// image's offset.
inline void batch_rows(std::span<const std::int32_t> image_rows, std::int64_t stride, std::int64_t count,
                       std::vector<std::int32_t>& rows) {
    rows.clear();
    for (std::int64_t k = 0; k < count; ++k)
        for (const std::int32_t p : image_rows) rows.push_back(static_cast<std::int32_t>(k * stride + p));
}

inline Tensor<float> conv2d_forward(const Tensor<float>& x, const Tensor<float>& w, const Tensor<float>* bias,
                                    const ConvShape& s, const ConvEpilogue& e = {}) {
    auto y = Tensor<float>::uninitialized({s.n, s.o, s.ho, s.wo});
    const std::int64_t in_size = s.c * s.h * s.w, out_size = s.o * s.pixels();
    if (depthwise_channels_last(s)) {
        const Tensor<float> wt = depthwise_weights_by_tap(w, s);
        parallel_for(s.n, [&](std::int64_t n) {
            depthwise_image_channels_last(x.data() + n * in_size, wt.data(), s, image_epilogue(bias, e, s, n),
                                          y.data() + n * out_size);
        }, out_size * s.kh * s.kw);
        return y;
    }
    if (s.cg == 1) {
        const DepthwisePlan p = depthwise_plan(s);
        parallel_for(s.n * s.o, [&](std::int64_t i) {
            const std::int64_t n = i / s.o, o = i % s.o;
            depthwise_plane(x.data() + n * in_size, w.data(), p, s, o, image_epilogue(bias, e, s, n),
                            y.data() + i * s.pixels());
        }, s.pixels() * s.kh * s.kw);
        return y;
    }
    const Tensor<float> packed = pack_forward_weights(w, s);
    const ConvTables t = conv_tables(s);
    const std::int64_t per_call = images_per_gemm(s, s.pixels(), s.c * s.hp() * s.wp());
    const std::int64_t calls = (s.n + per_call - 1) / per_call;
    std::vector<std::int32_t> rows;
    batch_rows(t.pixel, s.c * s.hp() * s.wp(), per_call, rows);
    parallel_for(calls, [&](std::int64_t i) {
        const std::int64_t n0 = i * per_call, count = std::min(per_call, s.n - n0);
        conv_images(x.data() + n0 * in_size, count, packed.data(), t,
                    std::span<const std::int32_t>(rows).first(static_cast<std::size_t>(count * s.pixels())), s,
                    image_epilogue(bias, e, s, n0), y.data() + n0 * out_size);
    }, per_call * s.o * s.taps() * s.pixels());
    return y;
}

// The input gradient in stride phases. Input row iy receives from kernel rows ky = (iy + pad) mod stride +
// stride*t, at output row (iy + pad) / stride - t; so within one phase it is a stride-1 correlation of the
// output gradient, padded by `top`/`left` (and enough at the far side), with a subset of the flipped kernel.
struct InputGradPhase {
    std::vector<std::int32_t> pixel;  // dx position -> offset of its t = 0 tap in the padded gradient
    std::vector<std::int32_t> dst;    // dx position -> iy * W + ix
    bool all_pixels = false;          // dst is 0, 1, ..., H*W - 1 (stride 1)
    std::vector<std::int32_t> tap;    // (o, ty, tx) -> offset in one group's padded gradient
    Tensor<float> weights;            // [groups, taps, cg rounded up to kLanes]
    // Stride 1 in one group: the phase is a forward convolution of the padded gradient (dy's channels the
    // reduction, dx's the outputs); when direct_conv(as_forward), the direct kernel runs it with these weights.
    ConvShape as_forward{};
    Tensor<float> direct_weights;
};

struct InputGradPlan {
    std::int64_t top, left, hd, wd;  // padded gradient: [O, hd, wd] with dy at (top, left)
    std::vector<InputGradPhase> phases;
};

inline InputGradPlan input_grad_plan(const Tensor<float>& w, const ConvShape& s) {
    InputGradPlan plan;
    plan.top = (s.kh - 1) / s.stride;
    plan.left = (s.kw - 1) / s.stride;
    plan.hd = plan.top + std::max(s.ho, (s.h - 1 + s.pad) / s.stride + 1);
    plan.wd = plan.left + std::max(s.wo, (s.w - 1 + s.pad) / s.stride + 1);
    const std::int64_t ld = round_up_lanes(s.cg);
    for (std::int64_t py = 0; py < s.stride; ++py)
        for (std::int64_t px = 0; px < s.stride; ++px) {
            InputGradPhase ph;
            std::vector<std::int64_t> kernel_index;  // (o, ty, tx) -> flat index of W[o][0][ky][kx] in a group
            for (std::int64_t o = 0; o < s.og; ++o)
                for (std::int64_t ky = py; ky < s.kh; ky += s.stride)
                    for (std::int64_t kx = px; kx < s.kw; kx += s.stride) {
                        ph.tap.push_back(static_cast<std::int32_t>(o * plan.hd * plan.wd -
                                                                   (ky - py) / s.stride * plan.wd -
                                                                   (kx - px) / s.stride));
                        kernel_index.push_back((o * s.cg * s.kh + ky) * s.kw + kx);
                    }
            for (std::int64_t iy = (py - s.pad % s.stride + s.stride) % s.stride; iy < s.h; iy += s.stride)
                for (std::int64_t ix = (px - s.pad % s.stride + s.stride) % s.stride; ix < s.w; ix += s.stride) {
                    ph.pixel.push_back(static_cast<std::int32_t>(((iy + s.pad) / s.stride + plan.top) * plan.wd +
                                                                 (ix + s.pad) / s.stride + plan.left));
                    ph.dst.push_back(static_cast<std::int32_t>(iy * s.w + ix));
                }
            if (ph.tap.empty() || ph.pixel.empty()) continue;
            ph.all_pixels = s.stride == 1;
            const auto taps = static_cast<std::int64_t>(ph.tap.size());
            ph.weights = Tensor<float>({s.groups, taps, ld});
            for (std::int64_t g = 0; g < s.groups; ++g)
                for (std::int64_t j = 0; j < taps; ++j)
                    for (std::int64_t c = 0; c < s.cg; ++c)
                        ph.weights[(g * taps + j) * ld + c] =
                            w[g * s.og * s.cg * s.kh * s.kw + kernel_index[static_cast<std::size_t>(j)] +
                              c * s.kh * s.kw];
            ConvShape& f = ph.as_forward;
            f.n = s.n, f.c = s.o, f.h = plan.hd, f.w = plan.wd, f.o = s.c, f.kh = s.kh, f.kw = s.kw;
            f.ho = s.h, f.wo = s.w, f.groups = 1, f.cg = s.o, f.og = s.c, f.stride = 1, f.pad = 0;
            if (s.stride == 1 && s.groups == 1 && direct_conv(f)) {
                ph.direct_weights = Tensor<float>::uninitialized({s.c / kDirectChannels, taps, kDirectChannels});
                for (std::int64_t b = 0; b < s.c / kDirectChannels; ++b)
                    for (std::int64_t j = 0; j < taps; ++j)
                        copy_floats(ph.direct_weights.data() + (b * taps + j) * kDirectChannels,
                                    ph.weights.data() + j * ld + b * kDirectChannels, kDirectChannels);
            }
            plan.phases.push_back(std::move(ph));
        }
    return plan;
}

// Images n0 .. n0+count-1 of dx from dy, added (or written with assign). The images share each GEMM, their dx
// positions its rows, as conv_images does; every dx element receives the same sums in the same order.
inline void input_grad_images(const Tensor<float>& dy, std::int64_t n0, std::int64_t count, const InputGradPlan& plan,
                              const ConvShape& s, Tensor<float>& dx, bool assign) {
    const std::int64_t padded = s.o * plan.hd * plan.wd, group_grad = s.og * plan.hd * plan.wd;
    const std::int64_t ld = round_up_lanes(s.cg), plane = s.h * s.w, image = s.c * plane;
    // Stride phases scatter-add (and a phase without taps adds nothing): an assigned image starts from zero.
    const bool one_pass = plan.phases.size() == 1 && plan.phases.front().all_pixels;
    if (assign && !one_pass) std::fill_n(dx.data() + n0 * image, count * image, 0.0f);
    float* dyp = thread_scratch(kPaddedGradSlot, count * padded);
    pad_planes(dy.data() + n0 * s.o * s.pixels(), count * s.o, s.ho, s.wo, plan.top, plan.left, plan.hd, plan.wd, dyp);
    float* pixel_major = thread_scratch(kPixelMajorSlot, count * plane * ld);
    thread_local std::vector<std::int32_t> batched;
    for (const InputGradPhase& ph : plan.phases) {
        if (ph.direct_weights.defined()) {  // every dx element written, or its sum added to it as the transpose adds
            for (std::int64_t k = 0; k < count; ++k) {
                float* out = dx.data() + (n0 + k) * image;
                const ImageEpilogue e{nullptr, assign ? nullptr : out};
                direct_conv_image(dyp + k * padded, ph.direct_weights.data(), ph.pixel, ph.tap, ph.as_forward, e,
                                  out);
            }
            continue;
        }
        const auto taps = static_cast<std::int64_t>(ph.tap.size());
        const auto positions = static_cast<std::int64_t>(ph.pixel.size());
        std::span<const std::int32_t> rows = ph.pixel;
        if (count > 1) batch_rows(ph.pixel, padded, count, batched), rows = batched;
        for (std::int64_t g = 0; g < s.groups; ++g) {
            float* out = dx.data() + n0 * image + g * s.cg * plane;
            // Full images of dx positions are added with one transpose each; stride phases scatter their positions.
            gather_gemm(dyp + g * group_grad, rows, ph.tap,
                        ph.weights.data() + g * taps * ld, ld,
                        [&](std::int64_t p0, int nr, std::int64_t c0, const float* tile, int tld) {
                            if (ph.all_pixels) {
                                for (int r = 0; r < nr; ++r)
                                    copy_floats(pixel_major + (p0 + r) * ld + c0, tile + r * tld, tld);
                                return;
                            }
                            for (std::int64_t c = c0; c < std::min<std::int64_t>(c0 + tld, s.cg); ++c)
                                for (int r = 0; r < nr; ++r) {
                                    const std::int64_t k = (p0 + r) / positions, p = (p0 + r) % positions;
                                    out[k * image + c * plane + ph.dst[static_cast<std::size_t>(p)]] +=
                                        tile[r * tld + (c - c0)];
                                }
                        });
            if (ph.all_pixels)
                for (std::int64_t k = 0; k < count; ++k)
                    transpose(pixel_major + k * plane * ld, plane, s.cg, ld, out + k * image, plane,
                              !(assign && one_pass));
        }
    }
}

// Adds image n's weight gradient, [groups, taps, og rounded up to kLanes], into acc.
inline void weight_grad_image(const Tensor<float>& dy, const Tensor<float>& x, std::int64_t n, const ConvTables& t,
                              const ConvShape& s, float* acc) {
    const std::int64_t taps = s.taps(), ld = round_up_lanes(s.og), group_in = s.cg * s.hp() * s.wp();
    const float* img = padded_image(x.data() + n * s.c * s.h * s.w, s);
    float* dyt = thread_scratch(kGradTransposeSlot, s.pixels() * ld);
    for (std::int64_t g = 0; g < s.groups; ++g) {
        transpose(dy.data() + (n * s.o + g * s.og) * s.pixels(), s.og, s.pixels(), s.pixels(), dyt, ld);
        if (s.og < ld)
            for (std::int64_t p = 0; p < s.pixels(); ++p) std::fill(dyt + p * ld + s.og, dyt + (p + 1) * ld, 0.0f);
        float* acc_g = acc + g * taps * ld;
        gather_gemm(img + g * group_in, t.tap, t.pixel, dyt, ld,
                    [&](std::int64_t t0, int rows, std::int64_t c0, const float* tile, int tld) {
                        for (int r = 0; r < rows; ++r) {
                            float* dst = acc_g + (t0 + r) * ld + c0;
                            for (int c = 0; c < tld; ++c) dst[c] += tile[r * tld + c];
                        }
                    });
    }
}

inline void bias_grad(const Tensor<float>& dy, const ConvShape& s, Tensor<float>& db) {
    parallel_for(s.o, [&](std::int64_t o) {
        float total = 0.0f;
        for (std::int64_t n = 0; n < s.n; ++n) total += sum(dy.data() + (n * s.o + o) * s.pixels(), s.pixels());
        db[o] += total;
    }, s.n * s.pixels());
}

// dx, dw and db (each may be null) receive their gradients added, except dx with dx_assign: it is then
// uninitialized and written over (which saves zeroing it and reading it back).
inline void conv2d_backward(const Tensor<float>& dy, const Tensor<float>& x, const Tensor<float>& w,
                            const ConvShape& s, Tensor<float>* dx, Tensor<float>* dw, Tensor<float>* db,
                            bool dx_assign = false) {
    if (s.n == 0) return;
    if (db) bias_grad(dy, s, *db);
    if (depthwise_one_per_channel(s)) {
        depthwise_backward_channels_last(dy, x, w, s, dx, dw, dx_assign);
        return;
    }
    if (s.cg == 1) {
        depthwise_backward(dy, x, w, s, dx, dw, dx_assign);
        return;
    }
    if (!dx && !dw) return;
    const std::int64_t chunks = std::min(s.n, kGradChunks), ld = round_up_lanes(s.og), taps = s.taps();
    const std::int64_t chunk_size = s.groups * taps * ld;
    const ConvTables t = conv_tables(s);
    const InputGradPlan plan = dx ? input_grad_plan(w, s) : InputGradPlan{};
    Tensor<float> partial = dw ? Tensor<float>({chunks, chunk_size}) : Tensor<float>();
    const std::int64_t dx_images = dx ? images_per_gemm(s, s.h * s.w, s.o * plan.hd * plan.wd) : 1;
    parallel_for(chunks, [&](std::int64_t k) {
        const auto [begin, end] = split_range(s.n, chunks, k);
        if (dw)
            for (std::int64_t n = begin; n < end; ++n)
                weight_grad_image(dy, x, n, t, s, partial.data() + k * chunk_size);
        if (dx)
            for (std::int64_t n = begin; n < end; n += dx_images)
                input_grad_images(dy, n, std::min(dx_images, end - n), plan, s, *dx, dx_assign);
    }, (s.n / chunks + 1) * 2 * s.o * taps * s.pixels());
    if (!dw) return;
    // Chunk 0 += chunks 1, 2, ... element by element in that order, then transpose into dw.
    constexpr std::int64_t kBlock = 4096;
    float* total = partial.data();
    parallel_for((chunk_size + kBlock - 1) / kBlock, [&](std::int64_t b) {
        const std::int64_t i0 = b * kBlock, i1 = std::min(chunk_size, i0 + kBlock);
        for (std::int64_t k = 1; k < chunks; ++k) {
            const float* part = total + k * chunk_size;
            for (std::int64_t i = i0; i < i1; ++i) total[i] += part[i];
        }
    }, chunks * kBlock);
    parallel_for(s.o, [&](std::int64_t o) {
        const float* col = total + (o / s.og) * taps * ld + o % s.og;
        float* row = dw->data() + o * taps;
        for (std::int64_t tap = 0; tap < taps; ++tap) row[tap] += col[tap * ld];
    }, taps);
}

}  // namespace detail

inline Var conv2d(const Var& x, const Var& weight, const Var& bias, Conv2dOptions opt = {}) {
    const detail::ConvShape s = detail::conv_shape(x, weight, bias, opt);
    Tensor<float> y = detail::conv2d_forward(x.value(), weight.value(), bias.defined() ? &bias.value() : nullptr, s);
    auto backward = [xv = x.value(), wv = weight.value(), s](Node& node) {
        auto grad_of = [&](std::size_t k) -> Tensor<float>* {
            return k < node.parents.size() && node.parents[k]->requires_grad ? &node.parents[k]->grad_buffer()
                                                                            : nullptr;
        };
        const bool dx_wanted = node.parents[0]->requires_grad;
        const bool dx_assign = dx_wanted && !node.parents[0]->grad_accumulates();  // a fresh buffer: written over
        detail::conv2d_backward(node.grad, xv, wv, s, dx_wanted ? &node.parents[0]->grad : nullptr, grad_of(1),
                                grad_of(2), dx_assign);
    };
    if (bias.defined()) return make_result(std::move(y), {&x, &weight, &bias}, std::move(backward));
    return make_result(std::move(y), {&x, &weight}, std::move(backward));
}

}  // namespace ironclad

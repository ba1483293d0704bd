// conv2d: finite-difference gradients, PyTorch golden values, a many-channel forward against direct
// summation, bit-identical results at 1 and 2 threads and whatever images share a GEMM, gradients only where
// asked, shape errors.
#include "ironclad/autograd/conv.hpp"
#include "ironclad/autograd/elementwise.hpp"

#include "../golden/ops/conv.inc"
#include "../support/grad_check.hpp"

#include <doctest/doctest.h>

#include <cmath>
#include <cstring>
#include <string>

using namespace ironclad;
using ironclad::testing::check_gradients;
using ironclad::testing::random_tensor;

namespace {

struct ConvCase {
    const char* name;
    Shape x, w;
    Conv2dOptions opt;
    bool bias;
};

void check_conv_gradients(const ConvCase& c) {
    CAPTURE(c.name);
    std::vector<Tensor<float>> inputs{random_tensor(c.x, 1), random_tensor(c.w, 2)};
    if (c.bias) inputs.push_back(random_tensor({c.w[0]}, 3));
    check_gradients(
        [&](std::vector<Var>& v) { return conv2d(v[0], v[1], c.bias ? v[2] : Var(), c.opt); }, inputs);
}

// y[n][o][i][j] by direct summation in double.
Tensor<float> direct_conv(const Tensor<float>& x, const Tensor<float>& w, Conv2dOptions opt) {
    const std::int64_t n = x.dim(0), c = x.dim(1), h = x.dim(2), wd = x.dim(3), o = w.dim(0), k = w.dim(2);
    const std::int64_t cg = c / opt.groups, og = o / opt.groups;
    const std::int64_t ho = (h + 2 * opt.padding - k) / opt.stride + 1;
    const std::int64_t wo = (wd + 2 * opt.padding - k) / opt.stride + 1;
    Tensor<float> y({n, o, ho, wo});
    for (std::int64_t b = 0; b < n; ++b)
        for (std::int64_t oc = 0; oc < o; ++oc)
            for (std::int64_t i = 0; i < ho; ++i)
                for (std::int64_t j = 0; j < wo; ++j) {
                    double acc = 0;
                    for (std::int64_t ic = 0; ic < cg; ++ic)
                        for (std::int64_t ky = 0; ky < k; ++ky)
                            for (std::int64_t kx = 0; kx < k; ++kx) {
                                const std::int64_t iy = i * opt.stride + ky - opt.padding;
                                const std::int64_t ix = j * opt.stride + kx - opt.padding;
                                if (iy >= 0 && iy < h && ix >= 0 && ix < wd)
                                    acc += double(x.at({b, oc / og * cg + ic, iy, ix})) * w.at({oc, ic, ky, kx});
                            }
                    y.at({b, oc, i, j}) = static_cast<float>(acc);
                }
    return y;
}

struct ConvRun {
    Tensor<float> y, dx, dw, db;
};

ConvRun run_conv(const Tensor<float>& x, const Tensor<float>& w, const Tensor<float>& b, const Tensor<float>& dy,
                 Conv2dOptions opt) {
    Var xv(x, true), wv(w, true), bv(b, true);
    Var y = conv2d(xv, wv, bv, opt);
    y.backward(dy);
    return {y.value(), xv.grad(), wv.grad(), bv.grad()};
}

// y at stride 1 with `pad` zeros around: each output the sum over taps (channel, row, column) in order, one fused
// multiply-add at a time from zero, as the kernels take it (plus bias[o] afterwards, when given).
Tensor<float> fma_chain_conv(const Tensor<float>& x, const Tensor<float>& w, std::int64_t pad,
                             const Tensor<float>* bias = nullptr) {
    const std::int64_t k = w.dim(2), h = x.dim(2), wd = x.dim(3), ho = h + 2 * pad - k + 1, wo = wd + 2 * pad - k + 1;
    Tensor<float> y({x.dim(0), w.dim(0), ho, wo});
    for (std::int64_t n = 0; n < x.dim(0); ++n)
        for (std::int64_t o = 0; o < w.dim(0); ++o)
            for (std::int64_t i = 0; i < ho; ++i)
                for (std::int64_t j = 0; j < wo; ++j) {
                    float acc = 0.0f;
                    for (std::int64_t c = 0; c < x.dim(1); ++c)
                        for (std::int64_t ky = 0; ky < k; ++ky)
                            for (std::int64_t kx = 0; kx < k; ++kx) {
                                const std::int64_t iy = i + ky - pad, ix = j + kx - pad;
                                const float xv = iy >= 0 && iy < h && ix >= 0 && ix < wd ? x.at({n, c, iy, ix}) : 0.0f;
#if defined(__FMA__)
                                acc = std::fma(xv, w.at({o, c, ky, kx}), acc);
#else
                                acc += xv * w.at({o, c, ky, kx});
#endif
                            }
                    y.at({n, o, i, j}) = bias ? acc + (*bias)[o] : acc;
                }
    return y;
}

std::int64_t differing_values(const Tensor<float>& a, const Tensor<float>& b) {
    std::int64_t differing = 0;
    for (std::int64_t i = 0; i < a.numel(); ++i) differing += a[i] != b[i];
    return differing;
}

bool same_bits(const Tensor<float>& a, const Tensor<float>& b) {
    return a.shape() == b.shape() && std::memcmp(a.data(), b.data(), a.bytes().size()) == 0;
}

}  // namespace

TEST_CASE("conv2d gradients match finite differences") {
    const ConvCase cases[] = {
        {"3x3 padding 1, bias", {2, 3, 5, 5}, {4, 3, 3, 3}, {1, 1, 1}, true},
        {"3x3 no padding, no bias", {2, 2, 6, 5}, {3, 2, 3, 3}, {1, 0, 1}, false},
        {"3x3 stride 2 padding 1", {2, 3, 7, 6}, {5, 3, 3, 3}, {2, 1, 1}, true},
        {"5x5 padding 2", {1, 2, 6, 6}, {3, 2, 5, 5}, {1, 2, 1}, false},
        {"groups 2", {2, 4, 5, 5}, {6, 2, 3, 3}, {1, 1, 2}, true},
        {"depthwise", {2, 4, 6, 6}, {4, 1, 3, 3}, {1, 1, 4}, true},
        {"depthwise stride 2, multiplier 2", {2, 3, 7, 7}, {6, 1, 3, 3}, {2, 1, 3}, false},
        {"1x1", {2, 5, 4, 4}, {3, 5, 1, 1}, {1, 0, 1}, true},
        {"1x1 stride 2", {2, 3, 5, 5}, {4, 3, 1, 1}, {2, 0, 1}, false},
        {"single input channel", {2, 1, 6, 6}, {3, 1, 3, 3}, {1, 1, 1}, true},
    };
    for (const ConvCase& c : cases) check_conv_gradients(c);
}

TEST_CASE("conv2d matches PyTorch") {
    for (const ConvGolden& g : conv_golden) {
        CAPTURE(g.name);
        const Tensor<float> x = golden_input({g.n, g.c, g.h, g.w}, 1);
        const Tensor<float> w = golden_input({g.o, g.c / g.groups, g.k, g.k}, 2);
        Var xv(x, true), wv(w, true), bv = g.bias ? Var(golden_input({g.o}, 3), true) : Var();
        Var y = conv2d(xv, wv, bv, {g.stride, g.padding, g.groups});
        y.backward(golden_input(y.shape(), 4));
        check_golden(y.value(), g.y, "y");
        check_golden(xv.grad(), g.dx, "dx");
        check_golden(wv.grad(), g.dw, "dw");
        if (g.bias) check_golden(bv.grad(), g.db, "db");
    }
}

TEST_CASE("conv2d with many channels matches direct summation") {
    // 70 and 35 output channels take several column blocks and a partial one; 13x11 pixels a short last tile.
    const Tensor<float> x = random_tensor({2, 20, 13, 11}, 4), w1 = random_tensor({70, 20, 3, 3}, 5),
                        w2 = random_tensor({70, 10, 3, 3}, 6);
    for (auto [w, opt] : {std::pair{w1, Conv2dOptions{1, 1, 1}}, std::pair{w2, Conv2dOptions{2, 1, 2}}}) {
        NoGradGuard no_grad;
        const Tensor<float> y = conv2d(Var(x), Var(w), Var(), opt).value();
        const Tensor<float> ref = direct_conv(x, w, opt);
        REQUIRE(y.shape() == ref.shape());
        float worst = 0;
        for (std::int64_t i = 0; i < y.numel(); ++i) worst = std::max(worst, std::abs(y[i] - ref[i]));
        CHECK(worst < 1e-4f);
    }
}

TEST_CASE("conv2d with wide weights and a deep reduction: grouped images and chunked sums change no bit") {
    // 160 channels x 3x3 = 1440 taps: the GEMM's reduction runs in chunks. The 553 KiB of packed weights make
    // conv2d_forward and the input gradient put several images into one GEMM (5 images: a short last group at 2
    // threads); stride 2 takes the input gradient's scattering phases.
    const Tensor<float> x = random_tensor({5, 160, 4, 4}, 21), w = random_tensor({96, 160, 3, 3}, 22);
    const Conv2dOptions opt{1, 1, 1};
    const std::int64_t image = 160 * 16, out = 96 * 16;
    for (int stride : {1, 2}) {
        CAPTURE(stride);
        const std::int64_t side = stride == 1 ? 4 : 2, out_image = 96 * side * side;
        const Tensor<float> dy = random_tensor({5, 96, side, side}, 23);
        Var xv(x, true);
        conv2d(xv, Var(w), Var(), {stride, 1, 1}).backward(dy);
        for (std::int64_t n = 0; n < 5; ++n) {
            CAPTURE(n);
            Tensor<float> xn({1, 160, 4, 4}), dyn({1, 96, side, side});
            std::copy_n(x.data() + n * image, image, xn.data());
            std::copy_n(dy.data() + n * out_image, out_image, dyn.data());
            Var xnv(xn, true);
            conv2d(xnv, Var(w), Var(), {stride, 1, 1}).backward(dyn);
            CHECK(std::memcmp(xnv.grad().data(), xv.grad().data() + n * image, image * sizeof(float)) == 0);
        }
    }
    NoGradGuard no_grad;
    const Tensor<float> y = conv2d(Var(x), Var(w), Var(), opt).value();
    for (std::int64_t n = 0; n < 5; ++n) {
        CAPTURE(n);
        Tensor<float> xn({1, 160, 4, 4});
        std::copy_n(x.data() + n * image, image, xn.data());
        const Tensor<float> yn = conv2d(Var(xn), Var(w), Var(), opt).value();
        CHECK(std::memcmp(yn.data(), y.data() + n * out, out * sizeof(float)) == 0);
    }
    // Each output is the sum over taps (channel, row, column) in order, one fused multiply-add at a time, as an
    // unchunked pass takes it.
    CHECK(differing_values(fma_chain_conv(x, w, 1), y) == 0);
}

TEST_CASE("conv2d's direct kernel (few channels, whole-vector rows) gives the tap-ordered FMA chain bit for bit") {
    // Output rows of 32 and 16 pixels at stride 1 with 16 and 24 channels, and a 1x1 kernel with 48, take the
    // direct kernel; 8 and 5 vectors per plane leave tiles of 2 and 1 vectors after the tiles of 3. The bias
    // comes after the sum.
    struct Case {
        Shape x, w;
    };
    for (const Case& c : {Case{{2, 5, 8, 32}, {16, 5, 3, 3}}, Case{{3, 4, 5, 16}, {24, 4, 3, 3}},
                          Case{{2, 7, 4, 16}, {48, 7, 1, 1}}}) {
        CAPTURE(shape_str(c.x));
        const Tensor<float> x = random_tensor(c.x, 31), w = random_tensor(c.w, 32), b = random_tensor({c.w[0]}, 33);
        const std::int64_t pad = c.w[2] / 2;
        NoGradGuard no_grad;
        const Tensor<float> y = conv2d(Var(x), Var(w), Var(b), {1, static_cast<int>(pad), 1}).value();
        CHECK(differing_values(fma_chain_conv(x, w, pad, &b), y) == 0);
    }
}

TEST_CASE("depthwise conv2d on small planes (channels-last) gives the per-plane loops' values bit for bit") {
    // 8x8 at stride 1 and 9x7 at stride 2 (20 outputs) take the channels-last path, 20 and 35 channels a partial
    // last vector; the 5x5 kernel its generic loop. The per-plane loops, run here directly, are the reference,
    // with the bias, a residual and a ReLU6 clamp in the epilogue; and both against summation in double.
    struct Case {
        Shape x;
        int k, stride;
    };
    for (const Case& c : {Case{{3, 20, 8, 8}, 3, 1}, Case{{2, 35, 9, 7}, 3, 2}, Case{{2, 17, 4, 4}, 5, 1}}) {
        CAPTURE(shape_str(c.x));
        const std::int64_t ch = c.x[1];
        const Tensor<float> x = random_tensor(c.x, 41), w = random_tensor({ch, 1, c.k, c.k}, 42);
        const Tensor<float> b = random_tensor({ch}, 43);
        const Conv2dOptions opt{c.stride, c.k / 2, static_cast<int>(ch)};
        const detail::ConvShape s = detail::conv_shape(Var(x), Var(w), Var(b), opt);
        REQUIRE(detail::depthwise_channels_last(s));
        const Tensor<float> residual = random_tensor({s.n, s.o, s.ho, s.wo}, 44);
        detail::ConvEpilogue e;
        e.residual = &residual;
        e.lo = 0.0f, e.hi = 0.5f;  // many outputs clamp on either side
        const Tensor<float> got = detail::conv2d_forward(x, w, &b, s, e);
        Tensor<float> want({s.n, s.o, s.ho, s.wo});
        const detail::DepthwisePlan plan = detail::depthwise_plan(s);
        for (std::int64_t n = 0; n < s.n; ++n)
            for (std::int64_t o = 0; o < s.o; ++o)
                detail::depthwise_plane(x.data() + n * ch * s.h * s.w, w.data(), plan, s, o,
                                        detail::image_epilogue(&b, e, s, n), want.data() + (n * s.o + o) * s.pixels());
        CHECK(differing_values(got, want) == 0);
        NoGradGuard no_grad;
        const Tensor<float> plain = conv2d(Var(x), Var(w), Var(b), opt).value();
        Tensor<float> reference = direct_conv(x, w, opt);
        for (std::int64_t i = 0; i < reference.numel(); ++i) reference[i] += b[i / s.pixels() % ch];
        for (std::int64_t i = 0; i < plain.numel(); ++i) CHECK(plain[i] == doctest::Approx(reference[i]).epsilon(1e-5));
    }
}

TEST_CASE("depthwise conv2d's channels-last backward: dx as the per-plane loops' sums, dw close, any thread count") {
    // Stride 1 and 2, a partial channel vector, a 5x5 kernel and a 16x16 plane; dx written over a fresh buffer and
    // added to one already there. The per-plane loops, run directly, are the reference: dx value for value (both
    // add the taps in order from zero), dw within float rounding (its sums run in another order).
    struct Case {
        Shape x;
        int k, stride;
    };
    const int threads = num_threads();
    for (const Case& c : {Case{{3, 20, 8, 8}, 3, 1}, Case{{9, 35, 9, 7}, 3, 2}, Case{{2, 17, 4, 4}, 5, 1},
                          Case{{2, 16, 16, 16}, 3, 1}}) {
        CAPTURE(shape_str(c.x));
        const std::int64_t ch = c.x[1];
        const Tensor<float> x = random_tensor(c.x, 51), w = random_tensor({ch, 1, c.k, c.k}, 52);
        const Conv2dOptions opt{c.stride, c.k / 2, static_cast<int>(ch)};
        const detail::ConvShape s = detail::conv_shape(Var(x), Var(w), Var(), opt);
        REQUIRE(detail::depthwise_one_per_channel(s));
        const Tensor<float> dy = random_tensor({s.n, s.o, s.ho, s.wo}, 53), before = random_tensor(c.x, 54);
        for (bool assign : {true, false}) {
            CAPTURE(assign);
            Tensor<float> want_dx = assign ? Tensor<float>(c.x) : before.clone(), want_dw(w.shape());
            detail::depthwise_backward(dy, x, w, s, &want_dx, &want_dw, assign);
            Tensor<float> runs[2][2];
            for (int t : {1, 2}) {
                set_num_threads(t);
                Tensor<float> dx = assign ? Tensor<float>::uninitialized(c.x) : before.clone(), dw(w.shape());
                detail::conv2d_backward(dy, x, w, s, &dx, &dw, nullptr, assign);
                runs[t - 1][0] = dx, runs[t - 1][1] = dw;
            }
            set_num_threads(threads);
            CHECK(same_bits(runs[0][0], runs[1][0]));
            CHECK(same_bits(runs[0][1], runs[1][1]));
            CHECK(differing_values(runs[0][0], want_dx) == 0);
            for (std::int64_t i = 0; i < w.numel(); ++i) CHECK(runs[0][1][i] == doctest::Approx(want_dw[i]).epsilon(1e-5));
        }
    }
}

TEST_CASE("conv2d's input gradient through the direct kernel gives the tap-ordered FMA chain bit for bit") {
    // Stride 1 with 16 and 24 input channels and rows of 16 and 32: dx is a forward convolution of the padded
    // output gradient over taps (o, ky, kx) in order, which the direct kernel runs; a second backward adds to it.
    struct Case {
        Shape x, w;
    };
    for (const Case& c : {Case{{2, 16, 5, 32}, {8, 16, 3, 3}}, Case{{2, 24, 4, 16}, {12, 24, 3, 3}},
                          Case{{2, 40, 3, 16}, {20, 40, 1, 1}}}) {
        CAPTURE(shape_str(c.x));
        const std::int64_t k = c.w[2], pad = k / 2, h = c.x[2], wd = c.x[3], o = c.w[0];
        const Tensor<float> x = random_tensor(c.x, 41), w = random_tensor(c.w, 42);
        const Tensor<float> dy = random_tensor({c.x[0], o, h, wd}, 43);
        Var xv(x, true);
        conv2d(xv, Var(w), Var(), {1, static_cast<int>(pad), 1}).backward(dy);
        const Tensor<float> once = xv.grad().clone();
        conv2d(xv, Var(w), Var(), {1, static_cast<int>(pad), 1}).backward(dy);
        std::int64_t differing = 0, differing_sum = 0;
        for (std::int64_t n = 0; n < c.x[0]; ++n)
            for (std::int64_t ci = 0; ci < c.x[1]; ++ci)
                for (std::int64_t i = 0; i < h; ++i)
                    for (std::int64_t j = 0; j < wd; ++j) {
                        float acc = 0.0f;
                        for (std::int64_t oc = 0; oc < o; ++oc)
                            for (std::int64_t ky = 0; ky < k; ++ky)
                                for (std::int64_t kx = 0; kx < k; ++kx) {
                                    const std::int64_t oy = i + pad - ky, ox = j + pad - kx;
                                    const float g =
                                        oy >= 0 && oy < h && ox >= 0 && ox < wd ? dy.at({n, oc, oy, ox}) : 0.0f;
#if defined(__FMA__)
                                    acc = std::fma(g, w.at({oc, ci, ky, kx}), acc);
#else
                                    acc += g * w.at({oc, ci, ky, kx});
#endif
                                }
                        differing += acc != once.at({n, ci, i, j});
                        differing_sum += acc + acc != xv.grad().at({n, ci, i, j});
                    }
        CHECK(differing == 0);
        CHECK(differing_sum == 0);
    }
}

TEST_CASE("conv2d results do not depend on the thread count") {
    const int threads = num_threads();
    // 11 images: uneven chunks of the weight-gradient reduction; stride 2 and groups exercise every path.
    for (Conv2dOptions opt : {Conv2dOptions{1, 1, 1}, Conv2dOptions{2, 1, 2}, Conv2dOptions{1, 1, 8}}) {
        CAPTURE(opt.groups);
        const Tensor<float> x = random_tensor({11, 8, 9, 9}, 7), w = random_tensor({16, 8 / opt.groups, 3, 3}, 8),
                            b = random_tensor({16}, 9);
        const std::int64_t out = (9 + 2 - 3) / opt.stride + 1;
        const Tensor<float> dy = random_tensor({11, 16, out, out}, 10);
        set_num_threads(1);
        const ConvRun one = run_conv(x, w, b, dy, opt);
        set_num_threads(2);
        const ConvRun two = run_conv(x, w, b, dy, opt);
        set_num_threads(threads);
        CHECK(same_bits(one.y, two.y));
        CHECK(same_bits(one.dx, two.dx));
        CHECK(same_bits(one.dw, two.dw));
        CHECK(same_bits(one.db, two.db));
    }
}

TEST_CASE("conv2d adds its input gradient to one already there") {
    // x feeds two convolutions: the second backward adds to the gradient the first one wrote over a fresh buffer
    // (strided phases without taps, depthwise and the one-pass stride-1 case).
    const ConvCase cases[] = {
        {"3x3 padding 1", {2, 3, 5, 5}, {4, 3, 3, 3}, {1, 1, 1}, false},
        {"1x1 stride 2", {2, 3, 5, 5}, {4, 3, 1, 1}, {2, 0, 1}, false},
        {"depthwise stride 2", {2, 3, 7, 7}, {6, 1, 3, 3}, {2, 1, 3}, false},
    };
    for (const ConvCase& c : cases) {
        CAPTURE(c.name);
        const Tensor<float> x0 = random_tensor(c.x, 1), w1 = random_tensor(c.w, 2), w2 = random_tensor(c.w, 3);
        Var x(x0.clone(), true);
        Var y1 = conv2d(x, Var(w1, false), Var(), c.opt), y2 = conv2d(x, Var(w2, false), Var(), c.opt);
        const Tensor<float> d1 = random_tensor(y1.shape(), 4), d2 = random_tensor(y2.shape(), 5);
        add(mul(y1, Var(d1, false)), mul(y2, Var(d2, false))).backward(Tensor<float>(y1.shape(), 1.0f));
        Var xa(x0.clone(), true), xb(x0.clone(), true);
        conv2d(xa, Var(w1, false), Var(), c.opt).backward(d1);
        conv2d(xb, Var(w2, false), Var(), c.opt).backward(d2);
        for (std::int64_t i = 0; i < x0.numel(); ++i)
            CHECK(x.grad()[i] == doctest::Approx(xa.grad()[i] + xb.grad()[i]).epsilon(1e-5));
    }
}

TEST_CASE("conv2d computes only the gradients that are required") {
    Var x(random_tensor({2, 3, 5, 5}, 1), true), w(random_tensor({4, 3, 3, 3}, 2), false);
    Var b(random_tensor({4}, 3), true);
    Var y = conv2d(x, w, b, {1, 1, 1});
    y.backward(random_tensor(y.shape(), 4));
    CHECK(x.grad().defined());
    CHECK_FALSE(w.grad().defined());
    CHECK(b.grad().defined());

    Var frozen_input(random_tensor({2, 3, 5, 5}, 1), false), trainable(random_tensor({4, 3, 3, 3}, 2), true);
    {
        NoGradGuard no_grad;
        CHECK_FALSE(conv2d(frozen_input, trainable, Var(), {}).requires_grad());
    }
    CHECK_FALSE(conv2d(frozen_input, w, Var(), {}).requires_grad());
}

TEST_CASE("conv2d rejects inconsistent shapes with a message naming them") {
    const Var x(Tensor<float>({2, 3, 5, 5})), w(Tensor<float>({4, 2, 3, 3}));
    auto message = [](auto&& f) {
        try {
            f();
        } catch (const std::invalid_argument& e) {
            return std::string(e.what());
        }
        return std::string();
    };
    const std::string channels = message([&] { conv2d(x, w, Var(), {}); });
    CHECK(channels.find("conv2d") != std::string::npos);
    CHECK(channels.find("[2,3,5,5]") != std::string::npos);
    CHECK(channels.find("[4,2,3,3]") != std::string::npos);
    CHECK_THROWS_AS(conv2d(Var(Tensor<float>({3, 5, 5})), w, Var(), {}), std::invalid_argument);
    CHECK_THROWS_AS(conv2d(x, Var(Tensor<float>({4, 3, 3, 3})), Var(Tensor<float>({3})), {}), std::invalid_argument);
    CHECK_THROWS_AS(conv2d(x, Var(Tensor<float>({4, 3, 7, 7})), Var(), {}), std::invalid_argument);
    CHECK_THROWS_AS(conv2d(x, Var(Tensor<float>({4, 1, 3, 3})), Var(), {1, 0, 2}), std::invalid_argument);
    CHECK_THROWS_AS(conv2d(x, Var(Tensor<float>({4, 3, 3, 3})), Var(), {0, 0, 1}), std::invalid_argument);
}

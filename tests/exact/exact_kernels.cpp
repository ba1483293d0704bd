// Exact integer kernels against independent references: FixedPoint's own multiply, add and rounding (checked
// exhaustively elsewhere) on every pair of a small format, and naive convolutions that accumulate one product at
// a time in the contract's order with the accumulator's overflow rule.
#include "ironclad/core/parallel.hpp"
#include "ironclad/exact/exact_kernels.hpp"

#include <doctest/doctest.h>

#include <random>

using namespace ironclad;

namespace {

template <Rounding R, Overflow O>
ExactArithmetic arithmetic_of(int int_bits, int frac_bits, int acc_bits = 64, Overflow acc = Overflow::saturate) {
    ExactArithmetic a;
    a.format = NumberFormat{NumberKind::fixed, int_bits, frac_bits, R, O};
    a.accumulator_bits = acc_bits;
    a.accumulator_overflow = acc;
    return a;
}

// Every raw of q3.4 (8 bits), as a column [256,1].
RawTensor all_q3_4() {
    RawTensor t({256, 1});
    for (int i = 0; i < 256; ++i) t.data()[i] = i - 128;
    return t;
}

template <Rounding R, Overflow O>
void check_products_and_sums() {
    using Q = FixedPoint<3, 4, R, O>;
    const ExactArithmetic a = arithmetic_of<R, O>(3, 4);
    const RawTensor x = all_q3_4();
    SaturationCounts counts;
    // y[i][j] = x_i * w_j: a 1-input linear layer with 256 outputs.
    const RawTensor y = exact_linear(x, x, RawTensor{}, a, counts);
    std::int64_t overflows = 0;
    for (int i = 0; i < 256; ++i)
        for (int j = 0; j < 256; ++j) {
            bool overflowed = false;
            const Q expected = Q::mul(Q::from_raw(i - 128), Q::from_raw(j - 128), &overflowed);
            overflows += overflowed;
            REQUIRE(y.data()[i * 256 + j] == expected.raw());
        }
    CHECK(counts.narrowing == overflows);
    CHECK(counts.accumulator == 0);
    CHECK(overflows > 0);

    // Residual additions: every pair.
    RawTensor lhs({256, 256}), rhs({256, 256});
    for (int i = 0; i < 256; ++i)
        for (int j = 0; j < 256; ++j) {
            lhs.data()[i * 256 + j] = i - 128;
            rhs.data()[i * 256 + j] = j - 128;
        }
    SaturationCounts add_counts;
    const RawTensor sum = exact_add(lhs, rhs, a, add_counts);
    std::int64_t add_overflows = 0;
    for (int i = 0; i < 256 * 256; ++i) {
        bool overflowed = false;
        const Q expected = Q::add(Q::from_raw(lhs.data()[i]), Q::from_raw(rhs.data()[i]), &overflowed);
        add_overflows += overflowed;
        REQUIRE(sum.data()[i] == expected.raw());
    }
    CHECK(add_counts.narrowing == add_overflows);
}

// One product at a time in tap order (bias first), each addition under the accumulator's rule; then FixedPoint's
// rounding of the exact quotient and its narrowing.
template <Rounding R, Overflow O>
RawTensor naive_conv(const RawTensor& x, const RawTensor& w, const RawTensor& bias, int stride, int pad, int groups,
                     const ExactArithmetic& a, SaturationCounts& counts) {
    const std::int64_t n = x.dim(0), c = x.dim(1), h = x.dim(2), wd = x.dim(3), o = w.dim(0), k = w.dim(2);
    const std::int64_t cg = c / groups, og = o / groups;
    const std::int64_t ho = (h + 2 * pad - k) / stride + 1, wo = (wd + 2 * pad - k) / stride + 1;
    const int frac = a.format.frac_bits;
    const __int128 lo = -(static_cast<__int128>(1) << (a.accumulator_bits - 1)), hi = -lo - 1;
    RawTensor y({n, o, ho, wo});
    for (std::int64_t b = 0; b < n; ++b)
        for (std::int64_t oc = 0; oc < o; ++oc)
            for (std::int64_t i = 0; i < ho; ++i)
                for (std::int64_t j = 0; j < wo; ++j) {
                    __int128 acc = bias.numel() ? static_cast<__int128>(bias.data()[oc]) << frac : 0;
                    bool overflowed = false;
                    for (std::int64_t ci = 0; ci < cg; ++ci)
                        for (std::int64_t ky = 0; ky < k; ++ky)
                            for (std::int64_t kx = 0; kx < k; ++kx) {
                                const std::int64_t yy = i * stride - pad + ky, xx = j * stride - pad + kx;
                                if (yy < 0 || yy >= h || xx < 0 || xx >= wd) continue;
                                const std::int64_t channel = (oc / og) * cg + ci;
                                acc += static_cast<__int128>(x.data()[((b * c + channel) * h + yy) * wd + xx]) *
                                       w.data()[((oc * cg + ci) * k + ky) * k + kx];
                                if (acc < lo || acc > hi) {
                                    overflowed = true;
                                    if (a.accumulator_overflow == Overflow::saturate) {
                                        acc = acc < lo ? lo : hi;
                                    } else {
                                        const __int128 m = static_cast<__int128>(1) << a.accumulator_bits;
                                        acc = ((acc - lo) % m + m) % m + lo;
                                    }
                                }
                            }
                    counts.accumulator += overflowed;
                    // |acc| < 2^53 in these tests, so acc / 2^F is exact in double.
                    const auto quotient = FixedPoint<31, 0, R, O>::from_double(std::ldexp(static_cast<double>(acc), -frac));
                    bool narrowed = false;
                    using Q = FixedPoint<3, 4, R, O>;
                    const std::int64_t raw = a.format.total_bits() == 8
                                                 ? Q::from_raw_wide(quotient.raw(), &narrowed).raw()
                                                 : FixedPoint<15, 16, R, O>::from_raw_wide(quotient.raw(), &narrowed).raw();
                    counts.narrowing += narrowed;
                    y.data()[((b * o + oc) * ho + i) * wo + j] = static_cast<std::int32_t>(raw);
                }
    return y;
}

RawTensor random_raws(Shape shape, std::int32_t lo, std::int32_t hi, std::uint32_t seed, double zero_fraction = 0.2) {
    RawTensor t(std::move(shape));
    std::mt19937 rng(seed);
    std::uniform_int_distribution<std::int32_t> u(lo, hi);
    std::uniform_real_distribution<double> z(0, 1);
    for (std::int64_t i = 0; i < t.numel(); ++i) t.data()[i] = z(rng) < zero_fraction ? 0 : u(rng);
    return t;
}

template <Rounding R, Overflow O>
void check_conv(int acc_bits, Overflow acc_policy, bool wide) {
    const ExactArithmetic a = wide ? arithmetic_of<R, O>(15, 16, acc_bits, acc_policy)
                                   : arithmetic_of<R, O>(3, 4, acc_bits, acc_policy);
    const std::int32_t span = wide ? (1 << 18) : 127;
    for (int groups : {1, 2}) {
        const RawTensor x = random_raws({3, 4, 6, 5}, -span, span, 1 + groups);
        const RawTensor w = random_raws({6, 4 / groups, 3, 3}, -span, span, 11 + groups, 0.05);
        const RawTensor bias = random_raws({6}, -span, span, 21 + groups, 0);
        for (int stride : {1, 2}) {
            SaturationCounts got_counts, want_counts;
            const RawTensor got = exact_conv2d(x, w, bias, Conv2dOptions{stride, 1, groups}, a, got_counts);
            const RawTensor want = naive_conv<R, O>(x, w, bias, stride, 1, groups, a, want_counts);
            REQUIRE(got.shape() == want.shape());
            for (std::int64_t i = 0; i < got.numel(); ++i) REQUIRE(got.data()[i] == want.data()[i]);
            CHECK(got_counts == want_counts);
        }
    }
}

}  // namespace

TEST_CASE("exact products and sums equal FixedPoint's on every pair of q3.4, for every policy") {
    check_products_and_sums<Rounding::toward_zero, Overflow::saturate>();
    check_products_and_sums<Rounding::toward_zero, Overflow::wrap>();
    check_products_and_sums<Rounding::nearest_even, Overflow::saturate>();
    check_products_and_sums<Rounding::nearest_even, Overflow::wrap>();
    check_products_and_sums<Rounding::floor, Overflow::saturate>();
    check_products_and_sums<Rounding::floor, Overflow::wrap>();
}

TEST_CASE("exact convolution equals one-product-at-a-time accumulation, with narrow accumulators overflowing") {
    // q3.4 with a 12-bit accumulator overflows often: the checked path, in order, saturating or wrapping.
    check_conv<Rounding::toward_zero, Overflow::saturate>(12, Overflow::saturate, false);
    check_conv<Rounding::nearest_even, Overflow::wrap>(12, Overflow::wrap, false);
    check_conv<Rounding::floor, Overflow::saturate>(12, Overflow::wrap, false);
    // A 64-bit accumulator never overflows here: the fast paths (double GEMM for q15.16, int64 for depthwise).
    check_conv<Rounding::toward_zero, Overflow::saturate>(64, Overflow::saturate, false);
    check_conv<Rounding::nearest_even, Overflow::saturate>(64, Overflow::saturate, true);
    check_conv<Rounding::floor, Overflow::wrap>(40, Overflow::saturate, true);
}

TEST_CASE("exact depthwise convolution (one input channel per group) equals one-product-at-a-time accumulation") {
    // 6 groups of one input channel with one and two outputs each, stride 1 and 2, zero weights skipped. A 64-bit
    // accumulator takes the row-wise path: q15.16 (raws up to 2^22: the reference's quotient must fit 32 bits)
    // and q3.4, whose narrowings saturate or wrap often; q3.4 with a 12-bit accumulator the checked path.
    auto check = [](const ExactArithmetic& a, std::int32_t span, auto naive, bool overflows) {
        for (std::int64_t outs : {6, 12}) {
            const RawTensor x = random_raws({3, 6, 7, 5}, -span, span, 61);
            const RawTensor w = random_raws({outs, 1, 3, 3}, -span, span, 62, 0.2);
            const RawTensor bias = random_raws({outs}, -span, span, 63, 0);
            for (int stride : {1, 2}) {
                CAPTURE(outs);
                CAPTURE(stride);
                SaturationCounts got_counts, want_counts;
                const RawTensor got = exact_conv2d(x, w, bias, Conv2dOptions{stride, 1, 6}, a, got_counts);
                const RawTensor want = naive(x, w, bias, stride, 1, 6, a, want_counts);
                REQUIRE(got.shape() == want.shape());
                std::int64_t differing = 0;
                for (std::int64_t i = 0; i < got.numel(); ++i) differing += got.data()[i] != want.data()[i];
                CHECK(differing == 0);
                CHECK(got_counts == want_counts);
                CHECK((want_counts.total() > 0) == overflows);
            }
        }
    };
    check(arithmetic_of<Rounding::nearest_even, Overflow::saturate>(15, 16), 1 << 22,
          naive_conv<Rounding::nearest_even, Overflow::saturate>, false);
    check(arithmetic_of<Rounding::floor, Overflow::wrap>(3, 4), 127, naive_conv<Rounding::floor, Overflow::wrap>, true);
    check(arithmetic_of<Rounding::toward_zero, Overflow::saturate>(3, 4), 127,
          naive_conv<Rounding::toward_zero, Overflow::saturate>, true);
    check(arithmetic_of<Rounding::nearest_even, Overflow::saturate>(3, 4, 12), 127,
          naive_conv<Rounding::nearest_even, Overflow::saturate>, true);
}

TEST_CASE("exact convolution in the double GEMM: several column panels and a reduction in chunks") {
    // 40 output channels: a panel of 32 and one of 8; 130 channels x 3x3 = 1170 taps: the reduction runs in chunks.
    const ExactArithmetic a = arithmetic_of<Rounding::nearest_even, Overflow::saturate>(15, 16, 64, Overflow::saturate);
    const RawTensor x = random_raws({2, 130, 5, 4}, -(1 << 18), 1 << 18, 41);
    const RawTensor w = random_raws({40, 130, 3, 3}, -(1 << 14), 1 << 14, 42, 0.05);
    const RawTensor bias = random_raws({40}, -(1 << 18), 1 << 18, 43, 0);
    for (int stride : {1, 2}) {
        CAPTURE(stride);
        SaturationCounts got_counts, want_counts;
        const RawTensor got = exact_conv2d(x, w, bias, Conv2dOptions{stride, 1, 1}, a, got_counts);
        const RawTensor want =
            naive_conv<Rounding::nearest_even, Overflow::saturate>(x, w, bias, stride, 1, 1, a, want_counts);
        REQUIRE(got.shape() == want.shape());
        std::int64_t differing = 0;
        for (std::int64_t i = 0; i < got.numel(); ++i) differing += got.data()[i] != want.data()[i];
        CHECK(differing == 0);
        CHECK(got_counts == want_counts);
    }
}

namespace {

// exact_conv2d with post ops against the separate calls (conv, channel affine, add, clamp): raws and every count.
void check_post_ops(const ExactArithmetic& a, std::int32_t span, std::int32_t scale_span, std::uint32_t seed) {
    const RawTensor x = random_raws({3, 20, 5, 4}, -span, span, seed);
    const RawTensor w = random_raws({40, 20, 3, 3}, -span, span, seed + 1, 0.05);
    const RawTensor bias = random_raws({40}, -span, span, seed + 2, 0);
    const RawTensor scale_raws = random_raws({40}, -scale_span, scale_span, seed + 3, 0);
    const RawTensor shift_raws = random_raws({40}, -span, span, seed + 4, 0);
    const std::span<const std::int32_t> scale(scale_raws.data(), 40), shift(shift_raws.data(), 40);
    REQUIRE(exact_affine_fusable(scale, shift, a));
    for (int stride : {1, 2}) {
        const std::int64_t side_h = stride == 1 ? 5 : 3, side_w = stride == 1 ? 4 : 2;
        const auto full = static_cast<std::int32_t>(a.raw_max());  // sums leave the format often
        const RawTensor residual = random_raws({3, 40, side_h, side_w}, -full, full, seed + 5, 0);
        for (int steps = 0; steps < 4; ++steps) {
            const bool with_residual = steps >= 2, with_clamp = steps % 2 == 1;
            CAPTURE(stride);
            CAPTURE(steps);
            SaturationCounts want_conv, want_norm, want_add;
            RawTensor want = exact_conv2d(x, w, bias, Conv2dOptions{stride, 1, 1}, a, want_conv);
            want = exact_channel_affine(want, scale, shift, a, want_norm);
            if (with_residual) want = exact_add(want, residual, a, want_add);
            if (with_clamp) want = exact_clamp(want, 0, span / 3);
            SaturationCounts got_conv, got_norm, got_add;
            ExactPostOps post{scale, shift, &got_norm};
            if (with_residual) {
                post.residual = &residual;
                post.add_counts = &got_add;
            }
            post.clamp = with_clamp;
            post.hi = span / 3;
            const RawTensor got = exact_conv2d(x, w, bias, Conv2dOptions{stride, 1, 1}, a, got_conv, post);
            REQUIRE(got.shape() == want.shape());
            std::int64_t differing = 0;
            for (std::int64_t i = 0; i < got.numel(); ++i) differing += got.data()[i] != want.data()[i];
            CHECK(differing == 0);
            CHECK(got_conv == want_conv);
            CHECK(got_norm == want_norm);
            CHECK(got_add == want_add);
            CHECK(want_norm.narrowing > 0);  // the values reach the format's limits, so the counts are checked
            if (with_residual) CHECK(want_add.narrowing > 0);
        }
    }
}

}  // namespace

TEST_CASE("exact convolution with fused batch norm, residual and clamp equals the separate calls") {
    // q15.16 with a 64-bit accumulator: the double GEMM's epilogue; the batch norm's scales reach 2^6 so that its
    // narrowing saturates or wraps.
    check_post_ops(arithmetic_of<Rounding::nearest_even, Overflow::saturate>(15, 16), 1 << 20, 1 << 22, 50);
    check_post_ops(arithmetic_of<Rounding::floor, Overflow::wrap>(15, 16), 1 << 20, 1 << 22, 60);
    check_post_ops(arithmetic_of<Rounding::toward_zero, Overflow::saturate>(15, 16), 1 << 20, 1 << 22, 70);
    // q3.4 with a 20-bit accumulator: the checked per-product path (its sums can overflow), then the same steps.
    check_post_ops(arithmetic_of<Rounding::nearest_even, Overflow::saturate>(3, 4, 20, Overflow::saturate), 127, 60,
                   80);
    // A batch norm whose product could leave the accumulator is refused (exact_channel_affine handles it unfused).
    const ExactArithmetic narrow = arithmetic_of<Rounding::floor, Overflow::saturate>(3, 4, 12, Overflow::saturate);
    const std::vector<std::int32_t> big{100}, zero{0};
    CHECK_FALSE(exact_affine_fusable(big, zero, narrow));
    SaturationCounts counts;
    CHECK_THROWS_WITH_AS(exact_conv2d(random_raws({1, 2, 3, 3}, -9, 9, 1), random_raws({1, 2, 1, 1}, -9, 9, 2),
                                      RawTensor{}, Conv2dOptions{}, narrow, counts, ExactPostOps{big, zero, &counts}),
                         doctest::Contains("batch norm"), std::invalid_argument);
}

TEST_CASE("exact convolution counts overflows and gives the same raws at 1 and 2 threads") {
    const ExactArithmetic a = arithmetic_of<Rounding::toward_zero, Overflow::saturate>(3, 4, 12, Overflow::saturate);
    const RawTensor x = random_raws({4, 8, 7, 7}, -127, 127, 5), w = random_raws({8, 8, 3, 3}, -127, 127, 6);
    const int before = num_threads();
    std::vector<RawTensor> out;
    std::vector<SaturationCounts> counts(2);
    for (int threads : {1, 2}) {
        set_num_threads(threads);
        out.push_back(exact_conv2d(x, w, RawTensor{}, Conv2dOptions{1, 1, 1}, a, counts[threads - 1]));
    }
    set_num_threads(before);
    CHECK(counts[0].accumulator > 0);
    CHECK(counts[0] == counts[1]);
    for (std::int64_t i = 0; i < out[0].numel(); ++i) REQUIRE(out[0].data()[i] == out[1].data()[i]);
}

TEST_CASE("exact pooling, affine and quantisation against float references") {
    const ExactArithmetic a = arithmetic_of<Rounding::nearest_even, Overflow::saturate>(7, 8);
    const RawTensor x = random_raws({2, 3, 4, 4}, -2000, 2000, 9);
    SaturationCounts counts;
    // Global average over 16 values: sum / 16 is exact in double, so FixedPoint's rounding of it is the reference.
    const RawTensor mean = exact_global_avg_pool(x, a, counts);
    for (std::int64_t plane = 0; plane < 6; ++plane) {
        double sum = 0;
        for (int i = 0; i < 16; ++i) sum += x.data()[plane * 16 + i];
        CHECK(mean.data()[plane] == FixedPoint<31, 0, Rounding::nearest_even>::from_double(sum / 16).raw());
    }
    // Max pooling 3x3 stride 2 pad 1: padding never wins, even over negative values.
    const RawTensor m = exact_max_pool2d(x, 3, 2, 1);
    REQUIRE(m.shape() == Shape{2, 3, 2, 2});
    for (std::int64_t plane = 0; plane < 6; ++plane)
        for (int i = 0; i < 2; ++i)
            for (int j = 0; j < 2; ++j) {
                std::int32_t best = INT32_MIN;
                for (int yy = 2 * i - 1; yy <= 2 * i + 1; ++yy)
                    for (int xx = 2 * j - 1; xx <= 2 * j + 1; ++xx)
                        if (yy >= 0 && yy < 4 && xx >= 0 && xx < 4) best = std::max(best, x.data()[plane * 16 + yy * 4 + xx]);
                CHECK(m.data()[(plane * 2 + i) * 2 + j] == best);
            }
    // Per-channel affine: x * scale + shift, one product, rounded to nearest-even at 2^-8.
    const std::vector<std::int32_t> scale{256, -384, 77}, shift{0, 512, -1000};
    const RawTensor y = exact_channel_affine(x, scale, shift, a, counts);
    for (std::int64_t i = 0; i < x.numel(); ++i) {
        const std::int64_t ch = (i / 16) % 3;
        const double exact = (static_cast<double>(x.data()[i]) * scale[ch] + shift[ch] * 256.0) / 256.0;
        CHECK(y.data()[i] == std::clamp<std::int64_t>(FixedPoint<31, 0, Rounding::nearest_even>::from_double(exact).raw(),
                                                      -32768, 32767));
    }
    // Quantisation: the format's rounding and saturation, counted.
    Tensor<float> f({4});
    f[0] = 1.5f;
    f[1] = -0.001953125f;  // -half an lsb: ties to even gives 0
    f[2] = 1000.0f;        // above q7.8's 127.996
    f[3] = -1000.0f;
    SaturationCounts qc;
    const RawTensor q = exact_quantize(f, a, qc);
    CHECK(q.data()[0] == 384);
    CHECK(q.data()[1] == 0);
    CHECK(q.data()[2] == 32767);
    CHECK(q.data()[3] == -32768);
    CHECK(qc.narrowing == 2);
}

TEST_CASE("accumulator option text") {
    ExactArithmetic a;
    a.format = parse_number_format("q15.16");
    parse_accumulator("40-wrap", a);
    CHECK(a.accumulator_bits == 40);
    CHECK(a.accumulator_overflow == Overflow::wrap);
    CHECK(a.accumulator_name() == "40-wrap");
    parse_accumulator("64", a);
    CHECK(a.accumulator_overflow == Overflow::saturate);
    CHECK_THROWS_WITH_AS(parse_accumulator("sixty", a), doctest::Contains("'sixty'"), std::invalid_argument);
    CHECK_THROWS_WITH_AS(parse_accumulator("48-clip", a), doctest::Contains("48-clip"), std::invalid_argument);
    a.accumulator_bits = 16;
    CHECK_THROWS_WITH_AS(a.validate(), doctest::Contains("32"), std::invalid_argument);
    a.accumulator_bits = 65;
    CHECK_THROWS_AS(a.validate(), std::invalid_argument);
}

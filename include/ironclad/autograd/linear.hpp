// linear: y = x W^T + b, as torch.nn.functional.linear.
//
// x: [N,in], weight: [out,in], bias: [out] or an undefined Var, y: [N,out].
// All three products run on the gather-GEMM of core/gemm.hpp (a matrix is a gather with row offsets
// r * row_length), split into fixed blocks of rows (of y and dx, of dW and db), so every output element is
// computed the same way at any thread count: bit-identical results. Only the gradients of inputs that
// require one are computed.
#pragma once

#include "ironclad/autograd/variable.hpp"
#include "ironclad/core/gemm.hpp"
#include "ironclad/core/parallel.hpp"

#include <algorithm>
#include <cstdint>
#include <span>
#include <stdexcept>
#include <string>
#include <vector>

namespace ironclad {

namespace detail {

// Rows per parallel block: enough for several register tiles, few enough to share a batch between threads.
inline constexpr std::int64_t kLinearBlock = 32;

// Offsets start, start + step, ... (count of them).
inline std::vector<std::int32_t> strided_offsets(std::int64_t count, std::int64_t step) {
    std::vector<std::int32_t> off(static_cast<std::size_t>(count));
    for (std::int64_t i = 0; i < count; ++i) off[static_cast<std::size_t>(i)] = static_cast<std::int32_t>(i * step);
    return off;
}

// A gather-GEMM B operand: src [rows, cols] (transposed first when asked) with rows padded to whole vectors.
inline Tensor<float> pack_b(const float* src, std::int64_t rows, std::int64_t cols, bool transpose) {
    const std::int64_t r = transpose ? cols : rows, c = transpose ? rows : cols, ld = round_up_lanes(c);
    Tensor<float> b({r, ld});
    for (std::int64_t i = 0; i < r; ++i)
        for (std::int64_t j = 0; j < c; ++j) b[i * ld + j] = transpose ? src[j * cols + i] : src[i * cols + j];
    return b;
}

// out[r][:cols] (+)= sum_j a[a_row[r] + a_red[j]] * b[j][:], for rows [0, rows) in parallel blocks.
template <class Store>
void gemm_rows(const float* a, std::span<const std::int32_t> a_row, std::span<const std::int32_t> a_red,
               const Tensor<float>& b, Store&& store) {
    const auto rows = static_cast<std::int64_t>(a_row.size());
    const std::int64_t ld = b.dim(1);
    parallel_for((rows + kLinearBlock - 1) / kLinearBlock, [&](std::int64_t blk) {
        const std::int64_t r0 = blk * kLinearBlock;
        const auto block = a_row.subspan(static_cast<std::size_t>(r0),
                                         static_cast<std::size_t>(std::min(kLinearBlock, rows - r0)));
        gather_gemm(a, block, a_red, b.data(), ld,
                    [&](std::int64_t t0, int tile_rows, std::int64_t c0, const float* tile, int tld) {
                        for (int r = 0; r < tile_rows; ++r) store(r0 + t0 + r, c0, tile + r * tld, tld);
                    });
    }, kLinearBlock * static_cast<std::int64_t>(a_red.size()) * ld);
}

}  // namespace detail

inline Var linear(const Var& x, const Var& weight, const Var& bias) {
    if (!x.defined() || !weight.defined()) throw std::invalid_argument("linear: input and weight must be defined");
    const Shape& xs = x.shape();
    const Shape& ws = weight.shape();
    if (xs.size() != 2 || ws.size() != 2 || xs[1] != ws[1] || (bias.defined() && bias.shape() != Shape{ws[0]}))
        throw std::invalid_argument("linear: expected input [N,in], weight [out,in], bias [out]; got input " +
                                    shape_str(xs) + ", weight " + shape_str(ws) +
                                    (bias.defined() ? ", bias " + shape_str(bias.shape()) : ""));
    const std::int64_t n = xs[0], in = xs[1], out = ws[0];
    Tensor<float> y({n, out});
    {
        const float* b = bias.defined() ? bias.value().data() : nullptr;
        float* yd = y.data();
        detail::gemm_rows(x.value().data(), detail::strided_offsets(n, in), detail::strided_offsets(in, 1),
                          detail::pack_b(weight.value().data(), out, in, true),
                          [&](std::int64_t r, std::int64_t c0, const float* t, int cols) {
                              for (std::int64_t c = c0; c < std::min<std::int64_t>(c0 + cols, out); ++c)
                                  yd[r * out + c] = t[c - c0] + (b ? b[c] : 0.0f);
                          });
    }
    auto backward = [xv = x.value(), wv = weight.value(), n, in, out](Node& node) {
        const float* dy = node.grad.data();
        Node* px = node.parents[0].get();
        Node* pw = node.parents[1].get();
        Node* pb = node.parents.size() > 2 ? node.parents[2].get() : nullptr;
        // Both gradients land in rows of length `in`.
        auto add_into = [in](float* dst) {
            return [dst, in](std::int64_t r, std::int64_t c0, const float* t, int cols) {
                for (std::int64_t c = c0; c < std::min<std::int64_t>(c0 + cols, in); ++c) dst[r * in + c] += t[c - c0];
            };
        };
        if (px->requires_grad)  // dx = dy W
            detail::gemm_rows(dy, detail::strided_offsets(n, out), detail::strided_offsets(out, 1),
                              detail::pack_b(wv.data(), out, in, false), add_into(px->grad_buffer().data()));
        if (pw->requires_grad)  // dW = dy^T x: row o of dy^T is column o of dy
            detail::gemm_rows(dy, detail::strided_offsets(out, 1), detail::strided_offsets(n, out),
                              detail::pack_b(xv.data(), n, in, false), add_into(pw->grad_buffer().data()));
        if (pb && pb->requires_grad) {
            float* db = pb->grad_buffer().data();
            for (std::int64_t r = 0; r < n; ++r)
                for (std::int64_t c = 0; c < out; ++c) db[c] += dy[r * out + c];
        }
    };
    if (bias.defined()) return make_result(std::move(y), {&x, &weight, &bias}, std::move(backward));
    return make_result(std::move(y), {&x, &weight}, std::move(backward));
}

}  // namespace ironclad

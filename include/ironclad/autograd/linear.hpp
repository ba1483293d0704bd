// linear: y = x W^T + b, as torch.nn.functional.linear.
//
// x: [N,in], weight: [out,in], bias: [out] or an undefined Var, y: [N,out].
// Each product is cut into fixed blocks (rows of x for y and dx, rows of W for dW and db) and every block is
// one single-threaded Eigen GEMM, so each output element is computed the same way at any thread count:
// bit-identical results. Only the gradients of inputs that require one are computed.
#pragma once

#include "ironclad/autograd/variable.hpp"
#include "ironclad/core/parallel.hpp"

#include <algorithm>
#include <cstdint>
#include <stdexcept>
#include <string>

namespace ironclad {

namespace detail {

// Rows per parallel block: large enough for an efficient GEMM, small enough to share a batch between threads.
inline constexpr std::int64_t kLinearBlock = 32;

// Calls f(row0, rows) for consecutive blocks of kLinearBlock rows covering [0, n), in parallel when the work
// (multiply-adds per row) is worth it.
template <class F>
void for_row_blocks(std::int64_t n, std::int64_t work_per_row, F&& f) {
    parallel_for((n + kLinearBlock - 1) / kLinearBlock, [&](std::int64_t b) {
        const std::int64_t r0 = b * kLinearBlock;
        f(r0, std::min(kLinearBlock, n - r0));
    }, kLinearBlock * work_per_row);
}

using RowVectorMap = Eigen::Map<const Eigen::Matrix<float, 1, Eigen::Dynamic>>;

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
        const auto X = x.value().matrix(n, in);
        const auto W = weight.value().matrix(out, in);
        auto Y = y.matrix(n, out);
        detail::for_row_blocks(n, in * out, [&](std::int64_t r0, std::int64_t rows) {
            auto block = Y.middleRows(r0, rows);
            block.noalias() = X.middleRows(r0, rows) * W.transpose();
            if (bias.defined()) block.rowwise() += detail::RowVectorMap(bias.value().data(), out);
        });
    }
    auto backward = [xv = x.value(), wv = weight.value(), n, in, out](Node& node) {
        const auto dY = node.grad.matrix(n, out);
        Node* px = node.parents[0].get();
        Node* pw = node.parents[1].get();
        Node* pb = node.parents.size() > 2 ? node.parents[2].get() : nullptr;
        if (px->requires_grad) {
            auto dX = px->grad_buffer().matrix(n, in);
            const auto W = wv.matrix(out, in);
            detail::for_row_blocks(n, in * out, [&](std::int64_t r0, std::int64_t rows) {
                dX.middleRows(r0, rows).noalias() += dY.middleRows(r0, rows) * W;
            });
        }
        if (pw->requires_grad) {
            auto dW = pw->grad_buffer().matrix(out, in);
            const auto X = xv.matrix(n, in);
            detail::for_row_blocks(out, n * in, [&](std::int64_t r0, std::int64_t rows) {
                dW.middleRows(r0, rows).noalias() += dY.middleCols(r0, rows).transpose() * X;
            });
        }
        if (pb && pb->requires_grad) {
            auto db = pb->grad_buffer().matrix(1, out);
            detail::for_row_blocks(out, n, [&](std::int64_t r0, std::int64_t rows) {
                db.middleCols(r0, rows) += dY.middleCols(r0, rows).colwise().sum();
            });
        }
    };
    if (bias.defined()) return make_result(std::move(y), {&x, &weight, &bias}, std::move(backward));
    return make_result(std::move(y), {&x, &weight}, std::move(backward));
}

}  // namespace ironclad

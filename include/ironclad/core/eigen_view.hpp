// Eigen views of a Tensor's storage (arithmetic element types): a row-major matrix or a flat array that reads
// and writes the tensor's elements in place.
//
// Contract: the view aliases the tensor (no copy) and is valid while the tensor's storage lives; matrix_view
// throws std::invalid_argument when rows x cols is not the tensor's element count.
#pragma once

#include "ironclad/core/tensor.hpp"

#include <Eigen/Core>

#include <stdexcept>
#include <string>
#include <type_traits>
#include <utility>

namespace ironclad {

template <class T>
using RowMajorMatrix = Eigen::Matrix<T, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;

namespace detail {

template <class T>
void check_matrix_view(const Tensor<T>& t, std::int64_t rows, std::int64_t cols) {
    if (rows * cols != t.numel())
        throw std::invalid_argument("matrix_view: " + std::to_string(rows) + "x" + std::to_string(cols) +
                                    " does not match shape " + shape_str(t.shape()));
}

// [dim0, rest] for any tensor of rank >= 1; [1, numel] for a scalar.
template <class T>
std::pair<std::int64_t, std::int64_t> leading_split(const Tensor<T>& t) {
    const std::int64_t rows = t.ndim() ? t.dim(0) : 1;
    return {rows, t.ndim() && rows ? t.numel() / rows : t.numel()};
}

}  // namespace detail

template <class T>
    requires std::is_arithmetic_v<T>
Eigen::Map<RowMajorMatrix<T>> matrix_view(Tensor<T>& t, std::int64_t rows, std::int64_t cols) {
    detail::check_matrix_view(t, rows, cols);
    return {t.data(), rows, cols};
}

template <class T>
    requires std::is_arithmetic_v<T>
Eigen::Map<const RowMajorMatrix<T>> matrix_view(const Tensor<T>& t, std::int64_t rows, std::int64_t cols) {
    detail::check_matrix_view(t, rows, cols);
    return {t.data(), rows, cols};
}

template <class T>
    requires std::is_arithmetic_v<T>
Eigen::Map<RowMajorMatrix<T>> matrix_view(Tensor<T>& t) {
    const auto [rows, cols] = detail::leading_split(t);
    return matrix_view(t, rows, cols);
}

template <class T>
    requires std::is_arithmetic_v<T>
Eigen::Map<const RowMajorMatrix<T>> matrix_view(const Tensor<T>& t) {
    const auto [rows, cols] = detail::leading_split(t);
    return matrix_view(t, rows, cols);
}

template <class T>
    requires std::is_arithmetic_v<T>
Eigen::Map<Eigen::Array<T, Eigen::Dynamic, 1>> array_view(Tensor<T>& t) {
    return {t.data(), t.numel()};
}

template <class T>
    requires std::is_arithmetic_v<T>
Eigen::Map<const Eigen::Array<T, Eigen::Dynamic, 1>> array_view(const Tensor<T>& t) {
    return {t.data(), t.numel()};
}

}  // namespace ironclad

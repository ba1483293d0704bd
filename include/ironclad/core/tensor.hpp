// Tensor<T>: contiguous, row-major N-d storage (NCHW for images) shared between views.
//
// Contract: a Tensor is a (storage, offset, shape) triple. Copying a Tensor copies the handle, not the
// data (like torch.Tensor); clone() copies data. Views made by view()/slice() share storage, so writes
// through a view are seen by its parent. Storage is 64-byte aligned for SIMD kernels. Works for float,
// double, FixedPoint<I,F> and int8_t; Eigen maps over a tensor are in core/eigen_view.hpp (kept out of here so
// that the core headers compile without Eigen).
// Raw storage (bytes) is exposed for the fault injector; the bit view of one element is in bits.hpp.
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <memory>
#include <new>
#include <numeric>
#include <span>
#include <sstream>
#include <stdexcept>
#include <string>
#include <type_traits>
#include <vector>

namespace ironclad {

using Shape = std::vector<std::int64_t>;

inline std::int64_t shape_numel(const Shape& s) {
    return std::accumulate(s.begin(), s.end(), std::int64_t{1}, std::multiplies<>());
}

inline std::string shape_str(const Shape& s) {
    std::ostringstream os;
    os << '[';
    for (std::size_t i = 0; i < s.size(); ++i) os << (i ? "," : "") << s[i];
    os << ']';
    return os.str();
}

namespace detail {
// One heap block, 64-byte aligned, never resized: views keep it alive through shared_ptr.
template <class T>
struct Storage {
    T* ptr = nullptr;
    std::int64_t size = 0;
    // value_init false leaves trivial elements indeterminate: for outputs a kernel overwrites entirely.
    explicit Storage(std::int64_t n, bool value_init = true) : size(n) {
        if (n == 0) return;
        const std::size_t bytes = (static_cast<std::size_t>(n) * sizeof(T) + 63) / 64 * 64;
        ptr = static_cast<T*>(std::aligned_alloc(64, bytes));
        if (!ptr) throw std::bad_alloc();
        if (value_init)
            std::uninitialized_value_construct_n(ptr, static_cast<std::size_t>(n));
        else
            std::uninitialized_default_construct_n(ptr, static_cast<std::size_t>(n));
    }
    Storage(const Storage&) = delete;
    Storage& operator=(const Storage&) = delete;
    ~Storage() {
        std::destroy_n(ptr, static_cast<std::size_t>(size));
        std::free(ptr);
    }
};
}  // namespace detail

template <class T>
class Tensor {
public:
    using value_type = T;

    Tensor() = default;
    // Zero-initialised (value-initialised) tensor of the given shape.
    explicit Tensor(Shape shape) : shape_(std::move(shape)) {
        for (auto d : shape_)
            if (d < 0) throw std::invalid_argument("Tensor: negative dimension in shape " + shape_str(shape_));
        storage_ = std::make_shared<detail::Storage<T>>(shape_numel(shape_));
    }
    Tensor(Shape shape, T fill) : Tensor(std::move(shape)) { std::fill(begin(), end(), fill); }
    // Storage left unfilled (for float: indeterminate values): only for outputs that are written in full,
    // where zero-filling first would be a serial memset on the hot path.
    static Tensor uninitialized(Shape shape) {
        Tensor t;
        t.shape_ = std::move(shape);
        for (auto d : t.shape_)
            if (d < 0) throw std::invalid_argument("Tensor: negative dimension in shape " + shape_str(t.shape_));
        t.storage_ = std::make_shared<detail::Storage<T>>(shape_numel(t.shape_), false);
        return t;
    }
    Tensor(Shape shape, std::initializer_list<T> values) : Tensor(std::move(shape)) {
        if (static_cast<std::int64_t>(values.size()) != numel())
            throw std::invalid_argument("Tensor: " + std::to_string(values.size()) + " values for shape " +
                                        shape_str(shape_));
        std::copy(values.begin(), values.end(), begin());
    }

    const Shape& shape() const { return shape_; }
    int ndim() const { return static_cast<int>(shape_.size()); }
    // Size of dimension i; negative i counts from the end.
    std::int64_t dim(int i) const { return shape_.at(static_cast<std::size_t>(i < 0 ? i + ndim() : i)); }
    std::int64_t numel() const { return storage_ ? shape_numel(shape_) : 0; }
    bool empty() const { return numel() == 0; }
    bool defined() const { return storage_ != nullptr; }

    T* data() { return storage_ ? storage_->ptr + offset_ : nullptr; }
    const T* data() const { return storage_ ? storage_->ptr + offset_ : nullptr; }
    T* begin() { return data(); }
    T* end() { return data() + numel(); }
    const T* begin() const { return data(); }
    const T* end() const { return data() + numel(); }
    std::span<T> span() { return {data(), static_cast<std::size_t>(numel())}; }
    std::span<const T> span() const { return {data(), static_cast<std::size_t>(numel())}; }
    // The raw bytes of the elements, as the hardware would store them.
    std::span<std::byte> bytes() { return std::as_writable_bytes(span()); }
    std::span<const std::byte> bytes() const { return std::as_bytes(span()); }

    T& operator[](std::int64_t i) { return data()[i]; }
    const T& operator[](std::int64_t i) const { return data()[i]; }
    // Element by N-d index, bounds-checked.
    T& at(std::initializer_list<std::int64_t> idx) { return data()[flat_index(idx)]; }
    const T& at(std::initializer_list<std::int64_t> idx) const { return data()[flat_index(idx)]; }

    // Same storage, new shape with the same element count; one dimension may be -1 (inferred).
    Tensor view(Shape shape) const {
        std::int64_t known = 1;
        int infer = -1;
        for (std::size_t i = 0; i < shape.size(); ++i) {
            if (shape[i] == -1) {
                if (infer >= 0) throw std::invalid_argument("Tensor::view: more than one -1 in " + shape_str(shape));
                infer = static_cast<int>(i);
            } else {
                known *= shape[i];
            }
        }
        if (infer >= 0 && known > 0) shape[static_cast<std::size_t>(infer)] = numel() / known;
        if (shape_numel(shape) != numel())
            throw std::invalid_argument("Tensor::view: cannot view " + shape_str(shape_) + " as " + shape_str(shape));
        Tensor t = *this;
        t.shape_ = std::move(shape);
        return t;
    }
    // Rows [begin, end) of dimension 0, sharing storage.
    Tensor slice(std::int64_t begin, std::int64_t end) const {
        if (ndim() == 0 || begin < 0 || end > shape_[0] || begin > end)
            throw std::out_of_range("Tensor::slice: [" + std::to_string(begin) + "," + std::to_string(end) +
                                    ") out of range for shape " + shape_str(shape_));
        Tensor t = *this;
        const std::int64_t row = shape_[0] ? numel() / shape_[0] : 0;
        t.offset_ += begin * row;
        t.shape_[0] = end - begin;
        return t;
    }
    Tensor clone() const {
        Tensor t(shape_);
        std::copy(begin(), end(), t.begin());
        return t;
    }
    void fill(T v) { std::fill(begin(), end(), v); }
    void zero() { fill(T{}); }
    void copy_from(const Tensor& other) {
        if (other.shape_ != shape_)
            throw std::invalid_argument("Tensor::copy_from: shape " + shape_str(other.shape_) + " into " +
                                        shape_str(shape_));
        std::copy(other.begin(), other.end(), begin());
    }
    bool same_storage(const Tensor& other) const { return storage_ == other.storage_; }

    // Element-wise conversion to another scalar type (float -> FixedPoint, FixedPoint -> float, ...).
    template <class U>
    Tensor<U> cast() const {
        Tensor<U> t(shape_);
        const T* src = data();
        U* dst = t.data();
        for (std::int64_t i = 0, n = numel(); i < n; ++i) dst[i] = static_cast<U>(src[i]);
        return t;
    }

private:
    std::int64_t flat_index(std::initializer_list<std::int64_t> idx) const {
        if (static_cast<int>(idx.size()) != ndim())
            throw std::out_of_range("Tensor::at: " + std::to_string(idx.size()) + " indices for shape " +
                                    shape_str(shape_));
        std::int64_t flat = 0;
        std::size_t d = 0;
        for (auto i : idx) {
            if (i < 0 || i >= shape_[d])
                throw std::out_of_range("Tensor::at: index " + std::to_string(i) + " out of range in dimension " +
                                        std::to_string(d) + " of " + shape_str(shape_));
            flat = flat * shape_[d++] + i;
        }
        return flat;
    }

    std::shared_ptr<detail::Storage<T>> storage_;
    std::int64_t offset_ = 0;
    Shape shape_;
};

}  // namespace ironclad

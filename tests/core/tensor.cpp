#include "ironclad/core/eigen_view.hpp"
#include "ironclad/core/tensor.hpp"

#include <doctest/doctest.h>

using namespace ironclad;

TEST_CASE("tensor: views share storage, clones do not") {
    Tensor<float> t({2, 3}, {1, 2, 3, 4, 5, 6});
    CHECK(t.numel() == 6);
    CHECK(t.at({1, 2}) == 6);
    Tensor<float> v = t.view({3, -1});
    CHECK(v.shape() == Shape{3, 2});
    v[0] = 10;
    CHECK(t[0] == 10);
    Tensor<float> row = t.slice(1, 2);
    CHECK(row.shape() == Shape{1, 3});
    CHECK(row[0] == 4);
    Tensor<float> c = t.clone();
    c[0] = -1;
    CHECK(t[0] == 10);
    CHECK_THROWS_AS(t.view({4, 2}), std::invalid_argument);
    CHECK_THROWS_AS(t.at({2, 0}), std::out_of_range);
    CHECK_THROWS_AS(t.slice(1, 3), std::out_of_range);
}

TEST_CASE("tensor: eigen map and storage alignment") {
    Tensor<float> t({2, 2}, {1, 2, 3, 4});
    auto m = matrix_view(t);
    CHECK(m(1, 0) == 3);
    CHECK((m * m)(0, 0) == 7);
    m(0, 1) = 5;  // a view, not a copy
    CHECK(t.at({0, 1}) == 5);
    CHECK(array_view(t).sum() == 13);
    CHECK_THROWS_WITH_AS(matrix_view(t, 3, 2), "matrix_view: 3x2 does not match shape [2,2]", std::invalid_argument);
    CHECK(reinterpret_cast<std::uintptr_t>(Tensor<float>({5}).data()) % 64 == 0);
    CHECK(t.bytes().size() == 16);
}

TEST_CASE("tensor: int8 and double element types, cast") {
    Tensor<std::int8_t> q({4}, std::int8_t{-3});
    CHECK(q[3] == -3);
    Tensor<double> d = q.cast<double>();
    CHECK(d[0] == -3.0);
}

#include "ironclad/data/dataset.hpp"

#include <doctest/doctest.h>

using namespace ironclad;

namespace {
// 9 images of 1x1x2 pixels; image i holds {i, 100 + i}; labels interleave three classes unevenly.
Dataset toy() {
    Dataset ds{Tensor<std::uint8_t>({9, 1, 1, 2}), {0, 1, 0, 2, 0, 1, 2, 0, 2}, 3, {"a", "b", "c"}, "toy"};
    for (int i = 0; i < 9; ++i) {
        ds.images[2 * i] = static_cast<std::uint8_t>(i);
        ds.images[2 * i + 1] = static_cast<std::uint8_t>(100 + i);
    }
    return ds;
}
}  // namespace

TEST_CASE("dataset: subset_balanced takes the first images of each class in stored order") {
    const Dataset ds = toy();
    const Dataset sub = subset_balanced(ds, 7);  // 7 / 3 = 2 per class
    CHECK(sub.labels == std::vector<std::int32_t>{0, 1, 0, 2, 1, 2});
    CHECK(sub.images.shape() == Shape{6, 1, 1, 2});
    const std::vector<int> picked{0, 1, 2, 3, 5, 6};
    for (int k = 0; k < 6; ++k) {
        CHECK(sub.images[2 * k] == picked[static_cast<std::size_t>(k)]);
        CHECK(sub.images[2 * k + 1] == 100 + picked[static_cast<std::size_t>(k)]);
    }
    CHECK(sub.class_names == ds.class_names);
    CHECK_FALSE(sub.images.same_storage(ds.images));

    // Class 1 has only two images: it contributes both, the others four each.
    const Dataset big = subset_balanced(ds, 12);
    CHECK(big.labels == std::vector<std::int32_t>{0, 1, 0, 2, 0, 1, 2, 0, 2});
    CHECK_THROWS_AS(subset_balanced(ds, 2), std::invalid_argument);
}

TEST_CASE("dataset: take is a shared range") {
    const Dataset ds = toy();
    const Dataset t = take(ds, 2, 5);
    CHECK(t.size() == 3);
    CHECK(t.labels == std::vector<std::int32_t>{0, 2, 0});
    CHECK(t.images[0] == 2);
    CHECK(t.images.same_storage(ds.images));
    CHECK(take(ds, 4, 4).size() == 0);
    CHECK_THROWS_AS(take(ds, 3, 10), std::out_of_range);
    CHECK_THROWS_AS(take(ds, 5, 4), std::out_of_range);
}

#include "ironclad/data/loader.hpp"

#include <doctest/doctest.h>

#include <omp.h>

#include <algorithm>
#include <numeric>
#include <vector>

using namespace ironclad;

namespace {
// n RGB 6x6 images; image i is filled with pixel value i + 1 (never black), label i % 3.
Dataset toy(int n) {
    Dataset ds{Tensor<std::uint8_t>({n, 3, 6, 6}), {}, 3, {"a", "b", "c"}, "toy"};
    for (int i = 0; i < n; ++i) {
        std::fill(ds.images.begin() + i * 108, ds.images.begin() + (i + 1) * 108, static_cast<std::uint8_t>(i + 1));
        ds.labels.push_back(i % 3);
    }
    return ds;
}

const LoaderOptions augmented{.batch_size = 4, .shuffle = true, .seed = 42, .mean = {0.1f, 0.2f, 0.3f},
                              .std = {0.5f, 0.6f, 0.7f}, .augment_crop_pad = 2, .augment_flip = true};

// Every batch of one epoch, images and indices concatenated.
std::pair<std::vector<float>, std::vector<std::int64_t>> epoch(BatchLoader& loader, int e) {
    loader.start_epoch(e);
    std::vector<float> images;
    std::vector<std::int64_t> indices;
    Batch b;
    while (loader.next(b)) {
        images.insert(images.end(), b.images.begin(), b.images.end());
        indices.insert(indices.end(), b.indices.begin(), b.indices.end());
    }
    return {images, indices};
}
}  // namespace

TEST_CASE("loader: batch count, last batch and drop_last") {
    BatchLoader loader(toy(10), {.batch_size = 4});
    CHECK(loader.num_batches() == 3);
    Batch b;
    std::vector<std::int64_t> sizes;
    while (loader.next(b)) sizes.push_back(b.images.dim(0));
    CHECK(sizes == std::vector<std::int64_t>{4, 4, 2});
    CHECK(b.labels == std::vector<std::int32_t>{2, 0});  // images 8 and 9, unshuffled
    CHECK(b.images.at({1, 2, 5, 5}) == 10.0f / 255.0f);  // image 9 holds 10; no normalisation given

    BatchLoader dropping(toy(10), {.batch_size = 4, .drop_last = true});
    CHECK(dropping.num_batches() == 2);
    int count = 0;
    while (dropping.next(b)) ++count;
    CHECK(count == 2);
    CHECK_THROWS_AS(BatchLoader(toy(2), {.batch_size = 0}), std::invalid_argument);
}

TEST_CASE("loader: the batch buffer is reused while the shape stays") {
    BatchLoader loader(toy(12), {.batch_size = 4});
    Batch b;
    loader.next(b);
    const float* first = b.images.data();
    loader.next(b);
    CHECK(b.images.data() == first);
    CHECK(b.indices == std::vector<std::int64_t>{4, 5, 6, 7});
}

TEST_CASE("loader: shuffling is a seeded permutation per epoch") {
    BatchLoader loader(toy(50), {.batch_size = 8, .shuffle = true, .seed = 7});
    const auto e0 = epoch(loader, 0).second;
    std::vector<std::int64_t> sorted = e0;
    std::sort(sorted.begin(), sorted.end());
    std::vector<std::int64_t> identity(50);
    std::iota(identity.begin(), identity.end(), 0);
    CHECK(sorted == identity);
    CHECK(e0 != identity);
    CHECK(epoch(loader, 1).second != e0);
    CHECK(epoch(loader, 0).second == e0);
    BatchLoader other_seed(toy(50), {.batch_size = 8, .shuffle = true, .seed = 8});
    CHECK(epoch(other_seed, 0).second != e0);
}

TEST_CASE("loader: same seed and epoch give identical batches at 1 and 2 threads") {
    const int threads = omp_get_max_threads();
    omp_set_num_threads(1);
    BatchLoader one(toy(30), augmented);
    const auto a = epoch(one, 3);
    omp_set_num_threads(2);
    BatchLoader two(toy(30), augmented);
    const auto b = epoch(two, 3);
    omp_set_num_threads(threads);
    CHECK(a.second == b.second);
    CHECK(a.first == b.first);
    CHECK(epoch(two, 4).first != a.first);
}

TEST_CASE("loader: augmented images are shifted copies padded with normalised black") {
    // Each image is one flat colour, so a crop shows that colour inside and black outside: per channel,
    // a (6 - |dy - 2|) x (6 - |dx - 2|) block of the colour, and never anything else.
    BatchLoader loader(toy(16), augmented);
    const ImageTransform& t = loader.transform();
    Batch b;
    int shifted = 0;
    while (loader.next(b)) {
        for (std::int64_t i = 0; i < b.images.dim(0); ++i) {
            const auto v = static_cast<std::uint8_t>(b.indices[static_cast<std::size_t>(i)] + 1);
            for (int c = 0; c < 3; ++c) {
                int inside = 0;
                bool only_known_values = true;
                for (int y = 0; y < 6; ++y)
                    for (int x = 0; x < 6; ++x) {
                        const float px = b.images.at({i, c, y, x});
                        inside += px == t.normalized(c, v);
                        only_known_values &= px == t.normalized(c, v) || px == t.normalized(c, 0);
                    }
                CHECK(only_known_values);
                CHECK(inside >= 16);  // at worst 4x4
                shifted += inside < 36;
            }
        }
    }
    CHECK(shifted > 0);
}

TEST_CASE("loader: pad_to grows 28x28 to 32x32") {
    Dataset ds{Tensor<std::uint8_t>({2, 1, 28, 28}, std::uint8_t{255}), {0, 1}, 2, {"x", "y"}, "toy"};
    BatchLoader loader(ds, {.batch_size = 2, .mean = {0.5f}, .std = {0.5f}, .pad_to = 32});
    Batch b;
    REQUIRE(loader.next(b));
    CHECK(b.images.shape() == Shape{2, 1, 32, 32});
    CHECK(b.images.at({1, 0, 1, 1}) == -1.0f);
    CHECK(b.images.at({1, 0, 2, 2}) == 1.0f);
    CHECK(b.images.at({1, 0, 29, 29}) == 1.0f);
    CHECK(b.images.at({1, 0, 30, 29}) == -1.0f);
}

#include "ironclad/data/transforms.hpp"

#include <doctest/doctest.h>

#include <vector>

using namespace ironclad;

namespace {
// One 3x3 grey image with pixels 10..90 and no black, so with mean 0 / std 1 an output of exactly 0
// can only be padding.
const std::vector<std::uint8_t> img{10, 20, 30, 40, 50, 60, 70, 80, 90};

// The transformed image as pixel values (x * 255), -1 for padding.
std::vector<int> run(const ImageTransform& t, Augment a) {
    std::vector<float> out(static_cast<std::size_t>(t.out_height() * t.out_width()));
    t.apply(img.data(), a, out.data());
    std::vector<int> v;
    for (float x : out) v.push_back(x == 0.0f ? -1 : static_cast<int>(x * 255.0f + 0.5f));
    return v;
}
}  // namespace

TEST_CASE("transforms: normalisation matches (v/255 - mean)/std in float") {
    const ImageTransform t(3, 1, 1, {0.4914f, 0.4822f, 0.4465f}, {0.2470f, 0.2435f, 0.2616f});
    CHECK(t.normalized(0, 128) == (128.0f / 255.0f - 0.4914f) / 0.2470f);
    CHECK(t.normalized(2, 0) == doctest::Approx(-0.4465 / 0.2616).epsilon(1e-6));
    CHECK(t.normalized(1, 255) == doctest::Approx((1.0 - 0.4822) / 0.2435).epsilon(1e-6));
    const std::uint8_t px[3] = {0, 128, 255};
    float out[3];
    t.apply(px, {}, out);
    CHECK(out[0] == t.normalized(0, 0));
    CHECK(out[1] == t.normalized(1, 128));
    CHECK(out[2] == t.normalized(2, 255));
    CHECK_THROWS_AS(ImageTransform(3, 1, 1, {0.5f}, {}), std::invalid_argument);
    CHECK_THROWS_AS(ImageTransform(1, 1, 1, {}, {0.0f}), std::invalid_argument);
    CHECK_THROWS_AS(ImageTransform(1, 4, 4, {}, {}, 3), std::invalid_argument);
}

TEST_CASE("transforms: crop offsets and flip, by hand on a 3x3 image") {
    const ImageTransform t(1, 3, 3, {}, {}, 0, 1);  // crop padding 1: dy, dx in {0, 1, 2}
    CHECK(run(t, {1, 1, false}) == std::vector<int>{10, 20, 30, 40, 50, 60, 70, 80, 90});  // centred crop
    CHECK(run(t, {0, 0, false}) == std::vector<int>{-1, -1, -1, -1, 10, 20, -1, 40, 50});  // shifted down-right
    CHECK(run(t, {2, 1, false}) == std::vector<int>{40, 50, 60, 70, 80, 90, -1, -1, -1});  // shifted up
    CHECK(run(t, {1, 1, true}) == std::vector<int>{30, 20, 10, 60, 50, 40, 90, 80, 70});   // mirrored
    // Crop first, then flip, as RandomCrop -> RandomHorizontalFlip: the crop that shows the right
    // columns shows them on the left after mirroring.
    CHECK(run(t, {1, 2, true}) == std::vector<int>{-1, 30, 20, -1, 60, 50, -1, 90, 80});
}

TEST_CASE("transforms: pad_to centres the image on black, odd margins go bottom-right") {
    const ImageTransform t(1, 3, 3, {}, {}, 4);
    CHECK(t.out_height() == 4);
    CHECK(run(t, {}) == std::vector<int>{10, 20, 30, -1, 40, 50, 60, -1, 70, 80, 90, -1, -1, -1, -1, -1});
    const ImageTransform t5(1, 3, 3, {}, {}, 5);
    CHECK(run(t5, {})[6] == 10);  // (1, 1) of the 5x5 canvas
    const ImageTransform black(1, 3, 3, {0.5f}, {0.25f}, 5);
    std::vector<float> out(25);
    black.apply(img.data(), {}, out.data());
    CHECK(out[0] == (0.0f - 0.5f) / 0.25f);
}

#include "ironclad/data/image_folder.hpp"

#include "fixtures.hpp"

#include <doctest/doctest.h>

#include <omp.h>

#include <string>

using namespace ironclad;
using namespace ironclad::testing;

namespace {
constexpr int H = 4, W = 5;

// pattern_image(H, W, 3, seed) in [C,H,W] order, as the Dataset should hold it.
Bytes chw(int seed, int channels = 3) {
    const Bytes hwc = pattern_image(H, W, channels, seed);
    Bytes out;
    for (int c = 0; c < channels; ++c)
        for (int p = 0; p < H * W; ++p) out.push_back(hwc[static_cast<std::size_t>(p * channels + c)]);
    return out;
}

Bytes image_at(const Dataset& ds, std::int64_t i) {
    const std::int64_t item = ds.channels() * ds.height() * ds.width();
    return {ds.images.begin() + i * item, ds.images.begin() + (i + 1) * item};
}

// cls_b is written first and files out of order: the reader must sort both.
void write_rgb_folder(const TempDir& dir) {
    write_png(dir / "cls_b/002.png", H, W, 3, pattern_image(H, W, 3, 40));
    write_bmp(dir / "cls_b/000.bmp", H, W, 3, pattern_image(H, W, 3, 20));
    write_png(dir / "cls_b/001.png", H, W, 3, pattern_image(H, W, 3, 30));
    write_png(dir / "cls_a/001.png", H, W, 3, pattern_image(H, W, 3, 10));
    write_png(dir / "cls_a/000.png", H, W, 3, pattern_image(H, W, 3, 0));
    write_bytes(dir / "cls_a/notes.txt", {'h', 'i'});
    write_bytes(dir / "cls_a/._000.png", {0, 1, 2});  // a macOS resource fork, not an image
}
}  // namespace

TEST_CASE("image folder: sorted classes and files, exact PNG/BMP pixels in CHW") {
    TempDir dir;
    write_rgb_folder(dir);
    const Dataset ds = load_image_folder(dir.path);
    CHECK(ds.class_names == std::vector<std::string>{"cls_a", "cls_b"});
    CHECK(ds.num_classes == 2);
    CHECK(ds.labels == std::vector<std::int32_t>{0, 0, 1, 1, 1});
    CHECK(ds.images.shape() == Shape{5, 3, H, W});
    const int seeds[] = {0, 10, 20, 30, 40};
    for (int i = 0; i < 5; ++i) CHECK(image_at(ds, i) == chw(seeds[i]));
}

TEST_CASE("image folder: grey images give one channel, limit_per_class decodes the first files") {
    TempDir dir;
    for (int c = 0; c < 2; ++c)
        for (int f = 0; f < 3; ++f)
            write_png(dir.path / std::string(1, static_cast<char>('a' + c)) / (std::to_string(f) + ".png"), H, W, 1,
                      pattern_image(H, W, 1, 10 * c + f));
    const Dataset all = load_image_folder(dir.path);
    CHECK(all.images.shape() == Shape{6, 1, H, W});
    CHECK(image_at(all, 4) == chw(11, 1));

    const Dataset some = load_image_folder(dir.path, {.limit_per_class = 2});
    CHECK(some.labels == std::vector<std::int32_t>{0, 0, 1, 1});
    CHECK(image_at(some, 2) == chw(10, 1));
    CHECK(image_at(some, 3) == chw(11, 1));

    const Dataset rgb = load_image_folder(dir.path, {.channels = 3});  // grey replicated into R, G, B
    CHECK(rgb.images.shape() == Shape{6, 3, H, W});
    CHECK(rgb.images.at({1, 2, 3, 4}) == all.images.at({1, 0, 3, 4}));
}

TEST_CASE("image folder: errors name the file and the problem") {
    TempDir dir;
    write_rgb_folder(dir);
    std::string e = error_of([&] { load_image_folder(dir.path, {.size = ImageSize{3, 3}}); });
    CHECK(e.find("cls_a/000.png: image is 4x5 (HxW), expected 3x3") != std::string::npos);

    write_png(dir / "cls_b/003.png", H + 1, W, 3, pattern_image(H + 1, W, 3, 0));
    e = error_of([&] { load_image_folder(dir.path); });
    CHECK(e.find("cls_b/003.png: image is 5x5 (HxW), expected 4x5") != std::string::npos);

    // Two bad files: the first in stored order is reported, whatever the thread timing.
    write_bytes(dir / "cls_b/001.png", {'n', 'o', 't', ' ', 'a', 'n', ' ', 'i', 'm', 'a', 'g', 'e'});
    const int threads = omp_get_max_threads();
    omp_set_num_threads(2);
    e = error_of([&] { load_image_folder(dir.path); });
    omp_set_num_threads(threads);
    INFO(e);
    CHECK(e.find("cls_b/001.png: cannot decode image (") != std::string::npos);

    std::filesystem::create_directories(dir / "cls_c");
    e = error_of([&] { load_image_folder(dir.path); });
    CHECK(e.find("cls_c: class folder has no PNG/JPEG/BMP images") != std::string::npos);

    e = error_of([&] { load_image_folder(dir / "missing"); });
    CHECK(e.find("missing: image folder not found") != std::string::npos);
    e = error_of([&] { load_image_folder(dir / "cls_a"); });
    CHECK(e.find("cls_a: no class subfolders") != std::string::npos);
    CHECK_THROWS_AS(load_image_folder(dir.path, {.channels = 2}), std::invalid_argument);
    CHECK_THROWS_AS(load_image_folder(dir.path, {.limit_per_class = -1}), std::invalid_argument);
}

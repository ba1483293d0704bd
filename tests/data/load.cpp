#include "ironclad/data/load.hpp"

#include "fixtures.hpp"

#include <doctest/doctest.h>

#include <string>

using namespace ironclad;
using namespace ironclad::testing;

TEST_CASE("load_dataset: an image-folder tree, its split and a cheap balanced limit") {
    TempDir dir;
    for (const char* split : {"train", "test"})
        for (int c = 0; c < 3; ++c)
            for (int f = 0; f < (split == std::string("train") ? 4 : 1); ++f)
                write_png(dir / (std::string(split) + "/class" + std::to_string(c) + "/" + std::to_string(f) + ".png"),
                          2, 2, 3, pattern_image(2, 2, 3, 10 * c + f));
    const Dataset train = load_dataset(dir.path, true);
    CHECK(train.size() == 12);
    CHECK(train.class_names == std::vector<std::string>{"class0", "class1", "class2"});
    const Dataset test = load_dataset(dir.path, false);
    CHECK(test.labels == std::vector<std::int32_t>{0, 1, 2});

    const Dataset limited = load_dataset(dir.path, true, 7);  // 7 / 3 = 2 per class
    const Dataset expected = subset_balanced(train, 7);
    CHECK(limited.labels == expected.labels);
    CHECK(std::equal(limited.images.begin(), limited.images.end(), expected.images.begin(), expected.images.end()));
    CHECK_THROWS_AS(load_dataset(dir.path, true, 2), std::invalid_argument);

    write_png(dir / "test/class9/0.png", 2, 2, 3, pattern_image(2, 2, 3, 0));
    const std::string e = error_of([&] { load_dataset(dir.path, true); });
    CHECK(e.find("train/ and test/ have different class folders (train: class0,class1,class2; test: "
                 "class0,class1,class2,class9)") != std::string::npos);
}

TEST_CASE("load_dataset: a test/ folder alone is an evaluation-only tree") {
    TempDir dir;
    for (int c = 0; c < 2; ++c)
        for (int f = 0; f < 3; ++f)
            write_png(dir / ("test/c" + std::to_string(c) + "/" + std::to_string(f) + ".png"), 2, 2, 3,
                      pattern_image(2, 2, 3, 10 * c + f));
    const Dataset test = load_dataset(dir.path, false);
    CHECK(test.labels == std::vector<std::int32_t>{0, 0, 0, 1, 1, 1});
    CHECK(load_dataset(dir.path, false, 2).labels == std::vector<std::int32_t>{0, 1});
    CHECK(error_of([&] { load_dataset(dir.path, true); }).find("has a test/ image folder but no train/ folder") !=
          std::string::npos);
}

TEST_CASE("load_dataset: CIFAR-10 binary and Fashion-MNIST folders are recognised") {
    TempDir cifar;
    Bytes records;
    for (int r = 0; r < 20; ++r) {
        records.push_back(static_cast<unsigned char>(r % 10));
        records.insert(records.end(), 3072, static_cast<unsigned char>(r));
    }
    write_bytes(cifar / "test_batch.bin", records);
    const Dataset c10 = load_dataset(cifar.path, false, 10);
    CHECK(c10.labels == std::vector<std::int32_t>{0, 1, 2, 3, 4, 5, 6, 7, 8, 9});
    CHECK(c10.class_names[0] == "airplane");
    CHECK(load_dataset(cifar.path, false).size() == 20);

    TempDir fashion;
    write_gz(fashion / "t10k-images-idx3-ubyte.gz", idx_bytes({2, 1, 1}, {5, 6}));
    write_gz(fashion / "t10k-labels-idx1-ubyte.gz", idx_bytes({2}, {3, 4}));
    const Dataset f = load_dataset(fashion.path, false);
    CHECK(f.labels == std::vector<std::int32_t>{3, 4});
    CHECK(f.class_names[3] == "Dress");
}

TEST_CASE("load_dataset: unknown folders are a clear error") {
    TempDir dir;
    write_bytes(dir / "readme.txt", {'x'});
    std::string e = error_of([&] { load_dataset(dir.path, true); });
    CHECK(e.find("not a recognised dataset folder") != std::string::npos);
    e = error_of([&] { load_dataset(dir / "nowhere", true); });
    CHECK(e.find("nowhere: dataset folder not found") != std::string::npos);
}

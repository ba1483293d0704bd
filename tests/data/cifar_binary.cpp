#include "ironclad/data/cifar_binary.hpp"

#include "fixtures.hpp"

#include <doctest/doctest.h>

#include <string>

using namespace ironclad;
using namespace ironclad::testing;

namespace {
// Records whose pixel p is (31 * first label byte + p) mod 256, so every record differs.
Bytes records(const std::vector<Bytes>& labels) {
    Bytes out;
    for (const auto& l : labels) {
        out.insert(out.end(), l.begin(), l.end());
        for (int p = 0; p < 3072; ++p) out.push_back(static_cast<unsigned char>(l[0] * 31 + p));
    }
    return out;
}
}  // namespace

TEST_CASE("cifar10 binary: batches in order, labels and CHW pixels") {
    TempDir dir;
    for (int b = 1; b <= 5; ++b)
        write_bytes(dir / ("data_batch_" + std::to_string(b) + ".bin"),
                    records({{static_cast<unsigned char>(2 * b - 2)}, {static_cast<unsigned char>(2 * b - 1)}}));
    write_bytes(dir / "test_batch.bin", records({{7}}));

    const Dataset train = load_cifar10_binary(dir.path, true);
    CHECK(train.images.shape() == Shape{10, 3, 32, 32});
    CHECK(train.labels == std::vector<std::int32_t>{0, 1, 2, 3, 4, 5, 6, 7, 8, 9});
    CHECK(train.class_names.size() == 10);
    CHECK(train.class_names[9] == "truck");
    // Image 6 (label 6): green channel (c = 1), row 2, column 5 is record byte 1024 + 2*32 + 5.
    CHECK(train.images.at({6, 1, 2, 5}) == static_cast<std::uint8_t>(6 * 31 + 1024 + 69));

    const Dataset test = load_cifar10_binary(dir.path, false);
    CHECK(test.size() == 1);
    CHECK(test.labels[0] == 7);
    CHECK(test.images.at({0, 2, 31, 31}) == static_cast<std::uint8_t>(7 * 31 + 3071));
}

TEST_CASE("cifar100 binary: the fine label is used") {
    TempDir dir;
    write_bytes(dir / "train.bin", records({{3, 99}, {19, 0}, {0, 42}}));
    const Dataset ds = load_cifar100_binary(dir.path, true);
    CHECK(ds.labels == std::vector<std::int32_t>{99, 0, 42});
    CHECK(ds.num_classes == 100);
    CHECK(ds.class_names.size() == 100);
    CHECK(ds.class_names[99] == "worm");
    CHECK(ds.images.at({1, 0, 0, 1}) == static_cast<std::uint8_t>(19 * 31 + 1));
}

TEST_CASE("cifar binary: errors name the file and the problem") {
    TempDir dir;
    std::string e = error_of([&] { load_cifar10_binary(dir.path, false); });
    CHECK(e.find("test_batch.bin: file not found") != std::string::npos);

    Bytes cut = records({{1}, {2}});
    cut.pop_back();
    write_bytes(dir / "test_batch.bin", cut);
    e = error_of([&] { load_cifar10_binary(dir.path, false); });
    CHECK(e.find("test_batch.bin: size 6145 is not a multiple of the 3073-byte record") != std::string::npos);

    write_bytes(dir / "test_batch.bin", records({{1}, {10}}));
    e = error_of([&] { load_cifar10_binary(dir.path, false); });
    CHECK(e.find("test_batch.bin: label 10 of record 1 is not below 10 classes") != std::string::npos);

    write_bytes(dir / "test.bin", records({{1, 100}}));
    e = error_of([&] { load_cifar100_binary(dir.path, false); });
    CHECK(e.find("test.bin: label 100 of record 0") != std::string::npos);
}

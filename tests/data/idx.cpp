#include "ironclad/data/idx.hpp"

#include "fixtures.hpp"

#include <doctest/doctest.h>

#include <string>

using namespace ironclad;
using namespace ironclad::testing;

namespace {
// Three 2x3 images, image i holding 10*i + position, labels {2, 0, 9}.
const Bytes image_values{0, 1, 2, 3, 4, 5, 10, 11, 12, 13, 14, 15, 20, 21, 22, 23, 24, 25};
Bytes images_idx() { return idx_bytes({3, 2, 3}, image_values); }
Bytes labels_idx(Bytes labels = {2, 0, 9}) { return idx_bytes({static_cast<std::int64_t>(labels.size())}, labels); }

void check_decoded(const Dataset& ds) {
    CHECK(ds.images.shape() == Shape{3, 1, 2, 3});
    CHECK(std::equal(ds.images.begin(), ds.images.end(), image_values.begin(), image_values.end()));
    CHECK(ds.labels == std::vector<std::int32_t>{2, 0, 9});
    CHECK(ds.num_classes == 10);
}
}  // namespace

TEST_CASE("idx: plain and gzip files decode to the same values") {
    TempDir dir;
    write_bytes(dir / "img", images_idx());
    write_bytes(dir / "lab", labels_idx());
    check_decoded(load_idx(dir / "img", dir / "lab"));
    write_gz(dir / "img.gz", images_idx());
    write_gz(dir / "lab.gz", labels_idx());
    check_decoded(load_idx(dir / "img.gz", dir / "lab.gz"));
    CHECK(read_bytes(dir / "img.gz") != images_idx());  // really compressed
}

TEST_CASE("idx: fashion-mnist names, .gz fallback and class names") {
    TempDir dir;
    write_gz(dir / "t10k-images-idx3-ubyte.gz", images_idx());
    write_bytes(dir / "t10k-labels-idx1-ubyte", labels_idx());
    const Dataset ds = load_fashion_mnist(dir.path, false);
    check_decoded(ds);
    CHECK(ds.class_names.size() == 10);
    CHECK(ds.class_names[9] == "Ankle boot");
    const std::string missing = error_of([&] { load_fashion_mnist(dir.path, true); });
    INFO(missing);
    CHECK(missing.find("train-images-idx3-ubyte") != std::string::npos);
    CHECK(missing.find("file not found") != std::string::npos);
}

TEST_CASE("idx: errors name the file and the problem") {
    TempDir dir;
    write_bytes(dir / "img", images_idx());
    write_bytes(dir / "lab", labels_idx());
    auto expect = [&](const std::string& images, const std::string& labels, const std::string& file,
                      const std::string& problem) {
        const std::string e = error_of([&] { load_idx(dir / images, dir / labels); });
        INFO(e);
        CHECK(e.find(file) != std::string::npos);
        CHECK(e.find(problem) != std::string::npos);
    };
    expect("nothing", "lab", "nothing", "file not found");
    expect("lab", "lab", "lab", "wrong magic 0x00000801, expected 0x00000803");
    expect("img", "img", "img", "wrong magic 0x00000803, expected 0x00000801");

    Bytes cut = images_idx();
    cut.pop_back();
    write_bytes(dir / "cut", cut);
    expect("cut", "lab", "cut", "truncated");
    write_bytes(dir / "short_header", Bytes{0, 0, 8, 3, 0, 0});
    expect("short_header", "lab", "short_header", "truncated header");
    Bytes longer = images_idx();
    longer.push_back(7);
    write_bytes(dir / "long", longer);
    expect("long", "lab", "long", "trailing bytes");

    write_bytes(dir / "two_labels", labels_idx({1, 2}));
    expect("img", "two_labels", "two_labels", "2 labels for 3 images");
    write_bytes(dir / "bad_label", labels_idx({1, 10, 2}));
    expect("img", "bad_label", "bad_label", "label 10 of item 1 is not below 10 classes");
}

TEST_CASE("idx: corrupt and truncated gzip streams are errors") {
    TempDir dir;
    write_bytes(dir / "lab", labels_idx());
    write_gz(dir / "img.gz", images_idx());
    const Bytes good = read_bytes(dir / "img.gz");

    Bytes flipped = good;
    flipped[good.size() - 6] ^= 0xff;  // inside the CRC-32 of the trailer
    write_bytes(dir / "crc.gz", flipped);
    std::string e = error_of([&] { load_idx(dir / "crc.gz", dir / "lab"); });
    CHECK(e.find("crc.gz: corrupt gzip data") != std::string::npos);

    write_bytes(dir / "cut.gz", Bytes(good.begin(), good.begin() + static_cast<std::ptrdiff_t>(good.size() / 2)));
    e = error_of([&] { load_idx(dir / "cut.gz", dir / "lab"); });
    CHECK(e.find("cut.gz: corrupt gzip data") != std::string::npos);

    Bytes garbage{0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 3, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff};
    write_bytes(dir / "garbage.gz", garbage);
    e = error_of([&] { load_idx(dir / "garbage.gz", dir / "lab"); });
    CHECK(e.find("garbage.gz: corrupt gzip data") != std::string::npos);
}

TEST_CASE("idx: the real Fashion-MNIST test set, when installed") {
    const std::filesystem::path dir = "/usr/share/datasets/fashion-mnist";
    if (!std::filesystem::exists(dir / "t10k-images-idx3-ubyte.gz")) {
        MESSAGE("skipped: Fashion-MNIST not installed in " << dir);
        return;
    }
    const Dataset ds = load_fashion_mnist(dir, false);
    CHECK(ds.images.shape() == Shape{10000, 1, 28, 28});
    std::vector<int> per_class(10, 0);
    for (auto l : ds.labels) ++per_class[static_cast<std::size_t>(l)];
    CHECK(per_class == std::vector<int>(10, 1000));
    CHECK(*std::max_element(ds.images.begin(), ds.images.end()) == 255);
}

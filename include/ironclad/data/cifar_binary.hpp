// CIFAR-10 / CIFAR-100 "binary version" readers (the cifar-10-batches-bin / cifar-100-binary folders).
//
// Contract: a record is its label byte(s) followed by 3072 bytes of a 32x32 image already in CHW order
// (1024 red, 1024 green, 1024 blue, rows top to bottom), so records copy straight into [N,3,32,32].
// CIFAR-10: data_batch_1..5.bin (train) / test_batch.bin, 1 label byte. CIFAR-100: train.bin / test.bin,
// a coarse then a fine label byte; the fine label (100 classes) is used. Errors name the file: missing,
// size not a multiple of the record, label out of range.
#pragma once

#include "ironclad/data/dataset.hpp"
#include "ironclad/data/read_file.hpp"

#include <cstdint>
#include <cstring>
#include <filesystem>
#include <string>
#include <vector>

namespace ironclad {

namespace detail {

inline Dataset load_cifar_records(const std::vector<std::filesystem::path>& files, int label_bytes,
                                  int num_classes, std::vector<std::string> class_names) {
    constexpr std::int64_t pixels = 3 * 32 * 32;
    const std::int64_t record = label_bytes + pixels;
    std::int64_t total = 0;
    for (const auto& f : files) {
        require_file(f);
        const auto bytes = static_cast<std::int64_t>(std::filesystem::file_size(f));
        if (bytes % record != 0)
            data_error(f, "size " + std::to_string(bytes) + " is not a multiple of the " + std::to_string(record) +
                              "-byte record");
        total += bytes / record;
    }
    Dataset ds{Tensor<std::uint8_t>({total, 3, 32, 32}), {}, num_classes, std::move(class_names),
               files.front().parent_path().string()};
    ds.labels.reserve(static_cast<std::size_t>(total));
    std::vector<unsigned char> buf;
    std::uint8_t* dst = ds.images.data();
    for (const auto& f : files) {
        read_file(f, buf);
        for (std::size_t at = 0; at < buf.size(); at += static_cast<std::size_t>(record)) {
            const int label = buf[at + static_cast<std::size_t>(label_bytes) - 1];  // CIFAR-100: fine label last
            if (label >= num_classes)
                data_error(f, "label " + std::to_string(label) + " of record " +
                                  std::to_string(at / static_cast<std::size_t>(record)) + " is not below " +
                                  std::to_string(num_classes) + " classes");
            ds.labels.push_back(label);
            std::memcpy(dst, buf.data() + at + label_bytes, pixels);
            dst += pixels;
        }
    }
    return ds;
}

}  // namespace detail

inline Dataset load_cifar10_binary(const std::filesystem::path& dir, bool train) {
    std::vector<std::filesystem::path> files;
    if (train)
        for (int b = 1; b <= 5; ++b) files.push_back(dir / ("data_batch_" + std::to_string(b) + ".bin"));
    else
        files.push_back(dir / "test_batch.bin");
    return detail::load_cifar_records(files, 1, 10,
                                      {"airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse",
                                       "ship", "truck"});
}

inline Dataset load_cifar100_binary(const std::filesystem::path& dir, bool train) {
    return detail::load_cifar_records(
        {dir / (train ? "train.bin" : "test.bin")}, 2, 100,
        {"apple",       "aquarium_fish", "baby",         "bear",       "beaver",     "bed",        "bee",
         "beetle",      "bicycle",       "bottle",       "bowl",       "boy",        "bridge",     "bus",
         "butterfly",   "camel",         "can",          "castle",     "caterpillar", "cattle",    "chair",
         "chimpanzee",  "clock",         "cloud",        "cockroach",  "couch",      "crab",       "crocodile",
         "cup",         "dinosaur",      "dolphin",      "elephant",   "flatfish",   "forest",     "fox",
         "girl",        "hamster",       "house",        "kangaroo",   "keyboard",   "lamp",       "lawn_mower",
         "leopard",     "lion",          "lizard",       "lobster",    "man",        "maple_tree", "motorcycle",
         "mountain",    "mouse",         "mushroom",     "oak_tree",   "orange",     "orchid",     "otter",
         "palm_tree",   "pear",          "pickup_truck", "pine_tree",  "plain",      "plate",      "poppy",
         "porcupine",   "possum",        "rabbit",       "raccoon",    "ray",        "road",       "rocket",
         "rose",        "sea",           "seal",         "shark",      "shrew",      "skunk",      "skyscraper",
         "snail",       "snake",         "spider",       "squirrel",   "streetcar",  "sunflower",  "sweet_pepper",
         "table",       "tank",          "telephone",    "television", "tiger",      "tractor",    "train",
         "trout",       "tulip",         "turtle",       "wardrobe",   "whale",      "willow_tree", "wolf",
         "woman",       "worm"});
}

}  // namespace ironclad

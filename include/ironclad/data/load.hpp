// load_dataset: one entry point that recognises a dataset folder by its content.
//
// Contract, checked in this order:
//   - train/ and test/ subfolders  -> image-folder tree; both splits must have the same class folders,
//                                     since labels are positions in the sorted class list;
//   - test/ alone                  -> an evaluation-only image-folder tree (the train split is an error);
//   - data_batch_1.bin/test_batch.bin -> CIFAR-10 binary;  train.bin/test.bin -> CIFAR-100 binary;
//   - {train,t10k}-images-idx3-ubyte[.gz] -> Fashion-MNIST (IDX);
//   - anything else is an error that lists what was looked for.
// limit > 0 returns the class-balanced subset of subset_balanced(); for image folders only those
// images are decoded.
#pragma once

#include "ironclad/data/cifar_binary.hpp"
#include "ironclad/data/dataset.hpp"
#include "ironclad/data/idx.hpp"
#include "ironclad/data/image_folder.hpp"

#include <filesystem>
#include <string>

namespace ironclad {

inline Dataset load_dataset(const std::filesystem::path& path, bool train, std::int64_t limit = 0) {
    namespace fs = std::filesystem;
    std::error_code ec;
    if (!fs::is_directory(path, ec)) detail::data_error(path, "dataset folder not found");
    auto has = [&](const char* name) { return fs::exists(path / name, ec); };
    auto limited = [&](Dataset ds) { return limit > 0 ? subset_balanced(ds, limit) : ds; };

    if (fs::is_directory(path / "train", ec) && fs::is_directory(path / "test", ec)) {
        const auto train_classes = image_folder_classes(path / "train");
        const auto test_classes = image_folder_classes(path / "test");
        if (train_classes != test_classes) {
            auto join = [](const std::vector<std::string>& v) {
                std::string s;
                for (const auto& x : v) s += (s.empty() ? "" : ",") + x;
                return s;
            };
            detail::data_error(path, "train/ and test/ have different class folders (train: " + join(train_classes) +
                                         "; test: " + join(test_classes) + ")");
        }
        ImageFolderOptions opts;
        if (limit > 0) opts.limit_per_class = balanced_per_class(limit, static_cast<int>(train_classes.size()));
        return load_image_folder(path / (train ? "train" : "test"), opts);
    }
    if (fs::is_directory(path / "test", ec) && !fs::exists(path / "train", ec)) {  // an evaluation-only tree
        if (train) detail::data_error(path, "has a test/ image folder but no train/ folder");
        ImageFolderOptions opts;
        if (limit > 0)
            opts.limit_per_class = balanced_per_class(limit, static_cast<int>(image_folder_classes(path / "test").size()));
        return load_image_folder(path / "test", opts);
    }
    if (has("data_batch_1.bin") || has("test_batch.bin")) return limited(load_cifar10_binary(path, train));
    if (has("train.bin") || has("test.bin")) return limited(load_cifar100_binary(path, train));
    for (const char* stem : {"train-images-idx3-ubyte", "t10k-images-idx3-ubyte"})
        if (has(stem) || fs::exists(path / (std::string(stem) + ".gz"), ec))
            return limited(load_fashion_mnist(path, train));
    detail::data_error(path,
                       "not a recognised dataset folder (expected train/ and test/ image folders, CIFAR-10 "
                       "data_batch_*.bin/test_batch.bin, CIFAR-100 train.bin/test.bin, or Fashion-MNIST "
                       "{train,t10k}-images-idx3-ubyte[.gz])");
}

}  // namespace ironclad

// Image-folder reader: dir/<class>/<file>.{png,jpg,jpeg,bmp}, decoded with stb_image.
//
// Contract: classes are the subfolders of dir in sorted (byte-wise) name order, label = position in that
// order; files in a class are taken in sorted name order (so zero-padded names keep numeric order).
// Names starting with '.' and files with other extensions are ignored. All images must have one size
// (the requested one, else the first image's); channels are 1 (grey) or 3 (RGB), converted by stb.
// Files are decoded in parallel with OpenMP into fixed slots, so the result does not depend on the
// thread count. limit_per_class decodes only the first K files of each class, which gives the same
// images as subset_balanced() on the full folder without decoding the rest.
// Errors name the file: undecodable image (with stb's reason), wrong size, empty class folder.
#pragma once

#include "ironclad/data/dataset.hpp"
#include "ironclad/data/read_file.hpp"
#include "ironclad/data/stb_image_static.hpp"

#include <algorithm>
#include <cctype>
#include <climits>
#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

namespace ironclad {

struct ImageSize {
    int height = 0;
    int width = 0;
};

struct ImageFolderOptions {
    int channels = 0;                              // 1 or 3; 0: 1 if the first image is grey, else 3
    std::optional<ImageSize> size = std::nullopt;  // required size; default: the first image's
    std::int64_t limit_per_class = 0;              // K > 0: only the first K files of each class; 0: all
};

namespace detail {

inline bool hidden(const std::filesystem::path& p) { return p.filename().string().starts_with('.'); }

inline bool image_extension(const std::filesystem::path& p) {
    std::string ext = p.extension().string();
    std::transform(ext.begin(), ext.end(), ext.begin(), [](unsigned char c) { return std::tolower(c); });
    return ext == ".png" || ext == ".jpg" || ext == ".jpeg" || ext == ".bmp";
}

inline std::vector<std::filesystem::path> sorted_image_files(const std::filesystem::path& class_dir) {
    std::vector<std::filesystem::path> files;
    for (const auto& e : std::filesystem::directory_iterator(class_dir))
        if (e.is_regular_file() && !hidden(e.path()) && image_extension(e.path())) files.push_back(e.path());
    std::sort(files.begin(), files.end());
    return files;
}

// Decodes one file into dst ([C,H,W]); returns the problem, empty on success. OpenMP regions cannot
// throw, so errors travel back as strings.
inline std::string decode_image(const std::filesystem::path& path, int channels, ImageSize size,
                                std::vector<unsigned char>& file, std::uint8_t* dst) {
    try {
        read_file(path, file);
    } catch (const std::exception& e) {
        return e.what();
    }
    if (file.size() > static_cast<std::size_t>(INT_MAX)) return path.string() + ": file too large for stb_image";
    int w = 0, h = 0, in_channels = 0;
    stbi_uc* pixels =
        stbi_load_from_memory(file.data(), static_cast<int>(file.size()), &w, &h, &in_channels, channels);
    if (!pixels) return path.string() + ": cannot decode image (" + stbi_failure_reason() + ")";
    if (h != size.height || w != size.width) {
        stbi_image_free(pixels);
        return path.string() + ": image is " + std::to_string(h) + "x" + std::to_string(w) + " (HxW), expected " +
               std::to_string(size.height) + "x" + std::to_string(size.width);
    }
    const std::int64_t plane = std::int64_t{h} * w;
    for (std::int64_t p = 0; p < plane; ++p)  // stb gives HWC, the tensor wants CHW
        for (int c = 0; c < channels; ++c) dst[c * plane + p] = pixels[p * channels + c];
    stbi_image_free(pixels);
    return {};
}

}  // namespace detail

// Sorted class subfolder names of an image folder.
inline std::vector<std::string> image_folder_classes(const std::filesystem::path& dir) {
    std::error_code ec;
    if (!std::filesystem::is_directory(dir, ec)) detail::data_error(dir, "image folder not found");
    std::vector<std::string> classes;
    for (const auto& e : std::filesystem::directory_iterator(dir))
        if (e.is_directory() && !detail::hidden(e.path())) classes.push_back(e.path().filename().string());
    if (classes.empty()) detail::data_error(dir, "no class subfolders in image folder");
    std::sort(classes.begin(), classes.end());
    return classes;
}

inline Dataset load_image_folder(const std::filesystem::path& dir, const ImageFolderOptions& opts = {}) {
    if (opts.channels != 0 && opts.channels != 1 && opts.channels != 3)
        throw std::invalid_argument("load_image_folder: channels must be 0 (auto), 1 or 3, got " +
                                    std::to_string(opts.channels));
    if (opts.limit_per_class < 0)
        throw std::invalid_argument("load_image_folder: negative limit_per_class " +
                                    std::to_string(opts.limit_per_class));
    Dataset ds{{}, {}, 0, image_folder_classes(dir), dir.string()};
    ds.num_classes = static_cast<int>(ds.class_names.size());
    std::vector<std::filesystem::path> files;
    for (int c = 0; c < ds.num_classes; ++c) {
        const std::filesystem::path class_dir = dir / ds.class_names[static_cast<std::size_t>(c)];
        auto class_files = detail::sorted_image_files(class_dir);
        if (class_files.empty()) detail::data_error(class_dir, "class folder has no PNG/JPEG/BMP images");
        if (opts.limit_per_class > 0 && static_cast<std::int64_t>(class_files.size()) > opts.limit_per_class)
            class_files.resize(static_cast<std::size_t>(opts.limit_per_class));
        files.insert(files.end(), class_files.begin(), class_files.end());
        ds.labels.insert(ds.labels.end(), class_files.size(), c);
    }

    // The first image fixes channels (when automatic) and size (when not requested).
    std::vector<unsigned char> first;
    detail::read_file(files.front(), first);
    int w = 0, h = 0, in_channels = 0;
    if (!stbi_info_from_memory(first.data(), static_cast<int>(first.size()), &w, &h, &in_channels))
        detail::data_error(files.front(), std::string("cannot decode image (") + stbi_failure_reason() + ")");
    const int channels = opts.channels ? opts.channels : (in_channels <= 2 ? 1 : 3);
    const ImageSize size = opts.size.value_or(ImageSize{h, w});

    const auto n = static_cast<std::int64_t>(files.size());
    ds.images = Tensor<std::uint8_t>({n, channels, size.height, size.width});
    const std::int64_t item = std::int64_t{channels} * size.height * size.width;
    std::uint8_t* out = ds.images.data();
    std::vector<std::string> errors(files.size());
#pragma omp parallel
    {
        std::vector<unsigned char> file;
#pragma omp for schedule(dynamic, 64)
        for (std::int64_t i = 0; i < n; ++i) {
            const auto k = static_cast<std::size_t>(i);
            errors[k] = detail::decode_image(files[k], channels, size, file, out + i * item);
        }
    }
    for (const auto& e : errors)  // the first failure in stored order, whatever the thread timing
        if (!e.empty()) throw std::runtime_error(e);
    return ds;
}

}  // namespace ironclad

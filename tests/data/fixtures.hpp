// Tiny dataset files written by the data tests at run time into a private temporary folder.
#pragma once

#include "ironclad/core/tensor.hpp"

#include <zlib.h>

#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <stdexcept>
#include <string>
#include <vector>

#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wunused-function"
#pragma GCC diagnostic ignored "-Wmissing-field-initializers"
#define STB_IMAGE_WRITE_STATIC  // the same one-copy-per-translation-unit reasoning as stb_image_static.hpp
#define STB_IMAGE_WRITE_IMPLEMENTATION
#include <stb_image_write.h>
#undef STB_IMAGE_WRITE_IMPLEMENTATION
#pragma GCC diagnostic pop

namespace ironclad::testing {

using Bytes = std::vector<unsigned char>;

// A fresh folder under the system temp dir, removed with everything in it at scope exit.
struct TempDir {
    std::filesystem::path path;
    TempDir() {
        std::string name = (std::filesystem::temp_directory_path() / "ironclad-data-XXXXXX").string();
        if (!mkdtemp(name.data())) throw std::runtime_error("TempDir: mkdtemp failed");
        path = name;
    }
    TempDir(const TempDir&) = delete;
    TempDir& operator=(const TempDir&) = delete;
    ~TempDir() {
        std::error_code ec;
        std::filesystem::remove_all(path, ec);
    }
    std::filesystem::path operator/(const std::string& name) const { return path / name; }
};

// The message of the std::runtime_error that f throws; "no error" if it returns.
template <class F>
std::string error_of(F&& f) {
    try {
        f();
    } catch (const std::runtime_error& e) {
        return e.what();
    }
    return "no error";
}

inline void write_bytes(const std::filesystem::path& p, const Bytes& bytes) {
    std::filesystem::create_directories(p.parent_path());
    std::ofstream(p, std::ios::binary).write(reinterpret_cast<const char*>(bytes.data()),
                                             static_cast<std::streamsize>(bytes.size()));
}

inline void write_gz(const std::filesystem::path& p, const Bytes& bytes) {
    gzFile f = gzopen(p.c_str(), "wb");
    if (!f || gzwrite(f, bytes.data(), static_cast<unsigned>(bytes.size())) != static_cast<int>(bytes.size()))
        throw std::runtime_error("write_gz failed: " + p.string());
    gzclose(f);
}

inline Bytes read_bytes(const std::filesystem::path& p) {
    std::ifstream f(p, std::ios::binary);
    return {std::istreambuf_iterator<char>(f), {}};
}

// IDX uint8 file content: magic 0x0000080<rank>, big-endian dimensions, then the values.
inline Bytes idx_bytes(const Shape& dims, const Bytes& values) {
    Bytes b{0, 0, 0x08, static_cast<unsigned char>(dims.size())};
    for (auto d : dims)
        for (int shift = 24; shift >= 0; shift -= 8) b.push_back(static_cast<unsigned char>(d >> shift));
    b.insert(b.end(), values.begin(), values.end());
    return b;
}

// Image with pixel (y, x, c) = seed + 7*y + 3*x + 50*c (mod 256), HWC as the writers want it.
inline Bytes pattern_image(int h, int w, int channels, int seed) {
    Bytes img;
    for (int y = 0; y < h; ++y)
        for (int x = 0; x < w; ++x)
            for (int c = 0; c < channels; ++c) img.push_back(static_cast<unsigned char>(seed + 7 * y + 3 * x + 50 * c));
    return img;
}

inline void write_png(const std::filesystem::path& p, int h, int w, int channels, const Bytes& hwc) {
    std::filesystem::create_directories(p.parent_path());
    if (!stbi_write_png(p.c_str(), w, h, channels, hwc.data(), w * channels))
        throw std::runtime_error("write_png failed: " + p.string());
}

inline void write_bmp(const std::filesystem::path& p, int h, int w, int channels, const Bytes& hwc) {
    std::filesystem::create_directories(p.parent_path());
    if (!stbi_write_bmp(p.c_str(), w, h, channels, hwc.data()))
        throw std::runtime_error("write_bmp failed: " + p.string());
}

}  // namespace ironclad::testing

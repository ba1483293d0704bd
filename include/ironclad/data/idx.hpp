// IDX reader (the MNIST / Fashion-MNIST format), plain or gzip-compressed.
//
// Contract: labels files have magic 0x00000801 ([N] uint8), image files 0x00000803 ([N,H,W] uint8,
// big-endian dimensions). Compression is detected from the content, not the name: zlib's gzread passes
// files without a gzip header through unchanged. Every problem (missing file, wrong magic, truncated or
// trailing bytes, corrupt gzip, image/label count mismatch, label >= num_classes) is a
// std::runtime_error naming the file.
#pragma once

#include "ironclad/data/dataset.hpp"
#include "ironclad/data/read_file.hpp"

#include <zlib.h>

#include <array>
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

namespace ironclad {

namespace detail {

// Whole decompressed content of a gzip file, or the raw content of any other file.
inline std::vector<unsigned char> read_maybe_gzip(const std::filesystem::path& path) {
    require_file(path);
    std::unique_ptr<gzFile_s, int (*)(gzFile)> f(gzopen(path.c_str(), "rb"), &gzclose);
    if (!f) data_error(path, "cannot open file");
    gzbuffer(f.get(), 1u << 17);
    std::vector<unsigned char> buf;
    std::size_t used = 0;
    for (;;) {
        if (buf.size() - used < (1u << 20)) buf.resize(std::max<std::size_t>(2 * buf.size(), used + (1u << 20)));
        const int got = gzread(f.get(), buf.data() + used, static_cast<unsigned>(buf.size() - used));
        if (got < 0) {
            int errnum = 0;
            data_error(path, std::string("corrupt gzip data (") + gzerror(f.get(), &errnum) + ")");
        }
        if (got == 0) break;
        used += static_cast<std::size_t>(got);
    }
    // A stream cut short ends without a read error; zlib reports it only through gzerror.
    int errnum = Z_OK;
    const char* message = gzerror(f.get(), &errnum);
    if (errnum != Z_OK) data_error(path, std::string("corrupt gzip data (") + message + ")");
    buf.resize(used);
    return buf;
}

inline std::uint32_t read_be32(const unsigned char* p) {
    return std::uint32_t{p[0]} << 24 | std::uint32_t{p[1]} << 16 | std::uint32_t{p[2]} << 8 | std::uint32_t{p[3]};
}

// An IDX uint8 array of the given rank as a tensor of its dimensions.
inline Tensor<std::uint8_t> read_idx(const std::filesystem::path& path, int rank) {
    const std::vector<unsigned char> buf = read_maybe_gzip(path);
    const std::uint32_t want_magic = 0x0800u + static_cast<std::uint32_t>(rank);
    auto hex = [](std::uint32_t v) {
        std::array<char, 11> s{};
        std::snprintf(s.data(), s.size(), "0x%08x", v);
        return std::string(s.data());
    };
    if (buf.size() < 4 || read_be32(buf.data()) != want_magic)
        data_error(path, "wrong magic " + (buf.size() < 4 ? std::string("(file shorter than 4 bytes)")
                                                           : hex(read_be32(buf.data()))) +
                             ", expected " + hex(want_magic) + " (IDX uint8, " + std::to_string(rank) +
                             " dimensions)");
    const std::size_t header = 4 + 4 * static_cast<std::size_t>(rank);
    if (buf.size() < header) data_error(path, "truncated header");
    Shape dims;
    std::size_t need = 1;  // element count, stopped as soon as it exceeds what the file holds
    const std::size_t have = buf.size() - header;
    for (int d = 0; d < rank; ++d) {
        const std::uint32_t n = read_be32(buf.data() + 4 + 4 * d);
        dims.push_back(n);
        need = (n != 0 && need > have / n) ? have + 1 : need * n;
    }
    if (need != have)
        data_error(path, std::string(need > have ? "truncated" : "trailing bytes") + ": header says " +
                             shape_str(dims) + " but the file holds " + std::to_string(have) + " data bytes");
    Tensor<std::uint8_t> t(dims);
    std::copy(buf.begin() + static_cast<std::ptrdiff_t>(header), buf.end(), t.begin());
    return t;
}

}  // namespace detail

// images: IDX3 [N,H,W] -> Dataset images [N,1,H,W]; labels: IDX1 [N], each < num_classes.
// Class names are "0", "1", ...; load_fashion_mnist gives the real ones.
inline Dataset load_idx(const std::filesystem::path& images_path, const std::filesystem::path& labels_path,
                        int num_classes = 10) {
    Tensor<std::uint8_t> images = detail::read_idx(images_path, 3);
    const Tensor<std::uint8_t> labels = detail::read_idx(labels_path, 1);
    if (images.dim(0) != labels.dim(0))
        detail::data_error(labels_path, std::to_string(labels.dim(0)) + " labels for " +
                                            std::to_string(images.dim(0)) + " images in " + images_path.string());
    Dataset ds{images.view({images.dim(0), 1, images.dim(1), images.dim(2)}), {}, num_classes, {},
               images_path.string()};
    ds.labels.assign(labels.begin(), labels.end());
    for (std::int64_t i = 0; i < labels.numel(); ++i)
        if (labels[i] >= num_classes)
            detail::data_error(labels_path, "label " + std::to_string(labels[i]) + " of item " + std::to_string(i) +
                                                " is not below " + std::to_string(num_classes) + " classes");
    for (int c = 0; c < num_classes; ++c) ds.class_names.push_back(std::to_string(c));
    return ds;
}

// Fashion-MNIST from dir: {train,t10k}-{images-idx3,labels-idx1}-ubyte, each plain or with .gz.
inline Dataset load_fashion_mnist(const std::filesystem::path& dir, bool train) {
    auto find = [&](const std::string& stem) {
        const std::filesystem::path plain = dir / stem;
        std::error_code ec;
        if (std::filesystem::is_regular_file(plain, ec)) return plain;
        const std::filesystem::path gz = dir / (stem + ".gz");
        if (!std::filesystem::is_regular_file(gz, ec)) detail::data_error(plain.string() + "(.gz)", "file not found");
        return gz;
    };
    const std::string split = train ? "train" : "t10k";
    const auto images = find(split + "-images-idx3-ubyte");  // images first: argument order is unspecified
    Dataset ds = load_idx(images, find(split + "-labels-idx1-ubyte"), 10);
    ds.class_names = {"T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
                      "Sandal",      "Shirt",   "Sneaker",  "Bag",   "Ankle boot"};
    return ds;
}

}  // namespace ironclad

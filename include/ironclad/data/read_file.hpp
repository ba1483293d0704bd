// Whole-file reading shared by the dataset readers, with errors that name the file.
//
// Contract: every failure is a std::runtime_error whose message starts with the path, so a user
// with a broken download sees which file to fetch again.
#pragma once

#include <cstdio>
#include <filesystem>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

namespace ironclad::detail {

[[noreturn]] inline void data_error(const std::filesystem::path& path, const std::string& problem) {
    throw std::runtime_error(path.string() + ": " + problem);
}

inline void require_file(const std::filesystem::path& path) {
    std::error_code ec;
    if (!std::filesystem::is_regular_file(path, ec)) data_error(path, "file not found");
}

// Replaces buf's contents with the file's bytes; reusing buf avoids a heap allocation per image.
inline void read_file(const std::filesystem::path& path, std::vector<unsigned char>& buf) {
    std::unique_ptr<std::FILE, int (*)(std::FILE*)> f(std::fopen(path.c_str(), "rb"), &std::fclose);
    if (!f) data_error(path, "cannot open file");
    std::error_code ec;
    const auto size = std::filesystem::file_size(path, ec);
    if (ec) data_error(path, "cannot read file size (" + ec.message() + ")");
    buf.resize(size);
    if (size && std::fread(buf.data(), 1, size, f.get()) != size) data_error(path, "read error");
}

}  // namespace ironclad::detail

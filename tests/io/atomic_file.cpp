#include "ironclad/io/atomic_file.hpp"

#include <doctest/doctest.h>

#include <algorithm>
#include <filesystem>
#include <functional>
#include <string>
#include <unistd.h>

using namespace ironclad;

namespace {

std::filesystem::path scratch_dir(const std::string& name) {
    auto dir = std::filesystem::temp_directory_path() / ("ironclad_" + name + "_" + std::to_string(::getpid()));
    std::filesystem::remove_all(dir);
    std::filesystem::create_directories(dir);
    return dir;
}

std::vector<std::string> entries(const std::filesystem::path& dir) {
    std::vector<std::string> names;
    for (const auto& e : std::filesystem::directory_iterator(dir)) names.push_back(e.path().filename().string());
    std::sort(names.begin(), names.end());
    return names;
}

std::span<const std::byte> bytes_of(const std::string& s) { return std::as_bytes(std::span(s)); }

std::string text_of(const std::vector<std::byte>& b) { return {reinterpret_cast<const char*>(b.data()), b.size()}; }

std::string error_of(const std::function<void()>& f) {
    try {
        f();
    } catch (const std::exception& e) {
        return e.what();
    }
    return "";
}

}  // namespace

TEST_CASE("atomic_file: a write replaces the target and leaves no temporary file") {
    const auto dir = scratch_dir("atomic_replace");
    const auto path = dir / "report.json";
    write_file_atomic(path, bytes_of("a long first version of the file"));
    CHECK(text_of(read_file(path)) == "a long first version of the file");
    write_file_atomic(path, bytes_of("short"));
    CHECK(text_of(read_file(path)) == "short");
    write_file_atomic(path, [](std::ostream& os) { os << "{\"top1\": " << 91.5 << "}\n"; });
    CHECK(text_of(read_file(path)) == "{\"top1\": 91.5}\n");
    write_file_atomic(path, std::span<const std::byte>());
    CHECK(read_file(path).empty());
    CHECK(entries(dir) == std::vector<std::string>{"report.json"});
    std::filesystem::remove_all(dir);
}

TEST_CASE("atomic_file: failures name the path and leave nothing behind") {
    const auto dir = scratch_dir("atomic_fail");
    const auto missing_dir = dir / "no_such_dir" / "out.bin";
    const std::string msg = error_of([&] { write_file_atomic(missing_dir, bytes_of("x")); });
    CHECK(msg.find(missing_dir.string()) != std::string::npos);
    CHECK(msg.find("No such file or directory") != std::string::npos);
    CHECK_THROWS_AS(write_file_atomic(missing_dir, bytes_of("x")), std::system_error);

    // Renaming a file over a directory fails after the temporary file was written: it must be removed.
    std::filesystem::create_directory(dir / "occupied");
    const std::string rename_msg = error_of([&] { write_file_atomic(dir / "occupied", bytes_of("data")); });
    CHECK(rename_msg.find("cannot rename") != std::string::npos);
    CHECK(entries(dir) == std::vector<std::string>{"occupied"});

    // A writer that throws leaves the old content in place.
    write_file_atomic(dir / "keep.txt", bytes_of("old"));
    CHECK_THROWS_AS(write_file_atomic(dir / "keep.txt", [](std::ostream&) { throw std::runtime_error("boom"); }),
                    std::runtime_error);
    CHECK(text_of(read_file(dir / "keep.txt")) == "old");
    CHECK(entries(dir) == std::vector<std::string>{"keep.txt", "occupied"});
    std::filesystem::remove_all(dir);
}

TEST_CASE("atomic_file: read_file errors name the path") {
    const auto dir = scratch_dir("atomic_read");
    const std::string msg = error_of([&] { read_file(dir / "absent.bin"); });
    CHECK(msg.find("absent.bin") != std::string::npos);
    CHECK(msg.find("No such file or directory") != std::string::npos);
    CHECK(error_of([&] { read_file(dir); }).find("Is a directory") != std::string::npos);
    std::filesystem::remove_all(dir);
}

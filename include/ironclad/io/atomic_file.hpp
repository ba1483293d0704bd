// Whole-file reads and crash-safe whole-file writes (checkpoints, reports, campaign files).
//
// Contract: write_file_atomic never leaves a half-written target. It writes `<path>.tmp.<pid>.<n>` in the
// target's directory (rename is only atomic within one file system), fsyncs it, renames it over the
// target and fsyncs the directory, so after a crash a reader sees either the old file or the new one.
// On any failure the temporary file is removed and std::system_error names the path and the errno text.
// POSIX only.
#pragma once

#include <atomic>
#include <cerrno>
#include <cstddef>
#include <cstdio>
#include <filesystem>
#include <functional>
#include <ostream>
#include <span>
#include <sstream>
#include <stdexcept>
#include <string>
#include <system_error>
#include <vector>

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

namespace ironclad {

namespace detail {

[[noreturn]] inline void throw_errno(int err, const std::string& what) {
    throw std::system_error(err, std::generic_category(), what);
}

// Closes on scope exit so every error path releases the descriptor.
class FileDescriptor {
public:
    explicit FileDescriptor(int fd) : fd_(fd) {}
    FileDescriptor(const FileDescriptor&) = delete;
    FileDescriptor& operator=(const FileDescriptor&) = delete;
    ~FileDescriptor() {
        if (fd_ >= 0) ::close(fd_);
    }
    int get() const { return fd_; }
    // Explicit close, because close() can report a deferred write error.
    int close() {
        const int rc = ::close(fd_);
        fd_ = -1;
        return rc;
    }

private:
    int fd_;
};

inline void write_all(int fd, std::span<const std::byte> data, const std::string& path) {
    while (!data.empty()) {
        const ssize_t n = ::write(fd, data.data(), data.size());
        if (n < 0) {
            if (errno == EINTR) continue;
            throw_errno(errno, "cannot write '" + path + "'");
        }
        data = data.subspan(static_cast<std::size_t>(n));
    }
}

}  // namespace detail

inline void write_file_atomic(const std::filesystem::path& path, std::span<const std::byte> data) {
    // The counter keeps two threads of one process that write the same target from sharing a temp file.
    static std::atomic<unsigned> counter{0};
    const std::string target = path.string();
    const std::string tmp = target + ".tmp." + std::to_string(::getpid()) + "." + std::to_string(counter++);
    try {
        detail::FileDescriptor fd(::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644));
        if (fd.get() < 0) detail::throw_errno(errno, "cannot create temporary file '" + tmp + "' for '" + target + "'");
        detail::write_all(fd.get(), data, tmp);
        if (::fsync(fd.get()) != 0) detail::throw_errno(errno, "cannot fsync '" + tmp + "'");
        if (fd.close() != 0) detail::throw_errno(errno, "cannot close '" + tmp + "'");
        if (std::rename(tmp.c_str(), target.c_str()) != 0)
            detail::throw_errno(errno, "cannot rename '" + tmp + "' to '" + target + "'");
    } catch (...) {
        std::remove(tmp.c_str());
        throw;
    }
    // Makes the rename itself durable. Some file systems refuse to fsync a directory; the data is in place
    // by now, so that is not an error.
    const std::filesystem::path dir = path.parent_path().empty() ? "." : path.parent_path();
    detail::FileDescriptor dir_fd(::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
    if (dir_fd.get() >= 0) ::fsync(dir_fd.get());
}

// For text writers (JSON, CSV): the content is produced into memory first, so a writer that throws
// leaves the target untouched.
inline void write_file_atomic(const std::filesystem::path& path, const std::function<void(std::ostream&)>& writer) {
    std::ostringstream os;
    writer(os);
    if (!os) throw std::runtime_error("write_file_atomic: the writer for '" + path.string() + "' failed");
    const std::string text = std::move(os).str();
    write_file_atomic(path, std::as_bytes(std::span(text)));
}

inline std::vector<std::byte> read_file(const std::filesystem::path& path) {
    const std::string name = path.string();
    detail::FileDescriptor fd(::open(name.c_str(), O_RDONLY | O_CLOEXEC));
    if (fd.get() < 0) detail::throw_errno(errno, "cannot open '" + name + "'");
    struct stat st {};
    if (::fstat(fd.get(), &st) != 0) detail::throw_errno(errno, "cannot stat '" + name + "'");
    if (S_ISDIR(st.st_mode)) detail::throw_errno(EISDIR, "cannot read '" + name + "'");
    std::vector<std::byte> data;
    data.reserve(static_cast<std::size_t>(st.st_size));
    // Read until EOF rather than trusting st_size: pipes and /proc files report 0.
    std::byte chunk[1 << 16];
    for (;;) {
        const ssize_t n = ::read(fd.get(), chunk, sizeof chunk);
        if (n < 0) {
            if (errno == EINTR) continue;
            detail::throw_errno(errno, "cannot read '" + name + "'");
        }
        if (n == 0) break;
        data.insert(data.end(), chunk, chunk + n);
    }
    return data;
}

}  // namespace ironclad

// OpenMP helpers: the one place that decides how ironclad's kernels share work between threads.
//
// Contract: work is split over a fixed index range with a static schedule, and no result may depend on how
// many threads ran it. Element-wise work is trivially safe; a reduction must be partitioned by the thing it
// reduces into (a channel, a row) or summed over fixed chunks (split_range with a thread-independent part
// count) in a fixed order. Eigen's own GEMM threading is switched off process-wide for the same reason:
// its blocking depends on its thread count, so parallelism lives only in these outer loops.
// thread_scratch() gives hot loops per-thread buffers that survive between calls, so kernels need not
// allocate per image.
#pragma once

#include <Eigen/Core>

#ifdef _OPENMP
#include <omp.h>
#endif

#include <algorithm>
#include <array>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <new>
#include <stdexcept>
#include <string>
#include <utility>

namespace ironclad {

namespace detail {
inline const bool eigen_single_threaded = (Eigen::setNbThreads(1), true);
}

// Threads the next parallel loop will use.
inline int num_threads() {
#ifdef _OPENMP
    return omp_get_max_threads();
#else
    return 1;
#endif
}

inline void set_num_threads(int n) {
    if (n < 1) throw std::invalid_argument("set_num_threads: need at least 1 thread, got " + std::to_string(n));
#ifdef _OPENMP
    omp_set_num_threads(n);
#endif
}

// Below this much work (a rough count of multiply-adds or elements touched), a parallel region costs more than
// it saves, and on a busy machine waking a worker can stall for a scheduler tick, so the loop runs inline.
inline constexpr std::int64_t kMinParallelWork = std::int64_t{1} << 16;

// Calls body(i) for every i in [0, n), contiguous blocks of indices per thread; work_per_index estimates the
// cost of one index (the default always goes parallel). body must not throw.
template <class F>
void parallel_for(std::int64_t n, F&& body, std::int64_t work_per_index = kMinParallelWork) {
    const bool worth_it = n > 1 && n * work_per_index >= kMinParallelWork;
#pragma omp parallel for schedule(static) if (worth_it)
    for (std::int64_t i = 0; i < n; ++i) body(i);
}

// [begin, end) of part k when n items are cut into `parts` contiguous parts whose sizes differ by at most one.
inline std::pair<std::int64_t, std::int64_t> split_range(std::int64_t n, std::int64_t parts, std::int64_t k) {
    const std::int64_t base = n / parts, extra = n % parts;
    const std::int64_t begin = k * base + std::min(k, extra);
    return {begin, begin + base + (k < extra ? 1 : 0)};
}

inline constexpr int kScratchSlots = 4;

namespace detail {
struct ScratchBuffer {
    float* ptr = nullptr;
    std::int64_t capacity = 0;
    ScratchBuffer() = default;
    ScratchBuffer(const ScratchBuffer&) = delete;
    ScratchBuffer& operator=(const ScratchBuffer&) = delete;
    ~ScratchBuffer() { std::free(ptr); }
};
}  // namespace detail

// A 64-byte aligned buffer of at least `count` floats owned by the calling thread, one per slot in
// [0, kScratchSlots). Its contents are unspecified; it stays valid until this thread asks the same slot for more.
inline float* thread_scratch(int slot, std::int64_t count) {
    thread_local std::array<detail::ScratchBuffer, kScratchSlots> buffers;
    detail::ScratchBuffer& b = buffers.at(static_cast<std::size_t>(slot));
    if (count > b.capacity) {
        std::free(b.ptr);
        const std::size_t bytes = (static_cast<std::size_t>(count) * sizeof(float) + 63) / 64 * 64;
        b.ptr = static_cast<float*>(std::aligned_alloc(64, bytes));
        b.capacity = b.ptr ? count : 0;
        if (!b.ptr) throw std::bad_alloc();
    }
    return b.ptr;
}

}  // namespace ironclad

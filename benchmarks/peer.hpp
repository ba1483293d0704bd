// What the benchmarks share: medians, and running the PyTorch peer (../shared/peer/torch_peer.py) the way
// run_peer.sh does (Debian's /usr/bin/python3, its "tuned" glibc allocator settings) to read its JSON lines.
#pragma once

#include <nlohmann/json.hpp>

#include <algorithm>
#include <array>
#include <cstdio>
#include <filesystem>
#include <string>
#include <vector>

namespace ironclad::bench {

inline double median(std::vector<double> v) {
    std::sort(v.begin(), v.end());
    const std::size_t n = v.size();
    return n == 0 ? 0 : n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

inline bool peer_available(const std::filesystem::path& peer_dir) {
    return std::filesystem::exists(peer_dir / "torch_peer.py") && std::filesystem::exists("/usr/bin/python3");
}

// Runs torch_peer.py once with `args` and returns its measurement lines (JSON objects with a "what"); empty when
// the peer cannot run.
inline std::vector<nlohmann::json> run_peer(const std::filesystem::path& peer_dir, const std::string& args) {
    const std::string cmd =
        "MALLOC_MMAP_THRESHOLD_=33554432 MALLOC_TRIM_THRESHOLD_=4294967296 MALLOC_TOP_PAD_=268435456 "
        "/usr/bin/python3 '" + (peer_dir / "torch_peer.py").string() + "' " + args + " 2>/dev/null";
    std::vector<nlohmann::json> out;
    FILE* pipe = popen(cmd.c_str(), "r");
    if (!pipe) return out;
    std::array<char, 8192> line{};
    while (std::fgets(line.data(), static_cast<int>(line.size()), pipe)) {
        auto j = nlohmann::json::parse(line.data(), nullptr, false);
        if (j.is_object() && j.contains("what")) out.push_back(std::move(j));
    }
    pclose(pipe);
    return out;
}

}  // namespace ironclad::bench

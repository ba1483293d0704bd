// What the benchmarks share: medians and timing, and running the PyTorch peer (../shared/peer/torch_peer.py) the way
// run_peer.sh does (Debian's /usr/bin/python3, its "tuned" glibc allocator settings) to read its JSON lines.
#pragma once

#include <nlohmann/json.hpp>

#include <algorithm>
#include <array>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <map>
#include <string>
#include <vector>

namespace ironclad::bench {

inline double median(std::vector<double> v) {
    std::sort(v.begin(), v.end());
    const std::size_t n = v.size();
    return n == 0 ? 0 : n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

// The median wall time of f over `repeats` calls, after `warmup` untimed ones.
template <class F>
double median_seconds(F&& f, int warmup, int repeats) {
    for (int i = 0; i < warmup; ++i) f();
    std::vector<double> t;
    for (int i = 0; i < repeats; ++i) {
        const auto t0 = std::chrono::steady_clock::now();
        f();
        t.push_back(std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
    }
    return median(t);
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

struct PeerFigure {
    double images_per_s = 0, flops_per_img = 0;
};

// torch_peer.py's throughput measurements `whats` (comma list: infer, train, pgd) for `model` at batch and threads,
// run once in NCHW and once in channels-last; per measurement the better layout. Empty when the peer cannot run.
inline std::map<std::string, PeerFigure> run_peer_best_layout(const std::filesystem::path& dir,
                                                              const std::string& model, int batch, int threads,
                                                              int repeats, const std::string& whats) {
    std::map<std::string, PeerFigure> best;
    for (const char* layout : {"", " --channels-last"}) {
        const std::string args = "--model " + model + (model.starts_with("resnet") ? " --shortcut A" : "") +
                                 " --batch " + std::to_string(batch) + " --threads " + std::to_string(threads) +
                                 " --repeats " + std::to_string(repeats) + " --what " + whats + layout;
        for (auto& j : run_peer(dir, args)) {
            if (!j.contains("images_per_s")) continue;
            PeerFigure& f = best[j["what"].get<std::string>()];
            if (j["images_per_s"].get<double>() > f.images_per_s)
                f = {j["images_per_s"].get<double>(), j.value("flops_per_img", 0.0)};
        }
    }
    return best;
}

}  // namespace ironclad::bench

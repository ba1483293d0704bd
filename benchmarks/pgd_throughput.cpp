// PGD-10 (Linf, eps 8/255, step 2/255, uniform random start) images/s on ResNet-20 (3x32x32, batch 128), engine
// against the PyTorch peer (torch_peer.py --what pgd: the same attack, parameters frozen, eval mode).
//
//   pgd_throughput [--rounds 3] [--repeats 5] [--threads 2] [--batch 128] [--peer DIR | --no-peer]
//
// One timed repeat is the whole 10-step attack on one batch (random start, 10 x (forward, input gradient, step,
// projection)), as the peer times it. Rounds interleave engine and peer because the machine is shared and noisy;
// each side reports the median of its repeats, the JSON line the median over rounds and the ratio engine / peer.
// The peer runs in NCHW and channels-last layouts and the better one counts; without it only the engine's figure
// is printed.
#include "peer.hpp"

#include "ironclad/adversarial/pgd.hpp"
#include "ironclad/core/allocator.hpp"
#include "ironclad/models/resnet_cifar.hpp"

#include <nlohmann/json.hpp>
#include <omp.h>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <iostream>
#include <string>

using namespace ironclad;
using bench::median;

namespace {

double engine_images_per_s(Module& model, const Tensor<float>& x, const std::vector<std::int32_t>& y, int repeats) {
    const ThreatModel threat{.norm = Norm::linf, .eps = 8.0f / 255, .step = 2.0f / 255, .steps = 10};
    const auto objective = cross_entropy_objective(y);
    auto attack = [&](std::uint64_t run) {
        Tensor<float> start = x.clone();
        threat.random_start_point(start, x, [run](std::int64_t i) { return Rng::stream(run, static_cast<std::uint64_t>(i)); });
        return pgd_ascent(model, x, std::move(start), threat, objective);
    };
    attack(0);  // warm-up
    std::vector<double> seconds;
    for (int r = 0; r < repeats; ++r) {
        const auto t0 = std::chrono::steady_clock::now();
        attack(static_cast<std::uint64_t>(r + 1));
        seconds.push_back(std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
    }
    return static_cast<double>(x.dim(0)) / median(seconds);
}

double peer_images_per_s(const std::filesystem::path& peer_dir, int batch, int threads, int repeats) {
    double best = 0;
    for (const char* layout : {"", " --channels-last"})
        for (auto& j : bench::run_peer(peer_dir, "--model resnet20 --shortcut A --batch " + std::to_string(batch) +
                                                     " --threads " + std::to_string(threads) + " --repeats " +
                                                     std::to_string(repeats) + " --what pgd" + layout))
            if (j["what"] == "pgd" && j.contains("images_per_s")) best = std::max(best, j["images_per_s"].get<double>());
    return best;
}

}  // namespace

int main(int argc, char** argv) {
    configure_allocator();
    int rounds = 3, repeats = 5, threads = 2, batch = 128;
    std::filesystem::path peer_dir = std::filesystem::path(IRONCLAD_SOURCE_DIR) / ".." / "shared" / "peer";
    bool use_peer = true;
    for (int i = 1; i < argc; ++i) {
        const std::string k = argv[i];
        auto next = [&] { return i + 1 < argc ? std::string(argv[++i]) : throw std::invalid_argument(k + " needs a value"); };
        if (k == "--rounds") rounds = std::stoi(next());
        else if (k == "--repeats") repeats = std::stoi(next());
        else if (k == "--threads") threads = std::stoi(next());
        else if (k == "--batch") batch = std::stoi(next());
        else if (k == "--peer") peer_dir = next();
        else if (k == "--no-peer") use_peer = false;
        else { std::cerr << "unknown option " << k << "\n"; return 2; }
    }
    use_peer = use_peer && bench::peer_available(peer_dir);
    omp_set_num_threads(threads);
    auto model = resnet_cifar({.depth = 20, .num_classes = 10, .in_channels = 3});
    model->eval();
    Tensor<float> x({batch, 3, 32, 32});
    Rng rng = Rng::stream(1, 0);
    for (auto& v : x) v = rng.uniform<float>();
    std::vector<std::int32_t> y;
    for (int i = 0; i < batch; ++i) y.push_back(i % 10);
    std::vector<double> engine, peer;
    for (int r = 0; r < rounds; ++r) {
        engine.push_back(engine_images_per_s(*model, x, y, repeats));
        if (use_peer) peer.push_back(peer_images_per_s(peer_dir, batch, threads, repeats));
        std::fprintf(stderr, "round %d/%d: engine %.1f images/s, peer %.1f images/s\n", r + 1, rounds, engine.back(),
                     use_peer ? peer.back() : 0.0);
    }
    nlohmann::json j{{"model", "resnet20"}, {"what", "pgd"}, {"steps", 10}, {"eps", "8/255"}, {"batch", batch},
                     {"threads", threads}, {"rounds", rounds}, {"engine_images_per_s", median(engine)}};
    j["peer_images_per_s"] = peer.empty() ? nlohmann::json(nullptr) : nlohmann::json(median(peer));
    j["ratio"] = peer.empty() ? nlohmann::json(nullptr) : nlohmann::json(median(engine) / median(peer));
    std::cout << j.dump() << std::endl;
    return 0;
}

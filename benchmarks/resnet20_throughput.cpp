// ResNet-20 (3x32x32, batch 128) inference and training throughput, engine against the PyTorch peer; and the
// engine's exact-integer Q15.16 inference (64-bit accumulator) against its own float inference.
//
//   resnet20_throughput [--rounds 3] [--repeats 10] [--threads 2] [--batch 128] [--peer DIR | --no-peer]
//
// Rounds interleave the two sides (engine, peer, engine, peer, ...) because the machine is shared and noisy;
// each side reports the median of its repeats, and the JSON lines give the median over rounds and the ratio
// engine / peer. The peer is ../shared/peer/torch_peer.py run with Debian's /usr/bin/python3 and the allocator
// settings of run_peer.sh, in both NCHW and channels-last layouts (the better one counts); without it (no ../shared, no torch) only the engine's figures are printed.
#include "peer.hpp"

#include "ironclad/core/allocator.hpp"
#include "ironclad/autograd/losses.hpp"
#include "ironclad/exact/exact_network.hpp"
#include "ironclad/models/resnet_cifar.hpp"
#include "ironclad/optim/sgd.hpp"

#include <nlohmann/json.hpp>
#include <omp.h>

#include <algorithm>
#include <array>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <iostream>
#include <map>
#include <string>

using namespace ironclad;
using bench::median;

namespace {

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

struct EngineBench {
    std::shared_ptr<ResNetCifar> model = resnet_cifar({.depth = 20, .num_classes = 10, .in_channels = 3});
    Tensor<float> x;
    std::vector<std::int32_t> y;
    std::unique_ptr<Sgd> sgd;

    explicit EngineBench(int batch) : x({batch, 3, 32, 32}) {
        Rng rng = Rng::stream(1, 0);
        for (auto& v : x) v = static_cast<float>(rng.normal());
        for (int i = 0; i < batch; ++i) y.push_back(i % 10);
        sgd = std::make_unique<Sgd>(std::vector<ParamGroup>{{model->parameters(), 5e-4f}},
                                    SgdOptions{.lr = 0.01f, .momentum = 0.9f});
    }
    double infer(int repeats) {
        model->eval();
        return median_seconds([&] {
            NoGradGuard g;
            (*model)(Var(x));
        }, 2, repeats);
    }
    double infer_exact(int repeats) {
        model->eval();
        ExactArithmetic q15_16;
        q15_16.format = parse_number_format("q15.16");
        ExactNetwork net(*model, flatten_stages(*model), q15_16);
        return median_seconds([&] { net.forward(x); }, 1, repeats);
    }
    double train(int repeats) {
        model->train();
        return median_seconds([&] {
            Var loss = cross_entropy((*model)(Var(x)), y);
            sgd->zero_grad();
            loss.backward();
            sgd->step();
        }, 2, repeats);
    }
};

// Runs torch_peer.py once; returns images/s by measurement name ("infer", "train").
std::map<std::string, double> run_peer(const std::filesystem::path& peer_dir, int batch, int threads, int repeats,
                                       bool channels_last) {
    std::map<std::string, double> out;
    for (auto& j : bench::run_peer(peer_dir, "--model resnet20 --shortcut A --batch " + std::to_string(batch) +
                                                 " --threads " + std::to_string(threads) + " --repeats " +
                                                 std::to_string(repeats) + " --what infer,train" +
                                                 (channels_last ? " --channels-last" : "")))
        if (j.contains("images_per_s")) out[j["what"].get<std::string>()] = j["images_per_s"].get<double>();
    return out;
}

}  // namespace

int main(int argc, char** argv) {
    configure_allocator();
    int rounds = 3, repeats = 10, threads = 2, batch = 128;
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
    EngineBench engine(batch);
    std::map<std::string, std::vector<double>> eng, peer;
    for (int r = 0; r < rounds; ++r) {
        eng["infer"].push_back(batch / engine.infer(repeats));
        eng["train"].push_back(batch / engine.train(repeats));
        eng["infer_exact"].push_back(batch / engine.infer_exact(std::max(1, repeats / 3)));
        if (use_peer) {
            // The peer's best layout this round: NCHW or channels-last, whichever is faster per measurement.
            auto best = run_peer(peer_dir, batch, threads, repeats, false);
            for (auto& [what, ips] : run_peer(peer_dir, batch, threads, repeats, true)) best[what] = std::max(best[what], ips);
            for (auto& [what, ips] : best) peer[what].push_back(ips);
        }
        std::fprintf(stderr, "round %d/%d done\n", r + 1, rounds);
    }
    for (const char* what : {"infer", "train"}) {
        nlohmann::json j{{"model", "resnet20"}, {"what", what}, {"batch", batch}, {"threads", threads},
                         {"rounds", rounds}, {"engine_images_per_s", median(eng[what])}};
        if (!peer[what].empty()) {
            j["peer_images_per_s"] = median(peer[what]);
            j["ratio"] = median(eng[what]) / median(peer[what]);
        } else {
            j["peer_images_per_s"] = nullptr;
            j["ratio"] = nullptr;
        }
        std::cout << j.dump() << std::endl;
    }
    nlohmann::json exact{{"model", "resnet20"}, {"what", "infer_exact_q15.16"}, {"batch", batch}, {"threads", threads},
                         {"rounds", rounds}, {"engine_images_per_s", median(eng["infer_exact"])},
                         {"float_images_per_s", median(eng["infer"])},
                         {"ratio_to_float", median(eng["infer_exact"]) / median(eng["infer"])}};
    std::cout << exact.dump() << std::endl;
    return 0;
}

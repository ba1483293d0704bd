// Inference throughput of every architecture in the model zoo (3x32x32, batch 128), engine against the PyTorch
// peer where the peer has the architecture (torch_peer.py: resnet20/32/44/56, vgg11_bn, mobilenetv2_x0_5).
//
//   zoo_inference [--rounds 3] [--repeats 5] [--threads 2] [--batch 128] [--models a,b,...] [--peer DIR | --no-peer]
//
// One JSON line per architecture: model, params, macs_per_image, engine_images_per_s, peer_images_per_s, ratio
// (engine / peer). Rounds interleave engine and peer (the machine is shared and noisy); each side's figure is the
// median over rounds of its median over repeats. The peer runs with run_peer.sh's allocator settings and counts
// its better layout (NCHW or channels-last) in each round.
#include "peer.hpp"

#include "ironclad/core/allocator.hpp"
#include "ironclad/inference/inference_plan.hpp"
#include "ironclad/models/registry.hpp"
#include "ironclad/models/summary.hpp"

#include <nlohmann/json.hpp>
#include <omp.h>

#include <algorithm>
#include <array>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <iostream>
#include <set>
#include <sstream>
#include <string>

using namespace ironclad;
using bench::median;

namespace {

// Through an InferencePlan, the engine's inference path (ironclad eval, float fault campaigns).
double engine_images_per_s(Module& model, const Tensor<float>& x, int repeats) {
    model.eval();
    InferencePlan plan(model, {x.dim(1), x.dim(2), x.dim(3)});
    return static_cast<double>(x.dim(0)) / bench::median_seconds([&] { plan.forward(x); }, 2, repeats);
}

}  // namespace

int main(int argc, char** argv) {
    configure_allocator();
    int rounds = 3, repeats = 5, threads = 2, batch = 128;
    std::filesystem::path peer_dir = std::filesystem::path(IRONCLAD_SOURCE_DIR) / ".." / "shared" / "peer";
    bool use_peer = true;
    std::vector<std::string> names;
    for (auto& info : model_registry()) names.push_back(info.name);
    for (int i = 1; i < argc; ++i) {
        const std::string k = argv[i];
        auto next = [&] { return i + 1 < argc ? std::string(argv[++i]) : throw std::invalid_argument(k + " needs a value"); };
        if (k == "--rounds") rounds = std::stoi(next());
        else if (k == "--repeats") repeats = std::stoi(next());
        else if (k == "--threads") threads = std::stoi(next());
        else if (k == "--batch") batch = std::stoi(next());
        else if (k == "--peer") peer_dir = next();
        else if (k == "--no-peer") use_peer = false;
        else if (k == "--models") {
            names.clear();
            std::stringstream ss(next());
            for (std::string n; std::getline(ss, n, ',');) names.push_back(n);
        } else { std::cerr << "unknown option " << k << "\n"; return 2; }
    }
    use_peer = use_peer && bench::peer_available(peer_dir);
    const std::set<std::string> peer_has{"resnet20", "resnet32", "resnet44", "resnet56", "vgg11_bn", "mobilenetv2_x0_5"};
    omp_set_num_threads(threads);

    Tensor<float> x({batch, 3, 32, 32});
    Rng rng = Rng::stream(1, 0);
    for (auto& v : x) v = static_cast<float>(rng.normal());
    for (const std::string& name : names) {
        auto model = build_model(name, ModelConfig{});
        const ModelSummary s = summarize(*model, {1, 3, 32, 32});
        std::vector<double> eng, peer;
        const bool compare = use_peer && peer_has.count(name);
        for (int r = 0; r < rounds; ++r) {
            eng.push_back(engine_images_per_s(*model, x, repeats));
            if (compare)
                peer.push_back(bench::run_peer_best_layout(peer_dir, name, batch, threads, repeats, "infer")["infer"].images_per_s);
        }
        nlohmann::json j{{"model", name}, {"what", "infer"}, {"params", s.params}, {"macs_per_image", s.macs},
                         {"batch", batch}, {"threads", threads}, {"rounds", rounds},
                         {"engine_images_per_s", median(eng)}};
        j["peer_images_per_s"] = compare ? nlohmann::json(median(peer)) : nlohmann::json(nullptr);
        j["ratio"] = compare && median(peer) > 0 ? nlohmann::json(median(eng) / median(peer)) : nlohmann::json(nullptr);
        std::cout << j.dump() << std::endl;
    }
    return 0;
}

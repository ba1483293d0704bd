// One weight fault campaign, engine against the PyTorch peer: ResNet-20 (pretrained), Q15.16 weights, a
// class-balanced 1,000-image CIFAR-10 JPEG test subset, exact BER sampling at 1e-7, 1e-6, 1e-5, 100 trials each.
//
//   fault_campaign [--data DIR] [--weights FILE] [--limit 1000] [--trials 100] [--rounds 1] [--threads 2]
//                  [--peer DIR | --no-peer]
//
// Prints one JSON line per comparison with engine_s, peer_s and ratio = peer_s / engine_s:
//   fixed   the engine's campaign of --trials trials per rate (golden reuse and stage restarts included) against
//           the peer's --trials trials per rate;
//   margin  the engine's --margin 0.01 campaign (stop a rate once its pooled 95% interval is within +-1 point)
//           against the same peer figure.
// The peer is ../shared/peer/torch_peer.py --what fault (bernoulli sampler, vectorised injection, the same
// rates, trials and image count, on its synthetic images: its time does not depend on the pixels), run with the
// allocator settings of run_peer.sh; its campaign time is trials x its median seconds per trial. Rounds
// alternate engine and peer; medians over rounds are reported. Needs the extracted CIFAR-10 JPEG tree (default
// /tmp/cifar10-jpg: tar xzf ../shared/datasets/cifar10-jpg.tar.gz -C /tmp/cifar10-jpg) and the pretrained
// weights; without them it says so and exits 0.
#include "peer.hpp"

#include "ironclad/core/allocator.hpp"
#include "ironclad/data/load.hpp"
#include "ironclad/fault/campaign.hpp"
#include "ironclad/models/registry.hpp"
#include "ironclad/training/checkpoint.hpp"

#include <nlohmann/json.hpp>
#include <omp.h>

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

// The peer's median seconds per trial at one BER (0 when the peer cannot run).
double peer_seconds_per_trial(const std::filesystem::path& peer_dir, double ber, int trials, std::int64_t images,
                              int threads) {
    char rate[32];
    std::snprintf(rate, sizeof rate, "%g", ber);
    double s = 0;
    for (auto& j : bench::run_peer(peer_dir, "--model resnet20 --shortcut A --batch 128 --threads " +
                                                 std::to_string(threads) +
                                                 " --what fault --fault-sampler bernoulli --ber " + rate +
                                                 " --eval-images " + std::to_string(images) + " --fault-repeats " +
                                                 std::to_string(trials) + " --warmup 1"))
        if (j["what"] == "fault") s = j["median_s"].get<double>();
    return s;
}

}  // namespace

int main(int argc, char** argv) {
    configure_allocator();
    const std::filesystem::path shared = std::filesystem::path(IRONCLAD_SOURCE_DIR) / ".." / "shared";
    std::filesystem::path data = "/tmp/cifar10-jpg", weights = shared / "models" / "resnet20-cifar10.safetensors";
    std::filesystem::path peer_dir = shared / "peer";
    std::int64_t limit = 1000;
    int trials = 100, rounds = 1, threads = 2;
    bool use_peer = true;
    for (int i = 1; i < argc; ++i) {
        const std::string k = argv[i];
        auto next = [&] { return i + 1 < argc ? std::string(argv[++i]) : throw std::invalid_argument(k + " needs a value"); };
        if (k == "--data") data = next();
        else if (k == "--weights") weights = next();
        else if (k == "--limit") limit = std::stoll(next());
        else if (k == "--trials") trials = std::stoi(next());
        else if (k == "--rounds") rounds = std::stoi(next());
        else if (k == "--threads") threads = std::stoi(next());
        else if (k == "--peer") peer_dir = next();
        else if (k == "--no-peer") use_peer = false;
        else { std::cerr << "unknown option " << k << "\n"; return 2; }
    }
    if (!std::filesystem::is_directory(data / "test") || !std::filesystem::exists(weights)) {
        std::cout << "fault_campaign: skipped (needs the CIFAR-10 JPEG tree at " << data << " and " << weights << ")\n";
        return 0;
    }
    use_peer = use_peer && bench::peer_available(peer_dir);
    omp_set_num_threads(threads);

    const Dataset test = load_dataset(data.string(), false, limit);
    ModelConfig cfg;
    auto model = build_model("resnet20", cfg);
    load_model(weights, *model);
    LoaderOptions lo;
    lo.mean = {0.485f, 0.456f, 0.406f};
    lo.std = {0.229f, 0.224f, 0.225f};
    const EvalSet set = make_eval_set(test, lo);
    const std::vector<double> rates{1e-7, 1e-6, 1e-5};

    auto engine_campaign = [&](double margin, std::vector<std::size_t>* trials_run) {
        CampaignOptions co;
        co.fault.count_mode = CountMode::ber;  // Q15.16 (toward zero, saturate) weights: FaultModel's default format
        co.levels = rates;
        co.max_trials = trials;
        co.margin = margin;
        auto fresh = build_model("resnet20", cfg);  // the campaign stores weights in Q15.16 in place
        load_model(weights, *fresh);
        const auto t0 = std::chrono::steady_clock::now();
        Campaign c(*fresh, set, co);
        const CampaignResult r = c.run();
        const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
        if (trials_run)
            for (auto& l : r.levels) trials_run->push_back(l.trials.size());
        std::fprintf(stderr, "engine%s: %.1f s; top-1 per rate:", margin > 0 ? " (margin)" : "", s);
        for (auto& l : r.levels) std::fprintf(stderr, " %.2f [%.2f, %.2f] (%zu trials)", l.top1.mean, l.ci95_low(), l.ci95_high(), l.trials.size());
        std::fprintf(stderr, "\n");
        return s;
    };

    std::vector<double> fixed_s, margin_s, peer_s;
    std::vector<std::size_t> margin_trials;
    for (int round = 0; round < rounds; ++round) {
        fixed_s.push_back(engine_campaign(0, nullptr));
        if (use_peer) {
            double total = 0;
            for (double r : rates) total += trials * peer_seconds_per_trial(peer_dir, r, trials, set.size(), threads);
            std::fprintf(stderr, "peer: %.1f s\n", total);
            peer_s.push_back(total);
        }
        margin_trials.clear();
        margin_s.push_back(engine_campaign(0.01, &margin_trials));
    }
    const double peer = use_peer ? median(peer_s) : 0;
    auto line = [&](const char* what, double engine, nlohmann::json extra) {
        nlohmann::json j{{"what", what}, {"model", "resnet20"}, {"format", "q15.16"}, {"images", set.size()},
                         {"rates", rates}, {"peer_trials_per_rate", trials}, {"threads", threads}, {"rounds", rounds},
                         {"engine_s", engine}};
        j["peer_s"] = use_peer ? nlohmann::json(peer) : nlohmann::json(nullptr);
        j["ratio"] = use_peer && engine > 0 ? nlohmann::json(peer / engine) : nlohmann::json(nullptr);
        for (auto& [k, v] : extra.items()) j[k] = v;
        std::cout << j.dump() << std::endl;
    };
    line("fault_campaign_fixed", median(fixed_s), {{"engine_trials_per_rate", trials}});
    line("fault_campaign_margin", median(margin_s), {{"margin", 0.01}, {"interval", "pooled"}, {"engine_trials_per_rate", margin_trials}});
    return 0;
}

// The performance report: inference, training step and PGD-10 throughput of resnet20, vgg11_bn and
// mobilenetv2_x0_5 (3x32x32, batch 128, 2 threads) beside the PyTorch peer, the peak resident memory of a training
// step for both, exact-integer Q15.16 inference against the engine's own float inference, the machine's measured
// FMA peak, and compile times. One JSON line per figure.
//
//   perf_report [--rounds 3] [--repeats 5] [--threads 2] [--batch 128] [--models resnet20,vgg11_bn,...]
//               [--what infer,train,pgd,memory,exact,compile] [--peer DIR | --no-peer]
//
// Rounds interleave the two sides (engine, peer, engine, peer, ...) because the machine is shared and noisy: each
// side's figure is the median over rounds of its median over repeats, and ratio = engine / peer of those medians.
// The peer is ../shared/peer/torch_peer.py under Debian's /usr/bin/python3 with run_peer.sh's allocator settings,
// in NCHW and channels-last (its better layout counts, per round). FLOPs per image are the peer's own counts
// (infer 2 MACs, train 6 MACs less the stem's input gradient, PGD-10 10 x 4 MACs), so GFLOP/s compare like with
// like; fraction_of_peak divides by the FMA peak measured here (peak_gflops line), not by a datasheet figure.
// Memory: each side's training steps (2 warm-up + 3) run in a process of their own, started from a fresh small
// process, and the line gives each one's peak resident set (ru_maxrss), whole process included (for the peer, the
// Python interpreter and torch).
// compile: seconds to compile a translation unit that includes only core/tensor.hpp and core/fixed_point.hpp, and
// (with --what compile) to configure and build the `ironclad` CLI from scratch at the default build type in a
// temporary build directory, with the compiler and flags of this checkout's meson.build.
#include "peer.hpp"

#include "ironclad/adversarial/pgd.hpp"
#include "ironclad/autograd/losses.hpp"
#include "ironclad/core/allocator.hpp"
#include "ironclad/exact/exact_network.hpp"
#include "ironclad/inference/inference_plan.hpp"
#include "ironclad/models/registry.hpp"
#include "ironclad/optim/sgd.hpp"

#include <nlohmann/json.hpp>
#include <omp.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <iostream>
#include <map>
#include <sstream>
#include <string>
#include <vector>

using namespace ironclad;
using bench::median;
using bench::median_seconds;

namespace {

using Clock = std::chrono::steady_clock;

double seconds_since(Clock::time_point t0) { return std::chrono::duration<double>(Clock::now() - t0).count(); }


// FMA throughput of all threads: independent chains of vector FMAs, enough to cover the latency.
double measured_peak_gflops(int threads) {
    constexpr int kChains = 12;
    constexpr long kIters = 50'000'000;
    double checksum = 0.0;
    const auto t0 = Clock::now();
#pragma omp parallel num_threads(threads) reduction(+ : checksum)
    {
        SimdFloat acc[kChains];
        for (int i = 0; i < kChains; ++i) acc[i] = simd_splat(0.001f * static_cast<float>(i + omp_get_thread_num()));
        const SimdFloat a = simd_splat(0.9999f), b = simd_splat(1e-4f);
        for (long k = 0; k < kIters; ++k)
#pragma GCC unroll 12
            for (int i = 0; i < kChains; ++i) acc[i] = acc[i] * a + b;
        for (int i = 0; i < kChains; ++i) checksum += simd_hsum(acc[i]);
    }
    const double s = seconds_since(t0);
    if (checksum == 0.123) std::fprintf(stderr, " ");  // keeps the loop observable
    return static_cast<double>(threads) * kIters * kChains * kLanes * 2.0 / s / 1e9;
}

struct EngineModel {
    std::shared_ptr<Module> model;
    Tensor<float> x;
    std::vector<std::int32_t> y;
    std::unique_ptr<Sgd> sgd;

    EngineModel(const std::string& name, int batch) : x({batch, 3, 32, 32}) {
        model = build_model(name, ModelConfig{});
        Rng rng = Rng::stream(1, 0);
        for (auto& v : x) v = rng.uniform<float>();
        for (int i = 0; i < batch; ++i) y.push_back(i % 10);
        sgd = std::make_unique<Sgd>(std::vector<ParamGroup>{{model->parameters(), 5e-4f}},
                                    SgdOptions{.lr = 0.01f, .momentum = 0.9f});
        // Batch-norm statistics from a few training-mode passes, as the peer does, so eval-mode activations are
        // normalised.
        NoGradGuard no_grad;
        model->train();
        for (int i = 0; i < 2; ++i) (*model)(Var(x));
    }
    // The engine's inference path: an InferencePlan (inference/inference_plan.hpp), as ironclad eval and the
    // float fault campaigns use it.
    double infer(int repeats) {
        model->eval();
        InferencePlan plan(*model, {x.dim(1), x.dim(2), x.dim(3)});
        return x.dim(0) / median_seconds([&] { plan.forward(x); }, 2, repeats);
    }
    double train(int repeats) {
        model->train();
        return x.dim(0) / median_seconds([&] {
            Var loss = cross_entropy((*model)(Var(x)), y);
            sgd->zero_grad();
            loss.backward();
            sgd->step();
        }, 2, repeats);
    }
    double pgd(int repeats) {
        model->eval();
        const ThreatModel threat{.norm = Norm::linf, .eps = 8.0f / 255, .step = 2.0f / 255, .steps = 10};
        const auto objective = cross_entropy_objective(y);
        std::uint64_t run = 0;
        return x.dim(0) / median_seconds([&] {
            Tensor<float> start = x.clone();
            threat.random_start_point(start, x, [r = run++](std::int64_t i) {
                return Rng::stream(r, static_cast<std::uint64_t>(i));
            });
            pgd_ascent(*model, x, std::move(start), threat, objective);
        }, 1, std::max(1, repeats / 2));
    }
    double infer_exact(int repeats) {
        model->eval();
        ExactArithmetic q15_16;
        q15_16.format = parse_number_format("q15.16");
        ExactNetwork net(*model, flatten_stages(*model), q15_16);
        // Two warm-up passes, as for float: the first passes of a fresh network still grow the heap (page faults).
        return x.dim(0) / median_seconds([&] { net.forward(x); }, 2, repeats);
    }
};

// Runs argv as a child and returns its peak resident set in KiB (ru_maxrss), or -1. Linux carries ru_maxrss
// across exec and a forked child starts as a copy of its parent, so this must run in a small process: the
// benchmark calls it through a fresh execution of itself (--peak-rss-of), never from its own grown image.
long peak_rss_kib_of(std::vector<std::string> args) {
    std::vector<char*> argv;
    for (auto& a : args) argv.push_back(a.data());
    argv.push_back(nullptr);
    std::fflush(nullptr);
    const pid_t pid = fork();
    if (pid < 0) return -1;
    if (pid == 0) {
        if (!std::freopen("/dev/null", "w", stdout) || !std::freopen("/dev/null", "w", stderr)) _exit(126);
        execv(argv[0], argv.data());
        _exit(127);
    }
    int status = 0;
    rusage usage{};
    if (wait4(pid, &status, 0, &usage) < 0 || !WIFEXITED(status) || WEXITSTATUS(status) != 0) return -1;
    return usage.ru_maxrss;
}

// Peak resident set (MiB) of a training-step process: `args` run under a fresh `perf_report --peak-rss-of`.
double training_peak_mib(const std::vector<std::string>& args, const std::string& env = "") {
    std::string cmd = env + " '" + std::filesystem::read_symlink("/proc/self/exe").string() + "' --peak-rss-of";
    for (const auto& a : args) cmd += " '" + a + "'";
    FILE* pipe = popen(cmd.c_str(), "r");
    if (!pipe) return -1;
    long kib = -1;
    if (std::fscanf(pipe, "%ld", &kib) != 1) kib = -1;
    pclose(pipe);
    return kib > 0 ? static_cast<double>(kib) / 1024.0 : -1.0;
}

double engine_training_peak_mib(const std::string& model, int batch, int threads) {
    return training_peak_mib({std::filesystem::read_symlink("/proc/self/exe").string(), "--train-child", model,
                              std::to_string(batch), std::to_string(threads)});
}

double peer_training_peak_mib(const std::filesystem::path& dir, const std::string& model, int batch, int threads) {
    std::vector<std::string> args{"/usr/bin/python3", (dir / "torch_peer.py").string(), "--model", model, "--batch",
                                  std::to_string(batch), "--threads", std::to_string(threads), "--repeats", "3",
                                  "--what", "train"};
    if (model.starts_with("resnet")) args.insert(args.end(), {"--shortcut", "A"});
    return training_peak_mib(args, "MALLOC_MMAP_THRESHOLD_=33554432 MALLOC_TRIM_THRESHOLD_=4294967296 "
                                   "MALLOC_TOP_PAD_=268435456");
}

// Seconds a shell command takes, or -1 when it fails.
double timed_command(const std::string& cmd) {
    const auto t0 = Clock::now();
    const int rc = std::system((cmd + " > /dev/null 2>&1").c_str());
    return rc == 0 ? seconds_since(t0) : -1.0;
}

std::vector<std::string> split_list(const std::string& s) {
    std::vector<std::string> out;
    std::stringstream in(s);
    for (std::string item; std::getline(in, item, ',');)
        if (!item.empty()) out.push_back(item);
    return out;
}

nlohmann::json ratio_or_null(double engine, double peer) {
    return peer > 0 ? nlohmann::json(engine / peer) : nlohmann::json(nullptr);
}

}  // namespace

int main(int argc, char** argv) {
    configure_allocator();
    if (argc >= 3 && std::string(argv[1]) == "--peak-rss-of") {  // the memory measurement's small parent
        std::printf("%ld\n", peak_rss_kib_of(std::vector<std::string>(argv + 2, argv + argc)));
        return 0;
    }
    if (argc == 5 && std::string(argv[1]) == "--train-child") {  // the memory measurement's training steps
        omp_set_num_threads(std::stoi(argv[4]));
        EngineModel m(argv[2], std::stoi(argv[3]));
        m.train(3);
        return 0;
    }
    int rounds = 3, repeats = 5, threads = 2, batch = 128;
    std::vector<std::string> models{"resnet20", "vgg11_bn", "mobilenetv2_x0_5"};
    std::vector<std::string> whats{"infer", "train", "pgd", "memory", "exact", "compile"};
    const std::filesystem::path source_dir = IRONCLAD_SOURCE_DIR;
    std::filesystem::path peer_dir = source_dir / ".." / "shared" / "peer";
    bool use_peer = true;
    try {
        for (int i = 1; i < argc; ++i) {
            const std::string k = argv[i];
            auto next = [&] { return i + 1 < argc ? std::string(argv[++i]) : throw std::invalid_argument(k + " needs a value"); };
            if (k == "--rounds") rounds = std::stoi(next());
            else if (k == "--repeats") repeats = std::stoi(next());
            else if (k == "--threads") threads = std::stoi(next());
            else if (k == "--batch") batch = std::stoi(next());
            else if (k == "--models") models = split_list(next());
            else if (k == "--what") whats = split_list(next());
            else if (k == "--peer") peer_dir = next();
            else if (k == "--no-peer") use_peer = false;
            else throw std::invalid_argument("unknown option " + k);
        }
        if (rounds < 1 || repeats < 1 || threads < 1 || batch < 1)
            throw std::invalid_argument("--rounds, --repeats, --threads and --batch must be >= 1");
        for (const auto& m : models) build_model(m, ModelConfig{});  // unknown names fail here, before any timing
    } catch (const std::exception& e) {
        std::cerr << "perf_report: " << e.what() << "\n";
        return 2;
    }
    auto wants = [&](const char* w) { return std::find(whats.begin(), whats.end(), w) != whats.end(); };
    use_peer = use_peer && bench::peer_available(peer_dir);
    omp_set_num_threads(threads);

    const double peak = measured_peak_gflops(threads);
    std::cout << nlohmann::json{{"what", "peak_gflops"}, {"threads", threads}, {"gflops", peak},
                                {"method", "independent vector FMA chains, all threads"}}.dump()
              << std::endl;

    std::string peer_whats;
    for (const char* w : {"infer", "train", "pgd"})
        if (wants(w)) peer_whats += (peer_whats.empty() ? "" : ",") + std::string(w);
    for (const auto& name : models) {
        EngineModel engine(name, batch);
        std::map<std::string, std::vector<double>> eng, peer;
        std::map<std::string, double> flops;
        for (int r = 0; r < rounds && !peer_whats.empty(); ++r) {
            if (wants("infer")) eng["infer"].push_back(engine.infer(repeats));
            if (wants("train")) eng["train"].push_back(engine.train(repeats));
            if (wants("pgd")) eng["pgd"].push_back(engine.pgd(repeats));
            if (use_peer)
                for (auto& [what, f] : bench::run_peer_best_layout(peer_dir, name, batch, threads, repeats, peer_whats)) {
                    peer[what].push_back(f.images_per_s);
                    flops[what] = f.flops_per_img;
                }
            std::fprintf(stderr, "%s: round %d/%d done\n", name.c_str(), r + 1, rounds);
        }
        for (auto& [what, figures] : eng) {
            const double e = median(figures), p = peer.count(what) ? median(peer[what]) : 0.0;
            nlohmann::json j{{"model", name},   {"what", what},       {"batch", batch},
                             {"threads", threads}, {"rounds", rounds}, {"engine_images_per_s", e}};
            j["peer_images_per_s"] = p > 0 ? nlohmann::json(p) : nlohmann::json(nullptr);
            j["ratio"] = ratio_or_null(e, p);
            if (flops[what] > 0) {
                j["flops_per_image"] = flops[what];
                j["engine_gflops"] = e * flops[what] / 1e9;
                j["peer_gflops"] = p * flops[what] / 1e9;
                j["engine_fraction_of_peak"] = e * flops[what] / 1e9 / peak;
                j["peer_fraction_of_peak"] = p * flops[what] / 1e9 / peak;
            }
            std::cout << j.dump() << std::endl;
        }
        if (wants("exact")) {
            std::vector<double> exact, flt;
            for (int r = 0; r < rounds; ++r) {
                flt.push_back(engine.infer(repeats));
                exact.push_back(engine.infer_exact(repeats));
            }
            std::cout << nlohmann::json{{"model", name}, {"what", "infer_exact_q15.16"}, {"batch", batch},
                                        {"threads", threads}, {"rounds", rounds},
                                        {"engine_images_per_s", median(exact)},
                                        {"float_images_per_s", median(flt)},
                                        {"ratio_to_float", median(exact) / median(flt)}}.dump()
                      << std::endl;
        }
        if (wants("memory")) {
            const double e = engine_training_peak_mib(name, batch, threads);
            const double p = use_peer ? peer_training_peak_mib(peer_dir, name, batch, threads) : -1.0;
            nlohmann::json j{{"model", name}, {"what", "train_peak_rss_mib"}, {"batch", batch},
                             {"engine_mib", e}};
            j["peer_mib"] = p > 0 ? nlohmann::json(p) : nlohmann::json(nullptr);
            j["ratio"] = p > 0 ? nlohmann::json(e / p) : nlohmann::json(nullptr);
            std::cout << j.dump() << std::endl;
        }
    }

    if (wants("compile")) {
        // The core headers alone, with the flags a default build uses.
        const std::filesystem::path tmp = std::filesystem::temp_directory_path() / ("ironclad-compile-" + std::to_string(getpid()));
        std::filesystem::create_directories(tmp);
        {
            std::FILE* f = std::fopen((tmp / "core_only.cpp").c_str(), "w");
            if (f) {
                std::fputs("#include \"ironclad/core/tensor.hpp\"\n#include \"ironclad/core/fixed_point.hpp\"\n"
                           "int main() { ironclad::Tensor<float> t({2, 2}, 1.0f);\n"
                           "  return static_cast<int>(t[0] + ironclad::FixedPoint<15, 16>::from_raw(1).to_double()); }\n",
                           f);
                std::fclose(f);
            }
        }
        const std::string inc = " -I'" + (source_dir / "include").string() + "' -isystem /usr/include/eigen3 ";
        const double core = timed_command("c++ -std=c++20 -O3 -march=native -fopenmp" + inc + "-c '" +
                                          (tmp / "core_only.cpp").string() + "' -o '" + (tmp / "core_only.o").string() + "'");
        std::cout << nlohmann::json{{"what", "compile_core_tu_s"}, {"seconds", core},
                                    {"headers", "core/tensor.hpp, core/fixed_point.hpp"},
                                    {"flags", "-std=c++20 -O3 -march=native -fopenmp -isystem /usr/include/eigen3"}}.dump()
                  << std::endl;
        const std::string build = (tmp / "build").string();
        const double setup = timed_command("meson setup '" + build + "' '" + source_dir.string() + "' -Dtests=false");
        const double cli = setup < 0 ? -1 : timed_command("ninja -C '" + build + "' tools/ironclad");
        std::cout << nlohmann::json{{"what", "compile_cli_s"}, {"seconds", cli}, {"configure_seconds", setup},
                                    {"build_type", "default (meson.build: release)"}, {"jobs", "ninja default"}}.dump()
                  << std::endl;
        std::filesystem::remove_all(tmp);
    }
    return 0;
}

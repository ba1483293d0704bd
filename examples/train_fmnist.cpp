// Trains the CIFAR ResNet-20 adapted to 1x28x28 input on Fashion-MNIST, saves a checkpoint, reloads it and
// evaluates it in float and in Q15.16 storage emulation.
//
//   train_fmnist [--data DIR] [--epochs 10] [--batch 128] [--lr 0.1] [--threads 2] [--seed 0]
//                [--out resnet20-fmnist.safetensors] [--augment]
//
// DIR holds the four IDX files (.gz or not); default: Debian's /usr/share/datasets/fashion-mnist.
// The run resumes from --out if it exists (delete it to start afresh).
#include "ironclad/core/allocator.hpp"
#include "ironclad/core/fixed_point.hpp"
#include "ironclad/data/idx.hpp"
#include "ironclad/models/resnet_cifar.hpp"
#include "ironclad/nn/quantize.hpp"
#include "ironclad/training/checkpoint.hpp"
#include "ironclad/training/fit.hpp"

#include <omp.h>

#include <cstdio>
#include <iostream>
#include <string>

using namespace ironclad;

namespace {

struct Args {
    std::string data = "/usr/share/datasets/fashion-mnist";
    std::string out = "resnet20-fmnist.safetensors";
    int epochs = 10, batch = 128, threads = 2;
    float lr = 0.1f;
    std::uint64_t seed = 0;
    bool augment = false;
};

Args parse(int argc, char** argv) {
    Args a;
    for (int i = 1; i < argc; ++i) {
        const std::string k = argv[i];
        auto value = [&]() -> std::string {
            if (i + 1 >= argc) throw std::invalid_argument(k + " needs a value");
            return argv[++i];
        };
        if (k == "--data") a.data = value();
        else if (k == "--out") a.out = value();
        else if (k == "--epochs") a.epochs = std::stoi(value());
        else if (k == "--batch") a.batch = std::stoi(value());
        else if (k == "--threads") a.threads = std::stoi(value());
        else if (k == "--lr") a.lr = std::stof(value());
        else if (k == "--seed") a.seed = std::stoull(value());
        else if (k == "--augment") a.augment = true;
        else if (k == "--help" || k == "-h") {
            std::cout << "usage: train_fmnist [--data DIR] [--epochs N] [--batch B] [--lr LR] [--threads T] "
                         "[--seed S] [--out FILE] [--augment]\n";
            std::exit(0);
        } else {
            throw std::invalid_argument("unknown option " + k);
        }
    }
    if (a.epochs < 1 || a.batch < 1 || a.threads < 1) throw std::invalid_argument("epochs, batch, threads must be >= 1");
    return a;
}

}  // namespace

int main(int argc, char** argv) try {
    const Args a = parse(argc, argv);
    configure_allocator();
    omp_set_num_threads(a.threads);
    const Dataset train = load_fashion_mnist(a.data, true);
    const Dataset test = load_fashion_mnist(a.data, false);
    std::printf("Fashion-MNIST from %s: %lld train, %lld test images\n", a.data.c_str(),
                static_cast<long long>(train.images.dim(0)), static_cast<long long>(test.images.dim(0)));

    ResNetCifarConfig cfg{.depth = 20, .num_classes = 10, .in_channels = 1, .shortcut = Shortcut::A, .seed = a.seed};
    auto model = resnet_cifar(cfg);
    TrainOptions opt;
    opt.epochs = a.epochs;
    opt.lr = a.lr;
    opt.loader.batch_size = a.batch;
    opt.loader.shuffle = true;
    opt.loader.seed = a.seed;
    opt.loader.mean = {0.2860f};
    opt.loader.std = {0.3530f};
    opt.loader.augment_flip = a.augment;
    opt.loader.augment_crop_pad = a.augment ? 2 : 0;
    opt.checkpoint = a.out;
    opt.metadata = {{"arch", "resnet20"}, {"shortcut", "A"}, {"in_channels", "1"}, {"num_classes", "10"},
                    {"dataset", "fashion-mnist"}, {"mean", "0.2860"}, {"std", "0.3530"}};
    TrainCallbacks cb;
    cb.on_batch = [](std::int64_t b, std::int64_t n, double loss) {
        if (b % 20 == 0 || b == n) std::fprintf(stderr, "\r  batch %lld/%lld  loss %.4f", (long long)b, (long long)n, loss);
    };
    cb.on_epoch = [](const EpochReport& r) {
        std::fprintf(stderr, "\n");
        std::printf("epoch %d/%d  lr %.4f  train loss %.4f  train acc %.2f%%  test acc %.2f%%  %.1f s  %.0f images/s\n",
                    r.epoch, r.epochs, r.lr, r.train_loss, r.train_top1, r.test ? r.test->top1 : 0.0, r.seconds,
                    r.images_per_s);
        std::fflush(stdout);
    };
    fit(*model, train, &test, opt, cb);

    auto reloaded = resnet_cifar(cfg);
    load_model(a.out, *reloaded);
    const EvalResult f = evaluate(*reloaded, test, opt.loader);
    quantize_parameters<FixedPoint<15, 16>>(*reloaded);
    quantize_activations<FixedPoint<15, 16>>(*reloaded);
    const EvalResult q = evaluate(*reloaded, test, opt.loader);
    std::printf("reloaded %s: float top-1 %.2f%%, Q15.16 top-1 %.2f%% (difference %.2f points)\n", a.out.c_str(), f.top1,
                q.top1, q.top1 - f.top1);
    return 0;
} catch (const std::exception& e) {
    std::fprintf(stderr, "train_fmnist: error: %s\n", e.what());
    return 1;
}

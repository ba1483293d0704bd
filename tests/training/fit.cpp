#include "ironclad/nn/activation.hpp"
#include "ironclad/nn/batch_norm.hpp"
#include "ironclad/nn/conv2d.hpp"
#include "ironclad/nn/linear.hpp"
#include "ironclad/nn/pooling.hpp"
#include "ironclad/nn/sequential.hpp"
#include "ironclad/models/resnet_cifar.hpp"
#include "ironclad/training/fit.hpp"

#include <omp.h>

#include <doctest/doctest.h>

#include <filesystem>

using namespace ironclad;

namespace {

// Class c's images are bright in quadrant c (4 classes, 1x8x8), plus seeded noise.
Dataset quadrant_dataset(std::int64_t n, std::uint64_t seed) {
    Dataset d;
    d.images = Tensor<std::uint8_t>({n, 1, 8, 8});
    d.num_classes = 4;
    Rng rng = Rng::stream(seed, 0);
    for (std::int64_t i = 0; i < n; ++i) {
        const int c = static_cast<int>(i % 4);
        d.labels.push_back(c);
        for (int y = 0; y < 8; ++y)
            for (int x = 0; x < 8; ++x) {
                const bool in = (y / 4) == c / 2 && (x / 4) == c % 2;
                const double v = (in ? 160 : 60) + 60 * rng.uniform();
                d.images[(i * 8 + y) * 8 + x] = static_cast<std::uint8_t>(v);
            }
    }
    return d;
}

std::shared_ptr<Sequential> tiny_net(std::uint64_t seed) {
    Rng rng = Rng::stream(seed, 0);
    auto net = std::make_shared<Sequential>();
    net->add(std::make_shared<Conv2d>(Conv2dSpec{1, 4, 3, 1, 1}, rng));
    net->add(std::make_shared<BatchNorm2d>(4));
    net->add(relu_slot());
    net->add(std::make_shared<Flatten>());
    net->add(std::make_shared<Linear>(4 * 8 * 8, 4, rng));
    return net;
}

TrainOptions tiny_options(int epochs, std::filesystem::path checkpoint = {}) {
    TrainOptions o;
    o.epochs = epochs;
    o.lr = 0.1f;
    o.loader.batch_size = 16;
    o.loader.shuffle = true;
    o.loader.seed = 3;
    o.loader.mean = {0.5f};
    o.loader.std = {0.25f};
    o.checkpoint = std::move(checkpoint);
    return o;
}

}  // namespace

TEST_CASE("fit: a tiny conv net learns a separable problem") {
    const Dataset train = quadrant_dataset(256, 1), test = quadrant_dataset(64, 2);
    auto net = tiny_net(0);
    const double before = evaluate(*net, test, tiny_options(1).loader).top1;
    auto reports = fit(*net, train, &test, tiny_options(8));
    REQUIRE(reports.size() == 8);
    CHECK(reports.back().train_loss < reports.front().train_loss);
    CHECK(reports.back().test->top1 >= 95.0);
    CHECK(reports.back().test->top1 > before);
}

TEST_CASE("fit: an interrupted run resumes from its checkpoint to the same weights") {
    const Dataset train = quadrant_dataset(128, 1);
    const auto dir = std::filesystem::temp_directory_path() / ("ironclad_fit_" + std::to_string(::getpid()));
    std::filesystem::create_directories(dir);
    const auto ckpt = dir / "tiny.safetensors";

    auto straight = tiny_net(0);
    fit(*straight, train, nullptr, tiny_options(3));

    auto first = tiny_net(0);
    TrainCallbacks kill_after_first;
    kill_after_first.on_epoch = [](const EpochReport&) { throw std::runtime_error("killed"); };
    CHECK_THROWS_WITH(fit(*first, train, nullptr, tiny_options(3, ckpt), kill_after_first), "killed");
    CHECK(std::filesystem::exists(ckpt));
    auto resumed = tiny_net(7);  // different init: everything must come from the checkpoint
    auto reports = fit(*resumed, train, nullptr, tiny_options(3, ckpt));
    REQUIRE(reports.size() == 2);
    CHECK(reports.front().epoch == 2);
    auto a = straight->state_dict(), b = resumed->state_dict();
    REQUIRE(a.size() == b.size());
    for (std::size_t i = 0; i < a.size(); ++i) {
        CAPTURE(a[i].first);
        CHECK(std::equal(a[i].second.begin(), a[i].second.end(), b[i].second.begin()));
    }
    std::filesystem::remove_all(dir);
}

TEST_CASE("fit: ResNet-8 training gives bit-identical weights at 1 and 2 threads") {
    Dataset train;
    train.images = Tensor<std::uint8_t>({32, 1, 28, 28});
    train.num_classes = 10;
    Rng rng = Rng::stream(5, 0);
    for (auto& v : train.images) v = static_cast<std::uint8_t>(rng.uniform_int(0, 255));
    for (int i = 0; i < 32; ++i) train.labels.push_back(i % 10);
    TrainOptions opt = tiny_options(1);
    opt.loader.augment_flip = true;
    opt.loader.augment_crop_pad = 2;
    auto run = [&](int threads) {
        const int before = omp_get_max_threads();
        omp_set_num_threads(threads);
        auto net = resnet_cifar({.depth = 8, .num_classes = 10, .in_channels = 1});
        fit(*net, train, nullptr, opt);
        omp_set_num_threads(before);
        return net->state_dict();
    };
    const auto one = run(1), two = run(2);
    REQUIRE(one.size() == two.size());
    for (std::size_t i = 0; i < one.size(); ++i) {
        CAPTURE(one[i].first);
        CHECK(std::equal(one[i].second.begin(), one[i].second.end(), two[i].second.begin()));
    }
}

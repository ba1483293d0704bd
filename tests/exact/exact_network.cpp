// ExactNetwork: the integer program of every architecture computes what the float model computes (up to the
// format's rounding), is bit-identical at any thread count, reads its weights from the raw storage a fault
// injector writes, and calls activation hooks on raws.
#include "ironclad/bounds/bounded_relu.hpp"
#include "ironclad/core/parallel.hpp"
#include "ironclad/data/load.hpp"
#include "ironclad/exact/exact_network.hpp"
#include "ironclad/fault/campaign.hpp"
#include "ironclad/models/registry.hpp"
#include "ironclad/training/checkpoint.hpp"
#include "support/grad_check.hpp"

#include <doctest/doctest.h>

#include <filesystem>

using namespace ironclad;
using namespace ironclad::testing;

namespace {

ExactArithmetic q15_16() {
    ExactArithmetic a;
    a.format = parse_number_format("q15.16");
    return a;
}

// A registry model for 16x16 inputs, in eval mode.
std::shared_ptr<Module> small_model(const std::string& name, std::uint64_t seed) {
    ModelConfig cfg;
    cfg.seed = seed;
    cfg.input_size = 16;
    auto model = build_model(name, cfg);
    model->eval();
    return model;
}

}  // namespace

TEST_CASE("exact Q15.16 logits follow the float model's for every architecture, at any thread count") {
    for (const auto& info : model_registry()) {
        CAPTURE(info.name);
        auto model = small_model(info.name, 3);
        quantize_parameters(*model, parse_number_format("q15.16"));
        const Tensor<float> x = random_tensor({3, 3, 16, 16}, 4);
        NoGradGuard no_grad;
        const Tensor<float> reference = (*model)(Var(x)).value();
        std::vector<Tensor<float>> exact;
        const int before = num_threads();
        for (int threads : {1, 2}) {
            set_num_threads(threads);
            ExactNetwork net(*model, flatten_stages(*model), q15_16());
            exact.push_back(net.forward(x));
        }
        set_num_threads(before);
        float scale = 0;
        for (std::int64_t i = 0; i < reference.numel(); ++i) scale = std::max(scale, std::abs(reference[i]));
        REQUIRE(exact[0].shape() == reference.shape());
        for (std::int64_t i = 0; i < reference.numel(); ++i) {
            CHECK(exact[0][i] == exact[1][i]);
            CHECK(std::abs(exact[0][i] - reference[i]) <= 2e-3f * scale + 1e-3f);
        }
    }
}

TEST_CASE("fused convolution steps give the unfused raws and counts; hooks see every unfused output") {
    // A pass-through hook on a module makes its output visible, which stops the fusion there: with hooks on every
    // module the network runs op by op. Gammas and betas scaled up so that narrowings saturate and are counted.
    for (const auto& info : model_registry()) {
        CAPTURE(info.name);
        auto model = small_model(info.name, 5);
        for (auto& [name, p] : model->named_parameters())
            if (p.value().ndim() == 1)  // batch norms' gammas and betas, biases
                for (std::int64_t i = 0; i < p.value().numel(); ++i) p.value()[i] *= 40.0f;
        const Tensor<float> x = random_tensor({2, 3, 16, 16}, 6);
        ExactNetwork fused(*model, flatten_stages(*model), q15_16());
        ExactNetwork unfused(*model, flatten_stages(*model), q15_16());
        std::int64_t hooked_calls = 0;
        for (auto& [name, m] : model->named_modules()) unfused.set_hook(m, [&](RawTensor&) { ++hooked_calls; });
        const Tensor<float> a = fused.forward(x), b = unfused.forward(x);
        CHECK(hooked_calls > 0);
        REQUIRE(a.shape() == b.shape());
        for (std::int64_t i = 0; i < a.numel(); ++i) REQUIRE(a[i] == b[i]);
        CHECK(fused.counts() == unfused.counts());
        std::int64_t narrowings = 0;
        for (auto& [layer, c] : fused.counts()) narrowings += c.narrowing;
        CHECK(narrowings > 0);
    }
}

TEST_CASE("faults written into raw storage change the exact result; hooks see raws") {
    ModelConfig cfg;
    cfg.seed = 8;
    cfg.input_size = 8;
    auto model = build_model("resnet20", cfg);
    model->eval();
    ExactNetwork net(*model, flatten_stages(*model), q15_16());
    const Tensor<float> x = random_tensor({2, 3, 8, 8}, 2);
    const Tensor<float> clean = net.forward(x);
    RawTensor& w = net.raw_parameter("layer1.0.conv1.weight");
    const std::int32_t saved = w[5];
    w[5] = static_cast<std::int32_t>(static_cast<std::uint32_t>(saved) ^ (1u << 30));  // a high integer bit
    const Tensor<float> faulty = net.forward(x);
    bool changed = false;
    for (std::int64_t i = 0; i < clean.numel(); ++i) changed = changed || faulty[i] != clean[i];
    CHECK(changed);
    w[5] = saved;
    const Tensor<float> again = net.forward(x);
    for (std::int64_t i = 0; i < clean.numel(); ++i) CHECK(again[i] == clean[i]);

    // A hook on the stem ReLU slot zeroes its raws: the network then sees an all-zero activation there.
    Module* relu = nullptr;
    for (auto& [name, slot] : activation_slots(*model))
        if (name == "relu") relu = slot;
    REQUIRE(relu);
    std::int64_t seen = 0;
    net.set_hook(relu, [&](RawTensor& y) {
        for (std::int64_t i = 0; i < y.numel(); ++i) {
            CHECK(y[i] >= 0);
            y[i] = 0;
        }
        seen += y.numel();
    });
    net.forward(x);
    CHECK(seen == 2 * 16 * 8 * 8);
    CHECK_THROWS_WITH_AS(net.raw_parameter("nope.weight"), doctest::Contains("nope.weight"), std::invalid_argument);
}

TEST_CASE("exact Q15.16 keeps the float model's accuracy on the embedded CIFAR-10 subset") {
    const std::filesystem::path root = IRONCLAD_SOURCE_DIR;
    const auto data_dir = root / "data" / "cifar10-mini", weights = root / "data" / "resnet20-cifar10-jpg.safetensors";
    auto model = build_model("resnet20", ModelConfig{});
    load_model(weights, *model);
    model->eval();
    quantize_parameters(*model, parse_number_format("q15.16"));
    const Dataset ds = load_dataset(data_dir.string(), false, 200);
    LoaderOptions lo;
    lo.batch_size = 100;
    lo.mean = {0.485f, 0.456f, 0.406f};
    lo.std = {0.229f, 0.224f, 0.225f};
    const EvalSet set = make_eval_set(ds, lo);
    ExactNetwork net(*model, flatten_stages(*model), q15_16());
    std::int64_t float_correct = 0, exact_correct = 0, agree = 0;
    NoGradGuard no_grad;
    for (std::size_t b = 0; b < set.batches.size(); ++b) {
        const auto pf = argmax_rows((*model)(Var(set.batches[b])).value());
        const auto pe = argmax_rows(net.forward(set.batches[b]));
        for (std::size_t i = 0; i < pf.size(); ++i) {
            const auto label = set.labels[b * 100 + i];
            float_correct += pf[i] == label;
            exact_correct += pe[i] == label;
            agree += pf[i] == pe[i];
        }
    }
    CHECK(float_correct >= 170);  // the checkpoint's 88.9% on these images
    CHECK(std::abs(exact_correct - float_correct) <= 1);
    CHECK(agree >= 198);
    for (auto& [layer, c] : net.take_counts()) CHECK(c.total() == 0);  // Q15.16 with 64-bit sums never overflows here
}

TEST_CASE("exact arithmetic refuses layers it has no kernel for, naming them") {
    Sequential s;
    s.add(std::make_shared<AvgPool2d>(2, 2));
    CHECK_THROWS_WITH_AS(ExactNetwork(s, flatten_stages(s), q15_16()), doctest::Contains("AvgPool2d"),
                         std::invalid_argument);
    ExactArithmetic f;
    CHECK_THROWS_WITH_AS(ExactNetwork(s, flatten_stages(s), f), doctest::Contains("fixed-point"), std::invalid_argument);
}

TEST_CASE("exact bounded ReLUs: zero, clamp and threshold on raws; a whole bounded network follows float") {
    for (BoundMode mode : {BoundMode::zero, BoundMode::clamp, BoundMode::threshold}) {
        CAPTURE(to_string(mode));
        Tensor<float> bound({1}, 10.0f / 65536), fill({1}, 7.0f / 65536);
        Sequential s;
        s.add(std::make_shared<ActivationSlot>(std::make_shared<BoundedReLU>(
            bound, mode, BoundGranularity::layer, 20.0f, mode == BoundMode::threshold ? fill : Tensor<float>{})));
        ExactNetwork net(s, flatten_stages(s), q15_16());
        RawTensor x({1, 4});
        const std::int32_t in[4] = {-5, 3, 10, 20};
        std::copy_n(in, 4, x.data());
        const RawTensor y = net.run(0, x);
        const std::int32_t above = mode == BoundMode::zero ? 0 : mode == BoundMode::clamp ? 10 : 7;
        CHECK(y[0] == 0);
        CHECK(y[1] == 3);
        CHECK(y[2] == 10);  // at the bound: kept
        CHECK(y[3] == above);
    }
    ModelConfig cfg;
    cfg.seed = 2;
    cfg.input_size = 8;
    auto model = build_model("resnet20", cfg);
    model->eval();
    const Tensor<float> x = random_tensor({2, 3, 8, 8}, 6);
    NoGradGuard no_grad;
    for (auto& [name, slot] : activation_slots(*model)) {  // per-channel clamps at 0.3: many values are cut
        const std::int64_t c = name == "relu" || name.starts_with("layer1") ? 16 : name.starts_with("layer2") ? 32 : 64;
        slot->replace(std::make_shared<BoundedReLU>(Tensor<float>({c}, 0.3f), BoundMode::clamp, BoundGranularity::channel));
    }
    quantize_parameters(*model, parse_number_format("q15.16"));
    const Tensor<float> reference = (*model)(Var(x)).value();
    ExactNetwork net(*model, flatten_stages(*model), q15_16());
    const Tensor<float> exact = net.forward(x);
    for (std::int64_t i = 0; i < reference.numel(); ++i) CHECK(std::abs(exact[i] - reference[i]) < 2e-3f);
    RawTensor& b = net.raw_parameter("layer1.0.relu1.bound");
    CHECK(b.numel() == 16);
    CHECK(b[0] == static_cast<std::int32_t>(0.3 * 65536));  // toward zero, as stored
}

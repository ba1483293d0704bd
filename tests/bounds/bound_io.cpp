// Hardened checkpoints: bounds and their description survive a save and load by slot name (every mode and
// granularity), a model without bound metadata stays unbounded, bad metadata is an error naming the file, the
// bounds are fault sites that a campaign flips, and SwappedActivations restores what it replaced.
#include "ironclad/bounds/bound_io.hpp"
#include "ironclad/fault/campaign.hpp"
#include "ironclad/models/registry.hpp"

#include "support/grad_check.hpp"
#include "toy.hpp"

#include <doctest/doctest.h>

#include <filesystem>
#include <unistd.h>

using namespace ironclad;
using namespace ironclad::testing;

namespace {

std::filesystem::path temp_file(const std::string& name) {
    return std::filesystem::temp_directory_path() / ("ironclad-bounds-" + std::to_string(::getpid()) + "-" + name);
}

std::shared_ptr<Module> small_resnet() {
    ModelConfig cfg;
    cfg.input_size = 8;
    cfg.seed = 3;
    return build_model("resnet20", cfg);
}

}  // namespace

TEST_CASE("bound_io: a hardened resnet reloads by slot name with every mode and granularity") {
    auto model = small_resnet();
    const auto slots = activation_slots(*model);
    REQUIRE(slots.size() == 19);
    // Bound shapes for 8x8 inputs: [16,8,8] in stage 1, [32,4,4] in stage 2, [64,2,2] in stage 3.
    std::vector<SlotBound> bounds;
    const BoundMode modes[] = {BoundMode::zero, BoundMode::clamp, BoundMode::threshold, BoundMode::smooth};
    for (std::size_t i = 0; i < slots.size(); ++i) {
        const std::int64_t channels = slots[i].first.starts_with("layer3") ? 64
                                      : slots[i].first.starts_with("layer2") ? 32 : 16;
        const std::int64_t size = channels == 64 ? 2 : channels == 32 ? 4 : 8;
        const auto g = static_cast<BoundGranularity>(i % 3);
        const Shape shape = bound_shape(g, {1, channels, size, size});
        const BoundMode mode = modes[i % 4];
        bounds.push_back({slots[i].first, mode, g, 10.0f + static_cast<float>(i),
                          random_tensor(shape, static_cast<std::uint32_t>(i), 0.5f, 3.0f),
                          mode == BoundMode::threshold ? random_tensor(shape, 99, 0.0f, 1.0f) : Tensor<float>()});
    }
    install_bounds(*model, bounds);
    const auto path = temp_file("hardened.safetensors");
    save_hardened_model(path, *model, "ranger", {{"arch", "resnet20"}});

    auto loaded = small_resnet();
    const auto metadata = load_safetensors(path).metadata;
    CHECK(metadata.at("bound_method") == "ranger");
    CHECK(metadata.at("bound_mode") == "mixed");
    CHECK(metadata.at("bound_granularity") == "mixed");
    CHECK(metadata.at("arch") == "resnet20");
    CHECK(install_bounds_from_metadata(*loaded, metadata, path.string()) == 19);
    load_model(path, *loaded);  // strict: every bound and fill name must match
    const auto back = bounded_slots(*loaded);
    REQUIRE(back.size() == bounds.size());
    for (std::size_t i = 0; i < back.size(); ++i) {
        CAPTURE(back[i].slot);
        CHECK(back[i].slot == bounds[i].slot);
        CHECK(back[i].mode == bounds[i].mode);
        CHECK(back[i].granularity == bounds[i].granularity);
        CHECK(back[i].k == bounds[i].k);
        REQUIRE(back[i].bound.shape() == bounds[i].bound.shape());
        for (std::int64_t e = 0; e < back[i].bound.numel(); ++e) CHECK(back[i].bound[e] == bounds[i].bound[e]);
        CHECK(back[i].fill.defined() == bounds[i].fill.defined());
    }
    model->eval();
    loaded->eval();
    NoGradGuard no_grad;
    const Tensor<float> x = random_tensor({2, 3, 8, 8}, 5, -2.0f, 2.0f);
    const Tensor<float> a = (*model)(Var(x)).value(), b = (*loaded)(Var(x)).value();
    for (std::int64_t i = 0; i < a.numel(); ++i) CHECK(a[i] == b[i]);
    CHECK(bound_parameter_count(*loaded) == bound_parameter_count(*model));
    std::filesystem::remove(path);
}

TEST_CASE("bound_io: summaries, unbounded files and bad metadata") {
    auto net = brighter_pixel_network();
    CHECK(bounds_metadata(*net, "ranger").empty());
    CHECK(install_bounds_from_metadata(*net, {{"arch", "toy"}}, "plain.safetensors") == 0);
    CHECK(bounded_slots(*net).empty());
    install_bounds(*net, {{"act", BoundMode::smooth, BoundGranularity::neuron, 20.0f, Tensor<float>({3}, 2.0f), {}}});
    const auto meta = bounds_metadata(*net, "proact");
    CHECK(meta.at("bound_mode") == "smooth");
    CHECK(meta.at("bound_granularity") == "neuron");
    CHECK(bound_parameter_count(*net) == 3);
    CHECK_THROWS_WITH_AS(install_bounds_from_metadata(*net, {{"bound_slots", "[{\"slot\": \"act\"}]"}}, "x.safetensors"),
                         doctest::Contains("x.safetensors: bad bound_slots metadata"), std::runtime_error);
    CHECK_THROWS_WITH_AS(
        install_bounds_from_metadata(
            *net, {{"bound_slots", R"([{"slot":"nope","mode":"zero","granularity":"layer","k":20,"shape":[1]}])"}},
            "y.safetensors"),
        doctest::Contains("no activation slot named 'nope'"), std::runtime_error);
}

TEST_CASE("bound_io: a ProAct-style hybrid layout is summarised as hybrid") {
    auto model = small_resnet();
    std::vector<SlotBound> bounds;
    const auto slots = activation_slots(*model);
    for (std::size_t i = 0; i < slots.size(); ++i) {
        const bool last = i + 1 == slots.size();
        bounds.push_back({slots[i].first, BoundMode::smooth, last ? BoundGranularity::neuron : BoundGranularity::layer,
                          20.0f, Tensor<float>(last ? Shape{64, 2, 2} : Shape{1}, 5.0f), {}});
    }
    install_bounds(*model, bounds);
    CHECK(bounds_metadata(*model, "proact").at("bound_granularity") == "hybrid");
    CHECK(bound_parameter_count(*model) == 18 + 256);
}

TEST_CASE("bound_io: bounds are weight fault sites, and a campaign flips them") {
    auto net = brighter_pixel_network();
    install_bounds(*net, {{"act", BoundMode::zero, BoundGranularity::neuron, 20.0f, Tensor<float>({3}, 4.0f), {}}});
    const auto sites = weight_sites(*net, {});
    bool found = false;
    for (auto& s : sites) found = found || s.name == "act.bound";
    CHECK(found);

    EvalSet data;
    data.batches = {random_tensor({8, 1, 1, 2}, 1, 0.0f, 1.0f)};
    data.labels.assign(8, 0);
    CampaignOptions co;
    co.fault.count_mode = CountMode::count;
    co.fault.layers = {"act"};
    co.fault.bit_lo = 16;  // integer bits of Q15.16: each flip moves the bound by at least 1
    co.levels = {2};
    Campaign campaign(*net, data, co);
    std::vector<FaultRecord> records;
    campaign.run_trial(2, 0, &records);
    REQUIRE(records.size() == 2);
    for (auto& r : records) {
        CHECK(campaign.weight_targets()[static_cast<std::size_t>(r.target)].name == "act.bound");
        CHECK(r.after != r.before);
    }
    CHECK(bounded_slots(*net)[0].bound[0] == 4.0f);  // restored after the trial
}

TEST_CASE("bound_io: SwappedActivations puts back what it replaced") {
    auto net = brighter_pixel_network();
    const auto relus = current_activations(*net);
    install_bounds(*net, {{"act", BoundMode::zero, BoundGranularity::layer, 20.0f, Tensor<float>({1}, 0.1f), {}}});
    NoGradGuard no_grad;
    const Tensor<float> x({1, 1, 1, 2}, {1.0f, 0.0f});  // h0 = 4 is far above the bound
    const float bounded_logit = (*net)(Var(x)).value()[0];
    {
        SwappedActivations unbounded(*net, relus);
        CHECK(find_slot(*net, "act").type_name() == "ReLU");
        CHECK((*net)(Var(x)).value()[0] == doctest::Approx(12.0f));
    }
    CHECK(find_slot(*net, "act").type_name() == "BoundedReLU");
    CHECK((*net)(Var(x)).value()[0] == bounded_logit);
    CHECK(bounded_logit == 0.0f);
}

// harden and its training subsets: reproducible, disjoint parts of the training split; each method installs the
// layout it promises; misuse is refused with a message naming the problem.
#include "ironclad/bounds/harden.hpp"

#include "toy.hpp"

#include <doctest/doctest.h>

#include <set>

using namespace ironclad;
using namespace ironclad::testing;

namespace {

// The (pixel pair, label) items of a toy dataset, to compare parts by content.
std::multiset<std::tuple<int, int, int>> items(const Dataset& ds) {
    std::multiset<std::tuple<int, int, int>> out;
    for (std::int64_t i = 0; i < ds.size(); ++i)
        out.insert({ds.images[2 * i], ds.images[2 * i + 1], ds.labels[static_cast<std::size_t>(i)]});
    return out;
}

}  // namespace

TEST_CASE("training_subsets: seeded, sized, held-out disjoint from the rest, calibration inside train") {
    const Dataset split = brighter_pixel_data(300, 1);
    const SubsetSizes sizes{.held_out = 50, .calibration = 40, .train = 100};
    const TrainingSubsets a = training_subsets(split, sizes, 7), b = training_subsets(split, sizes, 7),
                          c = training_subsets(split, sizes, 8);
    CHECK(a.held_out.size() == 50);
    CHECK(a.calibration.size() == 40);
    CHECK(a.train.size() == 100);
    CHECK(items(a.held_out) == items(b.held_out));
    CHECK(items(a.train) == items(b.train));
    CHECK(items(a.train) != items(c.train));
    auto all = items(a.held_out);
    for (auto& item : items(a.train)) all.insert(item);
    CHECK(all.size() == 150);
    const auto train_items = items(a.train);
    for (auto& item : items(a.calibration)) CHECK(train_items.count(item) > 0);
    for (auto& item : items(a.held_out)) CHECK(train_items.count(item) == 0);
    CHECK_THROWS_WITH_AS(training_subsets(split, {.held_out = 250, .calibration = 100, .train = 0}, 0),
                         doctest::Contains("calibration subset of 100 images does not fit"), std::invalid_argument);
}

TEST_CASE("harden: each method's layout, and refusals") {
    const Dataset split = brighter_pixel_data(400, 2);
    HardenOptions opt;
    opt.subsets = {.held_out = 100, .calibration = 64, .train = 128};
    opt.eval_loader.batch_size = 32;
    opt.fitact.loader.batch_size = 32;
    opt.fitact.epochs = 1;
    opt.proact.round.loader.batch_size = 32;
    opt.proact.max_rounds = 1;
    opt.proact.weight_decays = {4e-5f};

    for (HardenMethod m : {HardenMethod::ranger, HardenMethod::fitact, HardenMethod::proact}) {
        CAPTURE(to_string(m));
        auto net = brighter_pixel_network();
        opt.method = m;
        opt.mode = default_bound_mode(m);
        opt.granularity = default_granularity(m);
        const HardenReport r = harden(*net, split, opt);
        const auto slots = bounded_slots(*net);
        REQUIRE(slots.size() == 1);
        CHECK(slots[0].mode == (m == HardenMethod::ranger ? BoundMode::zero : BoundMode::smooth));
        CHECK(slots[0].granularity == (m == HardenMethod::ranger ? BoundGranularity::layer : BoundGranularity::neuron));
        CHECK(r.calibration_images == 64);
        CHECK(r.held_out_images == (m == HardenMethod::ranger ? 0 : 100));
        CHECK(r.train_images == (m == HardenMethod::ranger ? 0 : 128));
        if (m == HardenMethod::fitact) {  // FitAct's after-training check is the returned model on the held-out part
            const Dataset held_out = training_subsets(split, opt.subsets, opt.seed).held_out;
            CHECK(r.fitact_final_top1 == evaluate(*net, held_out, opt.eval_loader).top1);
            CHECK(r.fitact_start_top1 > 0);
        }
    }

    auto net = brighter_pixel_network();
    opt.method = HardenMethod::fitact;
    opt.mode = BoundMode::clamp;  // trained smooth, deployed clamped
    opt.granularity = "channel";
    harden(*net, split, opt);
    CHECK(bounded_slots(*net)[0].mode == BoundMode::clamp);
    CHECK_THROWS_WITH_AS(harden(*net, split, opt), doctest::Contains("already has bounded activations"),
                         std::invalid_argument);

    auto fresh = brighter_pixel_network();
    opt.method = HardenMethod::ftclipact;
    opt.mode = BoundMode::zero;
    opt.granularity = "neuron";
    CHECK_THROWS_WITH_AS(harden(*fresh, split, opt), doctest::Contains("use granularity layer"), std::invalid_argument);
    opt.method = HardenMethod::proact;
    opt.mode = BoundMode::threshold;
    opt.granularity = "hybrid";
    CHECK_THROWS_WITH_AS(harden(*fresh, split, opt), doctest::Contains("threshold mode is for ranger"),
                         std::invalid_argument);
    CHECK(bounded_slots(*fresh).empty());
    CHECK(parse_harden_method("proact") == HardenMethod::proact);
    CHECK_THROWS_WITH_AS(parse_harden_method("clip"), doctest::Contains("unknown hardening method 'clip'"),
                         std::invalid_argument);
}

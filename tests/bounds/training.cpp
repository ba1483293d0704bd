// FitAct and ProAct on the toy problem of toy.hpp: bounds move the way their losses say (a bound that cuts
// informative activations rises, an unused unit's bound falls under a penalty and stays put without one), ProAct
// keeps held-out accuracy within its tolerance, and undoes a round that loses more.
#include "ironclad/bounds/fitact.hpp"
#include "ironclad/bounds/proact.hpp"
#include "ironclad/bounds/ranger.hpp"
#include "ironclad/training/evaluate.hpp"

#include "toy.hpp"

#include <doctest/doctest.h>

using namespace ironclad;
using namespace ironclad::testing;

namespace {

LoaderOptions toy_loader(bool shuffle) {
    LoaderOptions lo;
    lo.batch_size = 64;
    lo.shuffle = shuffle;
    return lo;
}

// Smooth neuron bounds from Ranger on `calibration`, installed in the toy network.
void install_ranger_smooth(Module& net, const Dataset& calibration) {
    install_bounds(net, ranger_bounds(net, make_eval_set(calibration, toy_loader(false)),
                                      {BoundGranularity::neuron}, BoundMode::smooth));
}

Tensor<float> act_bound(Module& net) { return bounded_activation(find_slot(net, "act"))->bound().value().clone(); }

}  // namespace

TEST_CASE("fitact: a bound that cuts informative activations rises; an unused unit's bound stays put") {
    auto net = brighter_pixel_network();
    const Dataset train = brighter_pixel_data(512, 1);
    install_bounds(*net, {{"act", BoundMode::smooth, BoundGranularity::neuron, 20.0f,
                           Tensor<float>({3}, {0.5f, 0.5f, 1.0f}), {}}});
    const EvalResult start = evaluate(*net, train, toy_loader(false));
    BoundTrainOptions opt = fitact_defaults();
    opt.epochs = 3;
    opt.lr = 0.05f;
    opt.l2 = 0;
    opt.weight_decay = 0;
    opt.loader = toy_loader(true);
    const BoundTrainResult r = fitact(*net, train, opt);
    CHECK(r.steps == 24);
    const Tensor<float> after = act_bound(*net);
    CHECK(after[0] > 0.9f);
    CHECK(after[1] > 0.9f);
    CHECK(after[2] == 1.0f);  // its output weights are 0: no gradient, no move
    const EvalResult end = evaluate(*net, train, toy_loader(false));
    CHECK(end.top1 > start.top1 + 10);
    CHECK(end.loss < start.loss - 0.1);
    // The weights were frozen for training and are trainable again afterwards.
    for (auto& [name, p] : net->named_parameters()) CHECK(p.requires_grad());
    CHECK(net->named_parameters()[0].second.value()[0] == 4.0f);
}

TEST_CASE("fitact: with a strong L2 penalty the unused unit's bound falls") {
    auto net = brighter_pixel_network();
    const Dataset train = brighter_pixel_data(512, 2);
    install_ranger_smooth(*net, train);
    const Tensor<float> before = act_bound(*net);
    CHECK(before[2] > 4.0f);  // 2.5 (x0 + x1) reaches nearly 5
    BoundTrainOptions opt = fitact_defaults();
    opt.epochs = 4;
    opt.lr = 0.05f;
    opt.l2 = 1.0f;
    opt.loader = toy_loader(true);
    fitact(*net, train, opt);
    CHECK(act_bound(*net)[2] < before[2] - 0.5f);
}

TEST_CASE("fitact: refuses bounds that are not smooth, and models without bounds") {
    auto net = brighter_pixel_network();
    const Dataset train = brighter_pixel_data(128, 3);
    CHECK_THROWS_WITH_AS(fitact(*net, train, fitact_defaults()), doctest::Contains("no bounded activation"),
                         std::invalid_argument);
    install_bounds(*net, {{"act", BoundMode::zero, BoundGranularity::layer, 20.0f, Tensor<float>({1}, 4.0f), {}}});
    CHECK_THROWS_WITH_AS(fitact(*net, train, fitact_defaults()), doctest::Contains("zero mode"), std::invalid_argument);
}

TEST_CASE("proact: bounds shrink while held-out accuracy stays within the tolerance") {
    auto net = brighter_pixel_network();
    const auto teacher = current_activations(*net);
    const Dataset train = brighter_pixel_data(512, 4), held_out = brighter_pixel_data(256, 5);
    install_ranger_smooth(*net, train);
    const Tensor<float> before = act_bound(*net);
    ProActOptions opt;
    opt.round.lr = 0.05f;
    opt.round.loader = toy_loader(true);
    opt.weight_decays = {0.1f, 0.01f};
    opt.max_rounds = 3;
    opt.tolerance = 0.5;
    std::vector<bool> kept;
    const ProActReport r = proact(*net, teacher, train, held_out, opt,
                                  {[&](const std::string& slot, float, int, double, bool k) {
                                       CHECK(slot == "act");
                                       kept.push_back(k);
                                   },
                                   {}});
    const Tensor<float> after = act_bound(*net);
    CHECK(after[2] < before[2] - 0.3f);  // a slot is undone as a whole: the informative units limit it
    for (std::int64_t i = 0; i < 3; ++i) CHECK(after[i] <= before[i]);
    CHECK(r.final_top1 >= r.reference_top1 - opt.tolerance);
    CHECK(r.final_top1 == evaluate(*net, held_out, toy_loader(false)).top1);
    REQUIRE(r.slots.size() == 1);
    CHECK(r.slots[0].kept_rounds >= 1);
    CHECK(r.slots[0].kept_rounds + r.slots[0].undone_rounds == static_cast<int>(kept.size()));
    CHECK(r.slots[0].mean_bound_after < r.slots[0].mean_bound_before);
}

TEST_CASE("proact: a round that loses accuracy is undone exactly") {
    auto net = brighter_pixel_network();
    const auto teacher = current_activations(*net);
    const Dataset train = brighter_pixel_data(256, 6), held_out = brighter_pixel_data(128, 7);
    install_ranger_smooth(*net, train);
    const Tensor<float> before = act_bound(*net);
    ProActOptions opt;
    opt.round.lr = 1.0f;  // a round drives every bound to about zero: the informative units are silenced
    opt.round.loader = toy_loader(true);
    opt.weight_decays = {1.0f, 0.5f};
    opt.tolerance = 0;
    const ProActReport r = proact(*net, teacher, train, held_out, opt);
    CHECK(r.slots[0].kept_rounds == 0);
    CHECK(r.slots[0].undone_rounds == 2);
    const Tensor<float> after = act_bound(*net);
    for (std::int64_t i = 0; i < 3; ++i) CHECK(after[i] == before[i]);
    CHECK(r.final_top1 == r.reference_top1);
}

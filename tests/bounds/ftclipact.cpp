// FT-ClipAct: the area under the accuracy-versus-rate curve, the interval search's candidates (each measured
// once), the choice of the best candidate, and the weights left as they were.
#include "ironclad/bounds/ftclipact.hpp"
#include "ironclad/bounds/ranger.hpp"

#include "toy.hpp"

#include <doctest/doctest.h>

#include <algorithm>

using namespace ironclad;
using namespace ironclad::testing;

TEST_CASE("ftclipact: the AUC is the average accuracy over equally spaced rate positions") {
    CHECK(accuracy_auc({80, 60, 40}) == doctest::Approx(60));
    CHECK(accuracy_auc({90, 90, 30}) == doctest::Approx(75));  // (90 + 60) / 2
    CHECK(accuracy_auc({42}) == 42);
}

TEST_CASE("ftclipact: interval search over the candidates, on equal faults, weights restored") {
    auto net = brighter_pixel_network();
    LoaderOptions loader;
    loader.batch_size = 32;
    const EvalSet data = make_eval_set(brighter_pixel_data(64, 9), loader);
    install_bounds(*net, ranger_bounds(*net, data, {BoundGranularity::layer}, BoundMode::zero));
    const float ranger = bounded_slots(*net)[0].bound[0];
    net->named_parameters()[0].second.value()[0] += 3e-6f;  // not a Q15.16 value: storing it would change it
    std::vector<std::pair<std::string, Tensor<float>>> before;
    for (auto& [name, p] : net->named_parameters()) before.emplace_back(name, p.value().clone());

    FtClipActOptions opt;
    opt.fault.count_mode = CountMode::count;  // levels are flip counts here
    opt.fault.layers = {"fc1"};
    opt.fault.bit_lo = 18;
    opt.fault.bit_hi = 26;
    opt.rates = {1, 2};
    opt.trials = 3;
    opt.iterations = 3;
    opt.min_iterations = 3;
    std::vector<std::pair<float, double>> measured;
    const auto report = ftclipact(*net, data, opt, [&](const std::string& slot, int, float bound, double auc) {
        CHECK(slot == "act");
        measured.emplace_back(bound, auc);
    });
    REQUIRE(report.size() == 1);
    const FtClipActSlotReport& r = report[0];
    CHECK(r.ranger_bound == ranger);
    CHECK(r.iterations == 3);
    // 4 candidates, then 2 new ones per iteration: the interval's ends were measured before.
    REQUIRE(measured.size() == 8);
    CHECK(r.campaigns == 8);
    const float first[] = {0, ranger / 3, 2 * ranger / 3, ranger};
    for (int j = 0; j < 4; ++j) CHECK(measured[static_cast<std::size_t>(j)].first == doctest::Approx(first[j]));
    for (auto& [b, auc] : measured) CHECK((auc >= 0 && auc <= 100));
    // A bound of 0 silences the layer, faults or not: every image gets the bias's class (1).
    const auto second_brighter = std::count(data.labels.begin(), data.labels.end(), 1);
    CHECK(measured[0].second == doctest::Approx(100.0 * static_cast<double>(second_brighter) / 64));

    // Iteration 2's interval follows from iteration 1's AUCs.
    std::vector<float> t(first, first + 4);
    int best = 0;
    for (int j = 1; j < 4; ++j)
        if (measured[static_cast<std::size_t>(j)].second > measured[static_cast<std::size_t>(best)].second) best = j;
    const float lo = best == 0 ? t[0] : best == 3 ? t[2] : t[static_cast<std::size_t>(best - 1)];
    const float hi = best == 0 ? t[1] : best == 3 ? t[3] : t[static_cast<std::size_t>(best + 1)];
    CHECK(measured[4].first == doctest::Approx(lo + (hi - lo) / 3));
    CHECK(measured[5].first == doctest::Approx(lo + 2 * (hi - lo) / 3));

    // The chosen bound is installed, and it is a measured candidate with the AUC reported.
    const float chosen = bounded_slots(*net)[0].bound[0];
    CHECK(chosen == r.bound);
    bool was_measured = false;
    for (auto& [b, auc] : measured) was_measured = was_measured || (b == chosen && auc == r.auc);
    CHECK(was_measured);
    CHECK(r.auc > 60);  // well above the silenced layer
    // Every other parameter is back to its float value (the campaigns stored them in Q15.16).
    for (auto& [name, p] : net->named_parameters()) {
        if (name == "act.bound") continue;
        for (auto& [bname, value] : before)
            if (bname == name)
                for (std::int64_t i = 0; i < value.numel(); ++i) CHECK(p.value()[i] == value[i]);
    }
}

TEST_CASE("ftclipact: needs layer bounds in every slot") {
    auto net = brighter_pixel_network();
    const EvalSet data;
    CHECK_THROWS_WITH_AS(ftclipact(*net, data, {}), doctest::Contains("needs a layer-wise bounded activation"),
                         std::invalid_argument);
    install_bounds(*net, {{"act", BoundMode::zero, BoundGranularity::neuron, 20.0f, Tensor<float>({3}, 1.0f), {}}});
    CHECK_THROWS_AS(ftclipact(*net, data, {}), std::invalid_argument);
}

// The attack x fault grid: at eps 0 it is the plain fault campaign, result for result; a row's fault-free top-1 is
// the attack's robust top-1 on the deployed model.
#include "adversarial/fixtures.hpp"
#include "ironclad/adversarial/attack_grid.hpp"

#include <doctest/doctest.h>

using namespace ironclad;
using namespace ironclad::testing;

namespace {

bool same_trials(const LevelResult& a, const LevelResult& b) {
    if (a.trials.size() != b.trials.size()) return false;
    for (std::size_t t = 0; t < a.trials.size(); ++t) {
        const TrialResult &x = a.trials[t], &y = b.trials[t];
        if (x.faults != y.faults || x.correct != y.correct || x.sdc != y.sdc || x.sdc_on_correct != y.sdc_on_correct ||
            x.non_finite != y.non_finite)
            return false;
    }
    return true;
}

GridOptions grid_options() {
    GridOptions o;
    o.strengths = {0.0f, 4.0f / 255};
    o.attack = {.norm = Norm::linf, .steps = 3, .random_start = true, .seed = 2};
    o.campaign.levels = {1e-4, 1e-3};
    o.campaign.max_trials = 4;
    o.campaign.fault.seed = 11;
    o.batch_size = 8;
    return o;
}

}  // namespace

TEST_CASE("the attack grid at eps 0 reproduces the plain fault campaign") {
    auto model = small_resnet(5);
    const Dataset data = random_images(*model, 20, 6);
    const GridOptions o = grid_options();
    const auto rows = run_attack_grid(*model, data, o);
    REQUIRE(rows.size() == 2);

    auto plain_model = small_resnet(5);
    LoaderOptions lo;
    lo.batch_size = o.batch_size;
    lo.mean = plain_model->mean();
    lo.std = plain_model->stddev();
    const EvalSet clean = make_eval_set(data, lo);
    const CampaignResult plain = Campaign(plain_model->net(), clean, o.campaign).run();
    const CampaignResult& row0 = rows[0].campaign;
    CHECK(row0.clean_top1 == plain.clean_top1);
    REQUIRE(row0.levels.size() == plain.levels.size());
    for (std::size_t l = 0; l < plain.levels.size(); ++l) {
        CAPTURE(plain.levels[l].level);
        CHECK(same_trials(row0.levels[l], plain.levels[l]));
        CHECK(row0.levels[l].top1.mean == plain.levels[l].top1.mean);
        CHECK(row0.levels[l].ci95_low() == plain.levels[l].ci95_low());
    }
    // Faults do something at these rates, so the comparison above is not between two copies of the clean result.
    CHECK(plain.levels.back().top1.mean < plain.clean_top1);
}

TEST_CASE("a grid row's fault-free top-1 is the attack's robust top-1 on the deployed model") {
    auto model = small_resnet(5);
    const Dataset data = random_images(*model, 20, 6);
    const GridOptions o = grid_options();
    const auto rows = run_attack_grid(*model, data, o);
    // run_attack_grid deployed `model` in Q15.16: attacking it again gives the row's images.
    ThreatModel t = o.attack;
    t.eps = o.strengths[1];
    t.step = o.step_fraction * t.eps;
    Pgd attack(t);
    const AttackReport r = run_attack(*model, data, attack, {.batch_size = o.batch_size, .keep_adversarial = false, .on_batch = {}});
    CHECK(rows[1].campaign.clean_top1 == doctest::Approx(r.robust_top1()));
    CHECK(rows[1].campaign.clean_top1 < rows[0].campaign.clean_top1);
    CHECK(rows[1].attack["threat_model"]["eps"] == t.eps);
}

TEST_CASE("crafting on the faulted model: eps 0 is the plain campaign, and the attack never raises a trial's top-1") {
    GridOptions o = grid_options();
    o.craft_on_faulted = true;
    auto model = small_resnet(5);
    const Dataset data = random_images(*model, 20, 6);
    const auto rows = run_attack_grid(*model, data, o);
    auto clean_model = small_resnet(5);
    GridOptions plain = grid_options();
    const auto reference = run_attack_grid(*clean_model, data, plain);
    REQUIRE(rows.size() == 2);
    // eps 0: the caller's evaluation of each faulted model sees the campaign's own fault maps.
    for (std::size_t l = 0; l < reference[0].campaign.levels.size(); ++l) {
        CAPTURE(l);
        CHECK(same_trials(rows[0].campaign.levels[l], reference[0].campaign.levels[l]));
    }
    // eps > 0: the fault-free column is the same attack; under faults each trial's top-1 is at most the clean
    // images' top-1 under the same fault map (run_attack never helps an image).
    CHECK(rows[1].campaign.clean_top1 == reference[1].campaign.clean_top1);
    bool differs = false;
    for (std::size_t l = 0; l < rows[1].campaign.levels.size(); ++l)
        for (std::size_t t = 0; t < rows[1].campaign.levels[l].trials.size(); ++t) {
            const TrialResult& faulted = rows[1].campaign.levels[l].trials[t];
            CHECK(faulted.correct <= rows[0].campaign.levels[l].trials[t].correct);
            CHECK(faulted.faults == reference[1].campaign.levels[l].trials[t].faults);
            differs |= faulted.correct != reference[1].campaign.levels[l].trials[t].correct;
        }
    CHECK(differs);  // crafting on the faulted model changes some trial's result

    GridOptions both = o;
    both.campaign.fault.site = FaultSite::both;
    CHECK_THROWS_WITH(run_attack_grid(*small_resnet(5), data, both), doctest::Contains("weight faults only"));
}

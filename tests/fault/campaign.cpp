// Fault campaigns: golden reuse and stage restarts give the same answers as full forward passes, results do not
// depend on threads or batching, trials replay alone, killed campaigns resume.
#include "ironclad/core/parallel.hpp"
#include "ironclad/fault/campaign.hpp"
#include "ironclad/models/registry.hpp"
#include "support/grad_check.hpp"

#include <doctest/doctest.h>

#include <filesystem>
#include <set>

using namespace ironclad;
using namespace ironclad::testing;

namespace {

EvalSet synthetic_set(std::int64_t images, std::int64_t batch, int size, int classes) {
    EvalSet set;
    const Tensor<float> all = random_tensor({images, 3, size, size}, 99);
    const std::int64_t per = 3 * size * size;
    for (std::int64_t start = 0; start < images; start += batch) {
        const std::int64_t n = std::min(batch, images - start);
        Tensor<float> b({n, 3, size, size});
        std::copy_n(all.data() + start * per, n * per, b.data());
        set.batches.push_back(b);
    }
    for (std::int64_t i = 0; i < images; ++i) set.labels.push_back(static_cast<std::int32_t>(i % classes));
    return set;
}

std::shared_ptr<Module> small_resnet() {
    ModelConfig cfg;
    cfg.input_size = 8;
    cfg.seed = 5;
    return build_model("resnet20", cfg);
}

FaultModel q15_weights(double rate_unused = 0) {
    FaultModel fm;
    fm.rate = rate_unused;
    fm.seed = 42;
    return fm;
}

bool same(const TrialResult& a, const TrialResult& b) {
    return a.trial == b.trial && a.faults == b.faults && a.correct == b.correct && a.sdc == b.sdc &&
           a.sdc_on_correct == b.sdc_on_correct && a.non_finite == b.non_finite && a.recomputed == b.recomputed &&
           a.first_stage == b.first_stage;
}

}  // namespace

TEST_CASE("flattened stages compose to forward for every architecture") {
    for (const auto& info : model_registry()) {
        ModelConfig cfg;
        cfg.seed = 1;
        auto model = build_model(info.name, cfg);
        model->eval();
        NoGradGuard no_grad;
        const Tensor<float> x = random_tensor({2, 3, 32, 32}, 3);
        const Tensor<float> full = (*model)(Var(x)).value();
        const auto stages = flatten_stages(*model);
        CHECK(stages.size() > 3);
        const Tensor<float> chained = run_stages(stages, 0, Var(x)).value();
        REQUIRE(chained.numel() == full.numel());
        for (std::int64_t i = 0; i < full.numel(); ++i) CHECK(chained[i] == full[i]);
    }
}

TEST_CASE("a trial equals a full forward pass with the same faults applied by hand") {
    auto model = small_resnet();
    const EvalSet data = synthetic_set(40, 16, 8, 10);
    CampaignOptions opt;
    opt.fault = q15_weights();
    opt.fault.count_mode = CountMode::count;
    opt.fault.bit_lo = 14;  // large enough to change predictions
    opt.levels = {3};
    Campaign campaign(*model, data, opt);
    campaign.run_golden();
    int restarted = 0;
    for (int t = 0; t < 12; ++t) {
        std::vector<FaultRecord> records;
        const TrialResult r = campaign.run_trial(3, t, &records);
        REQUIRE(records.size() == 3);
        restarted += r.first_stage > 0;
        // Apply the recorded faults to the stored model by hand, run the whole network, count.
        std::vector<FaultTarget> targets = campaign.weight_targets();
        Injector manual(targets);
        std::vector<FaultPosition> faults;
        for (auto& rec : records) faults.push_back({rec.target, rec.element, rec.bit});
        manual.apply(faults, FaultEffect::flip);
        for (std::size_t i = 0; i < records.size(); ++i) CHECK(manual.records()[i].raw_after == records[i].raw_after);
        std::int64_t correct = 0, sdc = 0, k = 0;
        NoGradGuard no_grad;
        for (auto& b : data.batches) {
            const auto pred = argmax_rows((*model)(Var(b)).value());
            for (auto p : pred) {
                correct += p == data.labels[static_cast<std::size_t>(k)];
                sdc += p != campaign.golden_predictions()[static_cast<std::size_t>(k)];
                ++k;
            }
        }
        manual.restore();
        CHECK(r.correct == correct);
        CHECK(r.sdc == sdc);
        CHECK(r.recomputed == 40);
    }
    CHECK(restarted > 0);  // some trials restarted past the first stage
}

TEST_CASE("rate 0 reuses the golden result; same seed gives the same numbers at 1 and 2 threads") {
    auto model = small_resnet();
    const EvalSet data = synthetic_set(32, 16, 8, 10);
    CampaignOptions opt;
    opt.fault = q15_weights();
    opt.levels = {0.0, 1e-4};
    opt.max_trials = 4;
    std::vector<CampaignResult> results;
    const int threads_before = num_threads();
    for (int threads : {1, 2}) {
        set_num_threads(threads);
        auto m = small_resnet();
        Campaign c(*m, data, opt);
        results.push_back(c.run());
    }
    set_num_threads(threads_before);
    const auto& a = results[0];
    for (auto& t : a.levels[0].trials) {
        CHECK(t.faults == 0);
        CHECK(t.recomputed == 0);
        CHECK(t.sdc == 0);
        CHECK(t.correct == a.golden_correct);
    }
    CHECK(a.levels[1].mean_faults > 0);
    for (std::size_t l = 0; l < 2; ++l)
        for (std::size_t t = 0; t < 4; ++t) CHECK(same(a.levels[l].trials[t], results[1].levels[l].trials[t]));
}

TEST_CASE("activation faults: only hit images are recomputed, and batching does not change any result") {
    CampaignOptions opt;
    opt.fault = q15_weights();
    opt.fault.site = FaultSite::activations;
    opt.fault.bit_lo = 20;
    opt.store_activations = true;
    opt.levels = {2e-6};
    opt.max_trials = 5;
    std::vector<CampaignResult> results;
    for (std::int64_t batch : {8, 32}) {
        auto m = small_resnet();
        const EvalSet data = synthetic_set(32, batch, 8, 10);
        Campaign c(*m, data, opt);
        results.push_back(c.run());
    }
    bool partial = false;
    for (std::size_t t = 0; t < 5; ++t) {
        CHECK(same(results[0].levels[0].trials[t], results[1].levels[0].trials[t]));
        const auto& r = results[0].levels[0].trials[t];
        partial = partial || (r.recomputed > 0 && r.recomputed < 32);
    }
    CHECK(partial);
}

TEST_CASE("a killed campaign resumes with identical results; a different campaign is refused") {
    const auto dir = std::filesystem::temp_directory_path() / "ironclad_campaign_resume";
    std::filesystem::remove_all(dir);
    std::filesystem::create_directories(dir);
    const EvalSet data = synthetic_set(24, 12, 8, 10);
    CampaignOptions opt;
    opt.fault = q15_weights();
    opt.levels = {5e-5};
    opt.identity = {{"model", "resnet20-test"}};
    opt.max_trials = 6;
    auto fresh_model = small_resnet();
    const CampaignResult fresh = Campaign(*fresh_model, data, opt).run();

    opt.state_file = dir / "state.json";
    opt.max_trials = 3;  // "killed" after three trials
    {
        auto m = small_resnet();
        Campaign(*m, data, opt).run();
    }
    opt.max_trials = 6;
    int computed = 0;
    auto m = small_resnet();
    Campaign resumed(*m, data, opt);
    CampaignCallbacks cb;
    const CampaignResult r = resumed.run(cb);
    for (std::size_t t = 0; t < 6; ++t) CHECK(same(r.levels[0].trials[t], fresh.levels[0].trials[t]));
    (void)computed;

    CampaignOptions other = opt;
    other.fault.seed = 43;
    auto m2 = small_resnet();
    CHECK_THROWS_WITH_AS(Campaign(*m2, data, other).run(), doctest::Contains("different campaign"), std::runtime_error);
    std::filesystem::remove_all(dir);
}

TEST_CASE("--margin stops a level once its interval is narrow enough") {
    auto model = small_resnet();
    const EvalSet data = synthetic_set(32, 16, 8, 10);
    CampaignOptions opt;
    opt.fault = q15_weights();
    opt.levels = {0.0};
    opt.max_trials = 50;
    opt.margin = 0.2;
    opt.interval = IntervalKind::trials;
    Campaign c(*model, data, opt);
    const auto r = c.run();
    CHECK(r.levels[0].trials.size() == 3);  // zero variance: min_trials suffice
    CHECK(r.levels[0].stopped_early);
}

TEST_CASE("unknown layer names and bad options are refused with the name") {
    auto model = small_resnet();
    const EvalSet data = synthetic_set(8, 8, 8, 10);
    CampaignOptions opt;
    opt.fault = q15_weights();
    opt.levels = {1e-6};
    opt.fault.layers = {"layer9"};
    CHECK_THROWS_WITH_AS(Campaign(*model, data, opt), doctest::Contains("'layer9'"), std::invalid_argument);
    opt.fault.layers = {};
    opt.fault.bit_lo = 40;
    CHECK_THROWS_WITH_AS(Campaign(*model, data, opt), doctest::Contains("bit range"), std::invalid_argument);
}

TEST_CASE("exact arithmetic: a trial equals a whole integer forward pass with the recorded faults, counts included") {
    auto model = small_resnet();
    const EvalSet data = synthetic_set(24, 8, 8, 10);
    CampaignOptions opt;
    opt.fault = q15_weights();
    opt.fault.format = parse_storage_format("q7.8");
    opt.fault.count_mode = CountMode::count;
    opt.fault.bit_lo = 10;
    opt.levels = {2};
    opt.exact = ExactArithmetic{};
    parse_accumulator("17-sat", *opt.exact);  // narrow enough to overflow on these random weights
    Campaign campaign(*model, data, opt);
    const CampaignResult golden_only = [&] {
        CampaignOptions none = opt;
        none.levels = {0};
        none.max_trials = 1;
        auto m = small_resnet();
        return Campaign(*m, data, none).run();
    }();
    std::int64_t golden_events = 0;
    for (auto& [layer, c] : golden_only.golden_saturation) golden_events += c.total();
    CHECK(golden_events > 0);
    CHECK(golden_only.levels[0].trials[0].saturation == golden_only.golden_saturation);

    // The reference: a separate integer network of the same stored model, faulted by hand from the records.
    ExactArithmetic arith = *opt.exact;
    arith.format = opt.fault.format.fixed;
    ExactNetwork manual(*model, flatten_stages(*model), arith);
    for (int t = 0; t < 6; ++t) {
        std::vector<FaultRecord> records;
        const TrialResult r = campaign.run_trial(2, t, &records);
        REQUIRE(records.size() == 2);
        std::vector<std::pair<RawTensor, std::int64_t>> touched;
        for (auto& rec : records) {
            RawTensor& w = manual.raw_parameter(campaign.weight_targets()[static_cast<std::size_t>(rec.target)].name);
            touched.emplace_back(w, w[rec.element]);
            w[rec.element] = static_cast<std::int32_t>(ExactArithmetic::sign_extend(static_cast<std::int64_t>(rec.raw_after), 16));
        }
        manual.take_counts();
        std::int64_t correct = 0, sdc = 0, k = 0;
        for (auto& b : data.batches)
            for (auto p : StageChain::predictions(manual.run(0, manual.input(b)))) {
                correct += p == data.labels[static_cast<std::size_t>(k)];
                sdc += p != campaign.golden_predictions()[static_cast<std::size_t>(k)];
                ++k;
            }
        auto expected_counts = manual.take_counts();
        std::erase_if(expected_counts, [](auto& kv) { return kv.second.total() == 0; });
        auto got_counts = r.saturation;
        std::erase_if(got_counts, [](auto& kv) { return kv.second.total() == 0; });
        for (std::size_t i = touched.size(); i-- > 0;) touched[i].first[records[i].element] =
            static_cast<std::int32_t>(touched[i].second);
        CHECK(r.correct == correct);
        CHECK(r.sdc == sdc);
        CHECK(got_counts == expected_counts);
    }
}

TEST_CASE("exact arithmetic: the same seed gives the same trials and counts at 1 and 2 threads, and resumes") {
    const auto dir = std::filesystem::temp_directory_path() / "ironclad_exact_resume";
    std::filesystem::remove_all(dir);
    std::filesystem::create_directories(dir);
    const EvalSet data = synthetic_set(16, 8, 8, 10);
    CampaignOptions opt;
    opt.fault = q15_weights();
    opt.fault.site = FaultSite::both;
    opt.fault.bit_lo = 12;
    opt.levels = {3e-5};
    opt.max_trials = 4;
    opt.exact = ExactArithmetic{};
    std::vector<CampaignResult> results;
    const int before = num_threads();
    for (int threads : {1, 2}) {
        set_num_threads(threads);
        auto m = small_resnet();
        results.push_back(Campaign(*m, data, opt).run());
    }
    set_num_threads(before);
    for (std::size_t t = 0; t < 4; ++t) {
        CHECK(same(results[0].levels[0].trials[t], results[1].levels[0].trials[t]));
        CHECK(results[0].levels[0].trials[t].saturation == results[1].levels[0].trials[t].saturation);
    }
    CHECK(results[0].levels[0].mean_faults > 0);

    opt.state_file = dir / "state.json";
    opt.max_trials = 2;
    {
        auto m = small_resnet();
        Campaign(*m, data, opt).run();
    }
    opt.max_trials = 4;
    auto m = small_resnet();
    const CampaignResult resumed = Campaign(*m, data, opt).run();
    for (std::size_t t = 0; t < 4; ++t) {
        CHECK(same(resumed.levels[0].trials[t], results[0].levels[0].trials[t]));
        CHECK(resumed.levels[0].trials[t].saturation == results[0].levels[0].trials[t].saturation);
    }
    std::filesystem::remove_all(dir);

    CampaignOptions float_exact = opt;
    float_exact.state_file.clear();
    float_exact.fault.format = parse_storage_format("float");
    auto m2 = small_resnet();
    CHECK_THROWS_WITH_AS(Campaign(*m2, data, float_exact), doctest::Contains("fixed-point"), std::invalid_argument);
}

TEST_CASE("int8 activations: stored outputs take at most 256 calibrated levels, and faults act on them") {
    auto model = small_resnet();
    const EvalSet data = synthetic_set(16, 8, 8, 10);
    // A hook set before the campaign stays first in the site's chain: it sees the stored (not yet faulted) output.
    std::set<float> levels;
    Module* stem = nullptr;
    for (auto& [name, slot] : activation_slots(*model))
        if (name == "relu") stem = slot;
    REQUIRE(stem);
    stem->set_output_hook([&](Tensor<float>& y) {
        for (std::int64_t i = 0; i < y.numel(); ++i) levels.insert(y[i]);
    });
    CampaignOptions opt;
    opt.fault = q15_weights();
    opt.fault.format = parse_storage_format("int8");
    opt.fault.site = FaultSite::activations;
    opt.fault.count_mode = CountMode::count;
    opt.fault.bit_lo = 6;
    opt.fault.layers = {"relu", "layer1.0.relu1"};
    opt.store_activations = true;
    opt.levels = {4};
    opt.max_trials = 4;
    Campaign campaign(*model, data, opt);
    const CampaignResult r = campaign.run();
    CHECK(levels.size() > 20);     // a real activation, not a constant
    CHECK(levels.size() <= 128);   // after a ReLU: 0..127 times one per-tensor scale
    std::int64_t recomputed = 0;
    for (auto& t : r.levels[0].trials) {
        CHECK(t.faults == 4 * 16);  // per image
        recomputed += t.recomputed;
    }
    CHECK(recomputed == 4 * 16);
}

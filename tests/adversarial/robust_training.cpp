// Adversarial training: PGD-AT makes a tiny net more robust than standard training, TRADES with beta 0 is exactly
// standard training, the distillation losses learn from a teacher, runs resume to the same weights and do not
// depend on the thread count.
#include "adversarial/fixtures.hpp"
#include "ironclad/adversarial/robust_training.hpp"

#include <doctest/doctest.h>

#include <filesystem>
#include <unistd.h>

using namespace ironclad;
using namespace ironclad::testing;

namespace {

RobustTrainOptions tiny_robust_options(RobustLoss loss, int epochs, std::filesystem::path checkpoint = {}) {
    RobustTrainOptions o;
    o.loss = loss;
    o.train.epochs = epochs;
    o.train.lr = 0.1f;
    o.train.loader.batch_size = 16;
    o.train.loader.shuffle = true;
    o.train.loader.seed = 3;
    o.train.checkpoint = std::move(checkpoint);
    o.attack = {.norm = Norm::linf, .eps = 0.1f, .step = 0.03f, .steps = 5, .seed = 1};
    o.eval_attack = {.norm = Norm::linf, .eps = 0.1f, .step = 0.025f, .steps = 10, .seed = 2};
    return o;
}

std::shared_ptr<NormalizedModel> tiny_model(std::uint64_t seed) {
    return std::make_shared<NormalizedModel>(tiny_net(seed), std::vector<float>{0.4f}, std::vector<float>{0.2f});
}

bool same_parameters(const Module& a, const Module& b) {
    const auto pa = a.named_parameters(), pb = b.named_parameters();
    if (pa.size() != pb.size()) return false;
    for (std::size_t i = 0; i < pa.size(); ++i)
        if (!std::equal(pa[i].second.value().begin(), pa[i].second.value().end(), pb[i].second.value().begin())) return false;
    return true;
}

double robust_top1(NormalizedModel& model, const Dataset& data, const ThreatModel& threat) {
    Pgd attack(threat);
    return run_attack(model, data, attack, {.batch_size = 64, .keep_adversarial = false, .on_batch = {}}).robust_top1();
}

}  // namespace

TEST_CASE("PGD-AT and TRADES train nets that resist PGD better than standard training") {
    const Dataset train = quadrant_images(256, 1), test = quadrant_images(64, 2);
    const ThreatModel wide{.norm = Norm::linf, .eps = 0.15f, .step = 0.04f, .steps = 5, .seed = 1};
    const ThreatModel strong{.norm = Norm::linf, .eps = 0.15f, .step = 0.03f, .steps = 20, .restarts = 2, .seed = 7};
    RobustTrainOptions o = tiny_robust_options(RobustLoss::pgd_at, 6);
    o.attack = wide;
    o.eval_attack = strong;
    auto standard = tiny_model(0);
    fit(*standard, train, nullptr, o.train);
    const double standard_robust = robust_top1(*standard, test, strong);
    CAPTURE(standard_robust);
    for (RobustLoss loss : {RobustLoss::pgd_at, RobustLoss::trades}) {
        CAPTURE(std::string(to_string(loss)));
        o.loss = loss;
        // This 4-channel net collapses to a constant under TRADES' default beta 6 at eps 0.15; beta 1 trains.
        o.train.lr = loss == RobustLoss::trades ? 0.05f : 0.1f;
        o.beta = 1;
        auto robust = tiny_model(0);
        const auto reports = robust_fit(*robust, train, &test, o);
        REQUIRE(reports.size() == 6);
        const AttackReport& last = *reports.back().held_out;
        CHECK(last.images == 64);
        CHECK(last.clean_top1() >= 90.0);
        CHECK(last.robust_top1() >= standard_robust + (loss == RobustLoss::pgd_at ? 30.0 : 5.0));
        CHECK(last.robust_top1() == doctest::Approx(robust_top1(*robust, test, strong)));
    }
}

TEST_CASE("TRADES with beta 0 is standard training") {
    // The KL term then contributes exact zeros, so the parameters must equal fit()'s bit for bit (BN running
    // statistics differ: the adversarial forward pass updates them too).
    const Dataset train = quadrant_images(64, 1);
    RobustTrainOptions o = tiny_robust_options(RobustLoss::trades, 2);
    o.beta = 0;
    auto plain = NormalizedModel::identity(tiny_net(4), 1), trades = NormalizedModel::identity(tiny_net(4), 1);
    fit(*plain, train, nullptr, o.train);
    robust_fit(*trades, train, nullptr, o);
    CHECK(same_parameters(*plain, *trades));
    o.beta = 6;
    auto beta6 = NormalizedModel::identity(tiny_net(4), 1);
    robust_fit(*beta6, train, nullptr, o);
    CHECK_FALSE(same_parameters(*plain, *beta6));
}

TEST_CASE("ARD and RSLAD students learn from a robust teacher without labels in the loss") {
    const Dataset train = quadrant_images(128, 1), test = quadrant_images(64, 2);
    RobustTrainOptions o = tiny_robust_options(RobustLoss::pgd_at, 4);
    o.attack.eps = o.eval_attack.eps = 0.15f;
    auto teacher = tiny_model(0);
    robust_fit(*teacher, train, nullptr, o);
    for (RobustLoss loss : {RobustLoss::ard, RobustLoss::rslad}) {
        CAPTURE(std::string(to_string(loss)));
        auto student = tiny_model(9);
        const double before = robust_top1(*student, test, o.eval_attack);
        o.loss = loss;
        o.temperature = 2.0f;  // tau 30 makes the soft targets nearly uniform for this tiny net
        const auto reports = robust_fit(*student, train, &test, o, teacher.get());
        CHECK(reports.back().held_out->clean_top1() >= 90.0);
        CHECK(reports.back().held_out->robust_top1() >= before + 20.0);
    }
    auto student = tiny_model(9);
    CHECK_THROWS_WITH(robust_fit(*student, train, nullptr, tiny_robust_options(RobustLoss::rslad, 1)),
                      doctest::Contains("needs a teacher"));
}

TEST_CASE("an interrupted robust training resumes to the same weights, at any thread count") {
    const Dataset train = quadrant_images(64, 1);
    const auto dir = std::filesystem::temp_directory_path() / ("ironclad_robust_" + std::to_string(::getpid()));
    std::filesystem::create_directories(dir);
    const auto ckpt = dir / "tiny.safetensors";
    auto straight = tiny_model(0);
    with_threads(1, [&] { return robust_fit(*straight, train, nullptr, tiny_robust_options(RobustLoss::trades, 3)); });

    auto first = tiny_model(0);
    RobustTrainCallbacks kill_after_first;
    kill_after_first.on_epoch = [](const RobustEpochReport&) { throw std::runtime_error("killed"); };
    CHECK_THROWS_WITH(robust_fit(*first, train, nullptr, tiny_robust_options(RobustLoss::trades, 3, ckpt), nullptr, kill_after_first),
                      "killed");
    auto resumed = tiny_model(7);  // other initial weights: everything must come from the checkpoint
    const auto reports = with_threads(2, [&] {
        return robust_fit(*resumed, train, nullptr, tiny_robust_options(RobustLoss::trades, 3, ckpt));
    });
    REQUIRE(reports.size() == 2);
    CHECK(reports.front().epoch == 2);
    CHECK(same_parameters(*straight, *resumed));
    std::filesystem::remove_all(dir);
}

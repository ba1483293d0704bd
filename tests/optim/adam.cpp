#include "ironclad/optim/adam.hpp"
#include "golden_problem.hpp"

#include <doctest/doctest.h>

#include <cmath>
#include <cstring>
#include <functional>
#include <string>

using namespace ironclad;

using namespace ironclad::testing;

TEST_CASE("adam: three steps match torch.optim.Adam and AdamW") {
    SUBCASE("adam, L2 weight decay") {
        auto p = initial_params();
        Adam opt(golden_groups(p), {.lr = 0.01f, .beta1 = 0.8, .beta2 = 0.95, .eps = 1e-3, .weight_decay = 0.1f});
        run_steps(opt, p, 0, 3);
        check_golden(p, {0.506383657f, -0.973362148f, 0.245175421f, 1.4718945f, -0.724352837f, 1.96992803f,
                         0.111048616f, -0.209322751f, 0.297603369f, 0.996130049f, -0.990286529f});
    }
    SUBCASE("adamw, decoupled weight decay") {
        auto p = initial_params();
        Adam opt(golden_groups(p), {.lr = 0.01f, .weight_decay = 0.1f, .decoupled_weight_decay = true});
        run_steps(opt, p, 0, 3);
        check_golden(p, {0.510464966f, -0.972694993f, 0.246821702f, 1.4676702f, -0.724393904f, 1.96417403f,
                         0.111541234f, -0.209614128f, 0.298125565f, 0.996279299f, -0.990338266f});
    }
}

TEST_CASE("adam: the first step moves each element by lr against the gradient's sign") {
    // With bias correction, m / sqrt(v) = g / |g| at t = 1.
    Var w(Tensor<float>({3}, {1.0f, 1.0f, 1.0f}), true);
    Adam opt({ParamGroup{{w}}}, {.lr = 0.1f});
    w.grad_buffer() = Tensor<float>({3}, {3.0f, -0.002f, 0.0f});
    opt.step();
    CHECK(w.value()[0] == doctest::Approx(0.9f).epsilon(1e-6));
    CHECK(w.value()[1] == doctest::Approx(1.1f).epsilon(1e-6));
    CHECK(w.value()[2] == 1.0f);
}

TEST_CASE("adam: state counts steps per parameter and resumes identically") {
    auto reference = initial_params();
    const AdamOptions options{.lr = 0.01f, .beta1 = 0.8, .beta2 = 0.95, .weight_decay = 0.1f};
    Adam straight(golden_groups(reference), options);
    run_steps(straight, reference, 0, 5);

    auto first = initial_params();
    Adam before(golden_groups(first), options);
    run_steps(before, first, 0, 3);
    const auto state = before.state();
    CHECK(state.size() == 9);
    for (const auto& [name, t] : state)
        if (name.starts_with("adam.step.")) CHECK(t[0] == (name == "adam.step.1.1" ? 2.0f : 3.0f));

    std::vector<Var> resumed;
    for (const auto& p : first) resumed.emplace_back(p.value().clone(), true);
    Adam after(golden_groups(resumed), options);
    after.load_state(state);
    run_steps(after, resumed, 3, 5);
    const auto want = flat(reference), got = flat(resumed);
    CHECK(std::memcmp(want.data(), got.data(), want.size() * sizeof(float)) == 0);

    // A continuation that restarts the bias correction differs, so the comparison above can fail.
    auto wrong = state;
    for (auto& [name, t] : wrong)
        if (name.starts_with("adam.step.")) t[0] = 1.0f;
    std::vector<Var> restarted;
    for (const auto& p : first) restarted.emplace_back(p.value().clone(), true);
    Adam other(golden_groups(restarted), options);
    other.load_state(wrong);
    run_steps(other, restarted, 3, 5);
    CHECK(flat(restarted) != want);
}

TEST_CASE("adam: incomplete or invalid state is rejected and changes nothing") {
    auto p = initial_params();
    Adam opt(golden_groups(p), {.lr = 0.01f});
    run_steps(opt, p, 0, 1);
    auto state = opt.state();
    auto partial = state;
    partial.erase(partial.begin());  // drops adam.exp_avg.0.0
    std::string msg;
    try {
        opt.load_state(partial);
    } catch (const std::invalid_argument& e) {
        msg = e.what();
    }
    INFO("message: " << msg);
    CHECK(msg.find("group 0, parameter 0: exp_avg, exp_avg_sq and step must come together") != std::string::npos);

    auto bad_step = state;
    bad_step[2].second[0] = 0.5f;
    CHECK_THROWS_WITH_AS(opt.load_state(bad_step), doctest::Contains("adam.step.0.0: not a positive whole number"),
                         std::invalid_argument);
    CHECK(opt.state()[2].second[0] == 1.0f);
    CHECK_THROWS_AS(Adam({ParamGroup{{p[0]}}}, {.beta1 = 1.0}), std::invalid_argument);
}

#include "ironclad/optim/sgd.hpp"
#include "golden_problem.hpp"

#include "ironclad/io/safetensors.hpp"

#include <doctest/doctest.h>

#include <cstring>
#include <functional>
#include <string>

using namespace ironclad;

using namespace ironclad::testing;

TEST_CASE("sgd: three steps match torch.optim.SGD") {
    SUBCASE("plain") {
        auto p = initial_params();
        Sgd opt(golden_groups(p, std::nullopt), {.lr = 0.1f, .weight_decay = 0.01f});
        run_steps(opt, p, 0, 3);
        check_golden(p, {0.481345236f, -0.890132368f, 0.182189614f, 1.26544547f, -0.647968769f, 1.70635867f,
                         0.121201567f, -0.204253122f, 0.262689054f, 0.969999969f, -0.945375025f});
    }
    SUBCASE("momentum with dampening") {
        auto p = initial_params();
        Sgd opt(golden_groups(p, 0.01f), {.lr = 0.1f, .momentum = 0.9f, .dampening = 0.1f});
        run_steps(opt, p, 0, 3);
        check_golden(p, {0.521045566f, -0.846762955f, 0.18296054f, 1.03253853f, -0.610805571f, 1.52828014f,
                         0.164985761f, -0.228920028f, 0.260690659f, 0.97299999f, -0.935837507f});
    }
    SUBCASE("nesterov") {
        auto p = initial_params();
        Sgd opt(golden_groups(p, 0.01f), {.lr = 0.1f, .momentum = 0.9f, .nesterov = true});
        run_steps(opt, p, 0, 3);
        check_golden(p, {0.490482807f, -0.752693236f, 0.113565423f, 0.866343379f, -0.52292645f, 1.28048098f,
                         0.177079439f, -0.230324179f, 0.222967729f, 0.943000019f, -0.884703755f});
    }
}

TEST_CASE("sgd: one step by hand; a group with weight decay 0 is unaffected by the default") {
    Var a(Tensor<float>({2}, {1.0f, -2.0f}), true), b(Tensor<float>({1}, {3.0f}), true);
    Sgd opt({ParamGroup{{a}}, ParamGroup{{b}, 0.0f}}, {.lr = 0.5f, .momentum = 0.9f, .weight_decay = 0.1f});
    a.grad_buffer().fill(1.0f);
    b.grad_buffer().fill(1.0f);
    opt.step();
    CHECK(a.value()[0] == doctest::Approx(1.0f - 0.5f * (1.0f + 0.1f * 1.0f)));
    CHECK(a.value()[1] == doctest::Approx(-2.0f - 0.5f * (1.0f - 0.1f * 2.0f)));
    CHECK(b.value()[0] == 2.5f);
    // Second step: buf = 0.9 * 1 + 1 = 1.9.
    b.grad_buffer().fill(1.0f);
    opt.step();
    CHECK(b.value()[0] == doctest::Approx(2.5f - 0.5f * 1.9f));
}

TEST_CASE("sgd: parameters without a gradient are skipped; zero_grad drops gradients") {
    Var used(Tensor<float>({2}, 1.0f), true), unused(Tensor<float>({2}, 1.0f), true);
    Sgd opt({ParamGroup{{used, unused}}}, {.lr = 0.1f, .momentum = 0.9f, .weight_decay = 0.5f});
    used.grad_buffer().fill(2.0f);
    opt.step();
    CHECK(unused.value()[0] == 1.0f);  // weight decay alone does not move it: torch skips it too
    CHECK(used.value()[0] == doctest::Approx(1.0f - 0.1f * 2.5f));
    const auto state = opt.state();
    REQUIRE(state.size() == 1);
    CHECK(state[0].first == "sgd.momentum.0.0");
    opt.zero_grad();
    CHECK_FALSE(used.grad().defined());
}

TEST_CASE("sgd: exported state resumes identically, through a safetensors checkpoint") {
    auto reference = initial_params();
    Sgd straight(golden_groups(reference, 0.01f), {.lr = 0.1f, .momentum = 0.9f, .nesterov = true});
    run_steps(straight, reference, 0, 4);

    auto first = initial_params();
    Sgd before(golden_groups(first, 0.01f), {.lr = 0.1f, .momentum = 0.9f, .nesterov = true});
    run_steps(before, first, 0, 2);
    const auto state = before.state();
    CHECK(state.size() == 3);
    const auto checkpoint = parse_safetensors(serialize_safetensors(state));

    std::vector<Var> resumed;
    for (const auto& p : first) resumed.emplace_back(p.value().clone(), true);
    Sgd after(golden_groups(resumed, 0.01f), {.lr = 0.1f, .momentum = 0.9f, .nesterov = true});
    after.load_state({checkpoint.tensors.begin(), checkpoint.tensors.end()});
    run_steps(after, resumed, 2, 4);
    const auto want = flat(reference), got = flat(resumed);
    CHECK(std::memcmp(want.data(), got.data(), want.size() * sizeof(float)) == 0);

    // Without the state the continuation differs: the test above can fail.
    std::vector<Var> fresh;
    for (const auto& p : first) fresh.emplace_back(p.value().clone(), true);
    Sgd cold(golden_groups(fresh, 0.01f), {.lr = 0.1f, .momentum = 0.9f, .nesterov = true});
    run_steps(cold, fresh, 2, 4);
    CHECK(flat(fresh) != want);
}

TEST_CASE("sgd: invalid state and configurations are rejected with names") {
    auto p = initial_params();
    Sgd opt(golden_groups(p, 0.01f), {.lr = 0.1f, .momentum = 0.9f});
    run_steps(opt, p, 0, 1);
    const auto good = opt.state();
    const std::string msg = error_of([&] {
        opt.load_state({{"sgd.momentum.0.0", Tensor<float>({3, 2})},
                        {"sgd.momentum.1.5", Tensor<float>({2})},
                        {"sgd.velocity.0.0", Tensor<float>({2, 3})},
                        {"adam.exp_avg.0.0", Tensor<float>({2, 3})}});
    });
    INFO("message: " << msg);
    CHECK(msg.find("4 problem(s)") != std::string::npos);
    CHECK(msg.find("sgd.momentum.0.0: state has [3,2], parameter expects [2,3]") != std::string::npos);
    CHECK(msg.find("sgd.momentum.1.5: no parameter 5 in group 1") != std::string::npos);
    CHECK(msg.find("sgd.velocity.0.0: not a sgd state entry") != std::string::npos);
    CHECK(msg.find("adam.exp_avg.0.0: not a sgd state entry") != std::string::npos);
    // The failed load changed nothing.
    const auto after = opt.state();
    REQUIRE(after.size() == good.size());
    for (std::size_t i = 0; i < good.size(); ++i) CHECK(after[i].second[0] == good[i].second[0]);

    CHECK_THROWS_AS(Sgd({ParamGroup{{p[0]}}, ParamGroup{{p[0]}}}, {.lr = 0.1f}), std::invalid_argument);
    CHECK_THROWS_AS(Sgd({ParamGroup{{p[0]}}}, {.lr = 0.1f, .nesterov = true}), std::invalid_argument);
    CHECK_THROWS_AS(Sgd({ParamGroup{{p[0]}, -1.0f}}, {.lr = 0.1f}), std::invalid_argument);
    CHECK_THROWS_AS(opt.set_lr(-1), std::invalid_argument);
    opt.set_lr(0.25f);
    CHECK(opt.lr() == 0.25f);
}

TEST_CASE("sgd: a large parameter (threaded update) matches the scalar rule") {
    const std::int64_t n = 200000;
    Var w(Tensor<float>({n}), true);
    for (std::int64_t k = 0; k < n; ++k) w.value()[k] = static_cast<float>(k % 13) - 6.0f;
    const Tensor<float> w0 = w.value().clone();
    Sgd opt({ParamGroup{{w}}}, {.lr = 0.01f, .momentum = 0.9f, .weight_decay = 1e-3f});
    for (int t = 0; t < 2; ++t) {
        Tensor<float>& g = w.grad_buffer();
        for (std::int64_t k = 0; k < n; ++k) g[k] = static_cast<float>((k + t) % 7) * 0.25f;
        opt.step();
    }
    for (std::int64_t k : {0L, 1L, 99999L, n - 1}) {
        float x = w0[k], buf = 0;
        for (int t = 0; t < 2; ++t) {
            const float d = static_cast<float>((k + t) % 7) * 0.25f + 1e-3f * x;
            buf = t == 0 ? d : 0.9f * buf + d;
            x -= 0.01f * buf;
        }
        CAPTURE(k);
        CHECK(w.value()[k] == doctest::Approx(x).epsilon(1e-6));
    }
}

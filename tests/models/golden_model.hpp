// PyTorch parity of a zoo model against tests/golden/models/<tag>.json (written by
// scripts/golden/models_golden.py; its docstring defines the weights, the input and the recorded fields).
#pragma once

#include "../golden/ops/golden.inc"
#include "ironclad/io/safetensors.hpp"
#include "ironclad/models/registry.hpp"
#include "ironclad/models/summary.hpp"

#include <doctest/doctest.h>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <cmath>
#include <fstream>
#include <map>
#include <string>
#include <vector>

namespace ironclad::testing {

inline nlohmann::json load_model_golden(const std::string& tag) {
    const std::string path = std::string(IRONCLAD_SOURCE_DIR) + "/tests/golden/models/" + tag + ".json";
    std::ifstream in(path);
    REQUIRE_MESSAGE(in.good(), "missing golden file " << path);
    return nlohmann::json::parse(in);
}

inline std::uint32_t fnv1a32(const std::string& text) {
    std::uint32_t h = 2166136261u;
    for (unsigned char c : text) h = (h ^ c) * 16777619u;
    return h;
}

// The golden weights of the script, keyed by PyTorch's state_dict names and shapes (not the model's own).
inline SafetensorsFile golden_checkpoint(const nlohmann::json& golden) {
    SafetensorsFile file{"golden " + golden["model"].get<std::string>(), {}, {}, {}};
    for (const auto& entry : golden["state_dict"]) {
        const auto name = entry[0].get<std::string>();
        Tensor<float> t = golden_input(entry[1].get<Shape>(), fnv1a32(name));
        const bool role_is_scale = name.ends_with("running_var") || name.ends_with(".weight");
        const double fan_in = t.ndim() >= 2 ? static_cast<double>(t.numel() / t.dim(0)) : 0.0;
        for (float& v : t) {
            const double g = v;
            v = static_cast<float>(fan_in > 0 ? g * std::sqrt(6.0 / fan_in) : role_is_scale ? 1.0 + g / 4 : g / 8);
        }
        file.tensors.emplace(name, t);
        file.order.push_back(name);
    }
    return file;
}

// |actual - expected| <= 1e-4 * max(1, max |expected|): errors of float32 sums scale with the tensor's size.
inline void check_close(const std::vector<float>& actual, const std::vector<float>& expected, const std::string& what) {
    CAPTURE(what);
    REQUIRE(actual.size() == expected.size());
    float scale = 1.0f;
    for (float e : expected) scale = std::max(scale, std::abs(e));
    std::size_t mismatches = 0, first = 0;
    for (std::size_t i = 0; i < actual.size(); ++i)
        if (!(std::abs(actual[i] - expected[i]) <= 1e-4f * scale) && mismatches++ == 0) first = i;
    CAPTURE(first);
    CHECK(mismatches == 0);
}

// Lists that must be equal (names, "name [shape]"), reported at their first difference.
inline void check_same_list(const std::vector<std::string>& actual, const std::vector<std::string>& expected,
                            const std::string& what) {
    CAPTURE(what);
    CHECK(actual.size() == expected.size());
    const auto diff = std::mismatch(actual.begin(), actual.end(), expected.begin(), expected.end());
    if (diff.first != actual.end() && diff.second != expected.end()) CHECK(*diff.first == *diff.second);
}

struct Probe {
    std::string name;
    Tensor<float> output;
};

// Builds `name` from the registry for the golden's input, loads the golden weights by PyTorch's names and
// compares names, counts, per-layer shapes, activations and logits. expected_relus: from the spec.
inline void check_model_parity(const std::string& name, const std::string& tag, std::size_t expected_relus) {
    const nlohmann::json golden = load_model_golden(tag);
    CAPTURE(tag);
    REQUIRE(golden["model"] == name);
    ModelConfig cfg;
    cfg.in_channels = golden["in_channels"];
    cfg.input_size = golden["input_size"];
    cfg.num_classes = golden["num_classes"];
    cfg.shortcut = golden["shortcut"] == "A" ? Shortcut::A : Shortcut::B;
    auto model = build_model(name, cfg);

    std::vector<std::string> names, torch_names;
    std::vector<std::pair<std::string, Tensor<float>*>> targets;
    auto state = model->state_dict();
    for (auto& [n, t] : state) {
        names.push_back(n + " " + shape_str(t.shape()));
        targets.emplace_back(n, &t);
    }
    for (const auto& entry : golden["state_dict"])
        torch_names.push_back(entry[0].get<std::string>() + " " + shape_str(entry[1].get<Shape>()));
    check_same_list(names, torch_names, "state_dict");
    load_into(golden_checkpoint(golden), targets, true);

    std::vector<std::string> relus;
    for (auto& [n, slot] : activation_slots(*model)) relus.push_back(n);
    CHECK(relus.size() == expected_relus);
    check_same_list(relus, golden["relus"].get<std::vector<std::string>>(), "activation slots");

    const Shape one{1, cfg.in_channels, cfg.input_size, cfg.input_size};
    const ModelSummary summary = summarize(*model, one);
    CHECK(summary.params == golden["params"].get<std::int64_t>());
    CHECK(summary.macs == golden["macs"].get<std::int64_t>());
    REQUIRE(summary.layers.size() == golden["layers"].size());
    for (std::size_t i = 0; i < summary.layers.size(); ++i) {
        const auto& layer = summary.layers[i];
        const auto& row = golden["layers"][i];
        CAPTURE(row.dump());
        CHECK(layer.name == row[0]);
        CHECK(layer.type == row[1]);
        CHECK(layer.output_shape == row[2].get<Shape>());
        CHECK(layer.params == row[3].get<std::int64_t>());
        CHECK(layer.macs == row[4].get<std::int64_t>());
    }

    std::vector<Probe> probes;
    for (const auto& a : golden["activations"]) probes.push_back({a["name"], {}});
    for (auto& probe : probes) {
        auto modules = model->named_modules();
        auto it = std::find_if(modules.begin(), modules.end(), [&](auto& m) { return m.first == probe.name; });
        REQUIRE_MESSAGE(it != modules.end(), "no module " << probe.name);
        it->second->set_output_hook([&probe](Tensor<float>& y) { probe.output = y.clone(); });
    }
    model->eval();
    const std::int64_t batch = golden["batch"];
    Var logits;
    {
        NoGradGuard no_grad;
        logits = (*model)(Var(golden_input({batch, cfg.in_channels, cfg.input_size, cfg.input_size}, 1)));
    }
    CHECK(logits.shape() == Shape{batch, cfg.num_classes});
    check_close(std::vector<float>(logits.value().begin(), logits.value().end()),
                golden["logits"].get<std::vector<float>>(), "logits");

    for (std::size_t k = 0; k < probes.size(); ++k) {
        const auto& a = golden["activations"][k];
        const Tensor<float>& y = probes[k].output;
        REQUIRE_MESSAGE(y.numel() > 0, "module " << probes[k].name << " never ran");
        CHECK(y.shape() == a["shape"].get<Shape>());
        const auto stride = a["stride"].get<std::int64_t>();
        const auto expected = a["samples"].get<std::vector<float>>();
        std::vector<float> samples;
        for (std::size_t i = 0; i < expected.size(); ++i)
            samples.push_back(y[static_cast<std::int64_t>(i) * stride]);
        check_close(samples, expected, probes[k].name);
        double sum = 0, sum_abs = 0;
        for (float v : y) {
            sum += v;
            sum_abs += std::abs(v);
        }
        const double n = static_cast<double>(y.numel()), mean_abs = a["mean_abs"];
        CHECK(std::abs(sum / n - a["mean"].get<double>()) <= 1e-4 * mean_abs);
        CHECK(std::abs(sum_abs / n - mean_abs) <= 1e-4 * mean_abs);
    }
}

}  // namespace ironclad::testing

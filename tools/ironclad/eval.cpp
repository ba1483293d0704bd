// ironclad eval: top-1, top-5 and loss of trained weights on a dataset split, in float, in fixed-point storage
// emulation, or in exact integer fixed-point arithmetic (with its overflow counts per layer).
#include "commands.hpp"
#include "common.hpp"
#include "report.hpp"

#include "ironclad/exact/exact_network.hpp"
#include "ironclad/inference/inference_plan.hpp"
#include "ironclad/nn/number_format.hpp"
#include "ironclad/training/checkpoint.hpp"
#include "ironclad/training/evaluate.hpp"

#include <nlohmann/json.hpp>

#include <chrono>
#include <cstdio>
#include <iostream>

namespace ironclad::cli {

int run_eval(const std::vector<std::string>& args) {
    Options o("eval", "--model NAME --weights FILE --data PATH [options]",
              "Evaluates trained weights on one split of a dataset: top-1 and top-5 accuracy (percent) and mean\n"
              "cross-entropy. Classes, channels and image size come from the dataset; the shortcut type and, unless\n"
              "given, the normalisation from the weights file's metadata.");
    o.required("model", "NAME", "architecture (see ironclad models)")
        .required("weights", "FILE", ".safetensors weights, e.g. written by ironclad train")
        .required("data", "PATH", "dataset folder: train/ and test/ image folders, CIFAR binary, or IDX")
        .value("format", "FORMAT", "storage format: float, or fixed point qI.F, e.g. q15.16", "float")
        .value("arith", "emulate|exact",
               "fixed point: emulate (float compute on stored values) or exact (integer arithmetic)", "emulate")
        .value("accumulator", "BITS[-sat|-wrap]", "exact arithmetic's multiply-accumulate register", "64-sat");
    add_split_options(o, "evaluate", "256");
    o.flag("progress", "show progress on stderr even when it is not a terminal")
        .flag("json", "print the result as JSON on stdout");
    if (!o.parse(args)) {
        std::cout << o.help();
        return 0;
    }

    const std::string model_name = o.text("model"), weights = o.text("weights"), data = o.text("data");
    require_known_model(model_name);
    const auto [split, limit, batch] = split_selection(o);
    NumberFormat format;
    try {
        format = parse_number_format(o.text("format"));
    } catch (const std::invalid_argument& e) {
        throw UsageError(std::string("--format: ") + e.what());
    }
    const std::string arith = o.text("arith");
    if (arith != "emulate" && arith != "exact") o.reject("arith", "expected emulate or exact");
    if (o.given("accumulator") && arith != "exact") throw UsageError("--accumulator applies to --arith exact only");
    ExactArithmetic exact;
    if (arith == "exact") {
        if (format.is_float()) o.reject("format", "--arith exact needs a fixed-point format such as q15.16");
        exact.format = format;
        try {
            parse_accumulator(o.text("accumulator"), exact);
            exact.validate();
        } catch (const std::invalid_argument& e) {
            o.reject("accumulator", e.what());
        }
    }
    apply_threads(o);

    TrainedModel trained = load_trained_model(o, model_name, weights, data, split == "train", limit);
    auto& model = trained.model;
    const Dataset& ds = trained.data;
    const auto* norm = &trained.norm;
    quantize_parameters(*model, format);
    std::shared_ptr<ExactNetwork> network;
    std::shared_ptr<Module> evaluated = model;
    if (arith == "exact") {
        model->eval();
        try {
            network = std::make_shared<ExactNetwork>(*model, flatten_stages(*model), exact);
        } catch (const std::invalid_argument& e) {
            throw UsageError(std::string("--arith exact: ") + e.what());
        }
        evaluated = std::make_shared<ExactModule>(network);
    } else {
        quantize_activations(*model, format);
    }

    LoaderOptions lo;
    lo.batch_size = batch;
    lo.mean = norm->mean;
    lo.std = norm->std;
    const std::int64_t batches = (ds.size() + batch - 1) / batch;
    Progress progress(o.given("progress") || stderr_is_terminal(), "eval");
    const auto t0 = std::chrono::steady_clock::now();
    const EvalResult r = evaluate_planned(*evaluated, ds, lo, [&](std::int64_t done, std::int64_t) {
        progress.update((done + batch - 1) / batch, batches, done);
    });
    const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    progress.finish();

    if (o.given("json")) {
        nlohmann::ordered_json j;
        j["model"] = model_name;
        j["weights"] = weights;
        j["data"] = data;
        j["split"] = split;
        j["format"] = format.name();
        if (network) {
            j["arith"] = {{"mode", "exact"}, {"accumulator", exact.accumulator_name()}};
            nlohmann::ordered_json layers = nlohmann::ordered_json::object();
            for (auto& [layer, c] : network->counts())
                if (c.total()) layers[layer] = {{"accumulator", c.accumulator}, {"narrowing", c.narrowing}};
            j["saturation"] = layers;
        } else {
            j["arith"] = "emulate";
        }
        j["limit"] = limit > 0 ? nlohmann::ordered_json(limit) : nlohmann::ordered_json(nullptr);
        j["mean"] = json_reals(norm->mean);
        j["std"] = json_reals(norm->std);
        j["images"] = r.images;
        j["top1"] = r.top1;
        j["top5"] = r.top5;
        j["loss"] = r.loss;
        j["seconds"] = seconds;
        j["images_per_s"] = static_cast<double>(r.images) / seconds;
        std::cout << json_text(j);
    } else {
        std::printf(
            "%s (%s) on %s, %s split, %lld images: top-1 %.2f%%  top-5 %.2f%%  loss %.4f  (%.1f s, %.0f images/s)\n",
            model_name.c_str(), format.name().c_str(), data.c_str(), split.c_str(), static_cast<long long>(r.images),
            r.top1, r.top5, r.loss, seconds, static_cast<double>(r.images) / seconds);
        if (network) {
            std::int64_t events = 0;
            for (auto& [layer, c] : network->counts()) events += c.total();
            std::printf("exact arithmetic, accumulator %s: %lld overflow events (per layer with --json)\n",
                        exact.accumulator_name().c_str(), static_cast<long long>(events));
        }
    }
    return 0;
}

}  // namespace ironclad::cli

// ironclad harden: replaces every ReLU of trained weights by a bounded ReLU whose bounds come from Ranger,
// FT-ClipAct, FitAct or ProAct (bounds/harden.hpp), and writes a checkpoint with the bounds that eval, inject and
// compare load back by slot name.
#include "commands.hpp"
#include "common.hpp"
#include "report.hpp"

#include "ironclad/bounds/harden.hpp"
#include "ironclad/version.hpp"

#include <nlohmann/json.hpp>

#include <cstdio>
#include <filesystem>
#include <iostream>

namespace ironclad::cli {

int run_harden(const std::vector<std::string>& args) {
    Options o("harden", "--model NAME --weights FILE --data PATH --method METHOD --out FILE [options]",
              "Bounds every ReLU slot of trained weights: the bound of each slot (per layer, channel or neuron)\n"
              "comes from the training split (--data must have one): ranger = the largest activation over\n"
              "--calibration images; ftclipact = a per-layer interval search maximising accuracy under weight faults\n"
              "(Q15.16, the toolbox's fault counts) on those images; fitact = Ranger's bounds trained jointly by\n"
              "gradient descent (smooth bounded ReLU); proact = trained slot by slot from the output back, with\n"
              "distillation to the unbounded model, keeping a slot's bounds only while top-1 on --held-out training\n"
              "images stays within --tolerance points of the Ranger model. Writes weights and bounds to --out.");
    o.required("model", "NAME", "architecture (see ironclad models)")
        .required("weights", "FILE", ".safetensors weights of the unbounded model")
        .required("data", "PATH", "dataset folder with a train split (image folders, CIFAR binary or IDX)")
        .required("method", "ranger|ftclipact|fitact|proact", "how the bounds are found")
        .required("out", "FILE", "checkpoint to write (weights, bounds, and their description in the metadata)")
        .value("mode", "zero|clamp|threshold|smooth",
               "what happens above the bound (default: zero for ranger/ftclipact, smooth for fitact/proact)")
        .value("granularity", "layer|channel|neuron|hybrid",
               "one bound per layer, channel or neuron; hybrid = --last-granularity for the last slot, layer "
               "elsewhere (default: layer for ranger/ftclipact, neuron for fitact, hybrid for proact)")
        .value("last-granularity", "layer|channel|neuron", "the last slot's granularity with hybrid", "neuron")
        .value("k", "K", "steepness of the smooth mode", "20")
        .value("calibration", "N", "calibration images drawn from the train split", "1024")
        .value("train-images", "N", "fitact/proact: training images drawn from the train split", "5000")
        .value("held-out", "N", "fitact/proact: held-out training images for the accuracy check", "1000")
        .value("epochs", "N", "fitact: epochs over the training images", "3")
        .value("lr", "LR", "fitact/proact: Adam learning rate (default: 1e-3 fitact, 0.1 proact)")
        .value("weight-decays", "W,...", "proact: the weight-decay sweep per slot, strong to weak", "4e-5,4e-6,4e-7")
        .value("rounds", "N", "proact: rounds (epochs over the training images) per weight decay at most", "2")
        .value("tolerance", "P", "proact: top-1 points a kept round may lose against the Ranger model", "0.2")
        .value("augment", "crop,flip|crop|flip|none", "fitact/proact: augmentation of the training images",
               "crop,flip")
        .value("search-images", "N", "ftclipact: run the search's campaigns on the first N calibration images "
                                     "(default: all)")
        .value("rates", "R,...", "ftclipact: fault rates of the search", "1e-7,1e-6,3e-6,1e-5,3e-5")
        .value("trials", "N", "ftclipact: fault maps per rate", "5")
        .value("iterations", "N", "ftclipact: interval-search iterations at most (N)", "4")
        .value("min-iterations", "M", "ftclipact: iterations before the search may stop (M)", "3")
        .value("delta", "D", "ftclipact: stop once neighbouring candidates' AUCs differ by at most D points", "0.2")
        .value("format", "FORMAT", "ftclipact: storage format of the faulted weights", "q15.16")
        .value("count-mode", "reference|exact", "ftclipact: the toolbox's per-tensor counts or exact BER",
               "reference")
        .value("seed", "S", "seed of the subsets, training order and fault maps", "0");
    add_input_options(o);
    o.flag("progress", "show progress on stderr even when it is not a terminal")
        .flag("json", "print a report as JSON on stdout");
    if (!o.parse(args)) {
        std::cout << o.help();
        return 0;
    }

    // Every option is checked before any file is read.
    const std::string model_name = o.text("model"), weights = o.text("weights"), data = o.text("data"),
                      out = o.text("out");
    require_known_model(model_name);
    HardenOptions h;
    try {
        h.method = parse_harden_method(o.text("method"));
        h.mode = o.given("mode") ? parse_bound_mode(o.text("mode")) : default_bound_mode(h.method);
        h.granularity = o.given("granularity") ? o.text("granularity") : default_granularity(h.method);
        granularity_plan(1, h.granularity);  // checks the name
        h.hybrid_last = parse_bound_granularity(o.text("last-granularity"));
        h.ftclipact.fault.format = parse_storage_format(o.text("format"));
    } catch (const std::invalid_argument& e) {
        throw UsageError(e.what());
    }
    if (h.method == HardenMethod::ftclipact && h.granularity != "layer")
        o.reject("granularity", "ftclipact searches one bound per layer: use layer");
    const bool trains = h.method == HardenMethod::fitact || h.method == HardenMethod::proact;
    if (trains && h.mode == BoundMode::threshold)
        o.reject("mode", "fitact and proact train smooth bounds; threshold is for ranger and ftclipact");
    h.k = static_cast<float>(o.real("k"));
    if (!(h.k > 0)) o.reject("k", "must be positive");
    h.subsets.calibration = o.integer("calibration", 1);
    h.subsets.train = o.integer("train-images", 1);
    h.subsets.held_out = o.integer("held-out", 1);
    h.seed = o.unsigned_integer("seed");
    const std::int64_t batch = o.integer("batch", 1);
    h.eval_loader.batch_size = batch;

    const std::string augment = o.text("augment");
    if (augment != "crop,flip" && augment != "flip,crop" && augment != "crop" && augment != "flip" && augment != "none")
        o.reject("augment", "expected crop,flip, crop, flip or none");
    LoaderOptions train_loader;
    train_loader.batch_size = batch;
    train_loader.shuffle = true;
    train_loader.seed = h.seed;
    train_loader.augment_crop_pad = augment.find("crop") != std::string::npos ? 4 : 0;
    train_loader.augment_flip = augment.find("flip") != std::string::npos;
    if (trains && h.subsets.train < batch) o.reject("train-images", "must be at least one batch (--batch)");

    h.fitact.epochs = static_cast<int>(o.integer("epochs", 1));
    h.fitact.loader = train_loader;
    h.proact.round.loader = train_loader;
    h.proact.seed = h.seed;
    if (o.given("lr")) {
        const auto lr = static_cast<float>(o.real("lr"));
        if (!(lr > 0)) o.reject("lr", "must be positive");
        h.fitact.lr = h.proact.round.lr = lr;
    }
    h.proact.weight_decays = o.reals("weight-decays");
    for (float wd : h.proact.weight_decays)
        if (!(wd >= 0)) o.reject("weight-decays", "must not be negative");
    h.proact.max_rounds = static_cast<int>(o.integer("rounds", 1));
    h.proact.tolerance = o.real("tolerance");
    if (h.proact.tolerance < 0) o.reject("tolerance", "must not be negative");

    if (o.given("search-images")) h.search_images = o.integer("search-images", 1);
    h.ftclipact.rates = rate_list(o, "rates");
    h.ftclipact.trials = static_cast<int>(o.integer("trials", 1));
    h.ftclipact.iterations = static_cast<int>(o.integer("iterations", 1));
    h.ftclipact.min_iterations = static_cast<int>(o.integer("min-iterations", 1));
    if (h.ftclipact.min_iterations > h.ftclipact.iterations)
        o.reject("min-iterations", "must not exceed --iterations");
    h.ftclipact.delta = o.real("delta");
    if (h.ftclipact.delta < 0) o.reject("delta", "must not be negative");
    const std::string count_mode = o.text("count-mode");
    if (count_mode != "reference" && count_mode != "exact") o.reject("count-mode", "expected reference or exact");
    h.ftclipact.fault.count_mode = count_mode == "reference" ? CountMode::reference : CountMode::ber;
    h.ftclipact.fault.seed = h.seed;

    const auto folder = std::filesystem::path(out).parent_path();
    if (!folder.empty() && !std::filesystem::is_directory(folder))
        o.reject("out", "folder " + folder.string() + " does not exist");
    apply_threads(o);

    TrainedModel trained = load_trained_model(o, model_name, weights, data, true, 0);
    if (trained.metadata.count("bound_method"))
        throw UsageError(weights + " is already hardened (" + trained.metadata.at("bound_method") +
                         "): give the unbounded weights");
    h.eval_loader.mean = trained.norm.mean;
    h.eval_loader.std = trained.norm.std;
    const bool json = o.given("json");
    std::ostream& human = json ? std::cerr : std::cout;

    Progress progress(o.given("progress") || stderr_is_terminal(), "harden");
    HardenCallbacks cb;
    cb.on_stage = [&](const std::string& stage) { progress.restart(stage); };
    cb.on_step = [&](std::int64_t step, std::int64_t steps, double loss) {
        char line[120];
        std::snprintf(line, sizeof line, "step %lld/%lld  loss %.4f", static_cast<long long>(step),
                      static_cast<long long>(steps), loss);
        progress.status(line);
    };
    cb.on_campaign = [&](const std::string& slot, int iteration, float bound, double auc) {
        char line[200];
        std::snprintf(line, sizeof line, "%s iteration %d: bound %.4g  AUC %.2f", slot.c_str(), iteration, bound, auc);
        progress.status(line);
    };
    cb.on_round = [&](const std::string& slot, float wd, int round, double top1, bool kept) {
        progress.finish();
        human << "  " << slot << "  wd " << shortest(wd) << "  round " << round + 1 << ": held-out top-1 "
              << top1 << "%  " << (kept ? "kept" : "undone") << std::endl;  // a long run: show it as it goes
    };
    HardenReport report;
    try {
        report = harden(*trained.model, trained.data, h, cb);
    } catch (const std::invalid_argument& e) {  // a subset larger than the split, a model without slots
        throw UsageError(e.what());
    }
    progress.finish();

    Metadata metadata = trained.metadata;
    nlohmann::ordered_json options{{"calibration", report.calibration_images},
                                   {"train_images", report.train_images},
                                   {"held_out", report.held_out_images},
                                   {"seed", h.seed},
                                   {"source_weights", weights},
                                   {"engine", engine_version}};
    if (h.method == HardenMethod::fitact)
        options.update({{"epochs", h.fitact.epochs}, {"lr", h.fitact.lr}, {"augment", augment}});
    if (h.method == HardenMethod::proact)
        options.update({{"lr", h.proact.round.lr}, {"weight_decays", json_reals(h.proact.weight_decays)},
                        {"rounds", h.proact.max_rounds}, {"tolerance", h.proact.tolerance}, {"augment", augment}});
    if (h.method == HardenMethod::ftclipact)
        options.update({{"search_images", report.search_images}, {"rates", h.ftclipact.rates},
                        {"trials", h.ftclipact.trials},
                        {"iterations", h.ftclipact.iterations}, {"min_iterations", h.ftclipact.min_iterations},
                        {"delta", h.ftclipact.delta}, {"format", h.ftclipact.fault.format.name()},
                        {"count_mode", count_mode}});
    metadata["bound_options"] = json_text(options, -1);
    save_hardened_model(out, *trained.model, to_string(h.method), metadata);

    const auto slots = bounded_slots(*trained.model);
    const std::int64_t bound_params = bound_parameter_count(*trained.model);
    nlohmann::ordered_json j;
    j["model"] = model_name;
    j["weights"] = weights;
    j["out"] = out;
    j["method"] = to_string(h.method);
    j["mode"] = to_string(h.mode);
    j["granularity"] = h.granularity;
    j["options"] = options;
    j["bound_parameters"] = bound_params;
    j["slots"] = nlohmann::ordered_json::array();
    human << model_name << " hardened with " << to_string(h.method) << " (" << to_string(h.mode) << ", "
          << h.granularity << "): " << slots.size() << " slots, " << bound_params << " bound parameters, "
          << report.calibration_images << " calibration images\n";
    for (std::size_t i = 0; i < slots.size(); ++i) {
        const Tensor<float>& b = slots[i].bound;
        float lo = b[0], hi = b[0];
        double sum = 0;
        for (std::int64_t e = 0; e < b.numel(); ++e) {
            lo = std::min(lo, b[e]);
            hi = std::max(hi, b[e]);
            sum += b[e];
        }
        nlohmann::ordered_json s{{"slot", slots[i].slot},
                                 {"granularity", to_string(slots[i].granularity)},
                                 {"elements", b.numel()},
                                 {"mean", sum / static_cast<double>(b.numel())},
                                 {"min", lo},
                                 {"max", hi}};
        if (!report.ftclipact.empty())
            s.update({{"ranger_bound", report.ftclipact[i].ranger_bound}, {"auc", report.ftclipact[i].auc},
                      {"iterations", report.ftclipact[i].iterations}, {"campaigns", report.ftclipact[i].campaigns}});
        char line[200];
        std::snprintf(line, sizeof line, "  %-18s %-7s %6lld  mean %8.4f  [%.4f, %.4f]", slots[i].slot.c_str(),
                      to_string(slots[i].granularity), static_cast<long long>(b.numel()), sum / b.numel(), lo, hi);
        human << line;
        if (!report.ftclipact.empty())
            human << "  (ranger " << report.ftclipact[i].ranger_bound << ", AUC " << report.ftclipact[i].auc << ")";
        human << "\n";
        j["slots"].push_back(s);
    }
    if (h.method == HardenMethod::fitact) {
        j["fitact"] = {{"steps", report.fitact.steps}, {"final_loss", report.fitact.loss}};
        human << "fitact: " << report.fitact.steps << " steps, final loss " << report.fitact.loss << "\n";
        if (report.held_out_images > 0) {
            j["fitact"].update({{"start_top1", report.fitact_start_top1}, {"final_top1", report.fitact_final_top1}});
            human << "fitact: held-out top-1 " << report.fitact_start_top1 << "% (Ranger start) -> "
                  << report.fitact_final_top1 << "%\n";
        }
    }
    if (h.method == HardenMethod::proact) {
        j["proact"] = {{"reference_top1", report.proact.reference_top1}, {"final_top1", report.proact.final_top1}};
        human << "proact: held-out top-1 " << report.proact.reference_top1 << "% (Ranger start) -> "
              << report.proact.final_top1 << "%\n";
    }
    j["seconds"] = report.seconds;
    human << "wrote " << out << " (" << report.seconds << " s)\n";
    if (json) std::cout << json_text(j);
    return 0;
}

}  // namespace ironclad::cli

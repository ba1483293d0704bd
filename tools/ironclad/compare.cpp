// ironclad compare: the same fault campaign over several checkpoints (unbounded and hardened), in one table: method,
// bound parameters and their memory overhead, clean top-1 and top-1 at each rate with its interval (the reference
// tutorial's "Results of using different methods"), plus JSON and an SVG plot.
#include "commands.hpp"
#include "common.hpp"
#include "report.hpp"

#include "ironclad/bounds/bound_io.hpp"
#include "ironclad/fault/campaign.hpp"
#include "ironclad/fault/svg_plot.hpp"
#include "ironclad/io/atomic_file.hpp"
#include "ironclad/version.hpp"

#include <nlohmann/json.hpp>

#include <cstdio>
#include <filesystem>
#include <iostream>
#include <sstream>

namespace ironclad::cli {

namespace {

std::vector<std::string> comma_list(const std::string& text) {
    std::vector<std::string> out;
    std::stringstream ss(text);
    for (std::string item; std::getline(ss, item, ',');) out.push_back(item);
    return out;
}

std::string cell(double mean, double low, double high) {
    char buf[64];
    std::snprintf(buf, sizeof buf, "%.2f [%.1f, %.1f]", mean, low, high);
    return buf;
}

}  // namespace

int run_compare(const std::vector<std::string>& args) {
    Options o("compare", "--model NAME --weights A,B,... --data PATH [options]",
              "Runs one weight-fault campaign (same faults: same seed, rates and trials) on each checkpoint and\n"
              "prints one table: the hardening method and its bound parameters (with the memory they add to the\n"
              "weights), clean top-1, and the mean top-1 at each rate with its 95% interval. Checkpoints written by\n"
              "ironclad harden carry their bounds; others run unbounded.");
    o.required("model", "NAME", "architecture (see ironclad models)")
        .required("weights", "A,B,...", ".safetensors checkpoints, unbounded or hardened")
        .required("data", "PATH", "dataset folder: train/ and test/ image folders, CIFAR binary, or IDX")
        .value("labels", "A,B,...", "row names (default: each checkpoint's bound method, or 'unbounded')")
        .value("format", "FORMAT", "storage format whose bits flip: float, qI.F, int8, int8-channel", "q15.16")
        .value("rate", "R,...", "bit error rates", "1e-7,1e-6,3e-6,1e-5,3e-5")
        .value("count-mode", "reference|exact", "the toolbox's floor(elements x bits x R) faults per tensor, or "
                                                "independent flips with probability R", "reference")
        .value("trials", "N", "fault maps per rate", "30")
        .value("interval", "trials|pooled",
               "trials = Student t over per-trial top-1 (the spread between fault maps); pooled = Wilson over all "
               "(trial, image) pairs", "trials")
        .value("seed", "S", "seed of all fault draws", "0");
    add_split_options(o, "evaluate", "128", "each weights file's");
    o.value("json", "FILE", "write the full result as JSON")
        .value("plot", "FILE.svg", "write top-1 versus rate, one line per checkpoint")
        .flag("progress", "show progress on stderr even when it is not a terminal");
    if (!o.parse(args)) {
        std::cout << o.help();
        return 0;
    }

    const std::string model_name = o.text("model"), data = o.text("data");
    require_known_model(model_name);
    const auto files = comma_list(o.text("weights"));
    for (const auto& f : files)
        if (f.empty()) o.reject("weights", "empty file name in the list");
    const auto labels = o.given("labels") ? comma_list(o.text("labels")) : std::vector<std::string>{};
    if (o.given("labels") && labels.size() != files.size())
        o.reject("labels", "needs one label per checkpoint (" + std::to_string(files.size()) + ")");
    CampaignOptions co;
    try {
        co.fault.format = parse_storage_format(o.text("format"));
    } catch (const std::invalid_argument& e) {
        throw UsageError(e.what());
    }
    const std::string count_mode = o.text("count-mode");
    if (count_mode != "reference" && count_mode != "exact") o.reject("count-mode", "expected reference or exact");
    co.fault.count_mode = count_mode == "reference" ? CountMode::reference : CountMode::ber;
    co.levels = rate_list(o, "rate");
    co.fault.seed = o.unsigned_integer("seed");
    co.max_trials = co.min_trials = static_cast<int>(o.integer("trials", 1));
    const std::string interval = o.text("interval");
    if (interval != "pooled" && interval != "trials") o.reject("interval", "expected trials or pooled");
    co.interval = interval == "pooled" ? IntervalKind::pooled : IntervalKind::trials;
    const auto [split, limit, batch] = split_selection(o);
    for (const char* out : {"json", "plot"})
        if (o.given(out)) {
            const auto folder = std::filesystem::path(o.text(out)).parent_path();
            if (!folder.empty() && !std::filesystem::is_directory(folder))
                o.reject(out, "folder " + folder.string() + " does not exist");
        }
    apply_threads(o);

    const bool show = o.given("progress") || stderr_is_terminal();
    nlohmann::ordered_json rows = nlohmann::ordered_json::array();
    std::vector<Series> series;
    std::int64_t images = 0;
    for (std::size_t f = 0; f < files.size(); ++f) {
        TrainedModel trained = load_trained_model(o, model_name, files[f], data, split == "train", limit);
        const auto& meta = trained.metadata;
        auto meta_or = [&](const char* key, const char* fallback) {
            return meta.count(key) ? meta.at(key) : std::string(fallback);
        };
        const std::string method = meta_or("bound_method", "none");
        const std::string label = labels.empty() ? (method == "none" ? "unbounded" : method) : labels[f];
        LoaderOptions lo;
        lo.batch_size = batch;
        lo.mean = trained.norm.mean;
        lo.std = trained.norm.std;
        const EvalSet eval_set = make_eval_set(trained.data, lo);
        images = eval_set.size();
        const std::int64_t bound_params = bound_parameter_count(*trained.model);
        const std::int64_t weight_params = trained.model->parameter_count() - bound_params;

        Progress progress(show, label);
        CampaignCallbacks cb;
        cb.on_trial = [&](const LevelResult& r, int max_trials) {
            char line[160];
            std::snprintf(line, sizeof line, "rate %g: trial %zu/%d  top-1 %.2f%%", r.level, r.trials.size(),
                          max_trials, r.top1.mean);
            progress.status(line);
        };
        std::unique_ptr<Campaign> campaign;
        try {
            campaign = std::make_unique<Campaign>(*trained.model, eval_set, co);
        } catch (const std::invalid_argument& e) {
            throw UsageError(e.what());
        }
        const CampaignResult result = campaign->run(cb);
        progress.finish();

        nlohmann::ordered_json row{{"label", label},
                                   {"weights", files[f]},
                                   {"method", method},
                                   {"mode", meta_or("bound_mode", "none")},
                                   {"granularity", meta_or("bound_granularity", "none")},
                                   {"bound_parameters", bound_params},
                                   {"weight_parameters", weight_params},
                                   {"bound_bytes", bound_params * co.fault.format.bits() / 8},
                                   {"memory_overhead_percent",
                                    100.0 * static_cast<double>(bound_params) / static_cast<double>(weight_params)},
                                   {"top1", result.clean_top1},
                                   {"results", nlohmann::ordered_json::array()},
                                   {"seconds", result.seconds}};
        Series s;
        s.label = label;
        for (const LevelResult& r : result.levels) {
            row["results"].push_back({{"rate", r.level},
                                      {"trials", r.trials.size()},
                                      {"mean_top1", r.top1.mean},
                                      {"std_top1", r.top1.stddev},
                                      {"ci95_low", r.ci95_low()},
                                      {"ci95_high", r.ci95_high()},
                                      {"sdc_rate", r.sdc_rate},
                                      {"mean_faults", r.mean_faults},
                                      {"non_finite_images", r.non_finite_images}});
            s.x.push_back(r.level);
            s.y.push_back(r.top1.mean);
            s.y_low.push_back(r.ci95_low());
            s.y_high.push_back(r.ci95_high());
        }
        series.push_back(std::move(s));
        rows.push_back(std::move(row));
    }

    // The table, as Markdown.
    std::printf("%s, %s weights, %s fault counts, %d trials per rate, seed %llu, %lld images (%s interval)\n\n",
                model_name.c_str(), co.fault.format.name().c_str(), count_mode.c_str(), co.max_trials,
                static_cast<unsigned long long>(co.fault.seed), static_cast<long long>(images), interval.c_str());
    std::printf("| checkpoint | method | mode, granularity | bound parameters (memory) | clean top-1 |");
    for (double r : co.levels) std::printf(" %g |", r);
    std::printf("\n|---|---|---|---|---|");
    for (std::size_t i = 0; i < co.levels.size(); ++i) std::printf("---|");
    std::printf("\n");
    for (const auto& row : rows) {
        std::printf("| %s | %s | %s | %lld (+%.3f%%) | %.2f |", row["label"].get<std::string>().c_str(),
                    row["method"].get<std::string>().c_str(),
                    row["method"] == "none" ? "-"
                                            : (row["mode"].get<std::string>() + ", " +
                                               row["granularity"].get<std::string>()).c_str(),
                    static_cast<long long>(row["bound_parameters"].get<std::int64_t>()),
                    row["memory_overhead_percent"].get<double>(), row["top1"].get<double>());
        for (const auto& r : row["results"])
            std::printf(" %s |", cell(r["mean_top1"].get<double>(), r["ci95_low"].get<double>(),
                                      r["ci95_high"].get<double>()).c_str());
        std::printf("\n");
    }
    double seconds = 0;
    for (const auto& row : rows) seconds += row["seconds"].get<double>();
    std::printf("\ncampaigns: %.1f s\n", seconds);

    auto write_text = [](const std::string& path, const std::string& text) {
        write_file_atomic(path, std::as_bytes(std::span(text.data(), text.size())));
    };
    if (o.given("json")) {
        nlohmann::ordered_json j;
        j["engine"] = {{"name", "ironclad"}, {"version", engine_version}};
        j["model"] = model_name;
        j["data"] = data;
        j["split"] = split;
        j["images"] = images;
        j["fault_model"] = co.fault.to_json();
        j["trials"] = co.max_trials;
        j["interval"] = interval;
        j["rates"] = co.levels;
        j["rows"] = rows;
        write_text(o.text("json"), json_text(j));
    }
    if (o.given("plot")) {
        PlotAxes axes;
        axes.title = model_name + ": top-1 under " + co.fault.format.name() + " weight faults";
        axes.x_label = "bit error rate";
        axes.y_label = "top-1 (%)";
        axes.log_x = true;
        write_text(o.text("plot"), line_plot_svg(series, axes));
    }
    return 0;
}

}  // namespace ironclad::cli

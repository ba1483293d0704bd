// ironclad grid: top-1 over attack strengths x fault rates. Each row's attack is crafted on the fault-free
// (deployed) model, then a fault campaign evaluates the adversarial images at every rate, with its intervals.
#include "commands.hpp"
#include "common.hpp"
#include "report.hpp"
#include "threat_options.hpp"

#include "ironclad/adversarial/attack_grid.hpp"
#include "ironclad/fault/svg_plot.hpp"
#include "ironclad/io/atomic_file.hpp"
#include "ironclad/version.hpp"

#include <nlohmann/json.hpp>

#include <cmath>
#include <cstdio>
#include <iostream>

namespace ironclad::cli {

namespace {

std::string eps_label(float eps) {
    char buf[32];
    std::snprintf(buf, sizeof buf, "%g/255", static_cast<double>(eps) * 255.0);
    return eps == 0 ? "0" : buf;
}

}  // namespace

int run_grid(const std::vector<std::string>& args) {
    Options o("grid", "--model NAME --weights FILE --data PATH --rate R1,R2,... [--eps E1,E2,...] [options]",
              "Joint robustness to attacks and bit flips: for every attack strength (--eps), the attack is crafted on the\n"
              "fault-free model (weights stored in --format), then a fault campaign evaluates the adversarial images at\n"
              "every --rate (--trials trials each, with intervals). Row eps 0 is the plain campaign on the clean images;\n"
              "the 'no faults' column is the attack's robust top-1. With --craft faulted the attack is crafted again on\n"
              "every faulted model. Prints a table; --json and --plot (SVG heat map).");
    o.required("model", "NAME", "architecture (see ironclad models)")
        .required("weights", "FILE", ".safetensors weights")
        .required("data", "PATH", "dataset folder: train/ and test/ image folders, CIFAR binary, or IDX")
        .required("rate", "R,...", "bit error rates (columns)")
        .value("eps", "E,...", "attack strengths (rows), [0,1] pixel units", "0,1/255,2/255,4/255,8/255")
        .value("attack", "pgd|fgsm", "the attack of every row", "pgd")
        .value("norm", "linf|l2", "the norm of the threat model", "linf")
        .value("steps", "S", "PGD steps", "10")
        .value("step-fraction", "F", "PGD step size as a fraction of eps", "0.25")
        .value("restarts", "R", "PGD random restarts", "1")
        .value("random-start", "on|off", "PGD starts at a uniform random point of the ball", "on")
        .value("seed", "S", "seed of the attacks' random starts", "0")
        .value("craft", "clean|faulted", "craft the attack on the fault-free model, or again on every faulted model "
               "(weight faults only)", "clean")
        .value("format", "FORMAT", "storage format whose bits flip: float, qI.F (e.g. q15.16), int8, int8-channel", "q15.16")
        .value("site", "weights|activations|both", "where faults go", "weights")
        .value("count-mode", "exact|reference", "exact binomial counts, or the toolbox's floor(elements x bits x R)", "exact")
        .value("trials", "N", "fault trials per rate", "30")
        .value("fault-seed", "S", "seed of all fault draws (the same fault maps in every row)", "0")
        .value("interval", "pooled|trials", "interval reported: Wilson over (trial, image) pairs, or Student t over trials",
               "trials");
    add_split_options(o, "evaluate");
    o.value("json", "FILE", "write the grid as JSON (and keep FILE.state.row<k> to resume)")
        .value("plot", "FILE.svg", "write a heat map of the mean top-1")
        .flag("progress", "show progress on stderr even when it is not a terminal");
    if (!o.parse(args)) {
        std::cout << o.help();
        return 0;
    }

    const std::string model_name = o.text("model"), weights = o.text("weights"), data = o.text("data");
    require_known_model(model_name);
    GridOptions g;
    g.strengths = strength_list(o, "eps");
    const std::string attack = o.text("attack");
    if (attack != "pgd" && attack != "fgsm") o.reject("attack", "expected pgd or fgsm");
    g.fgsm = attack == "fgsm";
    g.attack.norm = norm_option(o);
    for (float eps : g.strengths) {
        if (eps < 0) o.reject("eps", "every strength must be non-negative");
        if (g.attack.norm == Norm::linf && eps > 1) o.reject("eps", "a Linf strength above 1 exceeds the [0,1] pixel range: write 8/255, not 8");
    }
    g.attack.steps = static_cast<int>(o.integer("steps", 1));
    g.step_fraction = static_cast<float>(o.real("step-fraction"));
    if (!(g.step_fraction > 0)) o.reject("step-fraction", "must be positive");
    g.attack.restarts = static_cast<int>(o.integer("restarts", 1));
    const std::string start = o.text("random-start");
    if (start != "on" && start != "off") o.reject("random-start", "expected on or off");
    g.attack.random_start = start == "on";
    g.attack.seed = o.unsigned_integer("seed");
    const std::string craft = o.text("craft");
    if (craft != "clean" && craft != "faulted") o.reject("craft", "expected clean or faulted");
    g.craft_on_faulted = craft == "faulted";
    CampaignOptions& co = g.campaign;
    try {
        co.fault.site = parse_fault_site(o.text("site"));
        co.fault.format = parse_storage_format(o.text("format"));
    } catch (const std::invalid_argument& e) {
        throw UsageError(e.what());
    }
    const std::string count_mode = o.text("count-mode");
    if (count_mode != "exact" && count_mode != "reference") o.reject("count-mode", "expected exact or reference");
    co.fault.count_mode = count_mode == "reference" ? CountMode::reference : CountMode::ber;
    co.fault.seed = o.unsigned_integer("fault-seed");
    if (g.craft_on_faulted && co.fault.faults_activations())
        o.reject("craft", "faulted needs --site weights (activation faults are drawn per image during evaluation)");
    try {
        co.fault.validate();
    } catch (const std::invalid_argument& e) {
        throw UsageError(e.what());
    }
    co.levels = rate_list(o, "rate");
    co.max_trials = static_cast<int>(o.integer("trials", 1));
    co.min_trials = std::min(co.max_trials, 2);
    co.store_activations = co.fault.faults_activations();
    const std::string interval = o.text("interval");
    if (interval != "pooled" && interval != "trials") o.reject("interval", "expected pooled or trials");
    co.interval = interval == "pooled" ? IntervalKind::pooled : IntervalKind::trials;
    const auto [split, limit, batch] = split_selection(o);
    g.batch_size = batch;
    for (const char* out : {"json", "plot"})
        if (o.given(out)) {
            const auto folder = std::filesystem::path(o.text(out)).parent_path();
            if (!folder.empty() && !std::filesystem::is_directory(folder))
                o.reject(out, "folder " + folder.string() + " does not exist");
        }
    apply_threads(o);

    TrainedModel trained = load_trained_model(o, model_name, weights, data, split == "train", limit);
    NormalizedModel model(trained.model, trained.norm.mean, trained.norm.std);
    co.identity = {{"model", model_name}, {"weights", weights}, {"weights_bytes", std::filesystem::file_size(weights)},
                   {"data", data}, {"split", split}, {"limit", limit}, {"levels", co.levels},
                   {"max_trials", co.max_trials}, {"engine", engine_version}};
    if (o.given("json")) co.state_file = o.text("json") + ".state";

    Progress progress(o.given("progress") || stderr_is_terminal(), "");
    GridCallbacks cb;
    cb.on_row = [&](std::size_t row, float eps) {
        progress.restart("eps " + eps_label(eps) + " (" + std::to_string(row + 1) + "/" + std::to_string(g.strengths.size()) + ")");
    };
    cb.on_attack_batch = [&](std::int64_t done, std::int64_t total) {
        progress.status("attack " + std::to_string(done) + "/" + std::to_string(total) + " images");
    };
    cb.campaign.on_trial = [&](const LevelResult& r, int max_trials) {
        char line[160];
        std::snprintf(line, sizeof line, "rate %g: trial %zu/%d  top-1 %.2f%%", r.level, r.trials.size(), max_trials, r.top1.mean);
        progress.status(line);
    };
    std::fprintf(stderr, "%s on %s (%lld images): %s x %zu strengths, %s faults in %s x %zu rates, %d trials\n",
                 model_name.c_str(), data.c_str(), static_cast<long long>(trained.data.size()), attack.c_str(),
                 g.strengths.size(), to_string(co.fault.site), co.fault.format.name().c_str(), co.levels.size(), co.max_trials);
    std::vector<GridRow> rows;
    try {
        rows = run_attack_grid(model, trained.data, g, cb);
    } catch (const std::invalid_argument& e) {  // an option the model cannot honour (e.g. no fault site)
        throw UsageError(e.what());
    }
    progress.finish();

    nlohmann::ordered_json j;
    j["engine"] = {{"name", "ironclad"}, {"version", engine_version}};
    j["model"] = model_name;
    j["weights"] = weights;
    j["data"] = data;
    j["split"] = split;
    j["images"] = trained.data.size();
    j["fault_model"] = co.fault.to_json();
    j["interval"] = interval;
    j["crafted_on"] = g.craft_on_faulted ? "faulted model" : "fault-free model";
    j["rows"] = nlohmann::ordered_json::array();
    HeatMap heat{"top-1 (%) under attack x faults, " + model_name + " " + co.fault.format.name(), "bit error rate",
                 "attack eps", {}, {"none"}, {}, "%"};
    for (double rate : co.levels) {
        char buf[32];
        std::snprintf(buf, sizeof buf, "%g", rate);
        heat.columns.push_back(buf);
    }
    std::printf("%-12s %10s", "eps \\ rate", "no faults");
    for (const auto& c : std::vector<std::string>(heat.columns.begin() + 1, heat.columns.end())) std::printf(" %24s", c.c_str());
    std::printf("\n");
    for (const GridRow& row : rows) {
        nlohmann::ordered_json rj{{"eps", row.eps}, {"eps_x255", row.eps * 255.0}, {"attack", row.attack},
                                  {"robust_top1", row.campaign.clean_top1}, {"attack_seconds", row.attack_seconds},
                                  {"campaign_seconds", row.campaign.seconds}, {"results", nlohmann::ordered_json::array()}};
        heat.rows.push_back(eps_label(row.eps));
        heat.values.push_back(row.campaign.clean_top1);
        std::printf("%-12s %10.2f", eps_label(row.eps).c_str(), row.campaign.clean_top1);
        for (const LevelResult& l : row.campaign.levels) {
            const double low = l.ci95_low(), high = l.ci95_high();
            rj["results"].push_back({{"rate", l.level}, {"trials", l.trials.size()}, {"mean_top1", l.top1.mean},
                                     {"std_top1", l.top1.stddev},
                                     {"ci95_low", std::isfinite(low) ? nlohmann::ordered_json(low) : nullptr},
                                     {"ci95_high", std::isfinite(high) ? nlohmann::ordered_json(high) : nullptr},
                                     {"sdc_rate", l.sdc_rate}, {"mean_faults", l.mean_faults}});
            heat.values.push_back(l.top1.mean);
            char cell[64];
            std::snprintf(cell, sizeof cell, "%.2f [%.2f, %.2f]", l.top1.mean, low, high);
            std::printf(" %24s", cell);
        }
        std::printf("\n");
        j["rows"].push_back(rj);
    }
    auto write_text = [](const std::string& path, const std::string& text) {
        write_file_atomic(path, std::as_bytes(std::span(text.data(), text.size())));
    };
    if (o.given("json")) write_text(o.text("json"), json_text(j));
    if (o.given("plot")) write_text(o.text("plot"), heat_map_svg(heat));
    return 0;
}

}  // namespace ironclad::cli

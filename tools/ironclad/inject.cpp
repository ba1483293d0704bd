// ironclad inject: a fault campaign (bit flips or stuck-at bits in weights and/or activations) over a grid of
// fault rates, with per-rate statistics, optional vulnerability maps, and JSON / CSV / SVG results.
#include "commands.hpp"
#include "common.hpp"
#include "report.hpp"

#include "ironclad/fault/campaign.hpp"
#include "ironclad/fault/svg_plot.hpp"
#include "ironclad/io/atomic_file.hpp"
#include "ironclad/version.hpp"

#include <nlohmann/json.hpp>

#include <cmath>
#include <cstdio>
#include <iostream>
#include <limits>
#include <sstream>

namespace ironclad::cli {
namespace {

// "LO-HI", one bit "K", or a named field of the format: sign, exponent, mantissa (float), integer, fraction (qI.F).
std::pair<int, int> parse_bits(const Options& o, const StorageFormat& f) {
    const std::string text = o.text("bits");
    const int top = f.bits() - 1;
    if (text == "sign") return {top, top};
    if (f.kind == StorageKind::float32 && text == "exponent") return {23, 30};
    if (f.kind == StorageKind::float32 && text == "mantissa") return {0, 22};
    if (f.kind == StorageKind::fixed && text == "integer") {
        if (f.fixed.int_bits == 0) o.reject("bits", f.name() + " has no integer bits");
        return {f.fixed.frac_bits, f.fixed.frac_bits + f.fixed.int_bits - 1};
    }
    if (f.kind == StorageKind::fixed && text == "fraction") {
        if (f.fixed.frac_bits == 0) o.reject("bits", f.name() + " has no fraction bits");
        return {0, f.fixed.frac_bits - 1};
    }
    const std::size_t dash = text.find('-');
    int lo = 0, hi = 0;
    const bool ok = dash == std::string::npos
                        ? parse_number(text, lo) && (hi = lo, true)
                        : parse_number(std::string_view(text).substr(0, dash), lo) &&
                              parse_number(std::string_view(text).substr(dash + 1), hi);
    if (!ok) o.reject("bits", "expected LO-HI, a bit number, or sign/exponent/mantissa/integer/fraction");
    if (lo < 0 || hi > top || lo > hi)
        o.reject("bits", "must lie within 0-" + std::to_string(top) + " (the bits of " + f.name() + ")");
    return {lo, hi};
}

std::vector<std::string> split_names(const std::string& text) {
    std::vector<std::string> out;
    std::stringstream ss(text);
    for (std::string item; std::getline(ss, item, ',');)
        if (!item.empty()) out.push_back(item);
    return out;
}

std::string level_text(double v) {
    char buf[32];
    std::snprintf(buf, sizeof buf, "%g", v);
    return buf;
}

std::string percent(double v) {
    char buf[32];
    std::snprintf(buf, sizeof buf, "%.2f", v);
    return buf;
}

// Overflow events per layer (those with any), divided by `per` (trials), and their total.
nlohmann::ordered_json saturation_json(const std::map<std::string, SaturationCounts>& counts, double per) {
    nlohmann::ordered_json layers = nlohmann::ordered_json::object();
    double total = 0;
    for (auto& [layer, c] : counts) {
        if (c.total() == 0) continue;
        layers[layer] = {{"accumulator", static_cast<double>(c.accumulator) / per},
                         {"narrowing", static_cast<double>(c.narrowing) / per}};
        total += static_cast<double>(c.total()) / per;
    }
    return {{"total", total}, {"layers", layers}};
}

nlohmann::ordered_json level_json(const LevelResult& r, CountMode mode, const CampaignResult& campaign, bool exact) {
    const double clean = campaign.clean_top1;
    nlohmann::ordered_json j;
    j[mode == CountMode::count ? "flips" : "rate"] = r.level;
    j["trials"] = r.trials.size();
    j["mean_top1"] = r.top1.mean;
    j["std_top1"] = r.top1.stddev;
    j["ci95_low"] = r.ci95_low();
    j["ci95_high"] = r.ci95_high();
    j["trials_ci95"] = {std::isfinite(r.top1.ci95_low) ? nlohmann::ordered_json(r.top1.ci95_low) : nullptr,
                        std::isfinite(r.top1.ci95_high) ? nlohmann::ordered_json(r.top1.ci95_high) : nullptr};
    j["pooled_ci95"] = {100 * r.pooled.low, 100 * r.pooled.high};
    j["accuracy_drop"] = clean - r.top1.mean;
    j["sdc_rate"] = r.sdc_rate;
    j["sdc_rate_on_correct"] = r.sdc_on_correct_rate;
    j["mean_faults"] = r.mean_faults;
    j["non_finite_images"] = r.non_finite_images;
    j["stopped_early"] = r.stopped_early;
    std::int64_t recomputed = 0, reused = 0;
    for (auto& t : r.trials) {
        recomputed += t.recomputed;
        reused += t.recomputed == 0;
    }
    j["golden_reused_trials"] = reused;
    j["recomputed_images"] = recomputed;
    j["per_trial_top1"] = nlohmann::ordered_json::array();
    for (auto& t : r.trials)
        j["per_trial_top1"].push_back(100.0 * static_cast<double>(t.correct) / static_cast<double>(campaign.images));
    if (exact) j["saturation_per_trial"] = saturation_json(r.saturation, static_cast<double>(r.trials.size()));
    return j;
}

}  // namespace

int run_inject(const std::vector<std::string>& args) {
    Options o("inject", "--model NAME --weights FILE --data PATH --rate R1,R2,... [options]",
              "Fault campaign: for each fault rate, --trials trials, each flipping bits (or forcing stuck-at bits) in\n"
              "the stored weights and/or activations, then evaluating the split; a trial with no fault reuses the\n"
              "fault-free result and a faulted forward pass restarts at the first faulted stage. Prints per rate the\n"
              "mean top-1, its std and 95% interval, and the silent-data-corruption rate (prediction != fault-free\n"
              "prediction). Results depend only on --seed. With --json FILE the campaign is resumable: rerun the same\n"
              "command after an interruption and finished trials are kept (FILE.state).");
    o.required("model", "NAME", "architecture (see ironclad models)")
        .required("weights", "FILE", ".safetensors weights")
        .required("data", "PATH", "dataset folder: train/ and test/ image folders, CIFAR binary, or IDX")
        .value("site", "weights|activations|both", "where faults go", "weights")
        .value("format", "FORMAT", "storage format whose bits flip: float, qI.F (e.g. q15.16), int8, int8-channel",
               "q15.16")
        .value("arith", "emulate|exact",
               "arithmetic: emulate (float compute on stored values) or exact (integer fixed-point arithmetic)",
               "emulate")
        .value("accumulator", "BITS[-sat|-wrap]",
               "exact arithmetic's multiply-accumulate register: its width and overflow rule", "64-sat")
        .value("rate", "R,...", "bit error rates (ber, reference count modes)")
        .value("flips", "K,...", "exact numbers of distinct faults per trial (per image for activations), instead of "
                                 "--rate")
        .value("count-mode", "exact|reference",
               "exact: every bit flips independently with probability R (exact binomial counts); reference: the "
               "toolbox's floor(elements x bits x R) faults per tensor, with replacement (weights only)",
               "exact")
        .value("effect", "flip|stuck0|stuck1", "transient flip, or a bit stuck at 0 / 1", "flip")
        .value("bits", "LO-HI", "eligible bits (0 = LSB), or sign, exponent, mantissa, integer, fraction")
        .value("layers", "A,B,...", "only these layers (dotted module names or prefixes, e.g. layer3)")
        .flag("include-bn", "BatchNorm weights and biases are weight sites too")
        .flag("quantize-activations", "store every layer output in --format: qI.F, or int8 with scales calibrated "
                                      "on the fault-free run (always on when activations are faulted)")
        .value("trials", "N", "trials per rate (the maximum, with --margin)", "100")
        .value("margin", "E", "stop a rate once its 95% interval is within +-E (fraction: 0.01 = 1 point)")
        .value("interval", "pooled|trials",
               "interval used by --margin and ci95_*: pooled = Wilson over all (trial, image) pairs (the statistical "
               "fault injection model of Leveugle et al.); trials = Student t over per-trial top-1 (wider)",
               "pooled")
        .value("min-trials", "N", "trials before --margin may stop a rate", "3")
        .value("seed", "S", "seed of all fault draws", "0");
    add_split_options(o, "evaluate");
    o.flag("layer-map", "also measure each layer alone (accuracy drop per layer)")
        .flag("bit-map", "also measure each bit position alone (accuracy drop per bit)")
        .value("map-rate", "R", "fault level of the maps (default: the largest --rate / --flips)")
        .value("map-trials", "N", "trials per map cell", "10")
        .value("replay", "TRIAL", "print the fault records of this trial at the first rate, and exit")
        .value("json", "FILE", "write the full result as JSON (and keep FILE.state to resume)")
        .value("csv", "FILE", "write one row per rate as CSV")
        .value("plot", "FILE.svg", "write an accuracy-versus-rate plot (and FILE-layers.svg / FILE-bits.svg heat maps with the maps)")
        .flag("progress", "show progress on stderr even when it is not a terminal");
    if (!o.parse(args)) {
        std::cout << o.help();
        return 0;
    }

    // Every option is checked before any file is read.
    const std::string model_name = o.text("model"), weights = o.text("weights"), data = o.text("data");
    require_known_model(model_name);
    CampaignOptions co;
    FaultModel& fm = co.fault;
    try {
        fm.site = parse_fault_site(o.text("site"));
        fm.format = parse_storage_format(o.text("format"));
        fm.effect = parse_fault_effect(o.text("effect"));
    } catch (const std::invalid_argument& e) {
        throw UsageError(e.what());
    }
    const std::string arith = o.text("arith");
    if (arith != "emulate" && arith != "exact") o.reject("arith", "expected emulate or exact");
    if (o.given("accumulator") && arith != "exact") throw UsageError("--accumulator applies to --arith exact only");
    if (arith == "exact") {
        if (fm.format.kind != StorageKind::fixed)
            o.reject("format", "--arith exact needs a fixed-point format such as q15.16, not " + fm.format.name());
        co.exact = ExactArithmetic{};
        co.exact->format = fm.format.fixed;
        try {
            parse_accumulator(o.text("accumulator"), *co.exact);
            co.exact->validate();
        } catch (const std::invalid_argument& e) {
            o.reject("accumulator", e.what());
        }
    }
    if (o.given("rate") == o.given("flips")) throw UsageError("give exactly one of --rate and --flips");
    const std::string count_mode = o.text("count-mode");
    if (count_mode != "exact" && count_mode != "reference") o.reject("count-mode", "expected exact or reference");
    if (o.given("flips")) {
        if (o.given("count-mode")) throw UsageError("--count-mode applies to --rate, not to --flips");
        fm.count_mode = CountMode::count;
        co.levels = number_list(o, "flips");
        for (double k : co.levels)
            if (k < 0 || k != std::floor(k)) o.reject("flips", "expected non-negative whole numbers");
    } else {
        fm.count_mode = count_mode == "reference" ? CountMode::reference : CountMode::ber;
        co.levels = rate_list(o, "rate");
    }
    if (o.given("bits")) std::tie(fm.bit_lo, fm.bit_hi) = parse_bits(o, fm.format);
    if (o.given("layers")) fm.layers = split_names(o.text("layers"));
    fm.include_bn = o.given("include-bn");
    fm.seed = o.unsigned_integer("seed");
    try {
        fm.validate();
    } catch (const std::invalid_argument& e) {
        throw UsageError(e.what());
    }
    co.max_trials = static_cast<int>(o.integer("trials", 1));
    co.min_trials = static_cast<int>(o.integer("min-trials", 2));
    if (o.given("margin")) {
        co.margin = o.real("margin");
        if (!(co.margin > 0 && co.margin < 1)) o.reject("margin", "must be in (0, 1), e.g. 0.01 for +-1 point");
    }
    const std::string interval = o.text("interval");
    if (interval != "pooled" && interval != "trials") o.reject("interval", "expected pooled or trials");
    co.interval = interval == "pooled" ? IntervalKind::pooled : IntervalKind::trials;
    co.store_activations = o.given("quantize-activations") || fm.faults_activations();
    if (o.given("quantize-activations") && fm.format.kind == StorageKind::float32)
        o.reject("format", "--quantize-activations needs a fixed-point or int8 format");
    const auto [split, limit, batch] = split_selection(o);
    const int map_trials = static_cast<int>(o.integer("map-trials", 1));
    double map_level = *std::max_element(co.levels.begin(), co.levels.end());
    if (o.given("map-rate")) {
        map_level = o.real("map-rate");
        if (map_level < 0 || (fm.count_mode != CountMode::count && map_level > 1))
            o.reject("map-rate", "must be a rate in [0, 1] (or a fault count with --flips)");
    }
    const std::string json_path = o.given("json") ? o.text("json") : "";
    for (const char* out : {"json", "csv", "plot"})
        if (o.given(out)) {
            const auto folder = std::filesystem::path(o.text(out)).parent_path();
            if (!folder.empty() && !std::filesystem::is_directory(folder))
                o.reject(out, "folder " + folder.string() + " does not exist");
        }
    apply_threads(o);

    TrainedModel trained = load_trained_model(o, model_name, weights, data, split == "train", limit);
    LoaderOptions lo;
    lo.batch_size = batch;
    lo.mean = trained.norm.mean;
    lo.std = trained.norm.std;
    const EvalSet eval_set = make_eval_set(trained.data, lo);
    co.identity = {{"model", model_name}, {"weights", weights}, {"weights_bytes", std::filesystem::file_size(weights)},
                   {"data", data}, {"split", split}, {"limit", limit}, {"levels", co.levels},
                   {"max_trials", co.max_trials}, {"engine", engine_version}};
    if (!json_path.empty()) co.state_file = json_path + ".state";

    std::unique_ptr<Campaign> campaign_ptr;
    try {
        campaign_ptr = std::make_unique<Campaign>(*trained.model, eval_set, co);
    } catch (const std::invalid_argument& e) {  // a layer name or option the model cannot honour
        throw UsageError(e.what());
    }
    Campaign& campaign = *campaign_ptr;

    if (o.given("replay")) {
        const int trial = static_cast<int>(o.integer("replay", 0));
        std::vector<FaultRecord> records;
        const TrialResult r = campaign.run_trial(co.levels.front(), trial, &records);
        std::printf("trial %d at %g (seed %llu): %lld weight faults, top-1 %.2f%%, %lld SDC\n", trial,
                    co.levels.front(), static_cast<unsigned long long>(fm.seed), static_cast<long long>(records.size()),
                    100.0 * static_cast<double>(r.correct) / static_cast<double>(eval_set.size()),
                    static_cast<long long>(r.sdc));
        std::printf("%-36s %10s %4s %18s %18s %14s %14s\n", "tensor", "element", "bit", "raw before", "raw after",
                    "before", "after");
        for (auto& rec : records)
            std::printf("%-36s %10lld %4d %#18llx %#18llx %14.7g %14.7g\n",
                        campaign.weight_targets()[static_cast<std::size_t>(rec.target)].name.c_str(),
                        static_cast<long long>(rec.element), rec.bit, static_cast<unsigned long long>(rec.raw_before),
                        static_cast<unsigned long long>(rec.raw_after), rec.before, rec.after);
        if (fm.faults_activations())
            std::printf("(activation faults of this trial: %lld, drawn per image; not listed)\n",
                        static_cast<long long>(r.faults - static_cast<std::int64_t>(records.size())));
        return 0;
    }

    const bool show = o.given("progress") || stderr_is_terminal();
    Progress progress(show, "golden run");
    CampaignCallbacks cb;
    cb.on_golden = [&](std::int64_t done, std::int64_t total) {
        progress.update((done + batch - 1) / batch, (total + batch - 1) / batch, done);
    };
    bool golden_finished = false;
    cb.on_trial = [&](const LevelResult& r, int max_trials) {
        if (!golden_finished) {
            progress.restart("campaign");
            golden_finished = true;
        }
        char line[200];
        std::snprintf(line, sizeof line, "rate %g: trial %zu/%d  top-1 %.2f%% [%.2f, %.2f]  SDC %.2f%%", r.level,
                      r.trials.size(), max_trials, r.top1.mean, r.ci95_low(), r.ci95_high(), r.sdc_rate);
        progress.status(line);
    };
    std::fprintf(stderr, "%s on %s (%lld images), %s %s faults in %s, seed %llu\n", model_name.c_str(), data.c_str(),
                 static_cast<long long>(eval_set.size()), to_string(fm.count_mode), to_string(fm.site),
                 fm.format.name().c_str(), static_cast<unsigned long long>(fm.seed));
    CampaignResult result = campaign.run(cb);
    progress.finish();

    // Vulnerability maps: each layer alone, each bit alone, at map_level.
    nlohmann::ordered_json layer_map = nlohmann::ordered_json::array(), bit_map = nlohmann::ordered_json::array();
    HeatMap layer_heat{"accuracy drop per layer (points) at " + level_text(map_level), "", "layer", {}, {"drop"}, {},
                       "points"};
    HeatMap bit_heat{"accuracy drop per bit (points) at " + level_text(map_level), "bit", "", {"drop"}, {}, {},
                     "points"};
    auto run_map = [&](const char* name, const std::vector<std::pair<std::string, FaultRestriction>>& cells,
                       nlohmann::ordered_json& rows, std::vector<std::string>& labels, std::vector<double>& values) {
        progress.restart(std::string(name) + " map");
        for (auto& [label, limit] : cells) {
            progress.status(label);
            const LevelResult r = campaign.run_restricted(map_level, map_trials, limit);
            const double drop = result.clean_top1 - r.top1.mean;
            nlohmann::ordered_json row;
            if (limit.bit >= 0)
                row["bit"] = limit.bit;
            else
                row["layer"] = label;
            row.update({{"mean_top1", r.top1.mean}, {"drop", drop}, {"ci95_low", r.ci95_low()},
                        {"ci95_high", r.ci95_high()}, {"sdc_rate", r.sdc_rate}, {"mean_faults", r.mean_faults}});
            rows.push_back(row);
            labels.push_back(label);
            values.push_back(drop);
        }
    };
    if (o.given("layer-map")) run_map("layer", campaign.layer_restrictions(), layer_map, layer_heat.rows, layer_heat.values);
    if (o.given("bit-map")) run_map("bit", campaign.bit_restrictions(), bit_map, bit_heat.columns, bit_heat.values);
    progress.finish();

    // Report.
    nlohmann::ordered_json j;
    j["engine"] = {{"name", "ironclad"}, {"version", engine_version}};
    j["model"] = model_name;
    j["weights"] = weights;
    j["data"] = data;
    j["split"] = split;
    j["images"] = result.images;
    j["fault_model"] = fm.to_json();
    if (co.exact) {
        j["arith"] = {{"mode", "exact"}, {"accumulator", co.exact->accumulator_name()}};
        j["golden_saturation"] = saturation_json(result.golden_saturation, 1);
    } else {
        j["arith"] = "emulate";
    }
    j["quantized_activations"] = co.exact || (co.store_activations && fm.format.kind != StorageKind::float32);
    j["seed"] = fm.seed;
    j["interval"] = interval;
    j["margin"] = co.margin;
    j["top1"] = result.clean_top1;
    j["leveugle_sample_size"] =
        co.margin > 0 ? nlohmann::ordered_json(leveugle_sample_size(std::numeric_limits<double>::infinity(), co.margin))
                      : nlohmann::ordered_json(nullptr);
    j["weight_sites"] = result.weight_targets;
    j["activation_sites"] = result.activation_targets;
    j["results"] = nlohmann::ordered_json::array();
    for (auto& r : result.levels) j["results"].push_back(level_json(r, fm.count_mode, result, co.exact.has_value()));
    if (o.given("layer-map")) j["layer_map"] = layer_map;
    if (o.given("bit-map")) j["bit_map"] = bit_map;
    j["seconds"] = result.seconds;

    std::printf("%s, %s: clean top-1 %.2f%% on %lld images (seed %llu, %s interval)\n", model_name.c_str(),
                fm.format.name().c_str(), result.clean_top1, static_cast<long long>(result.images),
                static_cast<unsigned long long>(fm.seed), interval.c_str());
    std::printf("%12s %7s %9s %8s %18s %9s %9s\n", fm.count_mode == CountMode::count ? "flips" : "rate", "trials",
                "top-1 %", "std", "95% interval", "SDC %", "faults");
    for (auto& r : result.levels)
        std::printf("%12g %7zu %9.2f %8.2f   [%6.2f, %6.2f] %9.2f %9.1f\n", r.level, r.trials.size(), r.top1.mean,
                    r.top1.stddev, r.ci95_low(), r.ci95_high(), r.sdc_rate, r.mean_faults);
    if (co.exact) {
        std::printf("exact arithmetic, accumulator %s: overflow events %.0f in the fault-free run",
                    co.exact->accumulator_name().c_str(), j["golden_saturation"]["total"].get<double>());
        for (auto& r : j["results"]) std::printf(", %.1f per trial at %g", r["saturation_per_trial"]["total"].get<double>(),
                                                 r.contains("rate") ? r["rate"].get<double>() : r["flips"].get<double>());
        std::printf(" (per layer in the JSON)\n");
    }
    for (auto& l : layer_map)
        std::printf("  layer %-28s drop %6.2f points\n", l["layer"].get<std::string>().c_str(), l["drop"].get<double>());
    for (auto& b : bit_map)
        std::printf("  bit %2d  drop %6.2f points\n", b["bit"].get<int>(), b["drop"].get<double>());
    std::printf("%.1f s\n", result.seconds);

    auto write_text = [](const std::string& path, const std::string& text) {
        write_file_atomic(path, std::as_bytes(std::span(text.data(), text.size())));
    };
    if (!json_path.empty()) write_text(json_path, json_text(j));
    if (o.given("csv")) {
        std::string csv = std::string(fm.count_mode == CountMode::count ? "flips" : "rate") +
                          ",trials,top1,mean_top1,std_top1,ci95_low,ci95_high,sdc_rate,sdc_rate_on_correct,mean_faults,"
                          "non_finite_images\n";
        for (auto& r : result.levels) {
            char row[400];
            std::snprintf(row, sizeof row, "%.17g,%zu,%.6f,%.6f,%.6f,%.6f,%.6f,%.6f,%.6f,%.4f,%lld\n", r.level,
                          r.trials.size(), result.clean_top1, r.top1.mean, r.top1.stddev, r.ci95_low(), r.ci95_high(),
                          r.sdc_rate, r.sdc_on_correct_rate, r.mean_faults, static_cast<long long>(r.non_finite_images));
            csv += row;
        }
        write_text(o.text("csv"), csv);
    }
    if (o.given("plot")) {
        Series s;
        s.label = model_name + " " + fm.format.name() + " " + to_string(fm.site);
        for (auto& r : result.levels) {
            s.x.push_back(r.level);
            s.y.push_back(r.top1.mean);
            s.y_low.push_back(r.ci95_low());
            s.y_high.push_back(r.ci95_high());
        }
        PlotAxes axes;
        axes.title = "top-1 under faults (clean " + percent(result.clean_top1) + "%)";
        axes.x_label = fm.count_mode == CountMode::count ? "faults per trial" : "bit error rate";
        axes.y_label = "top-1 (%)";
        axes.log_x = fm.count_mode != CountMode::count;
        write_text(o.text("plot"), line_plot_svg({s}, axes));
        const std::string base = o.text("plot").substr(0, o.text("plot").size() - (o.text("plot").ends_with(".svg") ? 4 : 0));
        if (o.given("layer-map")) write_text(base + "-layers.svg", heat_map_svg(layer_heat));
        if (o.given("bit-map")) write_text(base + "-bits.svg", heat_map_svg(bit_heat));
    }
    return 0;
}

}  // namespace ironclad::cli

// The shared steps of common.hpp.
#include "common.hpp"

#include "ironclad/bounds/bound_io.hpp"
#include "ironclad/data/load.hpp"
#include "ironclad/io/safetensors.hpp"
#include "ironclad/training/checkpoint.hpp"

#include <omp.h>

#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstdio>

namespace ironclad::cli {

void require_known_model(const std::string& name) {
    std::string known;
    for (const auto& info : model_registry()) {
        if (info.name == name) return;
        known += (known.empty() ? "" : ", ") + info.name;
    }
    throw UsageError("unknown model '" + name + "' (known: " + known + ")");
}

std::optional<Shortcut> parse_shortcut(const std::string& text) {
    if (text == "A") return Shortcut::A;
    if (text == "B") return Shortcut::B;
    return std::nullopt;
}

std::vector<double> number_list(const Options& o, const std::string& name) {
    std::vector<double> out;
    const std::string text = o.text(name);
    for (std::size_t pos = 0; pos <= text.size();) {
        const std::size_t comma = std::min(text.find(',', pos), text.size());
        double v = 0;
        if (!parse_number(std::string_view(text).substr(pos, comma - pos), v) || !std::isfinite(v))
            o.reject(name, "expected comma-separated numbers, e.g. 1e-7,1e-6,1e-5");
        out.push_back(v);
        pos = comma + 1;
    }
    return out;
}

std::vector<double> rate_list(const Options& o, const std::string& name) {
    auto rates = number_list(o, name);
    for (double r : rates)
        if (!(r >= 0 && r <= 1)) o.reject(name, "every rate must be in [0, 1]");
    return rates;
}

Options& add_input_options(Options& o, const std::string& default_batch,
                           const std::string& norm_source) {
    return o.value("batch", "N", "images per batch", default_batch)
        .value("threads", "N", "OpenMP threads (default: all cores)")
        .value("mean", "a,b,c", "per-channel mean of pixel/255 (default: " + norm_source + " metadata)")
        .value("std", "a,b,c", "per-channel std of pixel/255 (default: " + norm_source + " metadata)");
}

Options& add_split_options(Options& o, const std::string& verb, const std::string& default_batch,
                           const std::string& norm_source) {
    o.value("split", "test|train", "the split to " + verb, "test")
        .value("limit", "N", "class-balanced subset: the first N/classes images of each class");
    return add_input_options(o, default_batch, norm_source);
}

SplitSelection split_selection(const Options& o) {
    SplitSelection s{o.text("split"), o.given("limit") ? o.integer("limit", 1) : 0, o.integer("batch", 1)};
    if (s.split != "test" && s.split != "train") o.reject("split", "expected test or train");
    return s;
}

void apply_threads(const Options& o) {
    if (o.given("threads")) omp_set_num_threads(static_cast<int>(o.integer("threads", 1)));
}

Dataset load_split(const std::string& path, bool train, std::int64_t limit,
                   const std::string& limit_option) {
    try {
        return load_dataset(path, train, limit);
    } catch (const std::invalid_argument& e) {  // only a limit below the class count is the user's to fix
        throw UsageError("--" + limit_option + " " + std::to_string(limit) + ": " + e.what());
    }
}

std::string shortest(float v) {
    char buf[32];
    const auto [end, ec] = std::to_chars(buf, buf + sizeof buf, v);
    return std::string(buf, end);
}

std::string fixed(double v, int decimals) {
    char buf[64];
    std::snprintf(buf, sizeof buf, "%.*f", decimals, v);
    return buf;
}

std::string format_reals(const std::vector<float>& values) {
    std::string out;
    for (float v : values) {
        if (!out.empty()) out += ',';
        out += shortest(v);
    }
    return out;
}

nlohmann::ordered_json json_reals(const std::vector<float>& values) {
    nlohmann::ordered_json out = nlohmann::ordered_json::array();
    for (float v : values) out.push_back(std::stod(shortest(v)));
    return out;
}

std::optional<Normalization> find_normalization(const Options& o, const Metadata& metadata,
                                                const std::string& source) {
    if (o.given("mean") != o.given("std")) throw UsageError("give both --mean and --std, or neither");
    if (o.given("mean")) return Normalization{o.reals("mean"), o.reals("std")};
    const auto mean = metadata.find("mean"), std = metadata.find("std");
    if (mean == metadata.end() || std == metadata.end()) return std::nullopt;
    Normalization n;
    if (!parse_reals(mean->second, n.mean) || !parse_reals(std->second, n.std))
        throw std::runtime_error(source + ": metadata mean '" + mean->second + "' / std '" + std->second +
                                 "' are not comma-separated numbers");
    return n;
}

void check_channels(const Normalization& n, const Dataset& ds) {
    const auto channels = static_cast<std::size_t>(ds.channels());
    if (n.mean.size() != channels || n.std.size() != channels)
        throw UsageError("mean " + format_reals(n.mean) + " / std " + format_reals(n.std) +
                         " need one value per channel, and the images of " + ds.source + " have " +
                         std::to_string(channels));
    for (float s : n.std)
        if (!(s > 0)) throw UsageError("std " + format_reals(n.std) + ": every value must be positive");
}

std::string image_shape(const Dataset& ds) {
    return std::to_string(ds.channels()) + "x" + std::to_string(ds.height()) + "x" + std::to_string(ds.width());
}

ModelConfig model_config(const Dataset& ds, Shortcut shortcut, std::uint64_t seed) {
    if (ds.height() != ds.width())
        throw std::runtime_error(ds.source + ": the models take square images, these are " + image_shape(ds));
    return {.num_classes = ds.num_classes,
            .in_channels = static_cast<int>(ds.channels()),
            .input_size = static_cast<int>(ds.height()),
            .shortcut = shortcut,
            .seed = seed};
}

TrainedModel load_trained_model(const Options& o, const std::string& model_name, const std::string& weights,
                                const std::string& data, bool train_split, std::int64_t limit) {
    // The weights file is read before the dataset, so a missing or corrupt file fails at once.
    TrainedModel t;
    t.metadata = load_safetensors(weights).metadata;
    const auto norm = find_normalization(o, t.metadata, weights);
    if (!norm) throw UsageError(weights + " has no mean/std metadata: give --mean and --std");
    t.norm = *norm;
    const auto shortcut_text = t.metadata.count("shortcut") ? t.metadata.at("shortcut") : "A";
    const auto shortcut = parse_shortcut(shortcut_text);
    if (!shortcut) throw std::runtime_error(weights + ": unknown shortcut '" + shortcut_text + "' in the metadata");
    t.data = load_split(data, train_split, limit);
    t.model = build_model(model_name, model_config(t.data, *shortcut, 0));
    install_bounds_from_metadata(*t.model, t.metadata, weights);  // a hardened checkpoint's bounded activations
    try {
        load_model(weights, *t.model);
    } catch (const std::runtime_error& e) {
        const auto arch = t.metadata.find("arch");
        if (arch == t.metadata.end() || arch->second == model_name) throw;
        throw std::runtime_error(weights + " holds a " + arch->second + ", not a " + model_name + "; " + e.what());
    }
    check_channels(t.norm, t.data);  // after loading, so that weights for other images fail on their shapes first
    return t;
}

const std::vector<ModelInfo>& known_models() { return model_registry(); }

std::shared_ptr<Module> make_model(const std::string& name, const ModelConfig& config) {
    return build_model(name, config);
}

Metadata read_metadata(const std::string& file) { return load_safetensors(file).metadata; }

void load_weights(const std::string& file, Module& model) { load_model(file, model); }

std::string json_text(const nlohmann::ordered_json& j, int indent) {
    return indent < 0 ? j.dump() : j.dump(indent) + "\n";
}

}  // namespace ironclad::cli

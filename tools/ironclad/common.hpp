// Steps that eval and train share: the model name, the dataset split, the normalisation, the model's shape
// and the thread count. Library errors caused by the user's choices become UsageError here.
#pragma once

#include "options.hpp"

#include "ironclad/bounds/bound_io.hpp"
#include "ironclad/data/load.hpp"
#include "ironclad/models/registry.hpp"
#include "ironclad/training/checkpoint.hpp"

#include <nlohmann/json.hpp>
#include <omp.h>

#include <algorithm>
#include <charconv>
#include <cmath>
#include <map>
#include <optional>
#include <string>
#include <vector>

namespace ironclad::cli {

using Metadata = std::map<std::string, std::string>;

inline void require_known_model(const std::string& name) {
    std::string known;
    for (const auto& info : model_registry()) {
        if (info.name == name) return;
        known += (known.empty() ? "" : ", ") + info.name;
    }
    throw UsageError("unknown model '" + name + "' (known: " + known + ")");
}

// "A" (zero-padding shortcut) or "B" (1x1 convolution); nullopt for anything else.
inline std::optional<Shortcut> parse_shortcut(const std::string& text) {
    if (text == "A") return Shortcut::A;
    if (text == "B") return Shortcut::B;
    return std::nullopt;
}

// The comma-separated numbers of option `name`, read as doubles (so "1e-7" is exactly the double 1e-7 in every
// command, and campaign seeds, which mix in the rate's bits, agree between them).
inline std::vector<double> number_list(const Options& o, const std::string& name) {
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

// number_list of bit error rates, each in [0, 1].
inline std::vector<double> rate_list(const Options& o, const std::string& name) {
    auto rates = number_list(o, name);
    for (double r : rates)
        if (!(r >= 0 && r <= 1)) o.reject(name, "every rate must be in [0, 1]");
    return rates;
}

// --batch, --threads, --mean, --std: how a command feeds images to a model (the normalisation defaults to
// `norm_source` metadata).
inline Options& add_input_options(Options& o, const std::string& default_batch = "128",
                                  const std::string& norm_source = "the weights file's") {
    return o.value("batch", "N", "images per batch", default_batch)
        .value("threads", "N", "OpenMP threads (default: all cores)")
        .value("mean", "a,b,c", "per-channel mean of pixel/255 (default: " + norm_source + " metadata)")
        .value("std", "a,b,c", "per-channel std of pixel/255 (default: " + norm_source + " metadata)");
}

// --split and --limit (the split to `verb`), then the input options.
inline Options& add_split_options(Options& o, const std::string& verb, const std::string& default_batch = "128",
                                  const std::string& norm_source = "the weights file's") {
    o.value("split", "test|train", "the split to " + verb, "test")
        .value("limit", "N", "class-balanced subset: the first N/classes images of each class");
    return add_input_options(o, default_batch, norm_source);
}

// The values of add_split_options' --split, --limit (0: the whole split) and --batch.
struct SplitSelection {
    std::string split;
    std::int64_t limit = 0;
    std::int64_t batch = 0;
    bool train() const { return split == "train"; }
};

inline SplitSelection split_selection(const Options& o) {
    SplitSelection s{o.text("split"), o.given("limit") ? o.integer("limit", 1) : 0, o.integer("batch", 1)};
    if (s.split != "test" && s.split != "train") o.reject("split", "expected test or train");
    return s;
}

inline void apply_threads(const Options& o) {
    if (o.given("threads")) omp_set_num_threads(static_cast<int>(o.integer("threads", 1)));
}

// limit 0: the whole split. limit_option names the option the limit came from, for the error message.
inline Dataset load_split(const std::string& path, bool train, std::int64_t limit,
                          const std::string& limit_option = "limit") {
    try {
        return load_dataset(path, train, limit);
    } catch (const std::invalid_argument& e) {  // only a limit below the class count is the user's to fix
        throw UsageError("--" + limit_option + " " + std::to_string(limit) + ": " + e.what());
    }
}

// The shortest text that reads back as v: 0.485f prints as 0.485, not 0.48500001430511475.
inline std::string shortest(float v) {
    char buf[32];
    const auto [end, ec] = std::to_chars(buf, buf + sizeof buf, v);
    return std::string(buf, end);
}

inline std::string format_reals(const std::vector<float>& values) {
    std::string out;
    for (float v : values) {
        if (!out.empty()) out += ',';
        out += shortest(v);
    }
    return out;
}

inline nlohmann::ordered_json json_reals(const std::vector<float>& values) {
    nlohmann::ordered_json out = nlohmann::ordered_json::array();
    for (float v : values) out.push_back(std::stod(shortest(v)));
    return out;
}

struct Normalization {
    std::vector<float> mean, std;
};

// --mean/--std when given (both or neither), else the metadata's "mean"/"std"; nullopt when neither has them.
inline std::optional<Normalization> find_normalization(const Options& o, const Metadata& metadata,
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

inline void check_channels(const Normalization& n, const Dataset& ds) {
    const auto channels = static_cast<std::size_t>(ds.channels());
    if (n.mean.size() != channels || n.std.size() != channels)
        throw UsageError("mean " + format_reals(n.mean) + " / std " + format_reals(n.std) +
                         " need one value per channel, and the images of " + ds.source + " have " +
                         std::to_string(channels));
    for (float s : n.std)
        if (!(s > 0)) throw UsageError("std " + format_reals(n.std) + ": every value must be positive");
}

inline std::string image_shape(const Dataset& ds) {
    return std::to_string(ds.channels()) + "x" + std::to_string(ds.height()) + "x" + std::to_string(ds.width());
}

// The model's input and output shape come from the data: channels, image size, class count.
inline ModelConfig model_config(const Dataset& ds, Shortcut shortcut, std::uint64_t seed) {
    if (ds.height() != ds.width())
        throw std::runtime_error(ds.source + ": the models take square images, these are " + image_shape(ds));
    return {.num_classes = ds.num_classes,
            .in_channels = static_cast<int>(ds.channels()),
            .input_size = static_cast<int>(ds.height()),
            .shortcut = shortcut,
            .seed = seed};
}

// A trained model ready for inference on one split: weights loaded (the architecture checked against the file's
// metadata; a hardened checkpoint's bounded activations installed in their slots), normalisation from the options
// or the metadata, the split read with its class-balanced limit.
struct TrainedModel {
    std::shared_ptr<Module> model;
    Dataset data;
    Normalization norm;
    Metadata metadata;
};

inline TrainedModel load_trained_model(const Options& o, const std::string& model_name, const std::string& weights,
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

}  // namespace ironclad::cli

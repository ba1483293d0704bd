// Steps the commands share: the model name, the dataset split, the normalisation, the model's shape, the thread
// count, and building models and reading weight files. Library errors caused by the user's choices become
// UsageError here. Defined in common.cpp, so that what every command needs is compiled once.
#pragma once

#include "options.hpp"

#include "ironclad/data/dataset.hpp"
#include "ironclad/models/registry.hpp"

#include <nlohmann/json.hpp>

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace ironclad::cli {

using Metadata = std::map<std::string, std::string>;

void require_known_model(const std::string& name);

// "A" (zero-padding shortcut) or "B" (1x1 convolution); nullopt for anything else.
std::optional<Shortcut> parse_shortcut(const std::string& text);

// The comma-separated numbers of option `name`, read as doubles (so "1e-7" is exactly the double 1e-7 in every
// command, and campaign seeds, which mix in the rate's bits, agree between them).
std::vector<double> number_list(const Options& o, const std::string& name);

// number_list of bit error rates, each in [0, 1].
std::vector<double> rate_list(const Options& o, const std::string& name);

// --batch, --threads, --mean, --std: how a command feeds images to a model (the normalisation defaults to
// `norm_source` metadata).
Options& add_input_options(Options& o, const std::string& default_batch = "128",
                           const std::string& norm_source = "the weights file's");

// --split and --limit (the split to `verb`), then the input options.
Options& add_split_options(Options& o, const std::string& verb, const std::string& default_batch = "128",
                           const std::string& norm_source = "the weights file's");

// The values of add_split_options' --split, --limit (0: the whole split) and --batch.
struct SplitSelection {
    std::string split;
    std::int64_t limit = 0;
    std::int64_t batch = 0;
    bool train() const { return split == "train"; }
};

SplitSelection split_selection(const Options& o);

void apply_threads(const Options& o);

// limit 0: the whole split. limit_option names the option the limit came from, for the error message.
Dataset load_split(const std::string& path, bool train, std::int64_t limit,
                   const std::string& limit_option = "limit");

// The shortest text that reads back as v: 0.485f prints as 0.485, not 0.48500001430511475.
std::string shortest(float v);

// v with `decimals` digits after the point ("%.*f").
std::string fixed(double v, int decimals);
std::string format_reals(const std::vector<float>& values);

nlohmann::ordered_json json_reals(const std::vector<float>& values);

struct Normalization {
    std::vector<float> mean, std;
};

// --mean/--std when given (both or neither), else the metadata's "mean"/"std"; nullopt when neither has them.
std::optional<Normalization> find_normalization(const Options& o, const Metadata& metadata,
                                                const std::string& source);

void check_channels(const Normalization& n, const Dataset& ds);

std::string image_shape(const Dataset& ds);

// The model's input and output shape come from the data: channels, image size, class count.
ModelConfig model_config(const Dataset& ds, Shortcut shortcut, std::uint64_t seed);

// A trained model ready for inference on one split: weights loaded (the architecture checked against the file's
// metadata; a hardened checkpoint's bounded activations installed in their slots), normalisation from the options
// or the metadata, the split read with its class-balanced limit.
struct TrainedModel {
    std::shared_ptr<Module> model;
    Dataset data;
    Normalization norm;
    Metadata metadata;
};

TrainedModel load_trained_model(const Options& o, const std::string& model_name, const std::string& weights,
                                const std::string& data, bool train_split, std::int64_t limit);

// The CLI's one place that builds models and reads or writes weight files, so that the model constructors, the
// safetensors code and the JSON serializer are compiled once, not in every command's translation unit.
// The architectures of the registry (models/registry.hpp).
const std::vector<ModelInfo>& known_models();
std::shared_ptr<Module> make_model(const std::string& name, const ModelConfig& config);
Metadata read_metadata(const std::string& file);
void load_weights(const std::string& file, Module& model);
// j as text: indented by `indent` spaces per level and ending in a newline, or on one line (indent < 0, no newline).
std::string json_text(const nlohmann::ordered_json& j, int indent = 2);

}  // namespace ironclad::cli

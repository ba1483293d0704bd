// ironclad train: trains a model from the registry on a dataset with SGD and a cosine schedule, evaluating on
// the test split after each epoch. The checkpoint (--out) is written after every epoch with the run's options
// in its metadata; a rerun with the same --out resumes after the last finished epoch, and refuses options that
// differ from the ones the checkpoint was trained with (except --epochs, which extends or shortens the run).
#include "commands.hpp"
#include "common.hpp"
#include "report.hpp"

#include "ironclad/training/checkpoint.hpp"
#include "ironclad/training/fit.hpp"

#include <nlohmann/json.hpp>

#include <array>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <iostream>

namespace ironclad::cli {

namespace {

// Per-channel mean and standard deviation of pixel / 255 over the whole set, from exact 256-bin histograms.
Normalization channel_statistics(const Dataset& ds) {
    const std::int64_t n = ds.size(), channels = ds.channels(), plane = ds.height() * ds.width();
    Normalization out;
    for (std::int64_t c = 0; c < channels; ++c) {
        std::array<std::int64_t, 256> histogram{};
        for (std::int64_t i = 0; i < n; ++i) {
            const std::uint8_t* p = ds.images.data() + (i * channels + c) * plane;
            for (std::int64_t k = 0; k < plane; ++k) ++histogram[p[k]];
        }
        double sum = 0, sum_sq = 0;
        for (int v = 0; v < 256; ++v) {
            const double x = v / 255.0, count = static_cast<double>(histogram[static_cast<std::size_t>(v)]);
            sum += count * x;
            sum_sq += count * x * x;
        }
        const double count = static_cast<double>(n * plane), mean = sum / count;
        out.mean.push_back(static_cast<float>(mean));
        out.std.push_back(static_cast<float>(std::sqrt(std::max(sum_sq / count - mean * mean, 0.0))));
    }
    return out;
}

// "crop4,flip", "flip", "none": the augmentation as it acts (a crop with no padding is none).
std::string augment_name(const LoaderOptions& l) {
    std::string s = l.augment_crop_pad ? "crop" + std::to_string(l.augment_crop_pad) : "";
    if (l.augment_flip) s += s.empty() ? "flip" : ",flip";
    return s.empty() ? "none" : s;
}

// The metadata keys that must agree between a checkpoint and a run that resumes it, with their options.
constexpr std::array<std::pair<const char*, const char*>, 18> resume_keys{{
    {"arch", "--model"},
    {"shortcut", "--shortcut"},
    {"num_classes", "--data"},
    {"in_channels", "--data"},
    {"input_size", "--data"},
    {"mean", "--mean"},
    {"std", "--std"},
    {"batch", "--batch"},
    {"lr", "--lr"},
    {"momentum", "--momentum"},
    {"weight_decay", "--wd"},
    {"nesterov", "--nesterov"},
    {"label_smoothing", "--label-smoothing"},
    {"warmup_epochs", "--warmup-epochs"},
    {"augment", "--augment / --crop-pad"},
    {"seed", "--seed"},
    {"limit", "--limit"},
    {"init", "--init"},
}};

}  // namespace

int run_train(const std::vector<std::string>& args) {
    Options o("train", "--model NAME --data PATH --epochs N --out FILE [options]",
              "Trains a model on the train split with SGD (momentum, weight decay) and a cosine learning rate with\n"
              "linear warm-up, evaluates it on the test split after each epoch and writes FILE (and\n"
              "FILE.train-state) after each epoch. Rerun with the same --out to resume after the last finished\n"
              "epoch; every option but --epochs, --threads, --progress and --json must then be the same.");
    o.required("model", "NAME", "architecture (see ironclad models)")
        .required("data", "PATH", "dataset folder: train/ and test/ image folders, CIFAR binary, or IDX")
        .required("epochs", "N", "epochs in all (a resumed run continues up to N)")
        .required("out", "FILE", "checkpoint to write (.safetensors, PyTorch names)")
        .value("batch", "N", "images per batch", "128")
        .value("lr", "LR", "peak learning rate", "0.1")
        .value("momentum", "M", "SGD momentum", "0.9")
        .value("wd", "WD", "weight decay", "5e-4")
        .flag("nesterov", "Nesterov momentum")
        .value("label-smoothing", "E", "label smoothing of the cross-entropy", "0")
        .value("warmup-epochs", "N", "epochs of linear warm-up before the cosine decay", "0")
        .value("augment", "LIST", "crop,flip, crop, flip or none", "crop,flip")
        .value("crop-pad", "P", "padding of the random crop", "4")
        .value("limit", "N", "class-balanced subset of the train split: the first N/classes images of each class")
        .value("test-limit", "N", "class-balanced subset of the test split (default: --limit's value)")
        .value("seed", "S", "seed of the initial weights and of shuffling and augmentation", "0")
        .value("init", "FILE", "start from these weights (fine-tuning) instead of random ones; all names must match")
        .value("shortcut", "A|B", "ResNet shortcut: A zero-padding, B 1x1 convolution", "A")
        .value("threads", "N", "OpenMP threads (default: all cores)")
        .value("mean", "a,b,c", "per-channel mean of pixel/255 (default: measured on the training images)")
        .value("std", "a,b,c", "per-channel std of pixel/255 (default: measured on the training images)")
        .flag("progress", "show progress on stderr even when it is not a terminal")
        .flag("json", "print a report with per-epoch figures as JSON on stdout");
    if (!o.parse(args)) {
        std::cout << o.help();
        return 0;
    }

    // Every option is checked before any data is read or any file written.
    const std::string model_name = o.text("model"), data = o.text("data"), out = o.text("out");
    require_known_model(model_name);
    TrainOptions t;
    t.epochs = static_cast<int>(o.integer("epochs", 1));
    t.loader.batch_size = o.integer("batch", 1);
    t.lr = static_cast<float>(o.real("lr"));
    if (!(t.lr > 0)) o.reject("lr", "must be positive");
    t.momentum = static_cast<float>(o.real("momentum"));
    if (t.momentum < 0 || t.momentum >= 1) o.reject("momentum", "must be in [0, 1)");
    t.weight_decay = static_cast<float>(o.real("wd"));
    if (t.weight_decay < 0) o.reject("wd", "must not be negative");
    t.nesterov = o.given("nesterov");
    t.label_smoothing = static_cast<float>(o.real("label-smoothing"));
    if (t.label_smoothing < 0 || t.label_smoothing >= 1) o.reject("label-smoothing", "must be in [0, 1)");
    t.warmup_epochs = static_cast<int>(o.integer("warmup-epochs", 0));
    if (t.warmup_epochs > t.epochs) o.reject("warmup-epochs", "must not exceed --epochs");
    const std::string augment = o.text("augment");
    if (augment != "crop,flip" && augment != "flip,crop" && augment != "crop" && augment != "flip" && augment != "none")
        o.reject("augment", "expected crop,flip, crop, flip or none");
    const int crop_pad = static_cast<int>(o.integer("crop-pad", 0));
    t.loader.augment_flip = augment.find("flip") != std::string::npos;
    t.loader.augment_crop_pad = augment.find("crop") != std::string::npos ? crop_pad : 0;
    const std::int64_t limit = o.given("limit") ? o.integer("limit", 1) : 0;
    const std::int64_t test_limit = o.given("test-limit") ? o.integer("test-limit", 1) : limit;
    const std::uint64_t seed = o.unsigned_integer("seed");
    const auto shortcut = parse_shortcut(o.text("shortcut"));
    if (!shortcut) o.reject("shortcut", "expected A (zero-padding) or B (1x1 convolution)");
    if (o.given("init") && !std::filesystem::is_regular_file(o.text("init")))
        o.reject("init", "file " + o.text("init") + " does not exist");
    apply_threads(o);
    t.loader.shuffle = true;
    t.loader.seed = seed;
    t.checkpoint = out;

    const bool json = o.given("json");
    std::ostream& human = json ? std::cerr : std::cout;  // stdout carries only the JSON report then

    // An existing --out is a run to resume: its metadata says how far it got and with which options.
    const bool resuming = std::filesystem::exists(out);
    Metadata previous;
    int epochs_done = 0;
    if (resuming) {
        previous = read_metadata(out);
        const auto done = previous.find("epochs_done");
        if (done == previous.end() || !parse_number(done->second, epochs_done))
            throw std::runtime_error(out +
                                     " exists but is not a checkpoint of ironclad train (no epochs_done metadata); "
                                     "choose another --out");
        if (epochs_done >= t.epochs) {
            human << out << " already holds " << epochs_done << " epochs (--epochs " << t.epochs
                  << "): nothing to do\n";
            if (json)
                std::cout << json_text({{"model", model_name},
                                        {"out", out},
                                        {"resumed_after", epochs_done},
                                        {"epochs", nlohmann::ordered_json::array()}});
            return 0;
        }
    } else {
        const std::filesystem::path folder = std::filesystem::path(out).parent_path();
        if (!folder.empty() && !std::filesystem::is_directory(folder))
            throw std::runtime_error("cannot write --out " + out + ": folder " + folder.string() + " does not exist");
    }

    const Dataset train = load_split(data, true, limit);
    const Dataset test = load_split(data, false, test_limit, o.given("test-limit") ? "test-limit" : "limit");
    auto norm = find_normalization(o, previous, out);
    if (!norm) norm = channel_statistics(train);
    check_channels(*norm, train);
    t.loader.mean = norm->mean;
    t.loader.std = norm->std;
    const ModelConfig cfg = model_config(train, *shortcut, seed);

    t.metadata = {{"arch", model_name},
                  {"shortcut", o.text("shortcut")},
                  {"num_classes", std::to_string(cfg.num_classes)},
                  {"in_channels", std::to_string(cfg.in_channels)},
                  {"input_size", std::to_string(cfg.input_size)},
                  {"mean", format_reals(norm->mean)},
                  {"std", format_reals(norm->std)},
                  {"dataset", data},
                  {"limit", std::to_string(limit)},
                  {"epochs", std::to_string(t.epochs)},
                  {"batch", std::to_string(t.loader.batch_size)},
                  {"lr", shortest(t.lr)},
                  {"momentum", shortest(t.momentum)},
                  {"weight_decay", shortest(t.weight_decay)},
                  {"nesterov", t.nesterov ? "true" : "false"},
                  {"label_smoothing", shortest(t.label_smoothing)},
                  {"warmup_epochs", std::to_string(t.warmup_epochs)},
                  {"augment", augment_name(t.loader)},
                  {"seed", std::to_string(seed)},
                  {"init", o.given("init") ? o.text("init") : std::string("random")},
                  {"trainer", "ironclad train"}};

    if (resuming) {
        for (const auto& [key, option] : resume_keys) {
            const auto it = previous.find(key);
            if (it != previous.end() && it->second != t.metadata[key])
                throw UsageError(out + " was trained with " + key + "=" + it->second + ", this run asks for " +
                                 t.metadata[key] + " (" + option +
                                 "): resume with the same options or choose another --out");
        }
        human << "resuming " << out << " after epoch " << epochs_done << " of " << t.epochs << "\n";
    }
    human << "training " << model_name << " on " << data << ": " << train.size() << " train / " << test.size()
          << " test images of " << image_shape(train) << ", " << train.num_classes << " classes; mean "
          << format_reals(norm->mean) << ", std " << format_reals(norm->std) << "\n";
    human.flush();

    auto model = make_model(model_name, cfg);
    if (o.given("init") && !resuming) {  // a resumed run reloads its own checkpoint inside fit
        load_weights(o.text("init"), *model);
        human << "starting from the weights in " << o.text("init") << "\n";
    }
    Progress progress(o.given("progress") || stderr_is_terminal(), "");
    nlohmann::ordered_json epochs = nlohmann::ordered_json::array();
    TrainCallbacks cb;
    int epoch = epochs_done;
    cb.on_batch = [&](std::int64_t b, std::int64_t batches, double loss) {
        if (b == 1) progress.restart("epoch " + std::to_string(epoch + 1) + "/" + std::to_string(t.epochs));
        progress.update(b, batches, std::min(b * t.loader.batch_size, train.size()), "loss " + fixed(loss, 4));
    };
    cb.on_epoch = [&](const EpochReport& r) {
        progress.finish();
        epoch = r.epoch;
        human << "epoch " << r.epoch << "/" << r.epochs << "  lr " << fixed(r.lr, 5) << "  train loss "
              << fixed(r.train_loss, 4) << "  train top-1 " << fixed(r.train_top1, 2) << "%  test top-1 "
              << fixed(r.test->top1, 2) << "%  test loss " << fixed(r.test->loss, 4) << "  " << fixed(r.seconds, 1)
              << " s  " << fixed(r.images_per_s, 0) << " images/s" << std::endl;
        epochs.push_back({{"epoch", r.epoch},
                          {"lr", r.lr},
                          {"train_loss", r.train_loss},
                          {"train_top1", r.train_top1},
                          {"test_top1", r.test->top1},
                          {"test_top5", r.test->top5},
                          {"test_loss", r.test->loss},
                          {"seconds", r.seconds},
                          {"images_per_s", r.images_per_s}});
    };
    fit(*model, train, &test, t, cb);
    human << "wrote " << out << " (epoch " << t.epochs << " of " << t.epochs << ")\n";

    if (json) {
        nlohmann::ordered_json j;
        j["model"] = model_name;
        j["data"] = data;
        j["out"] = out;
        j["train_images"] = train.size();
        j["test_images"] = test.size();
        j["mean"] = json_reals(norm->mean);
        j["std"] = json_reals(norm->std);
        j["resumed_after"] = epochs_done;
        j["epochs"] = epochs;
        std::cout << json_text(j);
    }
    return 0;
}

}  // namespace ironclad::cli

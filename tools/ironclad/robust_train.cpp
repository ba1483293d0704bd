// ironclad robust-train: adversarial training (PGD-AT, TRADES, ARD, RSLAD) of a model from the registry, with clean
// and PGD robust top-1 on a held-out part of the test split after every epoch. Resumable like ironclad train: the
// checkpoint (--out) is written after every epoch with the run's options in its metadata, and a rerun with the same
// --out continues after the last finished epoch (and refuses options that differ, except --epochs).
#include "commands.hpp"
#include "common.hpp"
#include "report.hpp"
#include "threat_options.hpp"

#include "ironclad/adversarial/robust_training.hpp"

#include <nlohmann/json.hpp>

#include <cstdio>
#include <filesystem>
#include <iostream>

namespace ironclad::cli {

namespace {

// The metadata keys a resumed run must agree on.
const char* const robust_resume_keys[] = {"arch", "shortcut", "num_classes", "in_channels", "input_size", "mean", "std", "batch",
                                   "lr", "momentum", "weight_decay", "nesterov", "warmup_epochs", "augment", "seed",
                                   "limit", "init", "loss", "threat_model", "beta", "temperature", "alpha", "teacher"};

}  // namespace

int run_robust_train(const std::vector<std::string>& args) {
    Options o("robust-train", "--model NAME --data PATH --epochs N --out FILE [--loss pgd-at|trades|ard|rslad] [options]",
              "Adversarial training: every batch is attacked with PGD (the student in eval mode), then the student is\n"
              "trained on the loss: pgd-at = CE on the adversarial images (Madry); trades = CE(clean) + beta * KL(clean ||\n"
              "adversarial); ard and rslad distil a robust --teacher (ARD: tau^2 KL at temperature tau, weighted by\n"
              "alpha against CE; RSLAD: 5/6 KL(teacher || adversarial) + 1/6 KL(teacher || clean), no labels). After each\n"
              "epoch: clean and PGD robust top-1 on --eval-limit images of the test split. The normalisation is inside\n"
              "the model (none unless --mean/--std or --init give one), so --eps is in [0,1] pixel units. Resumable: rerun\n"
              "with the same --out.");
    o.required("model", "NAME", "architecture (see ironclad models)")
        .required("data", "PATH", "dataset folder: train/ and test/ image folders, CIFAR binary, or IDX")
        .required("epochs", "N", "epochs in all (a resumed run continues up to N)")
        .required("out", "FILE", "checkpoint to write (.safetensors, PyTorch names)")
        .value("loss", "NAME", "pgd-at, trades, ard or rslad", "trades")
        .value("teacher", "FILE", "weights of the robust teacher (ard, rslad); its normalisation from its metadata")
        .value("teacher-model", "NAME", "architecture of the teacher (default: --model)")
        .value("norm", "linf|l2", "norm of the training attack", "linf")
        .value("eps", "E", "radius of the training attack, [0,1] pixel units", "8/255")
        .value("step", "A", "step of the training attack", "2/255")
        .value("steps", "S", "steps of the training attack", "10")
        .value("beta", "B", "TRADES weight of the KL term", "6")
        .value("temperature", "T", "ARD distillation temperature", "30")
        .value("alpha", "A", "ARD weight of the distillation term against cross-entropy", "1")
        .value("eval-limit", "N", "held-out images (class-balanced subset of the test split; 0: all)", "1000")
        .value("eval-steps", "S", "steps of the held-out PGD (same eps and step, random start)", "20")
        .value("batch", "N", "images per batch", "128")
        .value("lr", "LR", "peak learning rate (cosine schedule per iteration)", "0.1")
        .value("momentum", "M", "SGD momentum", "0.9")
        .value("wd", "WD", "weight decay", "2e-4")
        .flag("nesterov", "Nesterov momentum")
        .value("warmup-epochs", "N", "epochs of linear warm-up", "0")
        .value("augment", "LIST", "crop,flip, crop, flip or none", "crop,flip")
        .value("crop-pad", "P", "padding of the random crop", "4")
        .value("limit", "N", "class-balanced subset of the train split")
        .value("seed", "S", "seed of the initial weights, shuffling, augmentation and attack starts", "0")
        .value("init", "FILE", "start from these weights (and their normalisation) instead of random ones")
        .value("shortcut", "A|B", "ResNet shortcut", "A")
        .value("threads", "N", "OpenMP threads (default: all cores)")
        .value("mean", "a,b,c", "per-channel mean of pixel/255 inside the model (default: none)")
        .value("std", "a,b,c", "per-channel std of pixel/255 inside the model (default: none)")
        .flag("progress", "show progress on stderr even when it is not a terminal")
        .flag("json", "print a report with per-epoch figures as JSON on stdout");
    if (!o.parse(args)) {
        std::cout << o.help();
        return 0;
    }

    // Every option is checked before any data is read or any file written.
    const std::string model_name = o.text("model"), data = o.text("data"), out = o.text("out");
    require_known_model(model_name);
    RobustTrainOptions r;
    try {
        r.loss = parse_robust_loss(o.text("loss"));
    } catch (const std::invalid_argument& e) {
        throw UsageError(e.what());
    }
    r.attack.norm = norm_option(o);
    r.attack.eps = strength(o, "eps");
    r.attack.step = strength(o, "step");
    r.attack.steps = static_cast<int>(o.integer("steps", 1));
    r.attack.seed = o.unsigned_integer("seed");
    try {
        r.attack.validate();
    } catch (const std::invalid_argument& e) {
        throw UsageError("--eps/--step/--steps: " + std::string(e.what()));
    }
    r.eval_attack = r.attack;
    r.eval_attack.steps = static_cast<int>(o.integer("eval-steps", 1));
    r.eval_attack.random_start = true;
    r.beta = static_cast<float>(o.real("beta"));
    if (r.beta < 0) o.reject("beta", "must not be negative");
    r.temperature = static_cast<float>(o.real("temperature"));
    if (!(r.temperature > 0)) o.reject("temperature", "must be positive");
    r.alpha = static_cast<float>(o.real("alpha"));
    if (r.alpha < 0 || r.alpha > 1) o.reject("alpha", "must be in [0, 1]");
    if (needs_teacher(r.loss) != o.given("teacher"))
        throw UsageError(needs_teacher(r.loss) ? "--loss " + o.text("loss") + " distils a teacher: give --teacher FILE"
                                               : "--teacher applies to --loss ard and rslad only");
    if (o.given("teacher") && !std::filesystem::is_regular_file(o.text("teacher")))
        o.reject("teacher", "file " + o.text("teacher") + " does not exist");
    const std::string teacher_model = o.given("teacher-model") ? o.text("teacher-model") : model_name;
    require_known_model(teacher_model);

    TrainOptions& t = r.train;
    t.epochs = static_cast<int>(o.integer("epochs", 1));
    t.loader.batch_size = o.integer("batch", 1);
    r.eval_batch = 2 * t.loader.batch_size;
    t.lr = static_cast<float>(o.real("lr"));
    if (!(t.lr > 0)) o.reject("lr", "must be positive");
    t.momentum = static_cast<float>(o.real("momentum"));
    if (t.momentum < 0 || t.momentum >= 1) o.reject("momentum", "must be in [0, 1)");
    t.weight_decay = static_cast<float>(o.real("wd"));
    if (t.weight_decay < 0) o.reject("wd", "must not be negative");
    t.nesterov = o.given("nesterov");
    t.warmup_epochs = static_cast<int>(o.integer("warmup-epochs", 0));
    if (t.warmup_epochs > t.epochs) o.reject("warmup-epochs", "must not exceed --epochs");
    const std::string augment = o.text("augment");
    if (augment != "crop,flip" && augment != "flip,crop" && augment != "crop" && augment != "flip" && augment != "none")
        o.reject("augment", "expected crop,flip, crop, flip or none");
    t.loader.augment_flip = augment.find("flip") != std::string::npos;
    t.loader.augment_crop_pad = augment.find("crop") != std::string::npos ? static_cast<int>(o.integer("crop-pad", 0)) : 0;
    const std::int64_t limit = o.given("limit") ? o.integer("limit", 1) : 0;
    const std::int64_t eval_limit = o.integer("eval-limit", 0);
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
    std::ostream& human = json ? std::cerr : std::cout;
    const bool resuming = std::filesystem::exists(out);
    Metadata previous;
    int epochs_done = 0;
    if (resuming) {
        previous = read_metadata(out);
        const auto done = previous.find("epochs_done");
        if (done == previous.end() || !parse_number(done->second, epochs_done) || !previous.count("threat_model"))
            throw std::runtime_error(out + " exists but is not a checkpoint of ironclad robust-train; choose another --out");
        if (epochs_done >= t.epochs) {
            human << out << " already holds " << epochs_done << " epochs (--epochs " << t.epochs << "): nothing to do\n";
            if (json) std::cout << json_text({{"out", out}, {"resumed_after", epochs_done}, {"epochs", nlohmann::ordered_json::array()}});
            return 0;
        }
    } else {
        const std::filesystem::path folder = std::filesystem::path(out).parent_path();
        if (!folder.empty() && !std::filesystem::is_directory(folder))
            throw std::runtime_error("cannot write --out " + out + ": folder " + folder.string() + " does not exist");
    }

    const Dataset train = load_split(data, true, limit);
    const Dataset held_out = load_split(data, false, eval_limit, "eval-limit");
    const Metadata init_metadata = o.given("init") ? read_metadata(o.text("init")) : Metadata{};
    auto norm = find_normalization(o, resuming ? previous : init_metadata, resuming ? out : o.given("init") ? o.text("init") : out);
    if (!norm) norm = Normalization{std::vector<float>(static_cast<std::size_t>(train.channels()), 0.0f),
                                    std::vector<float>(static_cast<std::size_t>(train.channels()), 1.0f)};
    check_channels(*norm, train);
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
                  {"warmup_epochs", std::to_string(t.warmup_epochs)},
                  {"augment", augment == "none" ? "none" : augment + (t.loader.augment_crop_pad ? " pad " + std::to_string(t.loader.augment_crop_pad) : "")},
                  {"seed", std::to_string(seed)},
                  {"init", o.given("init") ? o.text("init") : std::string("random")},
                  {"loss", to_string(r.loss)},
                  {"threat_model", json_text(r.attack.to_json(), -1)},
                  {"beta", r.loss == RobustLoss::trades ? shortest(r.beta) : "-"},
                  {"temperature", r.loss == RobustLoss::ard ? shortest(r.temperature) : "-"},
                  {"alpha", r.loss == RobustLoss::ard ? shortest(r.alpha) : "-"},
                  {"teacher", o.given("teacher") ? o.text("teacher") : std::string("-")},
                  {"trainer", "ironclad robust-train"}};
    if (resuming) {
        for (const char* key : robust_resume_keys) {
            const auto it = previous.find(key);
            if (it != previous.end() && it->second != t.metadata[key])
                throw UsageError(out + " was trained with " + key + "=" + it->second + ", this run asks for " +
                                 t.metadata[key] + ": resume with the same options or choose another --out");
        }
        human << "resuming " << out << " after epoch " << epochs_done << " of " << t.epochs << "\n";
    }

    auto student = std::make_shared<NormalizedModel>(make_model(model_name, cfg), norm->mean, norm->std);
    if (o.given("init") && !resuming) load_weights(o.text("init"), *student);
    std::shared_ptr<NormalizedModel> teacher;
    if (o.given("teacher")) {
        const std::string file = o.text("teacher");
        const Metadata meta = read_metadata(file);
        const auto mean = meta.find("mean"), stddev = meta.find("std");
        Normalization teacher_norm;
        if (mean == meta.end() || stddev == meta.end() || !parse_reals(mean->second, teacher_norm.mean) ||
            !parse_reals(stddev->second, teacher_norm.std))
            throw std::runtime_error(file + " has no readable mean/std metadata: the teacher's normalisation is unknown");
        const auto teacher_shortcut = parse_shortcut(meta.count("shortcut") ? meta.at("shortcut") : "A");
        if (!teacher_shortcut) throw std::runtime_error(file + ": unknown shortcut in the metadata");
        teacher = std::make_shared<NormalizedModel>(make_model(teacher_model, model_config(train, *teacher_shortcut, 0)),
                                                    teacher_norm.mean, teacher_norm.std);
        load_weights(file, *teacher);
    }
    human << "robust training (" << to_string(r.loss) << ", " << r.attack.describe() << ") of " << model_name << " on "
          << data << ": " << train.size() << " train / " << held_out.size() << " held-out images of " << image_shape(train)
          << "; mean " << format_reals(norm->mean) << ", std " << format_reals(norm->std) << std::endl;

    Progress progress(o.given("progress") || stderr_is_terminal(), "");
    nlohmann::ordered_json epochs = nlohmann::ordered_json::array();
    RobustTrainCallbacks cb;
    int epoch = epochs_done;
    cb.on_batch = [&](std::int64_t b, std::int64_t batches, double loss) {
        if (b == 1) progress.restart("epoch " + std::to_string(epoch + 1) + "/" + std::to_string(t.epochs));
        progress.update(b, batches, std::min(b * t.loader.batch_size, train.size()), "loss " + fixed(loss, 4));
    };
    cb.on_epoch = [&](const RobustEpochReport& e) {
        progress.finish();
        epoch = e.epoch;
        human << "epoch " << e.epoch << "/" << e.epochs << "  lr " << fixed(e.lr, 5) << "  loss " << fixed(e.train_loss, 4)
              << "  train adversarial top-1 " << fixed(e.train_adversarial_top1, 2) << "%  held-out clean "
              << fixed(e.held_out->clean_top1(), 2) << "%  PGD-" << r.eval_attack.steps << " "
              << fixed(e.held_out->robust_top1(), 2) << "%  " << fixed(e.seconds, 1) << " s  " << fixed(e.images_per_s, 1)
              << " images/s" << std::endl;
        epochs.push_back({{"epoch", e.epoch},
                          {"lr", e.lr},
                          {"train_loss", e.train_loss},
                          {"train_adversarial_top1", e.train_adversarial_top1},
                          {"held_out_clean_top1", e.held_out->clean_top1()},
                          {"held_out_robust_top1", e.held_out->robust_top1()},
                          {"seconds", e.seconds},
                          {"eval_seconds", e.held_out->seconds},
                          {"images_per_s", e.images_per_s}});
    };
    robust_fit(*student, train, &held_out, r, teacher.get(), cb);
    human << "wrote " << out << " (epoch " << t.epochs << " of " << t.epochs << ")\n";
    if (json) {
        nlohmann::ordered_json j;
        j["model"] = model_name;
        j["data"] = data;
        j["out"] = out;
        j["loss"] = to_string(r.loss);
        j["threat_model"] = r.attack.to_json();
        j["eval_threat_model"] = r.eval_attack.to_json();
        j["train_images"] = train.size();
        j["held_out_images"] = held_out.size();
        j["resumed_after"] = epochs_done;
        j["epochs"] = epochs;
        std::cout << json_text(j);
    }
    return 0;
}

}  // namespace ironclad::cli

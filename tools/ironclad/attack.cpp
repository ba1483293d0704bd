// ironclad attack: clean and robust top-1 of trained weights under an evasion attack (FGSM, PGD, APGD-CE,
// APGD-T, Square, or the AutoAttack-style sequence), in [0,1] pixel space with the normalisation inside the model.
#include "commands.hpp"
#include "common.hpp"
#include "report.hpp"
#include "threat_options.hpp"

#include "ironclad/adversarial/autoattack.hpp"
#include "ironclad/adversarial/normalized_model.hpp"
#include "ironclad/adversarial/pgd.hpp"
#include "ironclad/io/safetensors.hpp"
#include "ironclad/version.hpp"

#include <nlohmann/json.hpp>

#include <cstdio>
#include <filesystem>
#include <iostream>
#include <memory>

namespace ironclad::cli {

namespace {

const char* const attack_names = "fgsm, pgd, apgd-ce, apgd-t, square or autoattack";

// The attack the options describe; every inapplicable or bad value is a UsageError.
std::unique_ptr<Attack> make_attack(const Options& o) {
    const std::string name = o.text("attack");
    const bool fgsm_attack = name == "fgsm", pgd_attack = name == "pgd";
    const bool apgd_attack = name == "apgd-ce" || name == "apgd-t", square_attack = name == "square";
    if (!fgsm_attack && !pgd_attack && !apgd_attack && !square_attack && name != "autoattack")
        o.reject("attack", std::string("unknown attack (expected ") + attack_names + ")");
    ThreatModel t;
    t.norm = norm_option(o);
    t.eps = strength(o, "eps");
    if (t.eps < 0) o.reject("eps", "must not be negative");
    if (t.norm == Norm::linf && t.eps > 1)
        o.reject("eps", "is above 1, but pixels are in [0,1]: write 8/255 for 8 intensity levels");
    auto refuse = [&](const char* option, const std::string& why) {
        if (o.given(option)) throw UsageError("--" + std::string(option) + " does not apply to --attack " + name + ": " + why);
    };
    if (!pgd_attack) refuse("step", fgsm_attack ? "FGSM takes one step of size eps" : "its step size is adaptive or random");
    if (fgsm_attack) refuse("steps", "FGSM takes one step");
    if (square_attack) refuse("steps", "its budget is --queries");
    if (fgsm_attack || name == "autoattack") refuse("restarts", "it runs once");
    if (!pgd_attack && !fgsm_attack) refuse("random-start", "its start is always random");
    if (!square_attack && name != "autoattack") refuse("queries", "only square and autoattack query the model");
    if (name != "apgd-t" && name != "autoattack") refuse("targets", "only apgd-t and autoattack have target classes");
    if (fgsm_attack) t = fgsm(t.norm, t.eps);
    if (o.given("steps")) t.steps = static_cast<int>(o.integer("steps", 1));
    else if (!fgsm_attack) t.steps = apgd_attack || name == "autoattack" ? 100 : 10;
    if (o.given("step")) {
        t.step = strength(o, "step");
        if (!(t.step > 0)) o.reject("step", "must be positive");
    } else if (!fgsm_attack) {
        t.step = pgd_attack ? t.eps / 4 : 2 * t.eps;  // APGD's initial step, Square's window shift
    }
    t.restarts = static_cast<int>(o.integer("restarts", 1));
    t.random_start = !fgsm_attack;
    if (o.given("random-start")) {
        const std::string start = o.text("random-start");
        if (start != "on" && start != "off") o.reject("random-start", "expected on or off");
        t.random_start = start == "on";
    }
    t.seed = o.unsigned_integer("seed");
    const int queries = static_cast<int>(o.integer("queries", 1)), targets = static_cast<int>(o.integer("targets", 1));

    if (fgsm_attack || pgd_attack) return std::make_unique<Pgd>(t, name);
    if (name == "apgd-ce") return std::make_unique<Apgd>(t, ApgdOptions{.loss = ApgdLoss::ce});
    if (name == "apgd-t") return std::make_unique<Apgd>(t, ApgdOptions{.loss = ApgdLoss::dlr_targeted, .target_classes = targets});
    if (square_attack) return std::make_unique<Square>(t, SquareOptions{.queries = queries});
    return std::make_unique<AutoAttack>(t, AutoAttackOptions{.apgd_iterations = t.steps, .target_classes = targets, .square_queries = queries});
}

// DIR/adversarial.safetensors: the adversarial images in [0,1] with labels, dataset positions and predictions.
void save_adversarial(const std::filesystem::path& dir, const AttackReport& r, const Metadata& metadata) {
    std::filesystem::create_directories(dir);
    const Shape first = r.adversarial.front().shape();
    Tensor<float> images({r.images, first[1], first[2], first[3]});
    std::int64_t offset = 0;
    for (const auto& batch : r.adversarial) {
        std::copy(batch.begin(), batch.end(), images.data() + offset);
        offset += batch.numel();
    }
    Tensor<float> labels({r.images}), indices({r.images}), clean({r.images}), adversarial({r.images});
    for (std::int64_t i = 0; i < r.images; ++i) {
        const ImageResult& im = r.per_image[static_cast<std::size_t>(i)];
        labels[i] = static_cast<float>(im.label);
        indices[i] = static_cast<float>(im.index);
        clean[i] = static_cast<float>(im.clean_prediction);
        adversarial[i] = static_cast<float>(im.adversarial_prediction);
    }
    save_safetensors(dir / "adversarial.safetensors",
                     {{"images", images}, {"labels", labels}, {"indices", indices}, {"clean_predictions", clean},
                      {"adversarial_predictions", adversarial}},
                     metadata);
}

}  // namespace

int run_attack(const std::vector<std::string>& args) {
    Options o("attack", "--model NAME --weights FILE --data PATH [options]",
              "Attacks every image of a dataset split and reports clean and robust top-1 (percent). Attacks work in\n"
              "[0,1] pixel space with the weights' normalisation inside the model, so --eps and --step are in pixel\n"
              "units (8/255 is read as a fraction). An image the model misclassifies already counts as broken.\n"
              "Attacks: fgsm (one step of size eps), pgd (uniform random start, --restarts keep the worst case),\n"
              "apgd-ce / apgd-t (Croce & Hein 2020; --steps iterations, adaptive step), square (black-box, Linf or\n"
              "L2, --queries), autoattack (APGD-CE, then APGD-T, then Square on the images still robust).");
    o.required("model", "NAME", "architecture (see ironclad models)")
        .required("weights", "FILE", ".safetensors weights")
        .required("data", "PATH", "dataset folder: train/ and test/ image folders, CIFAR binary, or IDX")
        .value("attack", "NAME", attack_names, "pgd")
        .value("norm", "linf|l2", "the norm of the threat model", "linf")
        .value("eps", "E", "radius of the ball, in [0,1] pixel units (e.g. 8/255 or 0.031)", "8/255")
        .value("step", "A", "PGD step size (default: eps/4)")
        .value("steps", "S", "PGD steps, or APGD iterations (default: 10 for pgd, 100 for apgd and autoattack)")
        .value("restarts", "R", "random restarts (pgd, apgd, square); each image keeps its worst case", "1")
        .value("random-start", "on|off", "PGD/FGSM start at a uniform random point of the ball (default: on for pgd, "
                                         "off for fgsm)")
        .value("queries", "N", "query budget of square (and of the square stage of autoattack)", "5000")
        .value("targets", "N", "target classes of apgd-t (and of autoattack)", "9")
        .value("seed", "S", "seed of all random starts and random search", "0");
    add_split_options(o, "attack");
    o.value("json", "FILE", "write the result with the threat model and per-image results as JSON")
        .value("save-adv", "DIR", "write DIR/adversarial.safetensors: the adversarial images in [0,1] and labels")
        .flag("progress", "show progress on stderr even when it is not a terminal");
    if (!o.parse(args)) {
        std::cout << o.help();
        return 0;
    }

    // Every option is checked before any file is read.
    const std::string model_name = o.text("model"), weights = o.text("weights"), data = o.text("data");
    require_known_model(model_name);
    std::unique_ptr<Attack> attack = make_attack(o);
    const auto [split, limit, batch] = split_selection(o);
    for (const char* out : {"json", "save-adv"})
        if (o.given(out)) {
            const auto folder = std::filesystem::path(o.text(out)).parent_path();
            if (!folder.empty() && !std::filesystem::is_directory(folder))
                o.reject(out, "folder " + folder.string() + " does not exist");
        }
    apply_threads(o);

    TrainedModel trained = load_trained_model(o, model_name, weights, data, split == "train", limit);
    NormalizedModel model(trained.model, trained.norm.mean, trained.norm.std);
    std::fprintf(stderr, "%s on %s (%lld images): %s\n", attack->name().c_str(), data.c_str(),
                 static_cast<long long>(trained.data.size()), attack->threat().describe().c_str());
    Progress progress(o.given("progress") || stderr_is_terminal(), attack->name());
    const std::int64_t batches = (trained.data.size() + batch - 1) / batch;
    const AttackReport r = run_attack(model, trained.data, *attack,
                                      {.batch_size = batch,
                                       .keep_adversarial = o.given("save-adv"),
                                       .on_batch = [&](std::int64_t done, std::int64_t) {
                                           progress.update((done + batch - 1) / batch, batches, done);
                                       }});
    progress.finish();

    nlohmann::ordered_json j;
    j["engine"] = {{"name", "ironclad"}, {"version", engine_version}};
    j["model"] = model_name;
    j["weights"] = weights;
    j["data"] = data;
    j["split"] = split;
    j["limit"] = limit > 0 ? nlohmann::ordered_json(limit) : nlohmann::ordered_json(nullptr);
    j["mean"] = json_reals(trained.norm.mean);
    j["std"] = json_reals(trained.norm.std);
    j["attack"] = attack->to_json();
    j["images"] = r.images;
    j["clean_top1"] = r.clean_top1();
    j["robust_top1"] = r.robust_top1();
    j["statistics"] = attack->statistics();
    j["seconds"] = r.seconds;
    j["images_per_s"] = static_cast<double>(r.images) / r.seconds;
    nlohmann::ordered_json per_image = nlohmann::ordered_json::array();
    for (const auto& im : r.per_image)
        per_image.push_back({{"index", im.index}, {"label", im.label}, {"clean", im.clean_prediction},
                             {"adversarial", im.adversarial_prediction}, {"linf", im.linf}, {"l2", im.l2}});
    j["per_image"] = per_image;

    std::printf("%s on %lld images, %s: clean top-1 %.2f%%  robust top-1 %.2f%%  (%.1f s, %.1f images/s)\n",
                attack->name().c_str(), static_cast<long long>(r.images), attack->threat().describe().c_str(),
                r.clean_top1(), r.robust_top1(), r.seconds, static_cast<double>(r.images) / r.seconds);
    const nlohmann::ordered_json statistics = attack->statistics();
    if (!statistics.is_null())
        for (auto& [stage, count] : statistics.items())
            std::printf("  %-28s %lld images\n", stage.c_str(), static_cast<long long>(count.get<std::int64_t>()));
    if (o.given("json")) {
        const std::string text = json_text(j);
        write_file_atomic(o.text("json"), std::as_bytes(std::span(text.data(), text.size())));
    }
    if (o.given("save-adv")) {
        nlohmann::ordered_json meta = j;
        meta.erase("per_image");
        save_adversarial(o.text("save-adv"), r, {{"attack", json_text(meta, -1)}, {"mean", format_reals(trained.norm.mean)},
                                                 {"std", format_reals(trained.norm.std)}});
    }
    return 0;
}

}  // namespace ironclad::cli

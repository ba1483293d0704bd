// Model checkpoints: a model's state_dict as .safetensors with PyTorch names (loadable by
// safetensors.torch.load_file + load_state_dict), and the optimizer state beside it for resuming.
#pragma once

#include "ironclad/io/safetensors.hpp"
#include "ironclad/nn/module.hpp"
#include "ironclad/optim/sgd.hpp"

#include <filesystem>

namespace ironclad {

inline void save_model(const std::filesystem::path& path, const Module& model,
                       const std::map<std::string, std::string>& metadata = {}) {
    save_safetensors(path, model.state_dict(), metadata);
}

// Loads weights by name; every missing, unexpected or mis-shaped tensor is reported in one error.
// Returns the file's metadata.
inline std::map<std::string, std::string> load_model(const std::filesystem::path& path, Module& model,
                                                     bool strict = true) {
    SafetensorsFile file = load_safetensors(path);
    std::vector<std::pair<std::string, Tensor<float>*>> targets;
    auto state = model.state_dict();
    for (auto& [name, t] : state) targets.emplace_back(name, &t);
    load_into(file, targets, strict);
    return file.metadata;
}

inline std::filesystem::path training_state_path(const std::filesystem::path& checkpoint) {
    return checkpoint.string() + ".train-state";
}

// The resume point is one file, written atomically: model state and optimizer state (prefixed "optimizer.")
// with the epoch count. The clean model file is written after it, so a kill in between loses nothing.
inline void save_training_state(const std::filesystem::path& checkpoint, const Module& model, const Sgd& sgd,
                                int epochs_done, std::map<std::string, std::string> metadata) {
    metadata["epochs_done"] = std::to_string(epochs_done);
    auto tensors = model.state_dict();
    for (auto& [name, t] : sgd.state()) tensors.emplace_back("optimizer." + name, t);
    save_safetensors(training_state_path(checkpoint), tensors, metadata);
    save_model(checkpoint, model, metadata);
}

// Restores model and optimizer from the resume point written by save_training_state; returns the epochs done.
inline int resume_training(const std::filesystem::path& checkpoint, Module& model, Sgd& sgd) {
    const auto path = training_state_path(checkpoint);
    if (!std::filesystem::exists(path))
        throw std::runtime_error(checkpoint.string() + " exists but " + path.string() +
                                 " does not: cannot resume (remove the checkpoint to start afresh)");
    SafetensorsFile file = load_safetensors(path);
    SafetensorsFile model_part, optim_part;
    const std::string prefix = "optimizer.";
    for (auto& [name, t] : file.tensors)
        (name.rfind(prefix, 0) == 0 ? optim_part.tensors[name.substr(prefix.size())] : model_part.tensors[name]) = t;
    std::vector<std::pair<std::string, Tensor<float>*>> targets;
    auto state = model.state_dict();
    for (auto& [name, t] : state) targets.emplace_back(name, &t);
    load_into(model_part, targets, true);
    std::vector<std::pair<std::string, Tensor<float>>> optim(optim_part.tensors.begin(), optim_part.tensors.end());
    sgd.load_state(optim);
    auto it = file.metadata.find("epochs_done");
    if (it == file.metadata.end()) throw std::runtime_error(path.string() + ": no 'epochs_done' metadata, cannot resume");
    return std::stoi(it->second);
}

}  // namespace ironclad

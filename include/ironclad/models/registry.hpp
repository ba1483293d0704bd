// Model registry: every architecture of the CIFAR zoo by name, in a stable order.
//
// Contract: build_model(name, cfg) returns a freshly initialised model (seeded by cfg.seed) whose state_dict
// names equal the PyTorch reference definitions, so exported checkpoints load without renaming. cfg.shortcut
// only affects the ResNets (A: akamaster, B: chenyaofo) and input_size only the VGGs (their classifier
// reads the flattened feature map). Unknown names throw std::invalid_argument listing the known ones.
#pragma once

#include "ironclad/models/mobilenet_v2.hpp"
#include "ironclad/models/resnet_cifar.hpp"
#include "ironclad/models/shufflenet_v2.hpp"
#include "ironclad/models/vgg_cifar.hpp"

#include <functional>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

namespace ironclad {

struct ModelConfig {
    int num_classes = 10;
    int in_channels = 3;
    int input_size = 32;
    Shortcut shortcut = Shortcut::A;
    std::uint64_t seed = 0;
};

struct ModelInfo {
    std::string name;
    std::string family;
    std::function<std::shared_ptr<Module>(const ModelConfig&)> build;
};

inline const std::vector<ModelInfo>& model_registry() {
    static const std::vector<ModelInfo> registry = [] {
        std::vector<ModelInfo> r;
        for (int depth : {20, 32, 44, 56})
            r.push_back({"resnet" + std::to_string(depth), "resnet", [depth](const ModelConfig& c) {
                             return std::shared_ptr<Module>(resnet_cifar(
                                 {depth, c.num_classes, c.in_channels, c.shortcut, c.seed}));
                         }});
        for (int depth : {11, 13, 16, 19})
            r.push_back({"vgg" + std::to_string(depth) + "_bn", "vgg", [depth](const ModelConfig& c) {
                             return std::shared_ptr<Module>(
                                 vgg_cifar({depth, c.num_classes, c.in_channels, c.input_size, c.seed}));
                         }});
        for (auto [suffix, width] : {std::pair{"0_5", 0.5}, std::pair{"0_75", 0.75}})
            r.push_back({std::string("mobilenetv2_x") + suffix, "mobilenetv2", [width](const ModelConfig& c) {
                             return std::shared_ptr<Module>(
                                 mobilenet_v2({width, c.num_classes, c.in_channels, c.seed}));
                         }});
        r.push_back({"shufflenetv2_x1_5", "shufflenetv2", [](const ModelConfig& c) {
                         return std::shared_ptr<Module>(shufflenet_v2({1.5, c.num_classes, c.in_channels, c.seed}));
                     }});
        return r;
    }();
    return registry;
}

inline std::shared_ptr<Module> build_model(const std::string& name, const ModelConfig& cfg) {
    std::string known;
    for (const auto& info : model_registry()) {
        if (info.name == name) return info.build(cfg);
        known += (known.empty() ? "" : ", ") + info.name;
    }
    throw std::invalid_argument("build_model: unknown model '" + name + "' (known: " + known + ")");
}

}  // namespace ironclad

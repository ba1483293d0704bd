// ironclad models: the architectures of the registry with their size and cost for one CIFAR-sized image.
#include "commands.hpp"
#include "common.hpp"

#include "ironclad/models/summary.hpp"

#include <nlohmann/json.hpp>

#include <cstdio>
#include <iostream>

namespace ironclad::cli {

int run_models(const std::vector<std::string>& args) {
    Options o("models", "[--json]",
              "Lists the architectures ironclad can build, with their parameters and multiply-accumulates (MACs)\n"
              "per image for 3x32x32 input and 10 classes.");
    o.flag("json", "print the list as JSON on stdout");
    if (!o.parse(args)) {
        std::cout << o.help();
        return 0;
    }
    const ModelConfig cfg;
    const Shape input{1, cfg.in_channels, cfg.input_size, cfg.input_size};
    nlohmann::ordered_json list = nlohmann::ordered_json::array();
    if (!o.given("json")) std::printf("%-20s %-12s %12s %14s\n", "model", "family", "parameters", "MACs");
    for (const ModelInfo& info : known_models()) {
        auto model = info.build(cfg);
        const ModelSummary s = summarize(*model, input);
        if (o.given("json"))
            list.push_back({{"name", info.name}, {"family", info.family}, {"params", s.params}, {"macs", s.macs}});
        else
            std::printf("%-20s %-12s %12lld %12.2f M\n", info.name.c_str(), info.family.c_str(),
                        static_cast<long long>(s.params), static_cast<double>(s.macs) / 1e6);
    }
    if (o.given("json")) {
        nlohmann::ordered_json j;
        j["input"] = {cfg.in_channels, cfg.input_size, cfg.input_size};
        j["num_classes"] = cfg.num_classes;
        j["models"] = list;
        std::cout << json_text(j);
    }
    return 0;
}

}  // namespace ironclad::cli

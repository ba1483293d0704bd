// How optimizer state (momentum buffers, moment estimates, step counts) travels as named tensors, so it
// can be saved beside the model in one checkpoint and resumed exactly.
//
// Contract: entries are named "<optimizer>.<slot>.<group>.<index>" (e.g. "sgd.momentum.0.3"), where
// group and index locate the parameter in the optimizer's groups. Per-element slots have the parameter's
// shape; scalar slots (step counts) have shape [1]. Parsing checks every entry and reports all problems in
// one exception; a parameter with no entries simply has no state yet.
#pragma once

#include "ironclad/optim/param_group.hpp"

#include <charconv>
#include <set>
#include <span>
#include <stdexcept>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace ironclad::detail {

using StateTensors = std::vector<std::pair<std::string, Tensor<float>>>;

inline std::string state_name(std::string_view optimizer, std::string_view slot, std::size_t group,
                              std::size_t index) {
    return std::string(optimizer) + "." + std::string(slot) + "." + std::to_string(group) + "." +
           std::to_string(index);
}

struct StateSlot {
    std::string_view name;
    bool per_element;  // shaped like the parameter; otherwise a scalar of shape [1]
};

struct StateEntry {
    std::size_t slot, group, index;
    const Tensor<float>* tensor;
};

inline bool parse_index(std::string_view text, std::size_t& out) {
    const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), out);
    return ec == std::errc() && end == text.data() + text.size() && !text.empty();
}

inline std::vector<StateEntry> parse_state(const StateTensors& state, std::string_view optimizer,
                                           std::span<const StateSlot> slots, const std::vector<ParamGroup>& groups) {
    std::vector<StateEntry> entries;
    std::vector<std::string> problems;
    std::set<std::string> seen;
    for (const auto& [name, tensor] : state) {
        if (!seen.insert(name).second) {
            problems.push_back(name + ": appears twice");
            continue;
        }
        // optimizer . slot . group . index
        std::vector<std::string_view> parts;
        for (std::size_t begin = 0;;) {
            const std::size_t dot = name.find('.', begin);
            parts.emplace_back(std::string_view(name).substr(begin, dot - begin));
            if (dot == std::string::npos) break;
            begin = dot + 1;
        }
        StateEntry e{slots.size(), 0, 0, &tensor};
        for (std::size_t s = 0; parts.size() == 4 && s < slots.size(); ++s)
            if (parts[1] == slots[s].name) e.slot = s;
        if (parts.size() != 4 || parts[0] != optimizer || e.slot == slots.size() || !parse_index(parts[2], e.group) ||
            !parse_index(parts[3], e.index)) {
            problems.push_back(name + ": not a " + std::string(optimizer) + " state entry");
            continue;
        }
        if (e.group >= groups.size() || e.index >= groups[e.group].params.size()) {
            problems.push_back(name + ": no parameter " + std::string(parts[3]) + " in group " +
                               std::string(parts[2]));
            continue;
        }
        const Shape expected = slots[e.slot].per_element ? groups[e.group].params[e.index].shape() : Shape{1};
        if (tensor.shape() != expected) {
            problems.push_back(name + ": state has " + shape_str(tensor.shape()) + ", parameter expects " +
                               shape_str(expected));
            continue;
        }
        entries.push_back(e);
    }
    if (!problems.empty()) {
        std::string message = std::string(optimizer) + " load_state: " + std::to_string(problems.size()) +
                              " problem(s):";
        for (const auto& p : problems) message += "\n  " + p;
        throw std::invalid_argument(message);
    }
    return entries;
}

}  // namespace ironclad::detail

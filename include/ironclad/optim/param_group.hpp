// Parameter groups shared by the optimizers, and the element-wise update loop they all use.
//
// Contract: a group lists trainable Vars with its own weight decay (unset: the optimizer's default) and a
// learning-rate multiplier. A parameter may appear in one group only, as in torch.optim. Parameters
// whose gradient is undefined (no gradient reached them) are skipped by every optimizer.
#pragma once

#include "ironclad/autograd/variable.hpp"

#include <cstdint>
#include <optional>
#include <stdexcept>
#include <string>
#include <unordered_set>
#include <vector>

namespace ironclad {

struct ParamGroup {
    std::vector<Var> params;
    std::optional<float> weight_decay = std::nullopt;  // unset: the optimizer's default
    float lr_scale = 1;
};

namespace detail {

inline void check_param_groups(const std::vector<ParamGroup>& groups, const std::string& optimizer) {
    std::unordered_set<const Node*> seen;
    for (std::size_t g = 0; g < groups.size(); ++g) {
        const auto where = optimizer + ": group " + std::to_string(g);
        if (groups[g].weight_decay && !(*groups[g].weight_decay >= 0))
            throw std::invalid_argument(where + ": invalid weight decay " + std::to_string(*groups[g].weight_decay));
        if (!(groups[g].lr_scale >= 0))
            throw std::invalid_argument(where + ": invalid lr_scale " + std::to_string(groups[g].lr_scale));
        for (std::size_t i = 0; i < groups[g].params.size(); ++i) {
            const Var& p = groups[g].params[i];
            if (!p.defined()) throw std::invalid_argument(where + ", parameter " + std::to_string(i) + " is undefined");
            if (!seen.insert(p.node()).second)
                throw std::invalid_argument(where + ", parameter " + std::to_string(i) +
                                            " appears more than once among the groups");
        }
    }
}

inline void check_grad_shape(const Var& p, const std::string& optimizer, std::size_t g, std::size_t i) {
    if (p.grad().shape() != p.shape())
        throw std::logic_error(optimizer + ": group " + std::to_string(g) + ", parameter " + std::to_string(i) +
                               " has gradient shape " + shape_str(p.grad().shape()) + " for value shape " +
                               shape_str(p.shape()));
}

// Updates are element-wise, so splitting the range over threads changes the speed, never the result.
template <class F>
void for_each_element(std::int64_t n, F&& update) {
#pragma omp parallel for schedule(static) if (n >= 65536)
    for (std::int64_t k = 0; k < n; ++k) update(k);
}

}  // namespace detail
}  // namespace ironclad

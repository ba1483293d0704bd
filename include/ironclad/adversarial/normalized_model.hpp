// NormalizedModel: a network with its input normalisation inside it, so that it takes images in [0,1].
//
// Contract: forward(x) = net((x - mean[c]) / std[c]) per channel c, with the gradient reaching x (divided by
// std[c]), so attacks perturb and bound pixels, not normalised values (the trap of tools that attack the
// normalised tensor: their eps is silently std times too large or small). The normalisation is computed in
// float as (x - mean) / std, so a pixel v/255 gives bit for bit what the data loader's normalisation gives.
// The net is registered as a child with an empty name: state_dict(), named_parameters() and checkpoints have
// exactly the net's names, so a NormalizedModel saves and loads the net's files unchanged.
// x: [N,C,H,W] with C == mean.size() == std.size().
#pragma once

#include "ironclad/autograd/elementwise.hpp"
#include "ironclad/nn/module.hpp"

#include <memory>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

namespace ironclad {

inline Var normalize_channels(const Var& x, const std::vector<float>& mean, const std::vector<float>& stddev) {
    const Shape& s = x.shape();
    if (s.size() != 4 || s[1] != static_cast<std::int64_t>(mean.size()) || mean.size() != stddev.size())
        throw std::invalid_argument("normalize_channels: input " + shape_str(s) + " needs [N,C,H,W] with C = " +
                                    std::to_string(mean.size()) + " (the mean/std entries)");
    const std::int64_t channels = s[1], plane = s[2] * s[3], planes = s[0] * channels;
    auto y = Tensor<float>::uninitialized(s);
    const float* xp = x.value().data();
    float* yp = y.data();
    for (std::int64_t p = 0; p < planes; ++p) {
        const float m = mean[static_cast<std::size_t>(p % channels)], d = stddev[static_cast<std::size_t>(p % channels)];
        for (std::int64_t k = p * plane; k < (p + 1) * plane; ++k) yp[k] = (xp[k] - m) / d;
    }
    return make_result(std::move(y), {&x}, [stddev, channels, plane, planes](Node& n) {
        float* dx = n.parents[0]->grad_buffer().data();
        const float* dy = n.grad.data();
        for (std::int64_t p = 0; p < planes; ++p) {
            const float d = stddev[static_cast<std::size_t>(p % channels)];
            for (std::int64_t k = p * plane; k < (p + 1) * plane; ++k) dx[k] += dy[k] / d;
        }
    });
}

class NormalizedModel : public Module {
public:
    NormalizedModel(std::shared_ptr<Module> net, std::vector<float> mean, std::vector<float> stddev)
        : net_(std::move(net)), mean_(std::move(mean)), std_(std::move(stddev)) {
        if (!net_) throw std::invalid_argument("NormalizedModel: null network");
        if (mean_.empty() || mean_.size() != std_.size())
            throw std::invalid_argument("NormalizedModel: need one mean and one std per channel, got " +
                                        std::to_string(mean_.size()) + " and " + std::to_string(std_.size()));
        for (float v : std_)
            if (!(v > 0)) throw std::invalid_argument("NormalizedModel: std " + std::to_string(v) + " must be positive");
        register_module("", net_);
        train(net_->is_training());
    }
    // Identity normalisation (mean 0, std 1) for `channels` channels: the net already takes [0,1] images.
    static std::shared_ptr<NormalizedModel> identity(std::shared_ptr<Module> net, int channels) {
        return std::make_shared<NormalizedModel>(std::move(net), std::vector<float>(static_cast<std::size_t>(channels), 0.0f),
                                                 std::vector<float>(static_cast<std::size_t>(channels), 1.0f));
    }

    Var forward(const Var& x) override { return (*net_)(normalize_channels(x, mean_, std_)); }
    std::string type_name() const override { return "NormalizedModel"; }

    Module& net() { return *net_; }
    const std::shared_ptr<Module>& net_ptr() const { return net_; }
    const std::vector<float>& mean() const { return mean_; }
    const std::vector<float>& stddev() const { return std_; }

private:
    std::shared_ptr<Module> net_;
    std::vector<float> mean_, std_;
};

}  // namespace ironclad

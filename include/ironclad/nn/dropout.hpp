// Dropout layer: a fresh mask per call, drawn from a counter so runs are reproducible at any thread count.
#pragma once

#include "ironclad/autograd/dropout.hpp"
#include "ironclad/nn/module.hpp"

namespace ironclad {

class Dropout : public Module {
public:
    explicit Dropout(float p, std::uint64_t seed = 0) : p_(p), seed_(seed) {
        if (!(p >= 0.0f && p < 1.0f)) throw std::invalid_argument("Dropout: p must be in [0,1), got " + std::to_string(p));
    }
    Var forward(const Var& x) override { return dropout(x, p_, is_training(), seed_ + calls_++); }
    std::string type_name() const override { return "Dropout"; }

private:
    float p_;
    std::uint64_t seed_;
    std::uint64_t calls_ = 0;
};

}  // namespace ironclad

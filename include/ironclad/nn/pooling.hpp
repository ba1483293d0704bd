// Pooling and reshaping layers (no parameters).
#pragma once

#include "ironclad/autograd/pool.hpp"
#include "ironclad/autograd/shape_ops.hpp"
#include "ironclad/nn/module.hpp"

namespace ironclad {

class MaxPool2d : public Module {
public:
    MaxPool2d(int kernel, int stride, int padding = 0) : kernel_(kernel), stride_(stride), padding_(padding) {}
    Var forward(const Var& x) override { return max_pool2d(x, kernel_, stride_, padding_); }
    std::string type_name() const override { return "MaxPool2d"; }
    int kernel() const { return kernel_; }
    int stride() const { return stride_; }
    int padding() const { return padding_; }

private:
    int kernel_, stride_, padding_;
};

class AvgPool2d : public Module {
public:
    AvgPool2d(int kernel, int stride, int padding = 0) : kernel_(kernel), stride_(stride), padding_(padding) {}
    Var forward(const Var& x) override { return avg_pool2d(x, kernel_, stride_, padding_); }
    std::string type_name() const override { return "AvgPool2d"; }

private:
    int kernel_, stride_, padding_;
};

// [N,C,H,W] -> [N,C]
class GlobalAvgPool : public Module {
public:
    Var forward(const Var& x) override { return global_avg_pool(x); }
    std::string type_name() const override { return "AdaptiveAvgPool2d"; }
};

// [N,...] -> [N,rest]
class Flatten : public Module {
public:
    Var forward(const Var& x) override { return flatten(x); }
    std::string type_name() const override { return "Flatten"; }
};

}  // namespace ironclad

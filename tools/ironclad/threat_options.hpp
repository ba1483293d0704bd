// Reading threat-model values from the command line (attack, robust-train, grid): strengths written as numbers or
// fractions ("8/255"), and the norm. A bad value is a UsageError naming the option.
#pragma once

#include "options.hpp"

#include "ironclad/adversarial/threat_model.hpp"

#include <string>
#include <string_view>
#include <vector>

namespace ironclad::cli {

// Comma-separated strengths, e.g. "0,1/255,2/255" (one value for a single strength).
inline std::vector<float> strength_list(const Options& o, const std::string& name) {
    std::vector<float> out;
    const std::string text = o.text(name);
    for (std::size_t pos = 0; pos <= text.size();) {
        const std::size_t comma = std::min(text.find(',', pos), text.size());
        try {
            out.push_back(static_cast<float>(parse_strength(std::string_view(text).substr(pos, comma - pos))));
        } catch (const std::invalid_argument& e) {
            o.reject(name, e.what());
        }
        pos = comma + 1;
    }
    return out;
}

inline float strength(const Options& o, const std::string& name) {
    const auto values = strength_list(o, name);
    if (values.size() != 1) o.reject(name, "expected one number or fraction, e.g. 8/255");
    return values.front();
}

inline Norm norm_option(const Options& o, const std::string& name = "norm") {
    try {
        return parse_norm(o.text(name));
    } catch (const std::invalid_argument&) {
        o.reject(name, "expected linf or l2");
    }
}

}  // namespace ironclad::cli

// Command-line options of one subcommand: declared with their help text, parsed strictly, read back typed.
//
// Contract: "--name value" and "--name=value" are accepted; unknown options, positional words, a missing
// value, a missing required option and an unparsable number are all UsageError (exit status 2), with a message
// naming the option. Numbers are read with std::from_chars (no locale, no trailing garbage).
#pragma once

#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstdint>
#include <map>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

namespace ironclad::cli {

struct UsageError : std::runtime_error {
    using std::runtime_error::runtime_error;
};

template <class T>
bool parse_number(std::string_view s, T& out) {
    const auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), out);
    return !s.empty() && ec == std::errc{} && end == s.data() + s.size();
}

// "a,b,c" -> finite floats; false on any malformed or empty item.
inline bool parse_reals(std::string_view s, std::vector<float>& out) {
    out.clear();
    for (std::size_t pos = 0;;) {
        const std::size_t comma = std::min(s.find(',', pos), s.size());
        float v = 0;
        if (!parse_number(s.substr(pos, comma - pos), v) || !std::isfinite(v)) return false;
        out.push_back(v);
        if (comma == s.size()) return true;
        pos = comma + 1;
    }
}

class Options {
public:
    Options(std::string command, std::string synopsis, std::string description)
        : command_(std::move(command)), synopsis_(std::move(synopsis)), description_(std::move(description)) {}

    // An option with a value; an empty fallback means "not set unless given".
    Options& value(const std::string& name, std::string metavar, std::string help, std::string fallback = "") {
        specs_.push_back({name, std::move(metavar), std::move(help), std::move(fallback), false, false});
        return *this;
    }
    Options& required(const std::string& name, std::string metavar, std::string help) {
        specs_.push_back({name, std::move(metavar), std::move(help), "", false, true});
        return *this;
    }
    Options& flag(const std::string& name, std::string help) {
        specs_.push_back({name, "", std::move(help), "", true, false});
        return *this;
    }

    // args are the words after the subcommand. Returns false when --help was asked for.
    bool parse(const std::vector<std::string>& args) {
        for (std::size_t i = 0; i < args.size(); ++i) {
            const std::string& word = args[i];
            if (word == "--help" || word == "-h") return false;
            if (word.rfind("--", 0) != 0 || word.size() == 2)
                throw UsageError("unexpected argument '" + word + "' (options start with --; see ironclad " + command_ +
                                 " --help)");
            const std::size_t eq = word.find('=');
            const std::string name = word.substr(2, eq == std::string::npos ? std::string::npos : eq - 2);
            const Spec* spec = find(name);
            if (!spec) throw UsageError("unknown option --" + name + " for ironclad " + command_ + " (see --help)");
            if (spec->is_flag) {
                if (eq != std::string::npos) throw UsageError("--" + name + " takes no value");
                given_[name] = "";
            } else if (eq != std::string::npos) {
                given_[name] = word.substr(eq + 1);
            } else {
                if (i + 1 >= args.size()) throw UsageError("--" + name + " needs a value (" + spec->metavar + ")");
                given_[name] = args[++i];
            }
        }
        for (const Spec& s : specs_)
            if (s.required && !given_.count(s.name))
                throw UsageError("missing --" + s.name + " " + s.metavar + " (see ironclad " + command_ + " --help)");
        return true;
    }

    // Given on the command line (for a flag: set).
    bool given(const std::string& name) const { return given_.count(spec(name).name) > 0; }
    std::string text(const std::string& name) const {
        const auto it = given_.find(name);
        if (it != given_.end()) return it->second;
        const Spec& s = spec(name);
        if (s.fallback.empty()) throw std::logic_error("option --" + name + " has no value and no default");
        return s.fallback;
    }

    std::int64_t integer(const std::string& name, std::int64_t min) const {
        std::int64_t v = 0;
        if (!parse_number(text(name), v)) reject(name, "expected an integer");
        if (v < min) reject(name, "must be at least " + std::to_string(min));
        return v;
    }
    std::uint64_t unsigned_integer(const std::string& name) const {
        std::uint64_t v = 0;
        if (!parse_number(text(name), v)) reject(name, "expected a non-negative integer");
        return v;
    }
    double real(const std::string& name) const {
        double v = 0;
        if (!parse_number(text(name), v) || !std::isfinite(v)) reject(name, "expected a number");
        return v;
    }
    // Comma-separated numbers, e.g. "0.485,0.456,0.406".
    std::vector<float> reals(const std::string& name) const {
        std::vector<float> out;
        if (!parse_reals(text(name), out)) reject(name, "expected comma-separated numbers, e.g. 0.5,0.5,0.5");
        return out;
    }

    [[noreturn]] void reject(const std::string& name, const std::string& why) const {
        throw UsageError("--" + name + " '" + text(name) + "': " + why);
    }

    std::string help() const {
        std::string out = "usage: ironclad " + command_ + " " + synopsis_ + "\n\n" + description_ + "\n\noptions:\n";
        for (const Spec& s : specs_) {
            std::string left = "  --" + s.name + (s.metavar.empty() ? "" : " " + s.metavar);
            left.resize(std::max<std::size_t>(left.size() + 2, 28), ' ');
            out += left + s.help;
            if (s.required) out += " (required)";
            if (!s.fallback.empty()) out += " (default: " + s.fallback + ")";
            out += "\n";
        }
        return out + "  --help                    this text\n";
    }

private:
    struct Spec {
        std::string name, metavar, help, fallback;
        bool is_flag, required;
    };

    const Spec* find(const std::string& name) const {
        for (const Spec& s : specs_)
            if (s.name == name) return &s;
        return nullptr;
    }
    const Spec& spec(const std::string& name) const {
        const Spec* s = find(name);
        if (!s) throw std::logic_error("option --" + name + " was never declared");
        return *s;
    }
    std::string command_, synopsis_, description_;
    std::vector<Spec> specs_;
    std::map<std::string, std::string> given_;
};

}  // namespace ironclad::cli

// Where the CLI's output goes: results on stdout (JSON with --json, else text), progress and errors on stderr.
//
// Contract: an error is one line "ironclad: error: ..." (a multi-line library message is folded to its first
// two lines and a count of the rest). Progress is drawn only when enabled (stderr is a terminal, or
// --progress) and only once a step has run for a second: on a terminal as one line redrawn in place, otherwise
// as a plain line every few seconds.
#pragma once

#include <chrono>
#include <cstdint>
#include <cstdio>
#include <iostream>
#include <string>

#include <unistd.h>

namespace ironclad::cli {

inline std::string one_line(const std::string& message) {
    std::string out;
    std::size_t lines = 0, pos = 0;
    while (pos <= message.size()) {
        const std::size_t end = std::min(message.find('\n', pos), message.size());
        std::string line = message.substr(pos, end - pos);
        line.erase(0, line.find_first_not_of(" \t"));
        if (!line.empty()) {
            if (lines < 2) out += (lines ? " " : "") + line;
            ++lines;
        }
        pos = end + 1;
    }
    if (lines > 2) out += " (and " + std::to_string(lines - 2) + " more)";
    return out;
}

inline void print_error(const std::string& message) { std::cerr << "ironclad: error: " << one_line(message) << "\n"; }

inline bool stderr_is_terminal() { return ::isatty(STDERR_FILENO) == 1; }

class Progress {
public:
    Progress(bool enabled, std::string label)
        : enabled_(enabled), tty_(stderr_is_terminal()), label_(std::move(label)) {}
    Progress(const Progress&) = delete;
    Progress& operator=(const Progress&) = delete;
    ~Progress() { finish(); }

    // Starts timing a new step (the rate and the one-second delay count from here).
    void restart(std::string label) {
        finish();
        label_ = std::move(label);
        start_ = Clock::now();
        last_ = {};
    }

    // done of total steps (batches); images so far, for the rate; detail is appended (e.g. the running loss).
    void update(std::int64_t done, std::int64_t total, std::int64_t images, const std::string& detail = "") {
        if (!due()) return;
        char line[256];
        std::snprintf(line, sizeof line, "%lld/%lld batches  %.0f images/s%s%s", static_cast<long long>(done),
                      static_cast<long long>(total), static_cast<double>(images) / seconds(start_, last_),
                      detail.empty() ? "" : "  ", detail.c_str());
        draw(line);
    }
    // A free-form status line (e.g. a campaign's running interval), throttled like update().
    void status(const std::string& text) {
        if (due()) draw(text);
    }
    // Erases the in-place line, so what follows starts on a clean line.
    void finish() {
        if (!drawn_) return;
        std::fprintf(stderr, "\r\033[K");
        std::fflush(stderr);
        drawn_ = false;
    }

private:
    using Clock = std::chrono::steady_clock;
    // Nothing in the first second, then at most 5 lines a second on a terminal and one every 5 s in a log.
    bool due() {
        if (!enabled_) return false;
        const auto now = Clock::now();
        if (seconds(start_, now) < 1.0 || seconds(last_, now) < (tty_ ? 0.2 : 5.0)) return false;
        last_ = now;
        return true;
    }
    void draw(const std::string& text) {
        if (tty_) {
            std::fprintf(stderr, "\r\033[K%s: %s", label_.c_str(), text.c_str());
            drawn_ = true;
        } else {
            std::fprintf(stderr, "%s: %s\n", label_.c_str(), text.c_str());
        }
        std::fflush(stderr);
    }
    static double seconds(Clock::time_point a, Clock::time_point b) {
        return std::chrono::duration<double>(b - a).count();
    }

    bool enabled_, tty_, drawn_ = false;
    std::string label_;
    Clock::time_point start_ = Clock::now(), last_{};
};

}  // namespace ironclad::cli

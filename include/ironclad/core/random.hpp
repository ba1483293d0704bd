// Rng: seeded, splittable random streams (xoshiro256**, state filled by SplitMix64).
//
// Contract: a stream is named by (seed, stream_id) and its numbers depend on that name alone, never on the
// thread that draws them or on other streams, so "trial t of seed s" is Rng::stream(s, t) on any thread count.
// split(id) names a child stream from this stream's name, not from how far it has been drawn, so nested splits
// (campaign -> trial -> layer) stay stable when code in between draws more or fewer numbers.
// Integer and uniform draws are identical on every platform; normal/geometric/binomial also use <cmath> (log, cos,
// sqrt), so they repeat exactly under the same math library. One Rng is not for sharing between threads: give each
// thread (or better, each trial) its own stream. All draws are implemented here rather than through <random>'s
// distributions, whose algorithms differ between standard libraries; Rng still satisfies
// std::uniform_random_bit_generator for code that wants those.
#pragma once

#include <bit>
#include <cmath>
#include <concepts>
#include <cstdint>
#include <limits>
#include <numbers>
#include <span>
#include <stdexcept>
#include <string>
#include <utility>

namespace ironclad {

class Rng {
public:
    using result_type = std::uint64_t;
    static constexpr result_type min() { return 0; }
    static constexpr result_type max() { return std::numeric_limits<result_type>::max(); }

    // Stream 0 of `seed`.
    explicit Rng(std::uint64_t seed) : Rng(seed, 0) {}
    static Rng stream(std::uint64_t seed, std::uint64_t stream_id) { return Rng(seed, stream_id); }

    static constexpr std::uint64_t golden_gamma = 0x9E3779B97F4A7C15ull;
    // SplitMix64's finaliser, a bijection on 64-bit words (also a counter-based hash: dropout masks).
    static constexpr std::uint64_t mix(std::uint64_t z) {
        z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
        z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
        return z ^ (z >> 31);
    }
    Rng split(std::uint64_t id) const { return Rng(key_, id); }

    result_type operator()() { return next_u64(); }
    std::uint64_t next_u64() {
        const std::uint64_t result = std::rotl(s_[1] * 5, 7) * 9;
        const std::uint64_t t = s_[1] << 17;
        s_[2] ^= s_[0];
        s_[3] ^= s_[1];
        s_[1] ^= s_[2];
        s_[0] ^= s_[3];
        s_[2] ^= t;
        s_[3] = std::rotl(s_[3], 45);
        return result;
    }

    // [0, 1) on the grid of multiples of 2^-24 (float) or 2^-53 (double).
    template <class F = double>
        requires std::same_as<F, float> || std::same_as<F, double>
    F uniform() {
        if constexpr (std::same_as<F, float>)
            return static_cast<float>(next_u64() >> 40) * 0x1.0p-24f;
        else
            return static_cast<double>(next_u64() >> 11) * 0x1.0p-53;
    }
    // Uniform on [lo, hi], both included, without modulo bias.
    std::int64_t uniform_int(std::int64_t lo, std::int64_t hi) {
        if (lo > hi)
            throw std::invalid_argument("Rng::uniform_int: empty range [" + std::to_string(lo) + ", " +
                                        std::to_string(hi) + "]");
        const std::uint64_t span = static_cast<std::uint64_t>(hi) - static_cast<std::uint64_t>(lo) + 1;
        if (span == 0) return static_cast<std::int64_t>(next_u64());  // the whole int64 range
        // Lemire's multiply-shift: the high word is the draw; rejecting the few low words below 2^64 mod span
        // removes the bias, and the division is only paid on the rare draws that come near it.
        U128 m = U128{next_u64()} * span;
        if (static_cast<std::uint64_t>(m) < span) {
            const std::uint64_t threshold = -span % span;
            while (static_cast<std::uint64_t>(m) < threshold) m = U128{next_u64()} * span;
        }
        return static_cast<std::int64_t>(static_cast<std::uint64_t>(lo) + static_cast<std::uint64_t>(m >> 64));
    }
    // Box-Muller, one variate per call so the stream position does not depend on a cached second value.
    double normal(double mean = 0.0, double stddev = 1.0) {
        const double radius = std::sqrt(-2.0 * std::log(1.0 - uniform()));  // 1 - u is in (0, 1]
        return mean + stddev * radius * std::cos(2.0 * std::numbers::pi * uniform());
    }
    bool bernoulli(double p) {
        check_probability(p, "bernoulli");
        return uniform() < p;
    }
    // Failures before the first success, each trial succeeding with probability p in (0, 1].
    std::int64_t geometric(double p) {
        check_probability(p, "geometric");
        if (p == 0) throw std::invalid_argument("Rng::geometric: p = 0 never succeeds");
        return p == 1 ? 0 : geometric_with_log_q(std::log1p(-p));
    }
    // Successes in n independent trials of probability p, exactly distributed (up to double rounding) for any
    // n: a geometric waiting-time count when n*p < 10, Hormann's BTRS rejection sampler otherwise.
    std::int64_t binomial(std::int64_t n, double p) {
        if (n < 0) throw std::invalid_argument("Rng::binomial: negative trial count " + std::to_string(n));
        check_probability(p, "binomial");
        if (p > 0.5) return n - binomial(n, 1.0 - p);  // BTRS is set up for p <= 1/2; 1 - p is exact here
        if (p == 0) return 0;
        if (static_cast<double>(n) * p < 10) return binomial_waiting_time(n, p);
        return binomial_btrs(static_cast<double>(n), p);
    }
    // Fisher-Yates: every permutation equally likely.
    template <class T>
    void shuffle(std::span<T> items) {
        for (std::size_t i = items.size(); i > 1; --i)
            std::swap(items[i - 1], items[static_cast<std::size_t>(uniform_int(0, static_cast<std::int64_t>(i) - 1))]);
    }

private:
    __extension__ typedef unsigned __int128 U128;

    Rng(std::uint64_t parent, std::uint64_t id) : key_(derive(parent, id)) {
        std::uint64_t x = key_;
        for (auto& word : s_) word = mix(x += golden_gamma);  // SplitMix64: never the all-zero state
    }

    // Injective in each argument with the other fixed, so streams of one seed (or one id of many seeds) never share
    // a key.
    static constexpr std::uint64_t derive(std::uint64_t parent, std::uint64_t id) {
        return mix(mix(parent) ^ (id * golden_gamma));
    }

    static void check_probability(double p, const char* who) {
        if (!(p >= 0 && p <= 1))
            throw std::invalid_argument(std::string("Rng::") + who + ": probability " + std::to_string(p) +
                                        " is not in [0, 1]");
    }
    // Inversion: P(floor(log U / log q) >= k) = q^k for U uniform on (0, 1].
    std::int64_t geometric_with_log_q(double log_q) {
        const double k = std::floor(std::log(1.0 - uniform()) / log_q);
        return k < 0x1.0p63 ? static_cast<std::int64_t>(k) : std::numeric_limits<std::int64_t>::max();
    }
    // Successes are separated by geometric runs of failures; count the successes that land within n trials.
    std::int64_t binomial_waiting_time(std::int64_t n, double p) {
        const double log_q = std::log1p(-p);
        std::int64_t successes = 0;
        for (std::int64_t left = n;; ++successes) {
            const std::int64_t failures = geometric_with_log_q(log_q);
            if (failures >= left) return successes;
            left -= failures + 1;
        }
    }
    // log k! minus its Stirling approximation (k + 1/2) log(k + 1) - (k + 1) + log(2 pi) / 2.
    static double stirling_tail(double k) {
        static constexpr double small[] = {0.08106146679532733,  0.04134069595540946,  0.027677925684997717,
                                           0.02079067210376584,  0.01664469118982126,  0.013876128823072875,
                                           0.011896709945893313, 0.010411265261973668, 0.00925546218270945,
                                           0.008330563433359472};
        if (k <= 9) return small[static_cast<int>(k)];
        const double k1sq = (k + 1) * (k + 1);
        return (1.0 / 12 - (1.0 / 360 - 1.0 / 1260 / k1sq) / k1sq) / (k + 1);
    }
    // W. Hormann, "The generation of binomial random variates", J. Stat. Comput. Simul. 46 (1993), algorithm BTRS:
    // transformed rejection with a squeeze box; the exact test compares against log(f(k) / f(m)), m the mode,
    // written with Stirling tails so it stays accurate for huge n.
    // Requires p <= 1/2 and n*p >= 10.
    std::int64_t binomial_btrs(double n, double p) {
        const double spq = std::sqrt(n * p * (1 - p));
        const double b = 1.15 + 2.53 * spq;
        const double a = -0.0873 + 0.0248 * b + 0.01 * p;
        const double c = n * p + 0.5;
        const double v_r = 0.92 - 4.2 / b;
        const double r = p / (1 - p);
        const double alpha = (2.83 + 5.1 / b) * spq;
        const double m = std::floor((n + 1) * p);
        const double mode_terms =
            (m + 0.5) * std::log((m + 1) / (r * (n - m + 1))) + stirling_tail(m) + stirling_tail(n - m);
        for (;;) {
            const double u = uniform() - 0.5;
            const double v = uniform();
            const double us = 0.5 - std::fabs(u);
            const double k = std::floor((2 * a / us + b) * u + c);
            if (us >= 0.07 && v <= v_r) return static_cast<std::int64_t>(k);
            if (k < 0 || k > n) continue;
            const double log_v = std::log(v * alpha / (a / (us * us) + b));
            const double log_ratio = mode_terms + (n + 1) * std::log((n - m + 1) / (n - k + 1)) +
                                     (k + 0.5) * std::log(r * (n - k + 1) / (k + 1)) - stirling_tail(k) -
                                     stirling_tail(n - k);
            if (log_v <= log_ratio) return static_cast<std::int64_t>(k);
        }
    }

    std::uint64_t key_;
    std::uint64_t s_[4];
};

}  // namespace ironclad

// Statistics for fault-injection campaigns: trial summaries with Student-t intervals, binomial proportions,
// and the Leveugle et al. (DATE 2009) sample size / error margin of statistical fault injection.
//
// Contract:
//   normal_quantile(p)          inverse standard normal CDF for 0 < p < 1 (Acklam's approximation plus one
//                               Halley step on erfc, relative error near machine precision)
//   student_t_quantile(p, df)   inverse Student-t CDF for 0 < p < 1 and df >= 1 (df may be +inf = normal);
//                               solved by bisection on the exact CDF (regularised incomplete beta), or for
//                               df >= max(1000, 250 z^2) the Cornish-Fisher expansion (A&S 26.7.5, four terms);
//                               relative error about 1e-14 or better; +-inf past the double range (df = 1,
//                               tail below 1e-308)
//   summarize_trials            mean, sample standard deviation (n-1; 0 when n < 2) and the 95% interval
//                               mean +- t(0.975, n-1) s / sqrt(n). When n < 2 the spread is unknown, so the
//                               interval is [-inf, +inf]; when n == 0 the mean is NaN. Non-finite inputs propagate.
//   wilson_interval             Wilson score interval (exactly 0 / 1 at 0 / n successes); n == 0 gives p = NaN
//                               and [0, 1]
//   normal_margin               Wald half-width z sqrt(p (1-p) / n)
//   leveugle_sample_size        n = ceil(N / (1 + e^2 (N-1) / (t^2 p (1-p)))), t the two-sided normal quantile of
//                               `confidence`; N (a whole number of fault sites, or +inf) = +inf gives
//                               ceil(t^2 p (1-p) / e^2). Never more than N; std::overflow_error past int64.
//   leveugle_margin             its inverse, e = t sqrt(p (1-p) / n) sqrt((N-n) / (N-1)); no finite-population
//                               factor when N = +inf, and 0 when n == N (every fault site was injected)
// Arguments outside these domains throw std::invalid_argument.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <numbers>
#include <span>
#include <stdexcept>

namespace ironclad {

namespace detail {

inline void check_statistics_argument(bool condition, const char* message) {
    if (!condition) throw std::invalid_argument(message);
}

// Modified Lentz evaluation of the continued fraction of I_x(a, b) (Numerical Recipes, betacf).
inline double incomplete_beta_fraction(double a, double b, double x) {
    constexpr double tiny = 1e-300;
    constexpr double epsilon = 1e-16;
    auto not_tiny = [](double v) { return std::abs(v) < tiny ? tiny : v; };
    double c = 1.0;
    double d = 1.0 / not_tiny(1.0 - (a + b) * x / (a + 1.0));
    double fraction = d;
    // Converges in O(sqrt(max(a, b))) terms; a < 2e5 here because larger df use Cornish-Fisher.
    for (int m = 1; m <= 10000; ++m) {
        const double even = m * (b - m) * x / ((a - 1.0 + 2 * m) * (a + 2 * m));
        d = 1.0 / not_tiny(1.0 + even * d);
        c = not_tiny(1.0 + even / c);
        fraction *= d * c;
        const double odd = -(a + m) * (a + b + m) * x / ((a + 2 * m) * (a + 1.0 + 2 * m));
        d = 1.0 / not_tiny(1.0 + odd * d);
        c = not_tiny(1.0 + odd / c);
        fraction *= d * c;
        if (std::abs(d * c - 1.0) < epsilon) break;
    }
    return fraction;
}

// log B(a, b). For a large argument lgamma(large + small) - lgamma(large) cancels (relative error 1e-11 at
// 5e4), so that difference comes from Stirling's series: (L - 1/2) log1p(s/L) + s (log(L + s) - 1) + corrections.
inline double log_beta(double a, double b) {
    const double large = std::max(a, b);
    const double small = std::min(a, b);
    if (large < 100.0) return std::lgamma(a) + std::lgamma(b) - std::lgamma(a + b);
    auto stirling_correction = [](double x) {  // lgamma(x) - Stirling's formula; next term < 1e-21 for x >= 100
        const double r = 1.0 / (x * x);
        return (1.0 / 12.0 - r * (1.0 / 360.0 - r * (1.0 / 1260.0 - r / 1680.0))) / x;
    };
    const double log_gamma_ratio = (large - 0.5) * std::log1p(small / large) +
                                   small * (std::log(large + small) - 1.0) + stirling_correction(large + small) -
                                   stirling_correction(large);
    return std::lgamma(small) - log_gamma_ratio;
}

// Regularised incomplete beta I_x(a, b) from log x and log(1 - x): the caller keeps 1 - x precise when x is near 1
// (where a * log(x) would magnify the rounding of x) and can pass an x below the double range.
inline double regularized_incomplete_beta(double a, double b, double log_x, double log_one_minus_x) {
    const double x = std::exp(log_x);
    const double one_minus_x = std::exp(log_one_minus_x);
    const double front = std::exp(a * log_x + b * log_one_minus_x - log_beta(a, b));
    if (x < (a + 1.0) / (a + b + 2.0)) return front * incomplete_beta_fraction(a, b, x) / a;
    return 1.0 - front * incomplete_beta_fraction(b, a, one_minus_x) / b;
}

// P(T > t) for t >= 0: I_x(df/2, 1/2) / 2 with x = df / (df + t^2), through logs so t^2 may exceed the double range.
inline double student_t_upper_tail(double t, double df) {
    if (t * t < df) {
        const double s = t * t / df;
        return 0.5 * regularized_incomplete_beta(df / 2.0, 0.5, -std::log1p(s), std::log(s) - std::log1p(s));
    }
    const double log_r = std::log(df) - 2.0 * std::log(t);  // r = df / t^2 <= 1
    const double r = std::exp(log_r);
    return 0.5 * regularized_incomplete_beta(df / 2.0, 0.5, log_r - std::log1p(r), -std::log1p(r));
}

}  // namespace detail

inline double normal_quantile(double probability) {
    detail::check_statistics_argument(probability > 0.0 && probability < 1.0,
                                      "normal_quantile: probability must be in (0, 1)");
    // Solve the lower half only: 1 - p is exact for p >= 0.5 and erfc is accurate in the lower tail.
    if (probability > 0.5) return -normal_quantile(1.0 - probability);
    constexpr double a[] = {-3.969683028665376e+01, 2.209460984245205e+02,  -2.759285104469687e+02,
                            1.383577518672690e+02,  -3.066479806614716e+01, 2.506628277459239e+00};
    constexpr double b[] = {-5.447609879822406e+01, 1.615858368580409e+02, -1.556989798598866e+02,
                            6.680131188771972e+01, -1.328068155288572e+01};
    constexpr double c[] = {-7.784894002430293e-03, -3.223964580411365e-01, -2.400758277161838e+00,
                            -2.549732539343734e+00, 4.374664141464968e+00,  2.938163982698783e+00};
    constexpr double d[] = {7.784695709041462e-03, 3.224671290700398e-01, 2.445134137142996e+00,
                            3.754408661907416e+00};
    double x;
    if (probability < 0.02425) {
        const double q = std::sqrt(-2.0 * std::log(probability));
        x = (((((c[0] * q + c[1]) * q + c[2]) * q + c[3]) * q + c[4]) * q + c[5]) /
            ((((d[0] * q + d[1]) * q + d[2]) * q + d[3]) * q + 1.0);
    } else {
        const double q = probability - 0.5;
        const double r = q * q;
        x = (((((a[0] * r + a[1]) * r + a[2]) * r + a[3]) * r + a[4]) * r + a[5]) * q /
            (((((b[0] * r + b[1]) * r + b[2]) * r + b[3]) * r + b[4]) * r + 1.0);
    }
    // One Halley step takes Acklam's 1.15e-9 relative error to about machine precision.
    const double error = 0.5 * std::erfc(-x / std::numbers::sqrt2) - probability;
    const double u = error * std::sqrt(2.0 * std::numbers::pi) * std::exp(x * x / 2.0);
    return x - u / (1.0 + x * u / 2.0);
}

inline double student_t_quantile(double probability, double df) {
    detail::check_statistics_argument(probability > 0.0 && probability < 1.0,
                                      "student_t_quantile: probability must be in (0, 1)");
    detail::check_statistics_argument(df >= 1.0, "student_t_quantile: df must be >= 1");
    if (probability == 0.5) return 0.0;
    // Work on the upper tail probability: 1 - p is exact for p >= 0.5, and a tiny p would round away in 1 - p.
    const double sign = probability < 0.5 ? -1.0 : 1.0;
    const double tail = std::min(probability, 1.0 - probability);
    const double z = -normal_quantile(tail);
    // Cornish-Fisher's fifth term is below double precision once df >= max(1000, 250 z^2); below that the exact
    // CDF is inverted, whose incomplete beta loses digits near the centre as df grows.
    if (df >= std::max(1000.0, 250.0 * z * z)) {
        const double z2 = z * z;
        const double g1 = (z2 + 1.0) * z / 4.0;
        const double g2 = ((5.0 * z2 + 16.0) * z2 + 3.0) * z / 96.0;
        const double g3 = (((3.0 * z2 + 19.0) * z2 + 17.0) * z2 - 15.0) * z / 384.0;
        const double g4 = ((((79.0 * z2 + 776.0) * z2 + 1482.0) * z2 - 1920.0) * z2 - 945.0) * z / 92160.0;
        return sign * (z + (g1 + (g2 + (g3 + g4 / df) / df) / df) / df);
    }
    double low = 0.0;
    double high = std::max(1.0, z);  // t quantiles exceed the normal one, so doubling brackets quickly
    while (detail::student_t_upper_tail(high, df) > tail) {
        low = high;
        high *= 2.0;
    }
    for (int step = 0; step < 200 && high - low > 1e-15 * high; ++step) {
        const double middle = 0.5 * (low + high);
        (detail::student_t_upper_tail(middle, df) > tail ? low : high) = middle;
    }
    return sign * 0.5 * (low + high);
}

struct Summary {
    std::int64_t n;
    double mean;
    double stddev;  // sample standard deviation (divides by n - 1)
    double ci95_low;
    double ci95_high;
};

inline Summary summarize_trials(std::span<const double> values) {
    const auto n = static_cast<std::int64_t>(values.size());
    constexpr double infinity = std::numeric_limits<double>::infinity();
    if (n == 0) return {0, std::numeric_limits<double>::quiet_NaN(), 0.0, -infinity, infinity};
    double sum = 0.0;
    for (double v : values) sum += v;
    const double mean = sum / static_cast<double>(n);
    if (n < 2) return {n, mean, 0.0, -infinity, infinity};
    double squared_deviations = 0.0;  // second pass around the mean: no cancellation
    for (double v : values) squared_deviations += (v - mean) * (v - mean);
    const double stddev = std::sqrt(squared_deviations / static_cast<double>(n - 1));
    const double half_width =
        student_t_quantile(0.975, static_cast<double>(n - 1)) * stddev / std::sqrt(static_cast<double>(n));
    return {n, mean, stddev, mean - half_width, mean + half_width};
}

struct Proportion {
    std::int64_t successes;
    std::int64_t n;
    double p;  // successes / n
    double low;
    double high;
};

inline Proportion wilson_interval(std::int64_t successes, std::int64_t n, double z = 1.959963984540054) {
    detail::check_statistics_argument(n >= 0 && successes >= 0 && successes <= n,
                                      "wilson_interval: need 0 <= successes <= n");
    detail::check_statistics_argument(z > 0.0, "wilson_interval: z must be positive");
    if (n == 0) return {successes, n, std::numeric_limits<double>::quiet_NaN(), 0.0, 1.0};
    const double count = static_cast<double>(n);
    const double p = static_cast<double>(successes) / count;
    const double z2 = z * z;
    const double denominator = 1.0 + z2 / count;
    const double centre = (p + z2 / (2.0 * count)) / denominator;
    const double half_width = z / denominator * std::sqrt(p * (1.0 - p) / count + z2 / (4.0 * count * count));
    // The bounds are exactly 0 at no successes and 1 at all successes; the formula would only round to them.
    const double low = successes == 0 ? 0.0 : centre - half_width;
    const double high = successes == n ? 1.0 : centre + half_width;
    return {successes, n, p, low, high};
}

inline double normal_margin(double p, std::int64_t n, double z = 1.96) {
    detail::check_statistics_argument(p >= 0.0 && p <= 1.0, "normal_margin: p must be in [0, 1]");
    detail::check_statistics_argument(n > 0, "normal_margin: n must be positive");
    return z * std::sqrt(p * (1.0 - p) / static_cast<double>(n));
}

namespace detail {
inline double two_sided_normal_quantile(double confidence) {
    check_statistics_argument(confidence > 0.0 && confidence < 1.0, "confidence must be in (0, 1)");
    return -normal_quantile((1.0 - confidence) / 2.0);
}
inline void check_population(double population) {
    check_statistics_argument(population >= 1.0 && population == std::floor(population),
                              "population must be a whole number >= 1 or +inf");
}
}  // namespace detail

inline std::int64_t leveugle_sample_size(double population, double margin, double confidence = 0.95, double p = 0.5) {
    detail::check_population(population);
    detail::check_statistics_argument(margin > 0.0, "leveugle_sample_size: margin must be positive");
    detail::check_statistics_argument(p > 0.0 && p < 1.0, "leveugle_sample_size: p must be in (0, 1)");
    const double t = detail::two_sided_normal_quantile(confidence);
    const double infinite_population_size = t * t * p * (1.0 - p) / (margin * margin);
    const double size = std::isinf(population) ? infinite_population_size
                                               : population / (1.0 + (population - 1.0) / infinite_population_size);
    const double rounded = std::ceil(size);
    if (!(rounded < 9.2e18)) throw std::overflow_error("leveugle_sample_size: sample size exceeds int64");
    return static_cast<std::int64_t>(rounded);
}

inline double leveugle_margin(double population, std::int64_t n, double confidence = 0.95, double p = 0.5) {
    detail::check_population(population);
    detail::check_statistics_argument(n >= 1 && static_cast<double>(n) <= population,
                                      "leveugle_margin: need 1 <= n <= population");
    detail::check_statistics_argument(p >= 0.0 && p <= 1.0, "leveugle_margin: p must be in [0, 1]");
    const double t = detail::two_sided_normal_quantile(confidence);
    const double count = static_cast<double>(n);
    if (count == population) return 0.0;
    const double infinite_population_margin = t * std::sqrt(p * (1.0 - p) / count);
    if (std::isinf(population)) return infinite_population_margin;
    return infinite_population_margin * std::sqrt((population - count) / (population - 1.0));
}

}  // namespace ironclad

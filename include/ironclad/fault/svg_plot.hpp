// Dependency-free SVG charts for fault-campaign reports: accuracy-versus-rate line plots and heat maps.
//
// Contract: each function returns a whole standalone SVG document (it starts with "<svg" and ends with "</svg>\n");
// the caller writes it, e.g. with write_file_atomic. Text is XML-escaped (& < > " ') and the control characters
// XML 1.0 forbids become spaces; numbers are written with std::to_chars, independent of the C locale.
//   line_plot_svg   one polyline with circle markers per series, an error bar (<line class="error-bar">) from
//                   y_low to y_high at each drawn point that has both bounds finite, a legend, and colours from the
//                   Okabe-Ito palette (8 colour-blind-safe colours; series 9+ reuse them with dashed lines).
//                   A point is drawn only if x and y are finite and, on a log axis, x > 0; any other point is
//                   skipped (no marker, no bar; the line joins its neighbours), so x <= 0 never reaches log10.
//                   Log x: whole decades, a tick each (every k-th past 10 decades); linear x and y = [y_min, y_max]:
//                   1-2-5 ticks; no drawable point: x spans [1, 10] or [0, 1]. Off-scale y is clipped at the frame.
//                   std::invalid_argument if y_max <= y_min or y, y_low, y_high (bounds may be empty) != x in size.
//   heat_map_svg    one cell per value, coloured on a 5-stop viridis scale from the smallest to the largest
//                   finite value (a single distinct value takes the middle colour), with the value written to one
//                   decimal; a non-finite value (NaN = missing) is a grey (#bdbdbd) cell reading "n/a". Row and
//                   column labels, and a colour bar marked with the min and max. Throws std::invalid_argument
//                   unless values.size() == rows.size() * columns.size().
#pragma once

#include <algorithm>
#include <array>
#include <charconv>
#include <cmath>
#include <cstddef>
#include <limits>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

namespace ironclad {

struct Series {
    std::string label;
    std::vector<double> x, y, y_low, y_high;  // y_low / y_high: empty, or one bound per point
};

struct PlotAxes {
    std::string title, x_label, y_label;
    bool log_x = false;
    double y_min = 0;
    double y_max = 100;
};

struct HeatMap {
    std::string title, x_label, y_label;
    std::vector<std::string> rows, columns;
    std::vector<double> values;  // rows * columns, row-major, NaN = missing
    std::string value_unit;
};

namespace detail {

inline std::string svg_text(std::string_view text) {
    std::string escaped;
    for (char c : text) {
        switch (c) {
            case '&': escaped += "&amp;"; break;
            case '<': escaped += "&lt;"; break;
            case '>': escaped += "&gt;"; break;
            case '"': escaped += "&quot;"; break;
            case '\'': escaped += "&apos;"; break;
            default:
                const bool forbidden = static_cast<unsigned char>(c) < 0x20 && c != '\t' && c != '\n' && c != '\r';
                escaped += forbidden ? ' ' : c;
        }
    }
    return escaped;
}

// Locale-independent; fixed notation by default, room for the 309 integer digits of the largest double.
inline std::string svg_number(double value, int precision = 2, std::chars_format format = std::chars_format::fixed) {
    std::array<char, 512> buffer{};
    return {buffer.data(), std::to_chars(buffer.data(), buffer.data() + buffer.size(), value, format, precision).ptr};
}
inline std::string svg_tick_label(double value) { return svg_number(value, 6, std::chars_format::general); }

// Tick step of 1, 2 or 5 times a power of ten giving about five intervals over `range`.
inline double svg_tick_step(double range) {
    const double raw = range / 5.0;
    const double magnitude = std::pow(10.0, std::floor(std::log10(raw)));
    const double normalised = raw / magnitude;
    return (normalised < 1.5 ? 1.0 : normalised < 3.5 ? 2.0 : normalised < 7.5 ? 5.0 : 10.0) * magnitude;
}

// Text anchored at (x, y), turned by `degrees` about that point when non-zero.
inline std::string svg_text_element(double x, double y, std::string_view text, std::string_view attributes = "",
                                    double degrees = 0) {
    std::string element = "<text x=\"" + svg_number(x) + "\" y=\"" + svg_number(y) + "\"";
    if (!attributes.empty()) element += " " + std::string(attributes);
    if (degrees != 0)
        element += " transform=\"rotate(" + svg_number(degrees) + " " + svg_number(x) + " " + svg_number(y) + ")\"";
    return element + ">" + svg_text(text) + "</text>\n";
}

inline std::string svg_rect(double x, double y, double width, double height, std::string_view attributes) {
    return "<rect " + std::string(attributes) + " x=\"" + svg_number(x) + "\" y=\"" + svg_number(y) + "\" width=\"" +
           svg_number(width) + "\" height=\"" + svg_number(height) + "\"/>\n";
}

inline std::string svg_circle(double x, double y, std::string_view attributes) {
    return "<circle " + std::string(attributes) + " cx=\"" + svg_number(x) + "\" cy=\"" + svg_number(y) +
           "\" r=\"3.5\"/>\n";
}

inline std::string svg_line(double x1, double y1, double x2, double y2, std::string_view attributes) {
    const std::string prefix = attributes.empty() ? "<line" : "<line " + std::string(attributes);
    return prefix + " x1=\"" + svg_number(x1) + "\" y1=\"" + svg_number(y1) + "\" x2=\"" + svg_number(x2) +
           "\" y2=\"" + svg_number(y2) + "\"/>\n";
}

inline std::string svg_open(double width, double height) {
    return "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"" + svg_number(width, 0) + "\" height=\"" +
           svg_number(height, 0) + "\" viewBox=\"0 0 " + svg_number(width, 0) + " " + svg_number(height, 0) +
           "\" font-family=\"sans-serif\" font-size=\"12\">\n<rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n";
}

inline constexpr std::array<std::array<double, 3>, 5> viridis_stops{
    {{68, 1, 84}, {59, 82, 139}, {33, 145, 140}, {94, 201, 98}, {253, 231, 37}}};

// Colour at t in [0, 1], linear in sRGB between the stops, as "#rrggbb".
inline std::string viridis_colour(double t) {
    const double position = std::clamp(t, 0.0, 1.0) * (viridis_stops.size() - 1);
    const std::size_t stop = std::min<std::size_t>(static_cast<std::size_t>(position), viridis_stops.size() - 2);
    const double fraction = position - static_cast<double>(stop);
    std::string colour = "#";
    for (std::size_t channel = 0; channel < 3; ++channel) {
        const double value = viridis_stops[stop][channel] +
                             fraction * (viridis_stops[stop + 1][channel] - viridis_stops[stop][channel]);
        const int byte = static_cast<int>(std::lround(value));
        colour += "0123456789abcdef"[byte / 16];
        colour += "0123456789abcdef"[byte % 16];
    }
    return colour;
}

}  // namespace detail

inline std::string line_plot_svg(const std::vector<Series>& series, const PlotAxes& axes) {
    using namespace detail;
    if (!(axes.y_max > axes.y_min)) throw std::invalid_argument("line_plot_svg: y_max must exceed y_min");
    auto fits = [](const Series& s, const std::vector<double>& v) { return v.empty() || v.size() == s.x.size(); };
    for (const auto& s : series)
        if (s.y.size() != s.x.size() || !fits(s, s.y_low) || !fits(s, s.y_high))
            throw std::invalid_argument("line_plot_svg: series '" + s.label + "' has mismatched sizes");
    auto drawable = [&](double x, double y) {
        return std::isfinite(x) && std::isfinite(y) && (!axes.log_x || x > 0);
    };
    auto to_axis = [&](double x) { return axes.log_x ? std::log10(x) : x; };
    std::vector<double> axis_x;
    for (const auto& s : series)
        for (std::size_t i = 0; i < s.x.size(); ++i)
            if (drawable(s.x[i], s.y[i])) axis_x.push_back(to_axis(s.x[i]));
    const auto [lowest, highest] = std::minmax_element(axis_x.begin(), axis_x.end());
    // No drawable point: [1, 10] on a log axis, [0, 1] otherwise.
    double x_low = axis_x.empty() ? 0.0 : *lowest, x_high = axis_x.empty() ? 1.0 : *highest;
    const double x_step = axes.log_x ? std::max(1.0, std::ceil((x_high - x_low) / 10.0))  // at most ~10 decade labels
                                     : svg_tick_step(x_high > x_low ? x_high - x_low : 1.0);
    x_low = std::floor(x_low / x_step) * x_step;
    x_high = std::max(std::ceil(x_high / x_step) * x_step, x_low + x_step);

    constexpr double width = 760, height = 480, left = 80, top = 50, right = 560, bottom = 410;
    auto px = [&](double x) { return left + (to_axis(x) - x_low) / (x_high - x_low) * (right - left); };
    // Off-scale values are pulled to one plot height beyond the frame, where the clip path hides them anyway.
    auto py = [&](double y) {
        const double fraction = std::clamp((y - axes.y_min) / (axes.y_max - axes.y_min), -1.0, 2.0);
        return bottom - fraction * (bottom - top);
    };

    std::string svg = svg_open(width, height);
    svg += svg_text_element(width / 2, 28, axes.title, "text-anchor=\"middle\" font-size=\"16\"");
    // The clip area leaves room for half a marker, so points on y_min / y_max keep whole markers.
    svg += "<defs><clipPath id=\"plot-area\">" + svg_rect(left - 4, top - 4, right - left + 8, bottom - top + 8, "") +
           "</clipPath></defs>\n<g class=\"axes\" stroke=\"black\">\n";
    for (int tick = 0; x_low + tick * x_step <= x_high + x_step / 2; ++tick) {
        const double k = x_low + tick * x_step;
        const double x = left + (k - x_low) / (x_high - x_low) * (right - left);
        svg += svg_line(x, top, x, bottom, "stroke=\"#e0e0e0\"") + svg_line(x, bottom, x, bottom + 5, "");
        const std::string label = axes.log_x ? "1e" + svg_tick_label(std::round(k)) : svg_tick_label(k);
        svg += svg_text_element(x, bottom + 18, label, "text-anchor=\"middle\" stroke=\"none\"");
    }
    const double y_step = svg_tick_step(axes.y_max - axes.y_min);
    for (double k = std::ceil(axes.y_min / y_step - 1e-9); k * y_step <= axes.y_max + y_step * 1e-9; k += 1) {
        const double y = py(k * y_step);
        svg += svg_line(left, y, right, y, "stroke=\"#e0e0e0\"") + svg_line(left - 5, y, left, y, "");
        svg += svg_text_element(left - 8, y + 4, svg_tick_label(k * y_step), "text-anchor=\"end\" stroke=\"none\"");
    }
    svg += svg_rect(left, top, right - left, bottom - top, "fill=\"none\"") + "</g>\n";
    svg += svg_text_element((left + right) / 2, bottom + 45, axes.x_label, "text-anchor=\"middle\"");
    svg += svg_text_element(20, (top + bottom) / 2, axes.y_label, "text-anchor=\"middle\"", -90);

    constexpr std::array<const char*, 8> palette{"#0072B2", "#D55E00", "#009E73", "#CC79A7",
                                                 "#E69F00", "#56B4E9", "#000000", "#F0E442"};
    std::string legend = "<g class=\"legend\">\n";
    for (std::size_t index = 0; index < series.size(); ++index) {
        const Series& s = series[index];
        const std::string colour = palette[index % palette.size()];
        const std::string dash = index >= palette.size() ? " stroke-dasharray=\"6 3\"" : "";
        std::string points, markers, bars;
        for (std::size_t i = 0; i < s.x.size(); ++i) {
            if (!drawable(s.x[i], s.y[i])) continue;
            const double x = px(s.x[i]), y = py(s.y[i]);
            points += svg_number(x) + "," + svg_number(y) + " ";
            markers += svg_circle(x, y, "class=\"marker\"");
            if (!s.y_low.empty() && !s.y_high.empty() && std::isfinite(s.y_low[i]) && std::isfinite(s.y_high[i]))
                bars += svg_line(x, py(s.y_low[i]), x, py(s.y_high[i]), "class=\"error-bar\"");
        }
        svg += "<g class=\"series\" clip-path=\"url(#plot-area)\" stroke=\"" + colour + "\" fill=\"" + colour +
               "\">\n<polyline points=\"" + points + "\" fill=\"none\" stroke-width=\"1.8\"" + dash + "/>\n" +
               markers + bars + "</g>\n";
        const double legend_y = top + 10 + 22.0 * static_cast<double>(index);
        legend += svg_line(right + 20, legend_y, right + 50, legend_y,
                           "stroke=\"" + colour + "\" stroke-width=\"1.8\"" + dash);
        legend += svg_circle(right + 35, legend_y, "fill=\"" + colour + "\"") +
                  svg_text_element(right + 58, legend_y + 4, s.label);
    }
    return svg + legend + "</g>\n</svg>\n";
}

inline std::string heat_map_svg(const HeatMap& map) {
    using namespace detail;
    if (map.values.size() != map.rows.size() * map.columns.size())
        throw std::invalid_argument("heat_map_svg: values must hold rows * columns entries");
    double low = std::numeric_limits<double>::infinity(), high = -low;
    for (double v : map.values)
        if (std::isfinite(v)) low = std::min(low, v), high = std::max(high, v);
    auto longest = [](const std::vector<std::string>& labels) {
        std::size_t length = 0;
        for (const auto& label : labels) length = std::max(length, label.size());
        return static_cast<double>(length);
    };
    // Label space from a 7 px average character width at 12 px; column labels are slanted by 40 degrees.
    constexpr double cell_width = 64, cell_height = 32, char_width = 7, top = 50;
    const double left = 50 + char_width * longest(map.rows);
    const double grid_right = left + cell_width * static_cast<double>(map.columns.size());
    const double grid_bottom = top + cell_height * static_cast<double>(map.rows.size());
    const double bar_height = std::max(grid_bottom - top, 120.0);
    const double width = grid_right + 140, label_bottom = grid_bottom + 20 + 0.65 * char_width * longest(map.columns);
    const double height = std::max(label_bottom, top + bar_height) + 45;

    std::string svg = svg_open(width, height);
    svg += svg_text_element(width / 2, 28, map.title, "text-anchor=\"middle\" font-size=\"16\"");
    svg += "<g class=\"cells\">\n";
    for (std::size_t r = 0; r < map.rows.size(); ++r) {
        for (std::size_t c = 0; c < map.columns.size(); ++c) {
            const double value = map.values[r * map.columns.size() + c];
            const double x = left + cell_width * static_cast<double>(c),
                         y = top + cell_height * static_cast<double>(r);
            const double t = high > low ? (value - low) / (high - low) : 0.5;
            const bool missing = !std::isfinite(value);
            const std::string fill = missing ? "#bdbdbd" : viridis_colour(t);
            svg += svg_rect(x, y, cell_width, cell_height, "class=\"cell\" fill=\"" + fill + "\" stroke=\"white\"");
            // White text on the dark two thirds of viridis, black on the light end and on grey.
            const char* text_colour = !missing && t < 0.6 ? "white" : "black";
            svg +=
                svg_text_element(x + cell_width / 2, y + cell_height / 2 + 4, missing ? "n/a" : svg_number(value, 1),
                                 "text-anchor=\"middle\" fill=\"" + std::string(text_colour) + "\"");
        }
    }
    svg += "</g>\n<g class=\"labels\">\n";
    for (std::size_t r = 0; r < map.rows.size(); ++r)
        svg += svg_text_element(left - 6, top + cell_height * (static_cast<double>(r) + 0.5) + 4, map.rows[r],
                                "text-anchor=\"end\"");
    for (std::size_t c = 0; c < map.columns.size(); ++c) {
        const double x = left + cell_width * (static_cast<double>(c) + 0.5), y = grid_bottom + 14;
        svg += svg_text_element(x, y, map.columns[c], "text-anchor=\"end\"", -40);
    }
    svg += "</g>\n";
    svg += svg_text_element((left + grid_right) / 2, height - 12, map.x_label, "text-anchor=\"middle\"");
    svg += svg_text_element(18, (top + grid_bottom) / 2, map.y_label, "text-anchor=\"middle\"", -90);

    const double bar_left = grid_right + 30;
    svg += "<defs><linearGradient id=\"heat-scale\" x1=\"0\" y1=\"1\" x2=\"0\" y2=\"0\">";
    for (std::size_t i = 0; i < viridis_stops.size(); ++i) {
        const double offset = static_cast<double>(i) / static_cast<double>(viridis_stops.size() - 1);
        svg += "<stop offset=\"" + svg_number(offset) + "\" stop-color=\"" + viridis_colour(offset) + "\"/>";
    }
    svg += "</linearGradient></defs>\n<g class=\"colour-bar\">\n" +
           svg_rect(bar_left, top, 16, bar_height, "fill=\"url(#heat-scale)\"");
    const bool any_value = low <= high;
    const std::string unit = map.value_unit.empty() ? "" : " " + map.value_unit;
    svg += svg_text_element(bar_left + 22, top + 10, any_value ? "max " + svg_number(high, 1) + unit : "max n/a");
    svg +=
        svg_text_element(bar_left + 22, top + bar_height, any_value ? "min " + svg_number(low, 1) + unit : "min n/a");
    return svg + "</g>\n</svg>\n";
}

}  // namespace ironclad

#include "ironclad/fault/svg_plot.hpp"

#include <doctest/doctest.h>

#include <cmath>
#include <cstddef>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

using namespace ironclad;

namespace {

std::size_t count(const std::string& text, const std::string& needle) {
    std::size_t found = 0;
    for (auto at = text.find(needle); at != std::string::npos; at = text.find(needle, at + needle.size())) ++found;
    return found;
}

// A small well-formedness check: one root <svg>, every start tag closed by a matching end tag in order,
// and every '&' opening one of the five predefined entities.
bool well_formed(const std::string& svg) {
    std::vector<std::string> open;
    int roots = 0;
    for (std::size_t at = 0; at < svg.size(); ++at) {
        if (svg[at] == '&') {
            const bool entity = svg.compare(at, 5, "&amp;") == 0 || svg.compare(at, 4, "&lt;") == 0 ||
                                svg.compare(at, 4, "&gt;") == 0 || svg.compare(at, 6, "&quot;") == 0 ||
                                svg.compare(at, 6, "&apos;") == 0;
            if (!entity) return false;
        }
        if (svg[at] == '>' && svg.rfind('<', at) == std::string::npos) return false;
        if (svg[at] != '<') continue;
        const auto end = svg.find('>', at);
        if (end == std::string::npos || svg.find('<', at + 1) < end) return false;
        const std::string tag = svg.substr(at + 1, end - at - 1);
        const std::string name = tag.substr(tag[0] == '/', tag.find_first_of(" />", 1) - (tag[0] == '/'));
        if (tag[0] == '/') {
            if (open.empty() || open.back() != name) return false;
            open.pop_back();
        } else if (tag.back() != '/') {
            if (open.empty()) ++roots;
            open.push_back(name);
        }
        at = end;
    }
    return open.empty() && roots == 1;
}

bool frames_svg(const std::string& svg) {
    return svg.starts_with("<svg") && svg.ends_with("</svg>\n") && well_formed(svg) &&
           count(svg, "<g ") + count(svg, "<g>") == count(svg, "</g>");
}

// The value of attribute `name` in each element that starts with `element_start`, in document order.
std::vector<std::string> attribute_values(const std::string& svg, const std::string& element_start,
                                          const std::string& name) {
    std::vector<std::string> values;
    for (auto at = svg.find(element_start); at != std::string::npos; at = svg.find(element_start, at + 1)) {
        const auto tag_end = svg.find('>', at);
        const auto attribute = svg.find(" " + name + "=\"", at);
        if (attribute > tag_end) continue;
        const auto value_start = attribute + name.size() + 3;
        values.push_back(svg.substr(value_start, svg.find('"', value_start) - value_start));
    }
    return values;
}

Series series(std::string label, std::vector<double> x, std::vector<double> y, double half_bar) {
    Series s{std::move(label), std::move(x), std::move(y), {}, {}};
    for (double v : s.y) {
        s.y_low.push_back(v - half_bar);
        s.y_high.push_back(v + half_bar);
    }
    return s;
}

}  // namespace

TEST_CASE("svg_plot: the well-formedness check rejects broken documents") {
    CHECK(frames_svg("<svg a=\"1\">\n<g><text>x &amp; y</text></g>\n</svg>\n"));
    CHECK_FALSE(well_formed("<svg><g></svg>"));
    CHECK_FALSE(well_formed("<svg><text>a < b</text></svg>"));
    CHECK_FALSE(well_formed("<svg><text>a & b</text></svg>"));
    CHECK_FALSE(well_formed("<svg></svg><svg></svg>"));
}

TEST_CASE("svg_plot: line plot structure, escaping, markers and error bars") {
    const std::vector<Series> plotted{series("FP32 <ref>", {1e-7, 1e-6, 1e-5, 1e-4}, {91, 90, 80, 40}, 1.5),
                                      series("Q15.16 & \"clipped\"", {1e-7, 1e-6, 1e-5, 1e-3}, {91, 91, 88, 70}, 2)};
    const PlotAxes axes{"Accuracy & <bit-flip rate>", "rate 'per bit'", "accuracy (%)", true, 0, 100};
    const std::string svg = line_plot_svg(plotted, axes);
    CHECK(frames_svg(svg));
    CHECK(count(svg, "Accuracy &amp; &lt;bit-flip rate&gt;") == 1);
    CHECK(count(svg, "<bit-flip") == 0);
    CHECK(count(svg, "FP32 &lt;ref&gt;") == 1);
    CHECK(count(svg, "Q15.16 &amp; &quot;clipped&quot;") == 1);
    CHECK(count(svg, "rate &apos;per bit&apos;") == 1);
    CHECK(count(svg, "class=\"marker\"") == 8);
    CHECK(count(svg, "class=\"error-bar\"") == 8);
    // One decade tick label per decade from 1e-7 to 1e-3, none outside.
    for (const char* label : {">1e-7<", ">1e-6<", ">1e-5<", ">1e-4<", ">1e-3<"}) CHECK(count(svg, label) == 1);
    CHECK(count(svg, ">1e-8<") == 0);
    CHECK(count(svg, ">1e-2<") == 0);
    const auto colours = attribute_values(svg, "<g class=\"series\"", "stroke");
    REQUIRE(colours.size() == 2);
    CHECK(colours[0] != colours[1]);
}

TEST_CASE("svg_plot: log axis places decades evenly and error bars span their bounds") {
    const std::string svg = line_plot_svg({series("a", {1e-6, 1e-5, 1e-4}, {20, 50, 80}, 10)},
                                          PlotAxes{"t", "x", "y", true, 0, 100});
    const auto cx = attribute_values(svg, "<circle class=\"marker\"", "cx");
    const auto cy = attribute_values(svg, "<circle class=\"marker\"", "cy");
    REQUIRE(cx.size() == 3);
    CHECK(std::stod(cx[0]) < std::stod(cx[1]));
    CHECK(std::stod(cx[1]) == doctest::Approx((std::stod(cx[0]) + std::stod(cx[2])) / 2).epsilon(1e-4));
    // Linear y: 50 sits halfway between 20 and 80.
    CHECK(std::stod(cy[1]) == doctest::Approx((std::stod(cy[0]) + std::stod(cy[2])) / 2).epsilon(1e-4));
    // Bar of the middle point: from 40 to 60, i.e. +-1/6 of the 20..80 distance around the marker.
    const auto bar_x = attribute_values(svg, "<line class=\"error-bar\"", "x1");
    const auto bar_y1 = attribute_values(svg, "<line class=\"error-bar\"", "y1");
    const auto bar_y2 = attribute_values(svg, "<line class=\"error-bar\"", "y2");
    const double sixth = (std::stod(cy[0]) - std::stod(cy[2])) / 6;
    REQUIRE(bar_y1.size() == 3);
    CHECK(bar_x[1] == cx[1]);
    CHECK(std::stod(bar_y1[1]) == doctest::Approx(std::stod(cy[1]) + sixth).epsilon(1e-4));
    CHECK(std::stod(bar_y2[1]) == doctest::Approx(std::stod(cy[1]) - sixth).epsilon(1e-4));
}

TEST_CASE("svg_plot: points with x <= 0 on a log axis are skipped") {
    const std::string svg = line_plot_svg({series("z", {0.0, -1e-5, 1e-6, 1e-4}, {90, 90, 85, 60}, 1)},
                                          PlotAxes{"t", "x", "y", true, 0, 100});
    CHECK(frames_svg(svg));
    CHECK(count(svg, "class=\"marker\"") == 2);
    CHECK(count(svg, "class=\"error-bar\"") == 2);
    CHECK(count(svg, "nan") == 0);
    CHECK(count(svg, "inf") == 0);
    // Nothing drawable at all still gives a document.
    const std::string empty = line_plot_svg({series("none", {0.0, -1.0}, {1, 2}, 1)}, PlotAxes{"t", "x", "y", true});
    CHECK(frames_svg(empty));
    CHECK(count(empty, "class=\"marker\"") == 0);
}

TEST_CASE("svg_plot: error bars only where both bounds are given and finite") {
    Series unbounded{"no bars", {1, 2, 3}, {10, 20, 30}, {}, {}};
    Series partly = series("partly", {1, 2, 3}, {10, 20, 30}, 5);
    partly.y_high[1] = std::nan("");
    const std::string svg = line_plot_svg({unbounded, partly}, PlotAxes{"t", "x", "y", false, 0, 50});
    CHECK(frames_svg(svg));
    CHECK(count(svg, "class=\"marker\"") == 6);
    CHECK(count(svg, "class=\"error-bar\"") == 2);
}

TEST_CASE("svg_plot: line plot rejects mismatched sizes and an empty y range") {
    CHECK_THROWS_AS(line_plot_svg({Series{"a", {1, 2}, {1}, {}, {}}}, PlotAxes{}), std::invalid_argument);
    CHECK_THROWS_AS(line_plot_svg({Series{"a", {1, 2}, {1, 2}, {0}, {}}}, PlotAxes{}), std::invalid_argument);
    CHECK_THROWS_AS(line_plot_svg({}, PlotAxes{"t", "x", "y", false, 5, 5}), std::invalid_argument);
}

TEST_CASE("svg_plot: heat map colours, values, missing cells and colour bar") {
    const double nan = std::nan("");
    HeatMap map{"Accuracy drop <per layer>", "bit", "layer", {"conv1", "fc<2>"}, {"b0", "b15", "b31"},
                {0.0, 5.0, 10.0, nan, 2.5, 7.5}, "%"};
    const std::string svg = heat_map_svg(map);
    CHECK(frames_svg(svg));
    CHECK(count(svg, "class=\"cell\"") == 6);
    const auto fills = attribute_values(svg, "<rect class=\"cell\"", "fill");
    REQUIRE(fills.size() == 6);
    // Row-major; the scale runs 0..10, so 0, 2.5, 5, 7.5, 10 hit the five viridis stops exactly.
    CHECK(fills[0] == "#440154");
    CHECK(fills[1] == "#21918c");
    CHECK(fills[2] == "#fde725");
    CHECK(fills[3] == "#bdbdbd");  // the NaN cell is grey
    CHECK(fills[4] == "#3b528b");
    CHECK(fills[5] == "#5ec962");
    CHECK(count(svg, "#bdbdbd") == 1);
    CHECK(count(svg, ">n/a<") == 1);
    for (const char* text : {">0.0<", ">5.0<", ">10.0<", ">2.5<", ">7.5<"}) CHECK(count(svg, text) == 1);
    CHECK(count(svg, "max 10.0 %") == 1);
    CHECK(count(svg, "min 0.0 %") == 1);
    CHECK(count(svg, "fc&lt;2&gt;") == 1);
    CHECK(count(svg, "Accuracy drop &lt;per layer&gt;") == 1);
    CHECK(count(svg, ">b15<") == 1);
}

TEST_CASE("svg_plot: heat map interpolates between stops and rounds values to one decimal") {
    const std::vector<double> values{0.0, 1.25, 10.0, 3.14159, 6.66, 9.96};
    const std::string svg = heat_map_svg(HeatMap{"t", "x", "y", {"r1", "r2"}, {"a", "b", "c"}, values, ""});
    const auto fills = attribute_values(svg, "<rect class=\"cell\"", "fill");
    REQUIRE(fills.size() == 6);
    // t = 0.125, halfway between #440154 (68,1,84) and #3b528b (59,82,139): (63.5, 41.5, 111.5) -> #402a70
    // (std::lround rounds halves away from zero: 64 = 0x40, 42 = 0x2a, 112 = 0x70).
    CHECK(fills[1] == "#402a70");
    CHECK(count(svg, ">3.1<") == 1);
    CHECK(count(svg, ">6.7<") == 1);
    CHECK(count(svg, ">10.0<") == 2);  // 10 and 9.96
}

TEST_CASE("svg_plot: heat map size mismatch throws, all-missing map still renders") {
    CHECK_THROWS_AS(heat_map_svg(HeatMap{"t", "x", "y", {"r1", "r2"}, {"c"}, {1.0}, ""}), std::invalid_argument);
    const double nan = std::nan("");
    const std::string svg = heat_map_svg(HeatMap{"t", "x", "y", {"r"}, {"a", "b"}, {nan, nan}, "%"});
    CHECK(frames_svg(svg));
    CHECK(count(svg, "#bdbdbd") == 2);
    CHECK(count(svg, "max n/a") == 1);
}

#include "ironclad/io/safetensors.hpp"

#include <doctest/doctest.h>

#include <bit>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <functional>
#include <limits>
#include <string>
#include <unistd.h>

using namespace ironclad;

namespace {

template <class T>
void append(std::vector<std::byte>& out, T value) {
    const std::size_t at = out.size();
    out.resize(at + sizeof(T));
    std::memcpy(out.data() + at, &value, sizeof(T));
}

// A .safetensors image from its parts, exactly as the format defines it.
std::vector<std::byte> image(const std::string& header, const std::vector<std::byte>& data) {
    std::vector<std::byte> out;
    append<std::uint64_t>(out, header.size());
    for (char c : header) out.push_back(static_cast<std::byte>(c));
    out.insert(out.end(), data.begin(), data.end());
    return out;
}

std::vector<std::byte> floats(std::initializer_list<float> values) {
    std::vector<std::byte> out;
    for (float v : values) append(out, v);
    return out;
}

std::string error_of(const std::function<void()>& f) {
    try {
        f();
    } catch (const std::exception& e) {
        return e.what();
    }
    return "";
}

// The message must exist and name everything in `parts` (the file, the tensor, the problem).
void check_rejected(const std::vector<std::byte>& bytes, std::initializer_list<std::string> parts) {
    const std::string msg = error_of([&] { parse_safetensors(bytes, "bad.safetensors"); });
    INFO("message: " << msg);
    CHECK(msg.find("bad.safetensors") != std::string::npos);
    for (const auto& p : parts) CHECK(msg.find(p) != std::string::npos);
}

bool same_bits(const Tensor<float>& a, const Tensor<float>& b) {
    return a.shape() == b.shape() &&
           (a.numel() == 0 || std::memcmp(a.data(), b.data(), static_cast<std::size_t>(a.numel()) * 4) == 0);
}

std::filesystem::path scratch_dir(const std::string& name) {
    auto dir = std::filesystem::temp_directory_path() / ("ironclad_" + name + "_" + std::to_string(::getpid()));
    std::filesystem::remove_all(dir);
    std::filesystem::create_directories(dir);
    return dir;
}

}  // namespace

TEST_CASE("safetensors: writes the bytes the Python library writes") {
    // safetensors.torch.save_file({"weight": w, "bias": b}, f, metadata={"format": "pt"}): metadata first,
    // tensors by name, compact JSON padded with spaces to 152 = 19 * 8 bytes.
    const std::string header =
        R"({"__metadata__":{"format":"pt"},"bias":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},)"
        R"("weight":{"dtype":"F32","shape":[2,2],"data_offsets":[8,24]}}   )";
    REQUIRE(header.size() == 152);
    const auto expected = image(header, floats({0.5f, -0.5f, 1, 2, 3, 4}));
    const auto written = serialize_safetensors(
        {{"weight", Tensor<float>({2, 2}, {1, 2, 3, 4})}, {"bias", Tensor<float>({2}, {0.5f, -0.5f})}},
        {{"format", "pt"}});
    CHECK(written == expected);

    const auto file = parse_safetensors(expected);
    CHECK(file.order == std::vector<std::string>{"bias", "weight"});
    CHECK(file.metadata == std::map<std::string, std::string>{{"format", "pt"}});
    CHECK(file.tensors.at("weight").at({1, 0}) == 3);
}

TEST_CASE("safetensors: round trip is bit-exact") {
    Tensor<float> specials({8});
    const float values[] = {-0.0f, std::numeric_limits<float>::infinity(), std::numeric_limits<float>::denorm_min(),
                            std::numeric_limits<float>::max(), 1e-30f, -3.25f, 0.1f, 0};
    std::copy(std::begin(values), std::end(values), specials.begin());
    specials[7] = std::bit_cast<float>(0x7fc01234u);  // a NaN with payload: only raw copies keep it
    const NamedTensors tensors{{"layer1.0.conv1.weight", Tensor<float>({2, 1, 2, 2}, {1, 2, 3, 4, 5, 6, 7, 8})},
                               {"specials", specials},
                               {"scalar", Tensor<float>(Shape{}, 42.0f)},
                               {"empty", Tensor<float>({0, 3})}};
    const std::map<std::string, std::string> metadata{{"arch", "resnet20"}, {"epochs", "3"}, {"note", "ünïcode"}};

    const auto dir = scratch_dir("safetensors_roundtrip");
    const auto path = dir / "model.safetensors";
    save_safetensors(path, tensors, metadata);
    const auto file = load_safetensors(path);
    CHECK(file.source == path.string());
    CHECK(file.metadata == metadata);
    REQUIRE(file.tensors.size() == tensors.size());
    for (const auto& [name, t] : tensors) {
        CAPTURE(name);
        CHECK(same_bits(file.tensors.at(name), t));
    }
    // A second save reproduces the same bytes: the layout does not depend on the input order.
    NamedTensors reversed(tensors.rbegin(), tensors.rend());
    CHECK(serialize_safetensors(reversed, metadata) == read_file(path));
    std::filesystem::remove_all(dir);
}

TEST_CASE("safetensors: reads every supported dtype as float") {
    std::vector<std::byte> data;
    append<std::uint8_t>(data, 250);                                                      // h_u8   [0,1)
    append<std::int8_t>(data, -5);                                                        // g_i8   [1,2)
    for (std::uint16_t h : {0x3C00, 0xC000, 0x0001, 0x7C00, 0x3555}) append(data, h);    // b_f16  [2,12)
    for (std::uint16_t h : {0x3F80, 0xC0A0}) append(data, h);                            // c_bf16 [12,16)
    append<std::int16_t>(data, -300);                                                     // f_i16  [16,18)
    append<std::int32_t>(data, 123456);                                                   // e_i32  [18,22)
    append<std::int64_t>(data, -7);                                                       // d_i64  [22,30)
    for (double d : {1.5, -2.25}) append(data, d);                                        // a_f64  [30,46)
    const std::string header =
        R"({"h_u8":{"dtype":"U8","shape":[1],"data_offsets":[0,1]},)"
        R"("a_f64":{"dtype":"F64","shape":[2],"data_offsets":[30,46]},)"
        R"("b_f16":{"dtype":"F16","shape":[5],"data_offsets":[2,12]},)"
        R"("c_bf16":{"dtype":"BF16","shape":[1,2],"data_offsets":[12,16]},)"
        R"("d_i64":{"dtype":"I64","shape":[],"data_offsets":[22,30]},)"
        R"("e_i32":{"dtype":"I32","shape":[1],"data_offsets":[18,22]},)"
        R"("f_i16":{"dtype":"I16","shape":[1],"data_offsets":[16,18]},)"
        R"("g_i8":{"dtype":"I8","shape":[1],"data_offsets":[1,2]}})";
    const auto file = parse_safetensors(image(header, data));
    CHECK(file.order ==
          std::vector<std::string>{"h_u8", "a_f64", "b_f16", "c_bf16", "d_i64", "e_i32", "f_i16", "g_i8"});
    CHECK(file.metadata.empty());
    CHECK(file.tensors.at("h_u8")[0] == 250);
    CHECK(file.tensors.at("g_i8")[0] == -5);
    const auto& f16 = file.tensors.at("b_f16");
    CHECK(f16[0] == 1.0f);
    CHECK(f16[1] == -2.0f);
    CHECK(f16[2] == std::ldexp(1.0f, -24));  // smallest subnormal half
    CHECK(std::isinf(f16[3]));
    CHECK(f16[4] == 0.333251953125f);  // nearest half to 1/3
    CHECK(file.tensors.at("c_bf16").shape() == Shape{1, 2});
    CHECK(file.tensors.at("c_bf16")[1] == -5.0f);
    CHECK(file.tensors.at("d_i64").shape() == Shape{});
    CHECK(file.tensors.at("d_i64")[0] == -7);
    CHECK(file.tensors.at("e_i32")[0] == 123456);
    CHECK(file.tensors.at("f_i16")[0] == -300);
    CHECK(file.tensors.at("a_f64")[1] == -2.25f);
}

TEST_CASE("safetensors: the pretrained ResNet-20 loads") {
    const auto path =
        std::filesystem::path(IRONCLAD_SOURCE_DIR) / ".." / "shared" / "models" / "resnet20-cifar10.safetensors";
    if (!std::filesystem::exists(path)) {
        MESSAGE("skipped: " << path << " not found");
        return;
    }
    const auto file = load_safetensors(path);
    CHECK(file.tensors.at("conv1.weight").shape() == Shape{16, 3, 3, 3});
    CHECK(file.tensors.at("linear.weight").shape() == Shape{10, 64});
    CHECK(file.tensors.at("layer3.2.bn2.running_var").shape() == Shape{64});
    CHECK(file.metadata.at("arch") == "resnet20");
    CHECK(file.order.front() == "conv1.weight");
    CHECK(file.order.size() == file.tensors.size());
    for (float v : file.tensors.at("layer1.0.bn1.running_var")) CHECK(v > 0);
}

TEST_CASE("safetensors: malformed files are rejected naming the file and the tensor") {
    const std::string one = R"({"t":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}})";
    const auto good = image(one, floats({1, 2}));
    REQUIRE(parse_safetensors(good).tensors.at("t")[1] == 2);

    check_rejected({good.begin(), good.begin() + 5}, {"shorter than the 8-byte header length"});
    auto too_long = good;
    too_long[1] = std::byte{0x10};  // header length 4096 + 54
    check_rejected(too_long, {"header length 4150 exceeds the 62 bytes"});
    check_rejected(image("{\"t\": [1, 2", {}), {"not valid JSON"});
    check_rejected(image("[1,2]", {}), {"not a JSON object"});
    check_rejected(image(R"({"t":{"dtype":"F31","shape":[2],"data_offsets":[0,8]}})", floats({1, 2})),
                   {"tensor 't'", "unsupported dtype \"F31\""});
    check_rejected(image(R"({"t":{"shape":[2],"data_offsets":[0,8]}})", floats({1, 2})), {"tensor 't'", "dtype"});
    check_rejected(image(R"({"t":{"dtype":"F32","shape":[-2],"data_offsets":[0,8]}})", floats({1, 2})),
                   {"tensor 't'", "non-negative integers"});
    check_rejected(image(R"({"t":{"dtype":"F32","shape":[3],"data_offsets":[0,8]}})", floats({1, 2})),
                   {"tensor 't'", "needs 12 bytes", "span 8"});
    check_rejected(image(R"({"t":{"dtype":"F32","shape":[4],"data_offsets":[0,16]}})", floats({1, 2})),
                   {"tensor 't'", "outside the data buffer of 8 bytes"});
    check_rejected(image(R"({"t":{"dtype":"F32","shape":[2],"data_offsets":[8,0]}})", floats({1, 2})),
                   {"tensor 't'", "end before they begin"});
    check_rejected(image(R"({"t":{"dtype":"F32","shape":[2],"data_offsets":[0]}})", floats({1, 2})),
                   {"tensor 't'", "data_offsets"});
    check_rejected(image(R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},)"
                         R"("b":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}})",
                         floats({1, 2})),
                   {"tensor 'b'", "overlap tensor 'a'"});
    check_rejected(image(R"({"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},)"
                         R"("b":{"dtype":"F32","shape":[1],"data_offsets":[8,12]}})",
                         floats({1, 2, 3})),
                   {"tensor 'b'", "bytes [4,8) before it covered by no tensor"});
    check_rejected(image(one, floats({1, 2, 3})), {"bytes [8,12) at the end"});
    check_rejected(image(R"({"t":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},)"
                         R"("t":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}})",
                         floats({1, 2})),
                   {"duplicate key \"t\""});
    check_rejected(image(R"({"__metadata__":{"epoch":3},"t":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}})",
                         floats({1, 2})),
                   {"metadata \"epoch\" is not a string"});
    check_rejected(image(R"({"t":{"dtype":"F32","shape":[4611686018427387904,4],"data_offsets":[0,8]}})",
                         floats({1, 2})),
                   {"tensor 't'", "shape"});
}

TEST_CASE("safetensors: load errors name the file on disk") {
    const auto dir = scratch_dir("safetensors_errors");
    const auto path = dir / "truncated.safetensors";
    const auto bytes = serialize_safetensors({{"w", Tensor<float>({4}, 1.0f)}});
    write_file_atomic(path, std::span(bytes).first(bytes.size() - 4));
    const std::string msg = error_of([&] { load_safetensors(path); });
    CHECK(msg.find(path.string()) != std::string::npos);
    CHECK(msg.find("tensor 'w'") != std::string::npos);
    CHECK(error_of([&] { load_safetensors(dir / "absent.safetensors"); }).find("absent.safetensors") !=
          std::string::npos);
    CHECK_THROWS_AS(serialize_safetensors({{"w", Tensor<float>({1})}, {"w", Tensor<float>({1})}}),
                    std::invalid_argument);
    CHECK_THROWS_AS(serialize_safetensors({{"__metadata__", Tensor<float>({1})}}), std::invalid_argument);
    std::filesystem::remove_all(dir);
}

TEST_CASE("safetensors: load_into copies by name and reports every mismatch") {
    const auto file = parse_safetensors(serialize_safetensors(
        {{"layer1.0.conv1.weight", Tensor<float>({16, 16, 3, 3}, 0.5f)},
         {"linear.bias", Tensor<float>({10}, 2.0f)},
         {"bn.num_batches_tracked", Tensor<float>(Shape{}, 7.0f)},
         {"extra.weight", Tensor<float>({2}, 1.0f)}}),
        "ckpt.safetensors");

    Tensor<float> conv({32, 16, 3, 3}), bias({10}), head({10, 64});
    const std::string msg = error_of([&] {
        load_into(file, {{"layer1.0.conv1.weight", &conv}, {"linear.bias", &bias}, {"linear.weight", &head}}, true);
    });
    INFO("message: " << msg);
    CHECK(msg.find("ckpt.safetensors") != std::string::npos);
    CHECK(msg.find("3 problem(s)") != std::string::npos);
    CHECK(msg.find("\n  layer1.0.conv1.weight: checkpoint has [16,16,3,3], model expects [32,16,3,3]") !=
          std::string::npos);
    CHECK(msg.find("\n  linear.weight: missing from the checkpoint") != std::string::npos);
    CHECK(msg.find("\n  extra.weight: unexpected in the checkpoint") != std::string::npos);
    CHECK(msg.find("num_batches_tracked") == std::string::npos);  // PyTorch's BN counters are skipped
    CHECK(bias[0] == 0);  // all-or-nothing: the valid tensor was not copied either

    // Non-strict: names may differ, shapes may not; the differences are returned.
    Tensor<float> conv_ok({16, 16, 3, 3});
    const auto report = load_into(file, {{"layer1.0.conv1.weight", &conv_ok}, {"linear.weight", &head}}, false);
    CHECK(conv_ok[100] == 0.5f);
    CHECK(report.missing == std::vector<std::string>{"linear.weight"});
    CHECK(report.unexpected == std::vector<std::string>{"extra.weight", "linear.bias"});
    CHECK_THROWS_AS(load_into(file, {{"layer1.0.conv1.weight", &conv}}, false), std::runtime_error);

    Tensor<float> conv2({16, 16, 3, 3}), bias2({10}), count(Shape{}), extra({2});
    load_into(file, {{"layer1.0.conv1.weight", &conv2}, {"linear.bias", &bias2}, {"bn.num_batches_tracked", &count},
                     {"extra.weight", &extra}});
    CHECK(bias2[9] == 2.0f);
    CHECK(count[0] == 7.0f);
}

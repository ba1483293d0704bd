// The .safetensors checkpoint format, byte-compatible with safetensors.torch.save_file / load_file.
//
// Layout: u64 little-endian N | N bytes of JSON header | data buffer. The header maps each tensor name to
// {"dtype", "shape", "data_offsets": [begin, end]} (offsets relative to the data buffer, which the tensors
// must cover exactly, without holes or overlaps) plus an optional "__metadata__" of string -> string.
// Reading converts every supported dtype (F64, F32, F16, BF16, I64, I32, I16, I8, U8) to float; writing
// stores F32 in the Python library's layout: "__metadata__" first, tensors sorted by name (its order for a
// single dtype), header padded with spaces to a multiple of 8. Every malformed file is rejected with a
// message naming the file and, where one is involved, the tensor.
#pragma once

#include "ironclad/core/tensor.hpp"
#include "ironclad/io/atomic_file.hpp"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <bit>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <map>
#include <set>
#include <span>
#include <stdexcept>
#include <string>
#include <string_view>
#include <tuple>
#include <utility>
#include <vector>

namespace ironclad {

static_assert(std::endian::native == std::endian::little, "safetensors I/O assumes a little-endian host");

using NamedTensors = std::vector<std::pair<std::string, Tensor<float>>>;

struct SafetensorsFile {
    std::string source;  // file name (or the name given to parse_safetensors), for error messages
    std::map<std::string, Tensor<float>> tensors;
    std::map<std::string, std::string> metadata;
    std::vector<std::string> order;  // tensor names in header order
};

namespace detail {

inline float half_to_float(std::uint16_t h) {
    const std::uint32_t sign = static_cast<std::uint32_t>(h & 0x8000u) << 16;
    const std::uint32_t exponent = (h >> 10) & 0x1fu;
    const std::uint32_t mantissa = h & 0x3ffu;
    if (exponent == 0) {  // zero or subnormal: mantissa * 2^-24
        const float v = std::ldexp(static_cast<float>(mantissa), -24);
        return sign ? -v : v;
    }
    const std::uint32_t bits = exponent == 0x1f ? sign | 0x7f800000u | (mantissa << 13)
                                                : sign | ((exponent + 112u) << 23) | (mantissa << 13);
    return std::bit_cast<float>(bits);
}

template <class Raw>
Raw load_unaligned(const std::byte* p) {
    Raw r;
    std::memcpy(&r, p, sizeof r);  // the data buffer need not be aligned for Raw
    return r;
}

template <class Raw>
float decode_as_float(const std::byte* p) {
    return static_cast<float>(load_unaligned<Raw>(p));
}

struct DtypeInfo {
    const char* name;
    std::size_t size;
    float (*decode)(const std::byte*);
};

inline const DtypeInfo* find_dtype(const std::string& name) {
    static const DtypeInfo table[] = {
        {"F64", 8, decode_as_float<double>},
        {"F32", 4, decode_as_float<float>},
        {"F16", 2, [](const std::byte* p) { return half_to_float(load_unaligned<std::uint16_t>(p)); }},
        // bfloat16 is the top half of a float32.
        {"BF16", 2,
         [](const std::byte* p) {
             return std::bit_cast<float>(static_cast<std::uint32_t>(load_unaligned<std::uint16_t>(p)) << 16);
         }},
        {"I64", 8, decode_as_float<std::int64_t>},
        {"I32", 4, decode_as_float<std::int32_t>},
        {"I16", 2, decode_as_float<std::int16_t>},
        {"I8", 1, decode_as_float<std::int8_t>},
        {"U8", 1, decode_as_float<std::uint8_t>},
    };
    for (const auto& d : table)
        if (name == d.name) return &d;
    return nullptr;
}

// The reference implementation refuses headers over 100 MB; refusing them too keeps the accepted files the same.
inline constexpr std::uint64_t kMaxSafetensorsHeader = 100'000'000;

[[noreturn]] inline void safetensors_error(const std::string& source, const std::string& what) {
    throw std::runtime_error("safetensors '" + source + "': " + what);
}

inline std::string offsets_str(std::uint64_t begin, std::uint64_t end) {
    // Appending, not "[" + std::to_string(..): GCC 12 warns falsely (-Wrestrict) on the latter.
    std::string s(1, '[');
    s += std::to_string(begin);
    s += ',';
    s += std::to_string(end);
    s += ']';
    return s;
}

// A tensor entry of the header, checked against the data buffer's size but not yet decoded.
struct HeaderEntry {
    std::string name;
    const DtypeInfo* dtype;
    Shape shape;
    std::uint64_t begin, end;
};

inline HeaderEntry parse_header_entry(const std::string& source, const std::string& name,
                                      const nlohmann::ordered_json& info, std::uint64_t data_size) {
    auto fail = [&](const std::string& what) { safetensors_error(source, "tensor '" + name + "': " + what); };
    if (!info.is_object()) fail("header entry is not a JSON object");
    const auto dtype_it = info.find("dtype");
    if (dtype_it == info.end() || !dtype_it->is_string()) fail("missing or non-string \"dtype\"");
    const DtypeInfo* dtype = find_dtype(dtype_it->get<std::string>());
    if (!dtype)
        fail("unsupported dtype \"" + dtype_it->get<std::string>() +
             "\" (supported: F64, F32, F16, BF16, I64, I32, I16, I8, U8)");

    const auto shape_it = info.find("shape");
    if (shape_it == info.end() || !shape_it->is_array()) fail("missing or non-array \"shape\"");
    Shape shape;
    std::uint64_t bytes = dtype->size;
    for (const auto& d : *shape_it) {
        const auto bad_shape = [&] { fail("shape " + shape_it->dump() + " is not a list of non-negative integers"); };
        if (!d.is_number_unsigned()) bad_shape();
        const auto n = d.get<std::uint64_t>();
        // Extents must fit Shape's int64 and the byte count must not wrap around, or a corrupt shape could
        // seem to match its offsets.
        if (n > (std::uint64_t{1} << 62) || __builtin_mul_overflow(bytes, n, &bytes)) bad_shape();
        shape.push_back(static_cast<std::int64_t>(n));
    }

    const auto offsets_it = info.find("data_offsets");
    if (offsets_it == info.end() || !offsets_it->is_array() || offsets_it->size() != 2 ||
        !(*offsets_it)[0].is_number_unsigned() || !(*offsets_it)[1].is_number_unsigned())
        fail("\"data_offsets\" must be two non-negative integers");
    const auto begin = (*offsets_it)[0].get<std::uint64_t>(), end = (*offsets_it)[1].get<std::uint64_t>();
    if (begin > end) fail("data_offsets " + offsets_str(begin, end) + " end before they begin");
    if (end > data_size)
        fail("data_offsets " + offsets_str(begin, end) + " lie outside the data buffer of " +
             std::to_string(data_size) + " bytes");
    if (end - begin != bytes)
        fail("shape " + shape_str(shape) + " of " + dtype->name + " needs " + std::to_string(bytes) +
             " bytes but data_offsets " + offsets_str(begin, end) + " span " + std::to_string(end - begin));
    return {name, dtype, std::move(shape), begin, end};
}

// The format requires the tensors to tile the data buffer exactly: no overlaps, no holes, no tail.
inline void check_coverage(const std::string& source, std::vector<const HeaderEntry*> entries,
                           std::uint64_t data_size) {
    std::sort(entries.begin(), entries.end(), [](const HeaderEntry* a, const HeaderEntry* b) {
        return std::tie(a->begin, a->end) < std::tie(b->begin, b->end);
    });
    std::uint64_t covered = 0;
    const HeaderEntry* previous = nullptr;
    for (const HeaderEntry* e : entries) {
        if (e->begin < covered)
            safetensors_error(source, "tensor '" + e->name + "': data_offsets " + offsets_str(e->begin, e->end) +
                                          " overlap tensor '" + previous->name + "' at " +
                                          offsets_str(previous->begin, previous->end));
        if (e->begin > covered)
            safetensors_error(source, "tensor '" + e->name + "': data_offsets " + offsets_str(e->begin, e->end) +
                                          " leave bytes [" + std::to_string(covered) + "," +
                                          std::to_string(e->begin) + ") before it covered by no tensor");
        covered = e->end;
        previous = e;
    }
    if (covered != data_size)
        safetensors_error(source, "bytes [" + std::to_string(covered) + "," + std::to_string(data_size) +
                                      ") at the end of the data buffer are covered by no tensor");
}

inline Tensor<float> decode_tensor(const HeaderEntry& e, const std::byte* data) {
    Tensor<float> t(e.shape);
    const std::byte* src = data + e.begin;
    if (std::string_view(e.dtype->name) == "F32") {
        if (e.end > e.begin) std::memcpy(t.data(), src, e.end - e.begin);
    } else {
        for (std::int64_t i = 0, n = t.numel(); i < n; ++i)
            t[i] = e.dtype->decode(src + static_cast<std::size_t>(i) * e.dtype->size);
    }
    return t;
}

}  // namespace detail

// Parses a whole .safetensors image; `source` names it in error messages.
inline SafetensorsFile parse_safetensors(std::span<const std::byte> bytes, const std::string& source = "<memory>") {
    auto fail = [&](const std::string& what) { detail::safetensors_error(source, what); };
    if (bytes.size() < 8)
        fail("file is " + std::to_string(bytes.size()) + " bytes, shorter than the 8-byte header length");
    const auto header_size = detail::load_unaligned<std::uint64_t>(bytes.data());
    if (header_size > bytes.size() - 8)
        fail("header length " + std::to_string(header_size) + " exceeds the " + std::to_string(bytes.size() - 8) +
             " bytes that follow it");
    if (header_size > detail::kMaxSafetensorsHeader)
        fail("header length " + std::to_string(header_size) + " exceeds the format's limit of 100 MB");
    const auto header_text = reinterpret_cast<const char*>(bytes.data() + 8);
    const std::span<const std::byte> data = bytes.subspan(8 + header_size);

    // nlohmann keeps the last of duplicate keys silently; the callback sees each key as it is read.
    using Json = nlohmann::ordered_json;
    std::vector<std::set<std::string>> keys_at_depth;
    std::string duplicate;
    auto note_keys = [&](int depth, Json::parse_event_t event, Json& parsed) {
        const auto d = static_cast<std::size_t>(depth);
        if (event == Json::parse_event_t::object_start) {
            if (keys_at_depth.size() < d + 2) keys_at_depth.resize(d + 2);
            keys_at_depth[d + 1].clear();
        } else if (event == Json::parse_event_t::key && !keys_at_depth[d].insert(parsed.get<std::string>()).second &&
                   duplicate.empty()) {
            duplicate = parsed.get<std::string>();
        }
        return true;
    };
    Json header;
    try {
        header = Json::parse(header_text, header_text + header_size, note_keys);
    } catch (const nlohmann::json::exception& e) {
        fail(std::string("header is not valid JSON: ") + e.what());
    }
    if (!duplicate.empty()) fail("duplicate key \"" + duplicate + "\" in the header");
    if (!header.is_object()) fail("header is not a JSON object");

    SafetensorsFile out;
    out.source = source;
    std::vector<detail::HeaderEntry> entries;
    for (const auto& [name, info] : header.items()) {
        if (name == "__metadata__") {
            if (!info.is_object()) fail("\"__metadata__\" is not a JSON object");
            for (const auto& [key, value] : info.items()) {
                if (!value.is_string()) fail("metadata \"" + key + "\" is not a string: " + value.dump());
                out.metadata.emplace(key, value.get<std::string>());
            }
            continue;
        }
        entries.push_back(detail::parse_header_entry(source, name, info, data.size()));
    }
    std::vector<const detail::HeaderEntry*> pointers;
    for (const auto& e : entries) pointers.push_back(&e);
    detail::check_coverage(source, std::move(pointers), data.size());
    for (const auto& e : entries) {
        out.tensors.emplace(e.name, detail::decode_tensor(e, data.data()));
        out.order.push_back(e.name);
    }
    return out;
}

inline SafetensorsFile load_safetensors(const std::filesystem::path& path) {
    return parse_safetensors(read_file(path), path.string());
}

// The bytes safetensors.torch.save_file would write for these float32 tensors.
inline std::vector<std::byte> serialize_safetensors(const NamedTensors& tensors,
                                                    const std::map<std::string, std::string>& metadata = {}) {
    std::vector<const NamedTensors::value_type*> sorted;
    for (const auto& entry : tensors) {
        if (entry.first.empty() || entry.first == "__metadata__")
            throw std::invalid_argument("serialize_safetensors: invalid tensor name '" + entry.first + "'");
        if (!entry.second.defined())
            throw std::invalid_argument("serialize_safetensors: tensor '" + entry.first + "' is undefined");
        sorted.push_back(&entry);
    }
    std::sort(sorted.begin(), sorted.end(), [](auto* a, auto* b) { return a->first < b->first; });
    for (std::size_t i = 1; i < sorted.size(); ++i)
        if (sorted[i]->first == sorted[i - 1]->first)
            throw std::invalid_argument("serialize_safetensors: duplicate tensor name '" + sorted[i]->first + "'");

    nlohmann::ordered_json header = nlohmann::ordered_json::object();
    if (!metadata.empty()) header["__metadata__"] = metadata;
    std::uint64_t offset = 0;
    for (const auto* entry : sorted) {
        const std::uint64_t size = entry->second.bytes().size();
        header[entry->first] = {
            {"dtype", "F32"}, {"shape", entry->second.shape()}, {"data_offsets", {offset, offset + size}}};
        offset += size;
    }
    std::string text;
    try {
        text = header.dump();
    } catch (const nlohmann::json::exception& e) {
        throw std::invalid_argument(
            std::string("serialize_safetensors: a name or metadata value is not valid UTF-8: ") + e.what());
    }
    text.append((8 - text.size() % 8) % 8, ' ');

    const std::uint64_t header_size = text.size();
    std::vector<std::byte> out(8 + text.size() + offset);
    std::memcpy(out.data(), &header_size, 8);
    std::memcpy(out.data() + 8, text.data(), text.size());
    std::byte* dst = out.data() + 8 + text.size();
    for (const auto* entry : sorted) {
        const auto bytes = entry->second.bytes();
        if (!bytes.empty()) std::memcpy(dst, bytes.data(), bytes.size());
        dst += bytes.size();
    }
    return out;
}

// Writes atomically: a crash mid-save leaves the previous checkpoint intact.
inline void save_safetensors(const std::filesystem::path& path, const NamedTensors& tensors,
                             const std::map<std::string, std::string>& metadata = {}) {
    std::vector<std::byte> bytes;
    try {
        bytes = serialize_safetensors(tensors, metadata);
    } catch (const std::invalid_argument& e) {
        throw std::invalid_argument("save_safetensors '" + path.string() + "': " + e.what());
    }
    write_file_atomic(path, bytes);
}

// Names a checkpoint and a model disagree on; only reported (not thrown) when loading non-strictly.
struct LoadReport {
    std::vector<std::string> missing;     // in the model, not in the checkpoint
    std::vector<std::string> unexpected;  // in the checkpoint, not in the model
};

// Copies checkpoint tensors into the named targets. All problems are gathered into one exception, one line
// each, and nothing is copied unless all checks pass. Shape mismatches always fail; missing and unexpected
// names fail only when strict (as in torch's load_state_dict). BatchNorm's "*.num_batches_tracked" counters in
// a PyTorch export are skipped.
inline LoadReport load_into(const SafetensorsFile& file,
                            const std::vector<std::pair<std::string, Tensor<float>*>>& targets, bool strict = true) {
    LoadReport report;
    std::vector<std::string> problems;
    std::set<std::string> wanted;
    for (const auto& [name, target] : targets) {
        if (!wanted.insert(name).second) {
            problems.push_back(name + ": named twice among the targets");
            continue;
        }
        const auto it = file.tensors.find(name);
        if (it == file.tensors.end()) {
            report.missing.push_back(name);
            if (strict) problems.push_back(name + ": missing from the checkpoint");
        } else if (it->second.shape() != target->shape()) {
            problems.push_back(name + ": checkpoint has " + shape_str(it->second.shape()) + ", model expects " +
                               shape_str(target->shape()));
        }
    }
    const std::string bn_counter = ".num_batches_tracked";
    for (const auto& [name, tensor] : file.tensors) {
        if (wanted.count(name)) continue;
        // PyTorch exports BN's step counter; it only matters when momentum is None, which ironclad never uses.
        const bool counter = name.size() >= bn_counter.size() &&
                             name.compare(name.size() - bn_counter.size(), bn_counter.size(), bn_counter) == 0;
        if (counter) continue;
        report.unexpected.push_back(name);
        if (strict) problems.push_back(name + ": unexpected in the checkpoint (the model has no such tensor)");
    }
    if (!problems.empty()) {
        std::string message = "load_into from '" + file.source + "': " + std::to_string(problems.size()) +
                              " problem(s):";
        for (const auto& p : problems) message += "\n  " + p;
        throw std::runtime_error(message);
    }
    for (const auto& [name, target] : targets) {
        const auto it = file.tensors.find(name);
        if (it != file.tensors.end()) target->copy_from(it->second);
    }
    return report;
}

}  // namespace ironclad

// The engine's version, written into every result file (keep equal to project(version) in meson.build; the CLI
// test checks that `ironclad --version` prints it).
#pragma once

namespace ironclad {
inline constexpr const char* engine_version = "0.1.0";
}

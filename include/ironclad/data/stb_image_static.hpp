// stb_image compiled into every translation unit that includes this header, with internal linkage.
//
// Why: ironclad is header-only, so no single .cpp can own stb_image's implementation. STB_IMAGE_STATIC
// makes every stbi_* function static, so each translation unit gets its own private copy and several of
// them link together (and with a user's own stb_image copy) without duplicate symbols. Within ironclad
// only image_folder.hpp includes this. A user translation unit that also includes <stb_image.h> itself
// must include it after ironclad's data headers (the include guard then reuses these declarations).
// Only the formats ironclad reads are compiled, to keep compile time down; failure strings stay thread
// local (stb's default in C++11), so decoding on several OpenMP threads is safe.
#pragma once

#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wunused-function"
#pragma GCC diagnostic ignored "-Wmissing-field-initializers"
#define STB_IMAGE_STATIC
#define STB_IMAGE_IMPLEMENTATION
#define STBI_ONLY_PNG
#define STBI_ONLY_JPEG
#define STBI_ONLY_BMP
#include <stb_image.h>
#undef STB_IMAGE_IMPLEMENTATION  // a later #include <stb_image.h> must not compile it twice
#pragma GCC diagnostic pop

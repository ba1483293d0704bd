// ImageTransform: uint8 image -> normalised float image, with optional padding, random crop and flip.
//
// Contract (the torchvision pipeline Pad(pad_to) -> RandomCrop(size, padding=crop_pad) ->
// RandomHorizontalFlip -> ToTensor -> Normalize(mean, std), with its random decisions passed in):
//   value  = (pixel / 255 - mean[c]) / std[c], computed in float like ToTensor + Normalize;
//   pad_to = centre the image on a black pad_to x pad_to canvas (odd margins put the extra row/column
//            at the bottom/right);
//   crop   = output pixel (y, x) reads canvas pixel (y + dy - crop_pad, x + dx - crop_pad), with
//            dy, dx in [0, 2*crop_pad]; flip mirrors x before that.
// Every pixel outside the image is black, i.e. (0 - mean[c]) / std[c] after normalisation, as when
// torchvision pads the [0,1] image before Normalize.
#pragma once

#include <algorithm>
#include <cstdint>
#include <stdexcept>
#include <string>
#include <vector>

namespace ironclad {

// The random decisions for one image.
struct Augment {
    int dy = 0;  // [0, 2*crop_pad]
    int dx = 0;  // [0, 2*crop_pad]
    bool flip = false;
};

class ImageTransform {
public:
    // Input images are [channels, height, width]; mean/std have one entry per channel or are empty (0 / 1).
    ImageTransform(int channels, int height, int width, const std::vector<float>& mean, const std::vector<float>& std,
                   int pad_to = 0, int crop_pad = 0)
        : c_(channels), h_(height), w_(width), out_h_(std::max(height, pad_to)), out_w_(std::max(width, pad_to)),
          top_((out_h_ - height) / 2), left_((out_w_ - width) / 2), crop_pad_(crop_pad) {
        auto check = [&](const std::vector<float>& v, const char* name) {
            if (!v.empty() && static_cast<int>(v.size()) != channels)
                throw std::invalid_argument(std::string("ImageTransform: ") + name + " has " +
                                            std::to_string(v.size()) + " entries for " + std::to_string(channels) +
                                            " channels");
        };
        check(mean, "mean");
        check(std, "std");
        if (pad_to != 0 && (pad_to < height || pad_to < width))
            throw std::invalid_argument("ImageTransform: pad_to " + std::to_string(pad_to) + " is smaller than the " +
                                        std::to_string(height) + "x" + std::to_string(width) + " image");
        if (crop_pad < 0)
            throw std::invalid_argument("ImageTransform: negative crop padding " + std::to_string(crop_pad));
        // A table per channel: 256 divisions instead of one per pixel, and bit-identical results.
        lut_.resize(static_cast<std::size_t>(channels) * 256);
        for (int c = 0; c < channels; ++c) {
            const float m = mean.empty() ? 0.0f : mean[static_cast<std::size_t>(c)];
            const float s = std.empty() ? 1.0f : std[static_cast<std::size_t>(c)];
            if (!(s > 0.0f))
                throw std::invalid_argument("ImageTransform: std of channel " + std::to_string(c) +
                                            " must be positive, got " + std::to_string(s));
            for (int v = 0; v < 256; ++v)
                lut_[static_cast<std::size_t>(c * 256 + v)] = (static_cast<float>(v) / 255.0f - m) / s;
        }
    }

    int channels() const { return c_; }
    int out_height() const { return out_h_; }
    int out_width() const { return out_w_; }
    int crop_pad() const { return crop_pad_; }
    // The normalised value of pixel v in channel c.
    float normalized(int c, std::uint8_t v) const { return lut_[static_cast<std::size_t>(c * 256 + v)]; }

    // src: [C,H,W]; dst: [C,out_height,out_width].
    void apply(const std::uint8_t* src, Augment a, float* dst) const {
        for (int c = 0; c < c_; ++c) {
            const float* lut = lut_.data() + c * 256;
            for (int y = 0; y < out_h_; ++y) {
                float* row = dst + (static_cast<std::int64_t>(c) * out_h_ + y) * out_w_;
                const int sy = y + a.dy - crop_pad_ - top_;
                if (sy < 0 || sy >= h_) {
                    std::fill(row, row + out_w_, lut[0]);
                    continue;
                }
                const std::uint8_t* src_row = src + (static_cast<std::int64_t>(c) * h_ + sy) * w_;
                for (int x = 0; x < out_w_; ++x) {
                    const int sx = (a.flip ? out_w_ - 1 - x : x) + a.dx - crop_pad_ - left_;
                    row[x] = (sx >= 0 && sx < w_) ? lut[src_row[sx]] : lut[0];
                }
            }
        }
    }

private:
    int c_, h_, w_, out_h_, out_w_, top_, left_, crop_pad_;
    std::vector<float> lut_;  // [C,256]
};

}  // namespace ironclad

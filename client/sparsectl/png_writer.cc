#include "png_writer.h"

#include <png.h>

#include <cerrno>
#include <cstring>
#include <limits>

#include "sparsed/str_cat.h"

#if !defined(PNG_SIMPLIFIED_WRITE_SUPPORTED) || !defined(PNG_STDIO_SUPPORTED)
#error "sparsectl needs libpng >= 1.6 with the simplified write API (png_image_write_to_file)"
#endif

namespace sparsed::client::cli {
namespace {

// Owns a png_image: png_image_free releases whatever libpng allocated for it,
// on success and on every error path. (The simplified API reports errors
// through image.message rather than longjmp, so no setjmp is needed here.)
class PngImage {
 public:
  PngImage(uint32_t width, uint32_t height) {
    std::memset(&image_, 0, sizeof(image_));
    image_.version = PNG_IMAGE_VERSION;
    image_.width = width;
    image_.height = height;
    image_.format = PNG_FORMAT_GRAY;
  }
  ~PngImage() { png_image_free(&image_); }
  PngImage(const PngImage&) = delete;
  PngImage& operator=(const PngImage&) = delete;

  png_image* get() { return &image_; }
  bool failed() const { return PNG_IMAGE_FAILED(image_); }
  const char* message() const { return image_.message; }

 private:
  png_image image_;
};

}  // namespace

absl::Status WriteGrayPng(const std::string& path, int64_t width, int64_t height,
                          std::span<const uint8_t> pixels) {
  // PNG dimensions are 31-bit; the row stride is a png_int_32.
  constexpr int64_t kMaxSide = std::numeric_limits<int32_t>::max();
  if (width < 1 || height < 1 || width > kMaxSide || height > kMaxSide) {
    return absl::InvalidArgumentError(StrCat(path, ": cannot write a ", width, "x", height,
                                             " PNG (each side must be in [1, ", kMaxSide, "])"));
  }
  if (static_cast<int64_t>(pixels.size()) != width * height) {
    return absl::InvalidArgumentError(
        StrCat(path, ": ", pixels.size(), " pixels for a ", width, "x", height, " image"));
  }
  PngImage image(static_cast<uint32_t>(width), static_cast<uint32_t>(height));
  errno = 0;
  const int ok = png_image_write_to_file(image.get(), path.c_str(), /*convert_to_8bit=*/0,
                                         pixels.data(), static_cast<png_int_32>(width),
                                         /*colormap=*/nullptr);
  if (ok && !image.failed()) return absl::OkStatus();
  // libpng opens the file with fopen: an errno from there is the real reason.
  if (errno != 0) {
    return absl::ErrnoToStatus(
        errno, StrCat(path, ": cannot write the PNG (libpng: ", image.message(), ")"));
  }
  return absl::InternalError(StrCat(path, ": libpng: ", image.message()));
}

}  // namespace sparsed::client::cli

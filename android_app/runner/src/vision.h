// Image -> tiles, exactly as mobile_mllm.vision does on the host (grid.py, tiling.py, processor.py,
// io.py, normalize.py): the four grid policies, the token budget, canvas layout (aspect kept and
// centred on pad_color, or stretched for internvl and smolvlm, smolvlm in its two resizes with the
// canvas squashed to one tile as the global image), PIL-identical resampling (bicubic / bilinear /
// lanczos with PIL's fixed-point two-pass filter, nearest with PIL's affine stepping), row-major
// tiles, the thumbnail first or last, and (x / 255 - mean) / std in float32.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "errors.h"

namespace mobile_mllm {

enum class GridPolicy { Relaxed, LlavaNext, InternVL, SmolVLM };
enum class ThumbnailPosition { First, Last, None };
enum class Resample { Bicubic, Bilinear, Nearest, Lanczos };

struct VisionConfig {
  GridPolicy policy = GridPolicy::Relaxed;
  int64_t tile_size = 384;
  int64_t max_side = 3;   // <= 0: no side bound
  int64_t max_tiles = 0;  // <= 0: no count bound
  double alpha = 0.1;
  ThumbnailPosition thumbnail = ThumbnailPosition::Last;
  bool thumbnail_for_single = false;
  float mean[3] = {0.5f, 0.5f, 0.5f};
  float std[3] = {0.5f, 0.5f, 0.5f};
  uint8_t pad_color[3] = {127, 127, 127};
  uint8_t background[3] = {255, 255, 255};
  int64_t max_pixels = 80000000;
  int64_t tokens_per_tile = 196;
  Resample resample = Resample::Bicubic;
  int64_t longest_edge_px = 0;  // smolvlm only; <= 0: max_side (else max_tiles) tiles
};

// VisionConfig.smolvlm_longest_edge_px: the smolvlm policy's first longest edge.
int64_t smolvlm_longest_edge_px(const VisionConfig& cfg);
// Whether the policy keeps the aspect ratio and pads (tiling.pads_canvas: not internvl or smolvlm).
bool pads_canvas(const VisionConfig& cfg);

struct Size {
  int64_t width = 0, height = 0;
};
struct Grid {
  int64_t cols = 1, rows = 1;
  int64_t num_tiles() const { return cols * rows; }
  bool operator==(const Grid& o) const { return cols == o.cols && rows == o.rows; }
  bool operator!=(const Grid& o) const { return !(*this == o); }
};

struct CanvasLayout {
  Size canvas, resized;
  int64_t left = 0, top = 0;
};

// What plan_tiles decides from the image size alone.
struct TilePlan {
  Size original;
  Grid grid, preferred;
  CanvasLayout layout;
  int64_t thumbnail_index = -1;  // -1: no thumbnail
  int64_t num_tiles = 0;         // local tiles + thumbnail
  int64_t image_tokens = 0;
  bool reduced_by_budget() const { return grid != preferred; }
};

std::vector<Grid> candidate_grids(int64_t max_side, int64_t max_tiles);
Grid select_relaxed(Size image, const std::vector<Grid>& candidates, int64_t tile_size, double alpha);
Grid select_llava_next(Size image, const std::vector<Grid>& candidates, int64_t tile_size);
Grid select_internvl(Size image, const std::vector<Grid>& candidates, int64_t tile_size);
// grid.smolvlm_sizes: the size after SmolVLM's first resize (longest edge to `longest_edge_px`) and
// the canvas after the second (rounded up to whole tiles).
struct SmolVLMSizes {
  Size first, canvas;
};
SmolVLMSizes smolvlm_sizes(Size image, int64_t longest_edge_px, int64_t tile_size);
// grid.smolvlm_edges: the longest edges tried, largest first (the configured one, then whole tiles below).
std::vector<int64_t> smolvlm_edges(int64_t longest_edge_px, int64_t tile_size);
// Throws ConfigError when no edge gives a candidate grid.
Grid select_smolvlm(Size image, const std::vector<Grid>& candidates, int64_t tile_size, int64_t longest_edge_px);
CanvasLayout layout_canvas(Size image, Size canvas, bool pad);
// Throws ImageError (bad size) or ContextOverflowError (budget below the smallest grid).
TilePlan plan_tiles(Size image, const VisionConfig& cfg, std::optional<int64_t> token_budget);

// 8-bit RGB pixels, row-major, 3 bytes per pixel.
struct RgbImage {
  int64_t width = 0, height = 0;
  std::vector<uint8_t> rgb;
};

// The upright size of an image file (EXIF orientation applied), reading the header only.
Size read_image_size(const std::string& path, const VisionConfig& cfg);
// Decode as upright 8-bit RGB: EXIF orientation, alpha composited on cfg.background, 16-bit reduced.
RgbImage load_image(const std::string& path, const VisionConfig& cfg);
// PIL's Image.resize for an RGB image with the given filter.
RgbImage resize_like_pil(const RgbImage& in, int64_t width, int64_t height, Resample filter);

// The plan's tiles, uint8 [N, S, S, 3] in model order.
std::vector<uint8_t> render_tiles(const RgbImage& img, const TilePlan& plan, const VisionConfig& cfg);
// uint8 [N, S, S, 3] -> float32 [N, 3, S, S] as (x / 255 - mean) / std.
std::vector<float> normalize_tiles(const std::vector<uint8_t>& tiles, int64_t n, int64_t s, const VisionConfig& cfg);

}  // namespace mobile_mllm

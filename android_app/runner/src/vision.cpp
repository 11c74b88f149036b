#include "vision.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <fstream>
#include <limits>
#include <sstream>
#include <sys/stat.h>

// stb_image (public domain / MIT, Debian's libstb-dev as a system header; not vendored here):
// PNG, JPEG (baseline and progressive), BMP, GIF, TGA, PNM. Only this file compiles its code.
#define STB_IMAGE_IMPLEMENTATION
#define STBI_NO_HDR
#define STBI_NO_LINEAR
#define STBI_FAILURE_USERMSG
#include <stb/stb_image.h>

namespace mobile_mllm {

// --------------------------------------------------------------------------- grid (vision/grid.py)

std::vector<Grid> candidate_grids(int64_t max_side, int64_t max_tiles) {
  if (max_side <= 0 && max_tiles <= 0) throw std::runtime_error("vision: set max_side or max_tiles (or both)");
  const int64_t side = max_side > 0 ? max_side : max_tiles;
  std::vector<Grid> out;
  for (int64_t m = 1; m <= side; ++m) {
    const int64_t n_max = max_tiles <= 0 ? side : std::min(side, max_tiles / m);
    for (int64_t n = 1; n <= n_max; ++n) out.push_back({m, n});
  }
  return out;
}

namespace {

struct Resolution {
  int64_t effective, wasted;
};

Resolution resolution_on(Size image, Grid grid, int64_t tile_size) {
  const int64_t cw = grid.cols * tile_size, ch = grid.rows * tile_size;
  const double scale = std::min(static_cast<double>(cw) / static_cast<double>(image.width),
                                static_cast<double>(ch) / static_cast<double>(image.height));
  const int64_t ew = static_cast<int64_t>(static_cast<double>(image.width) * scale);  // int() truncates
  const int64_t eh = static_cast<int64_t>(static_cast<double>(image.height) * scale);
  const int64_t effective = std::min(ew * eh, image.width * image.height);
  return {effective, cw * ch - effective};
}

std::vector<Grid> sorted(std::vector<Grid> g, bool descending) {
  std::sort(g.begin(), g.end(), [&](const Grid& a, const Grid& b) {
    const bool less = a.cols != b.cols ? a.cols < b.cols : a.rows < b.rows;
    const bool greater = a.cols != b.cols ? a.cols > b.cols : a.rows > b.rows;
    return descending ? greater : less;
  });
  return g;
}

void require(const std::vector<Grid>& c) {
  if (c.empty()) throw std::runtime_error("no candidate grids to choose from; check vision.max_side and max_tiles");
}

}  // namespace

Grid select_relaxed(Size image, const std::vector<Grid>& candidates, int64_t tile_size, double alpha) {
  require(candidates);
  Grid best{0, 0};
  int64_t re_max = 0;
  double rw_min = std::numeric_limits<double>::infinity();
  for (const Grid& g : sorted(candidates, true)) {
    const Resolution r = resolution_on(image, g, tile_size);
    const double bound = alpha * static_cast<double>(re_max);
    const bool about_as_much = static_cast<double>(re_max - r.effective) < bound || (r.effective == 0 && re_max == 0);
    if (static_cast<double>(r.effective - re_max) > bound || (about_as_much && static_cast<double>(r.wasted) < rw_min)) {
      best = g;
      re_max = r.effective;
      rw_min = static_cast<double>(r.wasted);
    }
  }
  return best;
}

Grid select_llava_next(Size image, const std::vector<Grid>& candidates, int64_t tile_size) {
  require(candidates);
  Grid best = candidates[0];
  Resolution best_res{-1, 0};
  for (const Grid& g : sorted(candidates, false)) {
    const Resolution r = resolution_on(image, g, tile_size);
    if (r.effective > best_res.effective || (r.effective == best_res.effective && r.wasted < best_res.wasted)) {
      best = g;
      best_res = r;
    }
  }
  return best;
}

Grid select_internvl(Size image, const std::vector<Grid>& candidates, int64_t tile_size) {
  require(candidates);
  std::vector<Grid> order = candidates;
  std::sort(order.begin(), order.end(), [](const Grid& a, const Grid& b) {
    if (a.num_tiles() != b.num_tiles()) return a.num_tiles() < b.num_tiles();
    return a.cols != b.cols ? a.cols < b.cols : a.rows < b.rows;
  });
  const double aspect = static_cast<double>(image.width) / static_cast<double>(image.height);
  Grid best{1, 1};
  double best_diff = std::numeric_limits<double>::infinity();
  for (const Grid& g : order) {
    const double diff = std::fabs(aspect - static_cast<double>(g.cols) / static_cast<double>(g.rows));
    if (diff < best_diff) {
      best = g;
      best_diff = diff;
    } else if (diff == best_diff && static_cast<double>(image.width * image.height) >
                                        0.5 * static_cast<double>(tile_size) * static_cast<double>(tile_size) *
                                            static_cast<double>(g.num_tiles())) {
      best = g;
    }
  }
  return best;
}

namespace {

constexpr int64_t kSmolVLMMaxPx = 4096;  // SmolVLM's bound on the resized longest edge (MAX_IMAGE_SIZE)

int64_t ceil_div(int64_t num, int64_t den) { return (num + den - 1) / den; }

// grid._fit_longest: the longest side to `edge`, the other int(edge / aspect) (made even when asked).
Size fit_longest(Size image, int64_t edge, bool even) {
  const double aspect = static_cast<double>(image.width) / static_cast<double>(image.height);
  int64_t w = 0, h = 0;
  if (image.width >= image.height) {
    w = edge;
    h = static_cast<int64_t>(static_cast<double>(edge) / aspect);
    if (even && h % 2 != 0) ++h;
  } else {
    w = static_cast<int64_t>(static_cast<double>(edge) * aspect);
    h = edge;
    if (even && w % 2 != 0) ++w;
  }
  return {std::max<int64_t>(w, 1), std::max<int64_t>(h, 1)};
}

}  // namespace

SmolVLMSizes smolvlm_sizes(Size image, int64_t longest_edge_px, int64_t tile_size) {
  Size first = fit_longest(image, longest_edge_px, true);
  if (std::max(first.width, first.height) > kSmolVLMMaxPx) first = fit_longest(first, kSmolVLMMaxPx, false);
  const double aspect = static_cast<double>(first.width) / static_cast<double>(first.height);
  int64_t w = 0, h = 0;
  if (first.width >= first.height) {
    w = ceil_div(first.width, tile_size) * tile_size;
    h = ceil_div(static_cast<int64_t>(static_cast<double>(w) / aspect), tile_size) * tile_size;
  } else {
    h = ceil_div(first.height, tile_size) * tile_size;
    w = ceil_div(static_cast<int64_t>(static_cast<double>(h) * aspect), tile_size) * tile_size;
  }
  return {first, {std::max(w, tile_size), std::max(h, tile_size)}};
}

std::vector<int64_t> smolvlm_edges(int64_t longest_edge_px, int64_t tile_size) {
  std::vector<int64_t> edges = {longest_edge_px};
  for (int64_t k = ceil_div(longest_edge_px, tile_size) - 1; k > 0; --k) edges.push_back(k * tile_size);
  return edges;
}

Grid select_smolvlm(Size image, const std::vector<Grid>& candidates, int64_t tile_size, int64_t longest_edge_px) {
  require(candidates);
  for (int64_t edge : smolvlm_edges(longest_edge_px, tile_size)) {
    const Size canvas = smolvlm_sizes(image, edge, tile_size).canvas;
    const Grid g{canvas.width / tile_size, canvas.height / tile_size};
    if (std::find(candidates.begin(), candidates.end(), g) != candidates.end()) return g;
  }
  throw ConfigError("no longest edge up to " + std::to_string(longest_edge_px) + " px gives a " +
                    std::to_string(image.width) + "x" + std::to_string(image.height) +
                    " image a grid within vision.max_side/max_tiles; allow the 1:1 grid");
}

int64_t smolvlm_longest_edge_px(const VisionConfig& cfg) {
  if (cfg.longest_edge_px > 0) return cfg.longest_edge_px;
  return cfg.tile_size * (cfg.max_side > 0 ? cfg.max_side : (cfg.max_tiles > 0 ? cfg.max_tiles : 1));
}

bool pads_canvas(const VisionConfig& cfg) {
  return cfg.policy != GridPolicy::InternVL && cfg.policy != GridPolicy::SmolVLM;
}

namespace {

bool has_thumbnail(Grid g, const VisionConfig& cfg) {
  if (cfg.thumbnail == ThumbnailPosition::None) return false;
  return g.num_tiles() > 1 || cfg.thumbnail_for_single;
}

int64_t count_tiles(Grid g, const VisionConfig& cfg) { return g.num_tiles() + (has_thumbnail(g, cfg) ? 1 : 0); }

Grid select(Size image, const std::vector<Grid>& c, const VisionConfig& cfg) {
  switch (cfg.policy) {
    case GridPolicy::Relaxed: return select_relaxed(image, c, cfg.tile_size, cfg.alpha);
    case GridPolicy::LlavaNext: return select_llava_next(image, c, cfg.tile_size);
    case GridPolicy::InternVL: return select_internvl(image, c, cfg.tile_size);
    case GridPolicy::SmolVLM: return select_smolvlm(image, c, cfg.tile_size, smolvlm_longest_edge_px(cfg));
  }
  return Grid{};
}

int64_t round_div(int64_t num, int64_t den) { return (2 * num + den) / (2 * den); }  // halves up, no float

}  // namespace

CanvasLayout layout_canvas(Size image, Size canvas, bool pad) {
  CanvasLayout l;
  l.canvas = canvas;
  if (!pad) {
    l.resized = canvas;
    return l;
  }
  const int64_t w0 = image.width, h0 = image.height;
  if (canvas.width * h0 <= canvas.height * w0) {  // width is the tighter side: it fills
    l.resized = {canvas.width, std::min(canvas.height, std::max<int64_t>(1, round_div(h0 * canvas.width, w0)))};
  } else {
    l.resized = {std::min(canvas.width, std::max<int64_t>(1, round_div(w0 * canvas.height, h0))), canvas.height};
  }
  l.left = (canvas.width - l.resized.width) / 2;
  l.top = (canvas.height - l.resized.height) / 2;
  return l;
}

TilePlan plan_tiles(Size image, const VisionConfig& cfg, std::optional<int64_t> token_budget) {
  if (image.width <= 0 || image.height <= 0) {
    throw ImageError("image size must be positive, got " + std::to_string(image.width) + "x" +
                     std::to_string(image.height));
  }
  const std::vector<Grid> candidates = candidate_grids(cfg.max_side, cfg.max_tiles);
  TilePlan p;
  p.original = image;
  p.preferred = select(image, candidates, cfg);
  p.grid = p.preferred;
  if (token_budget) {
    std::vector<Grid> fitting;
    int64_t smallest = std::numeric_limits<int64_t>::max();
    for (const Grid& g : candidates) {
      const int64_t tokens = count_tiles(g, cfg) * cfg.tokens_per_tile;
      smallest = std::min(smallest, tokens);
      if (tokens <= *token_budget) fitting.push_back(g);
    }
    if (fitting.empty()) {
      throw ContextOverflowError("token budget " + std::to_string(*token_budget) + " is below the " +
                                 std::to_string(smallest) + " image tokens of the smallest grid");
    }
    p.grid = select(image, fitting, cfg);
  }
  const Size canvas{p.grid.cols * cfg.tile_size, p.grid.rows * cfg.tile_size};
  p.layout = layout_canvas(image, canvas, pads_canvas(cfg));
  const bool thumb = has_thumbnail(p.grid, cfg);
  p.thumbnail_index = !thumb ? -1 : (cfg.thumbnail == ThumbnailPosition::First ? 0 : p.grid.num_tiles());
  p.num_tiles = count_tiles(p.grid, cfg);
  p.image_tokens = p.num_tiles * cfg.tokens_per_tile;
  return p;
}

// --------------------------------------------------------------------------- decoding (vision/io.py)

namespace {

std::string read_all(const std::string& path) {
  struct stat st {};
  if (stat(path.c_str(), &st) != 0) throw ImageError("image file not found: " + path + " (check the path)");
  if (!S_ISREG(st.st_mode)) throw ImageError("image path is not a file: " + path);
  if (st.st_size == 0) throw ImageError("image file is empty (0 bytes): " + path);
  std::ifstream in(path, std::ios::binary);
  if (!in) throw ImageError("cannot read image file " + path);
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// EXIF orientation (tag 0x0112 of IFD0) from a TIFF block; 1 when absent or malformed.
int tiff_orientation(const uint8_t* p, size_t n) {
  if (n < 8) return 1;
  const bool le = p[0] == 'I' && p[1] == 'I';
  if (!le && !(p[0] == 'M' && p[1] == 'M')) return 1;
  auto u16 = [&](size_t o) -> uint32_t { return le ? (p[o] | (p[o + 1] << 8)) : ((p[o] << 8) | p[o + 1]); };
  auto u32 = [&](size_t o) -> uint32_t {
    return le ? (p[o] | (p[o + 1] << 8) | (p[o + 2] << 16) | (static_cast<uint32_t>(p[o + 3]) << 24))
              : ((static_cast<uint32_t>(p[o]) << 24) | (p[o + 1] << 16) | (p[o + 2] << 8) | p[o + 3]);
  };
  const size_t ifd = u32(4);
  if (ifd + 2 > n) return 1;
  const size_t count = u16(ifd);
  for (size_t k = 0; k < count; ++k) {
    const size_t e = ifd + 2 + 12 * k;
    if (e + 12 > n) return 1;
    if (u16(e) == 0x0112) {
      const uint32_t type = u16(e + 2);
      const uint32_t v = type == 3 ? u16(e + 8) : (type == 4 ? u32(e + 8) : 1);
      return v >= 1 && v <= 8 ? static_cast<int>(v) : 1;
    }
  }
  return 1;
}

int exif_orientation(const std::string& data) {
  const auto* d = reinterpret_cast<const uint8_t*>(data.data());
  const size_t n = data.size();
  if (n > 4 && d[0] == 0xFF && d[1] == 0xD8) {  // JPEG: the first APP1 "Exif\0\0"
    size_t i = 2;
    while (i + 4 <= n && d[i] == 0xFF) {
      const uint8_t marker = d[i + 1];
      if (marker == 0xD9 || marker == 0xDA) break;  // end of image / start of scan
      const size_t len = (d[i + 2] << 8) | d[i + 3];
      if (marker == 0xE1 && len >= 8 && i + 2 + len <= n && std::memcmp(d + i + 4, "Exif\0\0", 6) == 0) {
        return tiff_orientation(d + i + 10, len - 8);
      }
      i += 2 + len;
    }
    return 1;
  }
  static const uint8_t png_sig[8] = {0x89, 'P', 'N', 'G', 0x0D, 0x0A, 0x1A, 0x0A};
  if (n > 8 && std::memcmp(d, png_sig, 8) == 0) {  // PNG: the eXIf chunk
    size_t i = 8;
    while (i + 12 <= n) {
      const size_t len = (static_cast<size_t>(d[i]) << 24) | (d[i + 1] << 16) | (d[i + 2] << 8) | d[i + 3];
      if (i + 12 + len > n) break;
      if (std::memcmp(d + i + 4, "eXIf", 4) == 0) {
        const uint8_t* body = d + i + 8;
        size_t blen = len;
        if (blen >= 6 && std::memcmp(body, "Exif\0\0", 6) == 0) {
          body += 6;
          blen -= 6;
        }
        return tiff_orientation(body, blen);
      }
      i += 12 + len;
    }
  }
  return 1;
}

bool swaps_sides(int orientation) { return orientation >= 5 && orientation <= 8; }

// PIL's ImageOps.exif_transpose on interleaved pixels with c channels.
std::vector<uint8_t> transpose(const std::vector<uint8_t>& in, int64_t w, int64_t h, int c, int orientation,
                               int64_t* out_w, int64_t* out_h) {
  const bool swap = swaps_sides(orientation);
  const int64_t ow = swap ? h : w, oh = swap ? w : h;
  *out_w = ow;
  *out_h = oh;
  if (orientation == 1) return in;
  std::vector<uint8_t> out(in.size());
  for (int64_t y = 0; y < oh; ++y) {
    for (int64_t x = 0; x < ow; ++x) {
      int64_t sx = x, sy = y;
      switch (orientation) {
        case 2: sx = w - 1 - x; break;                         // FLIP_LEFT_RIGHT
        case 3: sx = w - 1 - x; sy = h - 1 - y; break;         // ROTATE_180
        case 4: sy = h - 1 - y; break;                         // FLIP_TOP_BOTTOM
        case 5: sx = y; sy = x; break;                         // TRANSPOSE
        case 6: sx = y; sy = h - 1 - x; break;                 // ROTATE_270 (90 clockwise)
        case 7: sx = w - 1 - y; sy = h - 1 - x; break;         // TRANSVERSE
        case 8: sx = w - 1 - y; sy = x; break;                 // ROTATE_90 (90 counter-clockwise)
        default: break;
      }
      std::memcpy(&out[(y * ow + x) * c], &in[(sy * w + sx) * c], static_cast<size_t>(c));
    }
  }
  return out;
}

// PIL's Image.alpha_composite of a pixel over an opaque background (integer arithmetic as PIL's).
void composite_over(uint8_t* out3, const uint8_t* src, uint8_t alpha, const uint8_t* bg) {
  if (alpha == 0) {
    std::memcpy(out3, bg, 3);
    return;
  }
  constexpr uint32_t kBits = 7;
  const uint32_t blend = 255u * (255u - alpha);
  const uint32_t outa255 = alpha * 255u + blend;
  const uint32_t coef1 = alpha * 255u * 255u * (1u << kBits) / outa255;
  const uint32_t coef2 = 255u * (1u << kBits) - coef1;
  for (int k = 0; k < 3; ++k) {
    const uint32_t tmp = src[k] * coef1 + bg[k] * coef2 + (0x80u << kBits);
    out3[k] = static_cast<uint8_t>((((tmp >> 8) + tmp) >> 8) >> kBits);
  }
}

struct Header {
  int w = 0, h = 0, comp = 0;
  int orientation = 1;
};

Header read_header(const std::string& path, const std::string& data, const VisionConfig& cfg) {
  Header hd;
  if (!stbi_info_from_memory(reinterpret_cast<const stbi_uc*>(data.data()), static_cast<int>(data.size()), &hd.w,
                             &hd.h, &hd.comp)) {
    throw ImageError("not a readable image file: " + path + " (unknown or corrupt format: " +
                     stbi_failure_reason() + ")");
  }
  if (hd.w <= 0 || hd.h <= 0) throw ImageError("image has zero size: " + path);
  const int64_t area = static_cast<int64_t>(hd.w) * hd.h;
  if (area > cfg.max_pixels) {
    throw ImageError("image is too large: " + path + " is " + std::to_string(hd.w) + "x" + std::to_string(hd.h) +
                     " = " + std::to_string(area) + " pixels, over vision.max_pixels=" +
                     std::to_string(cfg.max_pixels) + " (decompression-bomb guard)");
  }
  hd.orientation = exif_orientation(data);
  return hd;
}

}  // namespace

Size read_image_size(const std::string& path, const VisionConfig& cfg) {
  const std::string data = read_all(path);
  const Header hd = read_header(path, data, cfg);
  return swaps_sides(hd.orientation) ? Size{hd.h, hd.w} : Size{hd.w, hd.h};
}

RgbImage load_image(const std::string& path, const VisionConfig& cfg) {
  const std::string data = read_all(path);
  const Header hd = read_header(path, data, cfg);
  const auto* bytes = reinterpret_cast<const stbi_uc*>(data.data());
  const int len = static_cast<int>(data.size());
  int w = 0, h = 0, comp = 0;
  const int want = hd.comp;  // gray, gray+alpha, RGB or RGBA as the file has it
  std::vector<uint8_t> px;
  if (want == 1 && stbi_is_16_bit_from_memory(bytes, len)) {
    // 16-bit grayscale: PIL's I;16 scaled to 0..255 with rounding (io.py _rescale_wide)
    stbi_us* p = stbi_load_16_from_memory(bytes, len, &w, &h, &comp, 1);
    if (p == nullptr) throw ImageError("image file is truncated or corrupt: " + path + " (" + stbi_failure_reason() + ")");
    px.resize(static_cast<size_t>(w) * h);
    for (size_t i = 0; i < px.size(); ++i) px[i] = static_cast<uint8_t>(std::nearbyint(p[i] * (255.0 / 65535.0)));
    stbi_image_free(p);
  } else {
    stbi_uc* p = stbi_load_from_memory(bytes, len, &w, &h, &comp, want);
    if (p == nullptr) throw ImageError("image file is truncated or corrupt: " + path + " (" + stbi_failure_reason() + ")");
    px.assign(p, p + static_cast<size_t>(w) * h * want);
    stbi_image_free(p);
  }
  int64_t uw = 0, uh = 0;
  px = transpose(px, w, h, want, hd.orientation, &uw, &uh);
  RgbImage img;
  img.width = uw;
  img.height = uh;
  img.rgb.resize(static_cast<size_t>(uw * uh * 3));
  for (int64_t i = 0; i < uw * uh; ++i) {
    const uint8_t* s = &px[i * want];
    uint8_t* o = &img.rgb[i * 3];
    switch (want) {
      case 1: o[0] = o[1] = o[2] = s[0]; break;
      case 2: {
        const uint8_t g[3] = {s[0], s[0], s[0]};
        composite_over(o, g, s[1], cfg.background);
        break;
      }
      case 3: std::memcpy(o, s, 3); break;
      default: composite_over(o, s, s[3], cfg.background); break;
    }
  }
  return img;
}

// --------------------------------------------------------------------------- resampling (PIL's rules)

namespace {

constexpr int kPrecisionBits = 32 - 8 - 2;

double bilinear(double x) {
  x = std::fabs(x);
  return x < 1.0 ? 1.0 - x : 0.0;
}

double bicubic(double x) {  // Keys' cubic convolution, a = -0.5
  constexpr double a = -0.5;
  x = std::fabs(x);
  if (x < 1.0) return ((a + 2.0) * x - (a + 3.0)) * x * x + 1;
  if (x < 2.0) return (((x - 5) * x + 8) * x - 4) * a;
  return 0.0;
}

double sinc(double x) {
  constexpr double kPi = 3.14159265358979323846;  // M_PI, which strict C++ does not define
  if (x == 0.0) return 1.0;
  x *= kPi;
  return std::sin(x) / x;
}

double lanczos(double x) {  // sinc windowed by sinc over [-3, 3), as PIL's (the upper end excluded)
  return -3.0 <= x && x < 3.0 ? sinc(x) * sinc(x / 3) : 0.0;
}

// PIL's filters of the convolution resize: the kernel and its support (radius at scale 1).
struct Filter {
  double (*f)(double);
  double support;
};

Filter filter_of(Resample r) {
  switch (r) {
    case Resample::Bilinear: return {bilinear, 1.0};
    case Resample::Bicubic: return {bicubic, 2.0};
    case Resample::Lanczos: return {lanczos, 3.0};
    case Resample::Nearest: break;  // not a convolution: resize_nearest
  }
  throw std::logic_error("resample filter without a convolution kernel");
}

struct Coeffs {
  int ksize = 0;
  std::vector<int> bounds;    // per output pixel: first input index, count
  std::vector<int32_t> kk;    // fixed-point weights, ksize per output pixel
};

// Weights of each output pixel over the input, the filter widened by the downscale factor (an
// antialiasing resize), normalised to sum 1, then rounded to fixed point with 22 fraction bits.
Coeffs coefficients(int in_size, int out_size, Resample filter) {
  const Filter kernel = filter_of(filter);
  const double scale = static_cast<double>(static_cast<float>(in_size) - 0.0f) / out_size;
  const double filterscale = std::max(scale, 1.0);
  const double support = kernel.support * filterscale;
  Coeffs c;
  c.ksize = static_cast<int>(std::ceil(support)) * 2 + 1;
  c.bounds.resize(static_cast<size_t>(out_size) * 2);
  c.kk.assign(static_cast<size_t>(out_size) * c.ksize, 0);
  std::vector<double> k(static_cast<size_t>(c.ksize));
  for (int xx = 0; xx < out_size; ++xx) {
    const double center = (xx + 0.5) * scale;
    const double ss = 1.0 / filterscale;
    int xmin = static_cast<int>(center - support + 0.5);
    if (xmin < 0) xmin = 0;
    int xmax = static_cast<int>(center + support + 0.5);
    if (xmax > in_size) xmax = in_size;
    xmax -= xmin;
    double ww = 0.0;
    for (int x = 0; x < xmax; ++x) {
      const double w = kernel.f((x + xmin - center + 0.5) * ss);
      k[x] = w;
      ww += w;
    }
    for (int x = 0; x < xmax; ++x) {
      if (ww != 0.0) k[x] /= ww;
    }
    for (int x = 0; x < c.ksize; ++x) {
      const double v = x < xmax ? k[x] : 0.0;
      c.kk[static_cast<size_t>(xx) * c.ksize + x] =
          static_cast<int32_t>(v < 0 ? -0.5 + v * (1 << kPrecisionBits) : 0.5 + v * (1 << kPrecisionBits));
    }
    c.bounds[xx * 2] = xmin;
    c.bounds[xx * 2 + 1] = xmax;
  }
  return c;
}

uint8_t clip8(int32_t v) {
  const int32_t s = v >> kPrecisionBits;  // arithmetic shift: floor
  return static_cast<uint8_t>(s < 0 ? 0 : (s > 255 ? 255 : s));
}

RgbImage resample_horizontal(const RgbImage& in, int out_w, const Coeffs& c) {
  RgbImage out;
  out.width = out_w;
  out.height = in.height;
  out.rgb.resize(static_cast<size_t>(out_w * in.height * 3));
  for (int64_t y = 0; y < in.height; ++y) {
    const uint8_t* row = &in.rgb[y * in.width * 3];
    for (int xx = 0; xx < out_w; ++xx) {
      const int xmin = c.bounds[xx * 2], n = c.bounds[xx * 2 + 1];
      const int32_t* k = &c.kk[static_cast<size_t>(xx) * c.ksize];
      int32_t s0 = 1 << (kPrecisionBits - 1), s1 = s0, s2 = s0;
      for (int x = 0; x < n; ++x) {
        const uint8_t* p = row + (x + xmin) * 3;
        s0 += p[0] * k[x];
        s1 += p[1] * k[x];
        s2 += p[2] * k[x];
      }
      uint8_t* o = &out.rgb[(y * out_w + xx) * 3];
      o[0] = clip8(s0);
      o[1] = clip8(s1);
      o[2] = clip8(s2);
    }
  }
  return out;
}

RgbImage resample_vertical(const RgbImage& in, int out_h, const Coeffs& c) {
  RgbImage out;
  out.width = in.width;
  out.height = out_h;
  out.rgb.resize(static_cast<size_t>(in.width * out_h * 3));
  for (int yy = 0; yy < out_h; ++yy) {
    const int ymin = c.bounds[yy * 2], n = c.bounds[yy * 2 + 1];
    const int32_t* k = &c.kk[static_cast<size_t>(yy) * c.ksize];
    for (int64_t x = 0; x < in.width; ++x) {
      int32_t s0 = 1 << (kPrecisionBits - 1), s1 = s0, s2 = s0;
      for (int y = 0; y < n; ++y) {
        const uint8_t* p = &in.rgb[((y + ymin) * in.width + x) * 3];
        s0 += p[0] * k[y];
        s1 += p[1] * k[y];
        s2 += p[2] * k[y];
      }
      uint8_t* o = &out.rgb[(yy * in.width + x) * 3];
      o[0] = clip8(s0);
      o[1] = clip8(s1);
      o[2] = clip8(s2);
    }
  }
  return out;
}

// PIL's nearest resize: an affine map stepped in double precision from the first pixel centre.
RgbImage resize_nearest(const RgbImage& in, int64_t w, int64_t h) {
  RgbImage out;
  out.width = w;
  out.height = h;
  out.rgb.assign(static_cast<size_t>(w * h * 3), 0);
  const double ax = static_cast<double>(in.width) / w, ay = static_cast<double>(in.height) / h;
  auto coord = [](double v) { return v < 0.0 ? -1 : static_cast<int64_t>(v); };
  std::vector<int64_t> xin(static_cast<size_t>(w), -1);
  double xo = ax * 0.5;
  for (int64_t x = 0; x < w; ++x) {
    const int64_t xi = coord(xo);
    if (xi >= 0 && xi < in.width) xin[x] = xi;
    xo += ax;
  }
  double yo = ay * 0.5;
  for (int64_t y = 0; y < h; ++y) {
    const int64_t yi = coord(yo);
    if (yi >= 0 && yi < in.height) {
      for (int64_t x = 0; x < w; ++x) {
        if (xin[x] >= 0) std::memcpy(&out.rgb[(y * w + x) * 3], &in.rgb[(yi * in.width + xin[x]) * 3], 3);
      }
    }
    yo += ay;
  }
  return out;
}

}  // namespace

RgbImage resize_like_pil(const RgbImage& in, int64_t width, int64_t height, Resample filter) {
  if (width == in.width && height == in.height) return in;
  if (filter == Resample::Nearest) return resize_nearest(in, width, height);
  // PIL's two passes: horizontal first (over every row), then vertical; a pass whose size does not
  // change is skipped (so a one-sided resize rounds once, as PIL's does).
  RgbImage cur = in;
  if (width != in.width) cur = resample_horizontal(cur, static_cast<int>(width), coefficients(static_cast<int>(in.width), static_cast<int>(width), filter));
  if (height != in.height) cur = resample_vertical(cur, static_cast<int>(height), coefficients(static_cast<int>(in.height), static_cast<int>(height), filter));
  return cur;
}

// --------------------------------------------------------------------------- tiles (vision/tiling.py)

namespace {

// The image resized into its layout and pasted on a pad_color canvas.
RgbImage place(const RgbImage& img, const CanvasLayout& l, const VisionConfig& cfg) {
  RgbImage resized = resize_like_pil(img, l.resized.width, l.resized.height, cfg.resample);
  if (l.resized.width == l.canvas.width && l.resized.height == l.canvas.height) return resized;
  RgbImage canvas;
  canvas.width = l.canvas.width;
  canvas.height = l.canvas.height;
  canvas.rgb.resize(static_cast<size_t>(canvas.width * canvas.height * 3));
  for (int64_t i = 0; i < canvas.width * canvas.height; ++i) std::memcpy(&canvas.rgb[i * 3], cfg.pad_color, 3);
  for (int64_t y = 0; y < resized.height; ++y) {
    std::memcpy(&canvas.rgb[((y + l.top) * canvas.width + l.left) * 3], &resized.rgb[y * resized.width * 3],
                static_cast<size_t>(resized.width * 3));
  }
  return canvas;
}

void crop_into(const RgbImage& canvas, int64_t x0, int64_t y0, int64_t s, uint8_t* out) {
  for (int64_t y = 0; y < s; ++y) std::memcpy(out + y * s * 3, &canvas.rgb[((y0 + y) * canvas.width + x0) * 3], s * 3);
}

// tiling._smolvlm_first_resize: SmolVLM's first resize, for the largest longest edge that gives the plan's grid.
Size smolvlm_first_resize(Size image, Grid grid, const VisionConfig& cfg) {
  const Size canvas{grid.cols * cfg.tile_size, grid.rows * cfg.tile_size};
  for (int64_t edge : smolvlm_edges(smolvlm_longest_edge_px(cfg), cfg.tile_size)) {
    const SmolVLMSizes sizes = smolvlm_sizes(image, edge, cfg.tile_size);
    if (sizes.canvas.width == canvas.width && sizes.canvas.height == canvas.height) return sizes.first;
  }
  throw ConfigError("grid " + std::to_string(grid.cols) + ":" + std::to_string(grid.rows) +
                    " is not a smolvlm grid of a " + std::to_string(image.width) + "x" + std::to_string(image.height) +
                    " image");
}

}  // namespace

std::vector<uint8_t> render_tiles(const RgbImage& img, const TilePlan& plan, const VisionConfig& cfg) {
  const int64_t s = cfg.tile_size;
  const size_t tile_bytes = static_cast<size_t>(s * s * 3);
  std::vector<uint8_t> out(tile_bytes * plan.num_tiles);
  const bool smolvlm = cfg.policy == GridPolicy::SmolVLM;
  RgbImage first;  // smolvlm: stretched to its first resize, then (plan.layout) to the canvas
  if (smolvlm) {
    first = place(img, layout_canvas(plan.original, smolvlm_first_resize(plan.original, plan.grid, cfg), false), cfg);
  }
  const RgbImage canvas = place(smolvlm ? first : img, plan.layout, cfg);
  const int64_t offset = plan.thumbnail_index == 0 ? 1 : 0;
  for (int64_t r = 0; r < plan.grid.rows; ++r) {
    for (int64_t c = 0; c < plan.grid.cols; ++c) {
      crop_into(canvas, c * s, r * s, s, &out[tile_bytes * (offset + r * plan.grid.cols + c)]);
    }
  }
  if (plan.thumbnail_index >= 0) {  // smolvlm's global image is the canvas squashed to one tile
    const RgbImage& whole = smolvlm ? canvas : img;
    const CanvasLayout tl = layout_canvas(Size{whole.width, whole.height}, Size{s, s}, pads_canvas(cfg));
    const RgbImage thumb = place(whole, tl, cfg);
    std::memcpy(&out[tile_bytes * plan.thumbnail_index], thumb.rgb.data(), tile_bytes);
  }
  return out;
}

std::vector<float> normalize_tiles(const std::vector<uint8_t>& tiles, int64_t n, int64_t s, const VisionConfig& cfg) {
  std::vector<float> out(static_cast<size_t>(n * 3 * s * s));
  const int64_t plane = s * s;
  for (int64_t t = 0; t < n; ++t) {
    for (int64_t i = 0; i < plane; ++i) {
      for (int ch = 0; ch < 3; ++ch) {
        const float scaled = static_cast<float>(tiles[(t * plane + i) * 3 + ch]) / 255.0f;
        out[(t * 3 + ch) * plane + i] = (scaled - cfg.mean[ch]) / cfg.std[ch];
      }
    }
  }
  return out;
}

}  // namespace mobile_mllm

// Debug modes of mobile_mllm_runner that need no program, so tests can check the runner's own
// preprocessing and tokenizer against the Python toolkit quickly (not part of RUNNER.md):
//   --preprocess MANIFEST.json (--image PATH | --image-size WxH[,WxH...]) [--token-budget N] [--dump-tiles OUT]
//       prints the tile plan as one JSON line (per size); with an image, writes float32 [N, 3, S, S] tiles to OUT.
//   --resize IMAGE --to WxH[,WxH...] --filter bicubic|bilinear|nearest|lanczos --dump-pixels OUT
//       writes the image resized to each size (PIL's Image.resize), uint8 RGB rows, one after another, to OUT.
//   --layout MANIFEST.json --tokenizer TOKENIZER.json --cases FILE.jsonl
//       one case per line, {"grid": [cols, rows] | null, "thumbnail_index": N | null, "question": str,
//       "next": str (optional), "unfed": [id, ...]} -> {"first": SEGMENTS, "next": SEGMENTS} per line, a
//       segment being a token-id array or {"tile": i, "tokens": n}: the prompt layout of a first turn
//       (with the image block when "grid" is set) and of a follow-up turn.
//   --tokenizer TOKENIZER.json --encode FILE.jsonl   one JSON string per line -> one JSON id array per line
//   --tokenizer TOKENIZER.json --decode FILE.jsonl   one JSON id array per line -> one JSON string per line
//                                                    (special tokens skipped, as Session decodes answers)
#include <cstdio>
#include <cstdlib>
#include <algorithm>
#include <cstring>
#include <fstream>
#include <map>
#include <optional>
#include <string>

#include "errors.h"
#include "json.h"
#include "layout.h"
#include "manifest.h"
#include "tokenizer.h"
#include "vision.h"

namespace mobile_mllm {

namespace {

Json pair(int64_t a, int64_t b) { return Json::array({Json::integer(a), Json::integer(b)}); }

void print_plan(Size size, const TilePlan& p);

// Each "WxH" of a comma-separated list, in order.
std::vector<Size> parse_sizes(const std::string& text) {
  std::vector<Size> out;
  size_t at = 0;
  while (at < text.size()) {
    const size_t end = std::min(text.find(',', at), text.size());
    long long w = 0, h = 0;
    if (std::sscanf(text.substr(at, end - at).c_str(), "%lldx%lld", &w, &h) != 2) {
      throw ConfigError("bad size list " + text + " (WxH[,WxH...])");
    }
    out.push_back(Size{w, h});
    at = end + 1;
  }
  return out;
}

int resize_mode(const std::string& image, const std::string& sizes, const std::string& filter,
                const std::string& dump) {
  Resample r = Resample::Bicubic;
  if (filter == "bilinear") r = Resample::Bilinear;
  else if (filter == "nearest") r = Resample::Nearest;
  else if (filter == "lanczos") r = Resample::Lanczos;
  else if (filter != "bicubic") throw ConfigError("unknown --filter " + filter);
  const RgbImage img = load_image(image, VisionConfig{});
  std::ofstream f(dump, std::ios::binary);
  for (const Size& size : parse_sizes(sizes)) {
    const RgbImage out = resize_like_pil(img, size.width, size.height, r);
    f.write(reinterpret_cast<const char*>(out.rgb.data()), static_cast<std::streamsize>(out.rgb.size()));
  }
  if (!f) throw std::runtime_error("cannot write " + dump);
  return 0;
}

int preprocess_mode(const std::string& manifest_path, const std::string& image, const std::string& size_text,
                    std::optional<int64_t> budget, const std::string& dump) {
  const Manifest m = read_manifest_file(manifest_path);
  if (image.empty()) {  // one plan per size of a comma-separated list
    for (const Size& size : parse_sizes(size_text)) print_plan(size, plan_tiles(size, m.vision, budget));
    return 0;
  }
  const Size size = read_image_size(image, m.vision);
  const TilePlan p = plan_tiles(size, m.vision, budget);
  if (!dump.empty()) {
    const RgbImage rgb = load_image(image, m.vision);
    const std::vector<float> tiles =
        normalize_tiles(render_tiles(rgb, p, m.vision), p.num_tiles, m.vision.tile_size, m.vision);
    std::ofstream f(dump, std::ios::binary);
    f.write(reinterpret_cast<const char*>(tiles.data()), static_cast<std::streamsize>(tiles.size() * sizeof(float)));
    if (!f) throw std::runtime_error("cannot write " + dump);
  }
  print_plan(size, p);
  return 0;
}

void print_plan(Size size, const TilePlan& p) {
  Json out = Json::object();
  out.set("image", pair(size.width, size.height));
  out.set("grid", pair(p.grid.cols, p.grid.rows));
  out.set("preferred_grid", pair(p.preferred.cols, p.preferred.rows));
  out.set("tiles", Json::integer(p.num_tiles));
  out.set("thumbnail_index", p.thumbnail_index >= 0 ? Json::integer(p.thumbnail_index) : Json());
  out.set("canvas", pair(p.layout.canvas.width, p.layout.canvas.height));
  out.set("resized", pair(p.layout.resized.width, p.layout.resized.height));
  out.set("image_tokens", Json::integer(p.image_tokens));
  std::printf("%s\n", out.dump().c_str());
}

Json segments_json(const std::vector<Segment>& segs) {
  Json out = Json::array();
  for (const Segment& s : segs) {
    if (s.is_tile) {
      Json t = Json::object();
      t.set("tile", Json::integer(s.tile));
      t.set("tokens", Json::integer(s.num_tokens));
      out.items().push_back(t);
    } else {
      Json ids = Json::array();
      for (int64_t id : s.ids) ids.items().push_back(Json::integer(id));
      out.items().push_back(ids);
    }
  }
  return out;
}

int layout_mode(const std::string& manifest_path, const std::string& tokenizer, const std::string& cases) {
  const Manifest m = read_manifest_file(manifest_path);
  const Tokenizer tok = Tokenizer::from_file(tokenizer);
  const std::map<std::string, int64_t> ids = special_token_ids(tok, m.prompt);
  std::ifstream in(cases);
  if (!in) throw ConfigError("cannot read " + cases);
  std::string line;
  while (std::getline(in, line)) {
    const Json c = Json::parse(line);
    const std::string question = c.at("question").as_string("question");
    std::vector<Segment> block;
    const bool with_image = !c.at("grid").is_null();
    if (with_image) {
      const auto& g = c.at("grid").as_array("grid");
      const Json& t = c.at("thumbnail_index");
      block = image_block(m.prompt, Grid{g.at(0).as_int("grid"), g.at(1).as_int("grid")},
                          t.is_null() ? -1 : t.as_int("thumbnail_index"), m.vision.tokens_per_tile, tok);
    }
    Json out = Json::object();
    out.set("first", segments_json(first_turn(m.prompt, question, tok, ids, with_image ? &block : nullptr)));
    if (const Json* next = c.find("next")) {
      std::vector<int64_t> unfed;
      if (const Json* u = c.find("unfed")) {
        for (const Json& id : u->as_array("unfed")) unfed.push_back(id.as_int("unfed"));
      }
      out.set("next", segments_json(next_turn(m.prompt, next->as_string("next"), tok, unfed)));
    }
    std::printf("%s\n", out.dump().c_str());
  }
  return 0;
}

int tokenizer_mode(const std::string& path, const std::string& encode, const std::string& decode) {
  const Tokenizer tok = Tokenizer::from_file(path);
  std::ifstream in(encode.empty() ? decode : encode);
  if (!in) throw ConfigError("cannot read " + (encode.empty() ? decode : encode));
  std::string line;
  while (std::getline(in, line)) {
    const Json v = Json::parse(line);
    if (!encode.empty()) {
      Json ids = Json::array();
      for (int64_t id : tok.encode(v.as_string("line"))) ids.items().push_back(Json::integer(id));
      std::printf("%s\n", ids.dump().c_str());
    } else {
      std::vector<int64_t> ids;
      for (const Json& id : v.as_array("line")) ids.push_back(id.as_int("id"));
      std::printf("%s\n", json_quote(tok.decode(ids, true)).c_str());
    }
  }
  return 0;
}

}  // namespace

int debug_tool(int argc, char** argv) {
  std::string manifest, image, size, dump, tokenizer, encode, decode, resize, to, filter = "bicubic", layout, cases;
  std::optional<int64_t> budget;
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string k = argv[i], v = argv[i + 1];
    if (k == "--preprocess") manifest = v;
    else if (k == "--image") image = v;
    else if (k == "--image-size") size = v;
    else if (k == "--token-budget") budget = std::atoll(v.c_str());
    else if (k == "--dump-tiles") dump = v;
    else if (k == "--tokenizer") tokenizer = v;
    else if (k == "--encode") encode = v;
    else if (k == "--decode") decode = v;
    else if (k == "--resize") resize = v;
    else if (k == "--layout") layout = v;
    else if (k == "--cases") cases = v;
    else if (k == "--to") to = v;
    else if (k == "--filter") filter = v;
    else if (k == "--dump-pixels") dump = v;
    else {
      std::fprintf(stderr, "mobile-mllm-runner: error: unknown debug argument %s\n", k.c_str());
      return 2;
    }
  }
  return exit_code_of([&] {
    if (!layout.empty()) return layout_mode(layout, tokenizer, cases);
    if (!manifest.empty()) return preprocess_mode(manifest, image, size, budget, dump);
    if (!resize.empty()) return resize_mode(resize, to, filter, dump);
    return tokenizer_mode(tokenizer, encode, decode);
  });
}

}  // namespace mobile_mllm

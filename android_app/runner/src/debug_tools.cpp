// Debug modes of mobile_mllm_runner that need no program, so tests can check the runner's own
// preprocessing and tokenizer against the Python toolkit quickly (not part of RUNNER.md):
//   --preprocess MANIFEST.json (--image PATH | --image-size WxH[,WxH...]) [--token-budget N] [--dump-tiles OUT]
//       prints the tile plan as one JSON line (per size); with an image, writes float32 [N, 3, S, S] tiles to OUT.
//   --tokenizer TOKENIZER.json --encode FILE.jsonl   one JSON string per line -> one JSON id array per line
//   --tokenizer TOKENIZER.json --decode FILE.jsonl   one JSON id array per line -> one JSON string per line
//                                                    (special tokens skipped, as Session decodes answers)
#include <cstdio>
#include <cstdlib>
#include <algorithm>
#include <cstring>
#include <fstream>
#include <optional>
#include <string>

#include "errors.h"
#include "json.h"
#include "manifest.h"
#include "tokenizer.h"
#include "vision.h"

namespace mobile_mllm {

namespace {

Json pair(int64_t a, int64_t b) { return Json::array({Json::integer(a), Json::integer(b)}); }

void print_plan(Size size, const TilePlan& p);

int preprocess_mode(const std::string& manifest_path, const std::string& image, const std::string& size_text,
                    std::optional<int64_t> budget, const std::string& dump) {
  const Manifest m = read_manifest_file(manifest_path);
  if (image.empty()) {  // one plan per size of a comma-separated list
    size_t at = 0;
    while (at < size_text.size()) {
      const size_t end = std::min(size_text.find(',', at), size_text.size());
      long long w = 0, h = 0;
      if (std::sscanf(size_text.substr(at, end - at).c_str(), "%lldx%lld", &w, &h) != 2) {
        throw ConfigError("bad --image-size " + size_text);
      }
      print_plan(Size{w, h}, plan_tiles(Size{w, h}, m.vision, budget));
      at = end + 1;
    }
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
  std::string manifest, image, size, dump, tokenizer, encode, decode;
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
    else {
      std::fprintf(stderr, "mobile-mllm-runner: error: unknown debug argument %s\n", k.c_str());
      return 2;
    }
  }
  return exit_code_of([&] {
    if (!manifest.empty()) return preprocess_mode(manifest, image, size, budget, dump);
    return tokenizer_mode(tokenizer, encode, decode);
  });
}

}  // namespace mobile_mllm

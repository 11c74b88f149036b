#include "manifest.h"

#include <algorithm>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "errors.h"
#include "json.h"

namespace mobile_mllm {

namespace {

constexpr int64_t kManifestVersion = 2;  // contract.MANIFEST_VERSION

std::string read_text(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw ContractError(path + " not found; push the whole folder mobile-mllm export wrote");
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

template <typename E>
E enum_value(const Json& v, const std::string& key, std::initializer_list<std::pair<const char*, E>> names) {
  const std::string& s = v.as_string(key);
  for (const auto& n : names) {
    if (s == n.first) return n.second;
  }
  throw ContractError("manifest " + key + " has unknown value \"" + s + "\"");
}

void read_triple(const Json& v, const std::string& key, float out[3]) {
  const auto& a = v.as_array(key);
  if (a.size() != 3) throw ContractError("manifest " + key + " needs 3 values");
  for (int i = 0; i < 3; ++i) out[i] = static_cast<float>(a[i].as_double(key));
}

void read_color(const Json& v, const std::string& key, uint8_t out[3]) {
  const auto& a = v.as_array(key);
  if (a.size() != 3) throw ContractError("manifest " + key + " needs 3 values");
  for (int i = 0; i < 3; ++i) {
    const int64_t c = a[i].as_int(key);
    if (c < 0 || c > 255) throw ContractError("manifest " + key + " values must be in 0..255");
    out[i] = static_cast<uint8_t>(c);
  }
}

int64_t optional_bound(const Json& v) { return v.is_null() ? 0 : v.as_int("bound"); }

// The keys this runner reads; any other key may change how a prompt is laid out or an image tiled,
// so a manifest holding one is refused rather than run differently from the host.
void refuse_unknown_keys(const Json& v, const char* section, std::initializer_list<const char*> known) {
  std::string unknown;
  for (const auto& kv : v.as_object(section)) {
    if (std::find_if(known.begin(), known.end(), [&](const char* k) { return kv.first == k; }) == known.end()) {
      unknown += (unknown.empty() ? "" : ", ") + kv.first;
    }
  }
  if (!unknown.empty()) {
    throw ContractError(std::string("manifest ") + section + " has keys this runner does not know (" + unknown +
                        "); rebuild the runner from the toolkit that exported the program, or run it with the host "
                        "runner (python -m mobile_mllm.device.runner)");
  }
}

VisionConfig read_vision(const Json& v) {
  refuse_unknown_keys(v, "vision", {"policy", "tile_size", "max_side", "max_tiles", "alpha", "thumbnail",
                                    "thumbnail_for_single", "mean", "std", "pad_color", "background", "max_pixels",
                                    "tokens_per_tile", "resample", "longest_edge_px"});
  VisionConfig c;
  c.policy = enum_value<GridPolicy>(v.at("policy"), "vision.policy",
                                    {{"relaxed", GridPolicy::Relaxed}, {"llava_next", GridPolicy::LlavaNext},
                                     {"internvl", GridPolicy::InternVL}, {"smolvlm", GridPolicy::SmolVLM}});
  c.tile_size = v.at("tile_size").as_int("vision.tile_size");
  c.max_side = optional_bound(v.at("max_side"));
  c.max_tiles = v.find("max_tiles") ? optional_bound(v.at("max_tiles")) : 0;
  c.alpha = v.at("alpha").as_double("vision.alpha");
  c.thumbnail = enum_value<ThumbnailPosition>(v.at("thumbnail"), "vision.thumbnail",
                                              {{"first", ThumbnailPosition::First},
                                               {"last", ThumbnailPosition::Last},
                                               {"none", ThumbnailPosition::None}});
  c.thumbnail_for_single = v.at("thumbnail_for_single").as_bool("vision.thumbnail_for_single");
  read_triple(v.at("mean"), "vision.mean", c.mean);
  read_triple(v.at("std"), "vision.std", c.std);
  read_color(v.at("pad_color"), "vision.pad_color", c.pad_color);
  read_color(v.at("background"), "vision.background", c.background);
  c.max_pixels = v.at("max_pixels").as_int("vision.max_pixels");
  c.tokens_per_tile = v.at("tokens_per_tile").as_int("vision.tokens_per_tile");
  if (const Json* r = v.find("resample")) {
    c.resample = enum_value<Resample>(*r, "vision.resample",
                                      {{"bicubic", Resample::Bicubic}, {"bilinear", Resample::Bilinear},
                                       {"nearest", Resample::Nearest}, {"lanczos", Resample::Lanczos}});
  }
  if (const Json* e = v.find("longest_edge_px")) {
    c.longest_edge_px = optional_bound(*e);
    if (!e->is_null() && c.longest_edge_px <= 0) {
      throw ContractError("manifest vision.longest_edge_px must be positive");
    }
  }
  if (c.tile_size <= 0 || c.tokens_per_tile <= 0 || (c.max_side <= 0 && c.max_tiles <= 0)) {
    throw ContractError("manifest vision: tile_size, tokens_per_tile and max_side or max_tiles must be positive");
  }
  return c;
}

PromptFormat read_prompt(const Json& p) {
  refuse_unknown_keys(p, "prompt", {"user_template", "turn_end", "system", "image_placeholder", "image_start",
                                    "image_end", "tile_sep", "row_sep", "thumbnail_marker", "bos", "eos",
                                    "question_template", "tile_start", "row_end", "tiles_end", "thumbnail_start",
                                    "single_tile_as_thumbnail", "text_lead", "image_join"});
  PromptFormat f;
  auto str = [&](const char* key, std::string& out) {
    if (const Json* v = p.find(key)) out = v->as_string(std::string("prompt.") + key);
  };
  str("user_template", f.user_template);
  str("turn_end", f.turn_end);
  str("system", f.system);
  str("image_placeholder", f.image_placeholder);
  str("image_start", f.image_start);
  str("image_end", f.image_end);
  str("tile_sep", f.tile_sep);
  str("row_sep", f.row_sep);
  str("thumbnail_marker", f.thumbnail_marker);
  str("bos", f.bos);
  str("question_template", f.question_template);
  str("tile_start", f.tile_start);
  str("row_end", f.row_end);
  str("tiles_end", f.tiles_end);
  str("thumbnail_start", f.thumbnail_start);
  str("text_lead", f.text_lead);
  str("image_join", f.image_join);
  if (const Json* v = p.find("single_tile_as_thumbnail")) {
    f.single_tile_as_thumbnail = v->as_bool("prompt.single_tile_as_thumbnail");
  }
  if (const Json* e = p.find("eos")) {
    f.eos.clear();
    for (const Json& s : e->as_array("prompt.eos")) f.eos.push_back(s.as_string("prompt.eos"));
  }
  return f;
}

}  // namespace

Manifest read_manifest(const std::string& dir) { return read_manifest_file(dir + "/manifest.json"); }

Manifest read_manifest_file(const std::string& path) {
  Manifest m;
  try {
    const Json root = Json::parse(read_text(path));
    if (root.at("format").as_string("format") != "mobile-mllm-manifest") {
      throw ContractError(path + " is not a mobile-mllm manifest (format " + root.at("format").dump() + ")");
    }
    m.version = root.at("version").as_int("version");
    if (m.version < 1 || m.version > kManifestVersion) {
      throw ContractError(path + ": manifest version " + std::to_string(m.version) + " is not supported (this runner reads 1.." +
                          std::to_string(kManifestVersion) + "); rebuild the runner from the toolkit that exported it");
    }
    m.vision = read_vision(root.at("vision"));
    m.prompt = read_prompt(root.at("prompt"));
    for (const Json& id : root.at("eos_ids").as_array("eos_ids")) m.eos_ids.push_back(id.as_int("eos_ids"));
    m.tile_batch = root.at("tile_batch").as_int("tile_batch");
    m.prefill_chunk = root.at("prefill_chunk").as_int("prefill_chunk");
    if (const Json* e = root.find("vision_engine")) m.vision_engine = e->as_string("vision_engine");
    if (m.tile_batch < 1 || m.prefill_chunk < 1) throw ContractError(path + ": tile_batch and prefill_chunk must be >= 1");
  } catch (const JsonError& e) {
    throw ContractError(path + ": " + e.what());
  }
  return m;
}

}  // namespace mobile_mllm

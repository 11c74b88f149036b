#include "manifest.h"

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

VisionConfig read_vision(const Json& v) {
  VisionConfig c;
  c.policy = enum_value<GridPolicy>(v.at("policy"), "vision.policy",
                                    {{"relaxed", GridPolicy::Relaxed}, {"llava_next", GridPolicy::LlavaNext},
                                     {"internvl", GridPolicy::InternVL}});
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
                                       {"nearest", Resample::Nearest}});
  }
  if (c.tile_size <= 0 || c.tokens_per_tile <= 0 || (c.max_side <= 0 && c.max_tiles <= 0)) {
    throw ContractError("manifest vision: tile_size, tokens_per_tile and max_side or max_tiles must be positive");
  }
  return c;
}

// The text-marked tile layout (SmolVLM/Idefics3: PromptFormat.tile_start ... image_join) is not
// implemented here; a manifest that uses it must be refused, not laid out as the plain layout.
void refuse_text_tile_markers(const Json& p) {
  static const char* const kEmptyByDefault[] = {"tile_start", "row_end", "tiles_end", "thumbnail_start", "text_lead"};
  std::vector<std::string> used;
  for (const char* key : kEmptyByDefault) {
    if (const Json* v = p.find(key); v != nullptr && !v->as_string(std::string("prompt.") + key).empty()) used.push_back(key);
  }
  if (const Json* v = p.find("single_tile_as_thumbnail"); v != nullptr && v->as_bool("prompt.single_tile_as_thumbnail")) {
    used.push_back("single_tile_as_thumbnail");
  }
  if (const Json* v = p.find("image_join"); v != nullptr && v->as_string("prompt.image_join") != "\n") used.push_back("image_join");
  if (used.empty()) return;
  std::string keys;
  for (const std::string& k : used) keys += (keys.empty() ? "" : ", ") + k;
  throw ContractError("manifest prompt uses text tile markers (" + keys +
                      ", e.g. SmolVLM's <row_R_col_C>), which this runner does not lay out; run this program "
                      "with the host runner (python -m mobile_mllm.device.runner) or mobile-mllm run");
}

PromptFormat read_prompt(const Json& p) {
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
  if (const Json* e = p.find("eos")) {
    f.eos.clear();
    for (const Json& s : e->as_array("prompt.eos")) f.eos.push_back(s.as_string("prompt.eos"));
  }
  refuse_text_tile_markers(p);
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

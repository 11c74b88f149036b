// manifest.json as the runner needs it (mobile_mllm/contract.py names the keys; versions 1 and 2
// are read, newer ones refused): how to preprocess (vision), how to prompt (prompt), stop ids,
// tile batch and prefill chunk. Every violation is a ContractError naming the key.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "vision.h"

namespace mobile_mllm {

struct PromptFormat {
  std::string user_template = "<|user|>\n{content}<|end|>\n<|assistant|>\n";
  std::string turn_end = "<|end|>\n";
  std::string system;
  std::string image_placeholder = "<image>";
  std::string image_start = "<img>";
  std::string image_end = "</img>";
  std::string tile_sep = "<tile>";
  std::string row_sep;
  std::string thumbnail_marker = "<thumb>";
  std::string bos;
  std::vector<std::string> eos = {"<|end|>", "<|endoftext|>"};
  std::string question_template = "{question}";
  // Text tile markers (SmolVLM/Idefics3), tokenized with the text around them; empty: none.
  std::string tile_start;  // before each local tile; {row} and {col} are its 1-based position
  std::string row_end;     // after the separator of each row's last tile
  std::string tiles_end;   // after the local tiles when the thumbnail follows them
  std::string thumbnail_start;  // before thumbnail_marker
  bool single_tile_as_thumbnail = false;  // a lone tile (1x1, no thumbnail) is laid out as the thumbnail
  std::string text_lead;         // before a turn's content that does not begin with the image
  std::string image_join = "\n";  // between the image and a question without the placeholder
};

struct Manifest {
  int64_t version = 0;
  VisionConfig vision;
  PromptFormat prompt;
  std::vector<int64_t> eos_ids;
  int64_t tile_batch = 1;
  int64_t prefill_chunk = 0;
  std::string vision_engine = "executorch";
};

// Reads DIR/manifest.json; throws ContractError.
Manifest read_manifest(const std::string& dir);
Manifest read_manifest_file(const std::string& path);

}  // namespace mobile_mllm

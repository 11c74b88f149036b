// The order of prompt positions (mobile_mllm/runtime/layout.py): runs of token ids and references
// to tile embeddings, laid out from the manifest's prompt format so host and phone agree.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "manifest.h"
#include "tokenizer.h"
#include "vision.h"

namespace mobile_mllm {

struct Segment {
  bool is_tile = false;
  std::vector<int64_t> ids;  // a token run
  int64_t tile = 0;          // a tile reference: vision_encoder output row
  int64_t num_tokens = 0;
};

// Special string -> id for every non-empty special string of the format; ModelLoadError if absent.
std::map<std::string, int64_t> special_token_ids(const Tokenizer& tok, const PromptFormat& fmt);
// The segments of one image (layout.image_block): thumbnail_index -1 = none. Each run of items
// between two tiles (special tokens, the text markers of fmt) is tokenized as one piece by `tok`.
std::vector<Segment> image_block(const PromptFormat& fmt, Grid grid, int64_t thumbnail_index, int64_t tokens_per_tile,
                                 const Tokenizer& tok);
// The first turn: bos, system, the user turn, with the image (when `image` is non-null) where the
// question has the placeholder, else before the question (joined by fmt.image_join).
std::vector<Segment> first_turn(const PromptFormat& fmt, const std::string& question, const Tokenizer& tok,
                                const std::map<std::string, int64_t>& ids, const std::vector<Segment>* image);
// A follow-up turn, prefilled right after the previous answer (`unfed_answer`: its tokens not yet
// in the KV cache, i.e. its last token unless that was a stop token).
std::vector<Segment> next_turn(const PromptFormat& fmt, const std::string& question, const Tokenizer& tok,
                               const std::vector<int64_t>& unfed_answer);
int64_t count_positions(const std::vector<Segment>& segs);
// PromptFormat.style_question: question_template with {question} replaced.
std::string style_question(const PromptFormat& fmt, const std::string& question);

}  // namespace mobile_mllm

// One exported program behind the runner contract: the loop of mobile_mllm.runtime.session
// (plan and size-check the turn, decode and tile the image, encode tiles in batches, embed the
// prompt's token runs and tiles, prefill in chunks, decode) and the stats of each answer.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <random>
#include <string>
#include <vector>

#include "json.h"
#include "layout.h"
#include "manifest.h"
#include "program_runner.h"
#include "tokenizer.h"

namespace mobile_mllm {

// Timestamps (ms since the epoch) and counts of one answer, as mobile_mllm.runtime.stats.Stats.
struct Stats {
  double model_load_start_ms = 0, model_load_end_ms = 0, inference_start_ms = 0;
  double image_encode_start_ms = 0, image_encode_end_ms = 0;
  std::vector<double> vision_batch_ms;
  std::vector<int64_t> vision_batch_sizes;
  double prompt_eval_end_ms = 0, first_token_ms = 0, inference_end_ms = 0;
  int64_t num_prompt_tokens = 0, num_image_tokens = 0, num_tiles = 0, num_generated_tokens = 0, num_cached_tokens = 0;
  std::optional<Grid> grid;
  bool reduced_by_budget = false;
  int64_t peak_rss_bytes = 0;
  Json extra = Json::object();

  // Stats.to_dict(): the raw fields then derive_rates(), in the same order.
  Json to_json() const;
};

struct Answer {
  std::string text;
  std::vector<int64_t> tokens;  // the stop token included
  std::string stop_reason;      // eos | max_new_tokens | context_full
  Stats stats;
};

struct SessionOptions {
  int64_t tile_batch = 0;     // 0: the manifest's
  int64_t prefill_chunk = 0;  // 0: the manifest's (never above the program's max_seq_len)
  double temperature = 0.0;
  executorch::runtime::EventTracer* tracer = nullptr;
};

double now_ms();
int64_t peak_rss_bytes();

class Session {
 public:
  // Loads manifest.json, tokenizer.json and model.pte from dir; throws MllmError.
  Session(const std::string& dir, const SessionOptions& options);

  // Answers `question` about the image at `image`, which starts a new conversation; without an image
  // (empty) the conversation goes on (a follow-up turn after the previous answer; call reset() first
  // for a new text-only conversation). on_text gets each new piece of answer text (may be empty
  // function). styled=false takes the question as written (no manifest question_template): eval
  // prompts carry their own instruction. A turn that fails its checks leaves the conversation as it was.
  Answer ask(const std::string& question, const std::string& image, int64_t max_new_tokens,
             const std::function<void(const std::string&)>& on_text, bool styled = true);

  // Forget the conversation: the next question starts at position 0 (and sampling is reseeded).
  void reset();

  // The float32 [N, 3, S, S] tiles the last ask() encoded (for --dump-tiles).
  const std::vector<float>& last_tiles() const { return last_tiles_; }
  int64_t tile_size() const { return manifest_.vision.tile_size; }

 private:
  struct Plan {
    std::vector<Segment> segments;
    int64_t num_positions = 0;
    std::optional<TilePlan> tiles;
    std::optional<int64_t> token_budget;
  };
  Plan plan(const std::string& question, const std::string& image, int64_t max_new_tokens, bool styled);
  void check_fits(const Plan& p, int64_t start) const;
  Plan image_plan(const std::string& question, const TilePlan& tiles, std::optional<int64_t> budget);
  int64_t pick(const std::vector<float>& logits);

  Manifest manifest_;
  Tokenizer tokenizer_;
  std::map<std::string, int64_t> special_ids_;
  std::unique_ptr<ProgramRunner> program_;
  int64_t max_seq_len_ = 0, max_context_len_ = 0, tile_batch_ = 1, prefill_chunk_ = 1;
  double temperature_ = 0.0;
  std::mt19937_64 rng_{0};
  double load_start_ms_ = 0, load_end_ms_ = 0;
  std::vector<float> last_tiles_;
  // the conversation: positions in the KV cache, whether a turn was prefilled, the previous answer's
  // tokens not yet fed (its last one unless it was a stop token)
  int64_t pos_ = 0;
  bool started_ = false;
  std::vector<int64_t> unfed_;
};

}  // namespace mobile_mllm

#include "session.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <fstream>

#include "errors.h"
#include "utf8.h"

namespace mobile_mllm {

double now_ms() {
  return std::chrono::duration<double, std::milli>(std::chrono::system_clock::now().time_since_epoch()).count();
}

int64_t peak_rss_bytes() {  // VmHWM, as stats.peak_rss_bytes reads it on Linux and Android
  std::ifstream in("/proc/self/status");
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind("VmHWM:", 0) == 0) return std::atoll(line.c_str() + 6) * 1024;
  }
  return 0;
}

namespace {

double rate(int64_t count, double ms) { return ms > 0 ? static_cast<double>(count) * 1000.0 / ms : 0.0; }

Json doubles(const std::vector<double>& v) {
  Json a = Json::array();
  for (double d : v) a.items().push_back(Json::number(d));
  return a;
}

Json ints(const std::vector<int64_t>& v) {
  Json a = Json::array();
  for (int64_t i : v) a.items().push_back(Json::integer(i));
  return a;
}

bool is_blank(const std::string& s) {
  for (uint32_t cp : utf8_to_codepoints(s)) {
    if (!is_unicode_whitespace(cp) && !(cp >= 0x1C && cp <= 0x1F)) return false;  // str.isspace's set
  }
  return true;
}

}  // namespace

Json Stats::to_json() const {
  Json j = Json::object();
  j.set("model_load_start_ms", Json::number(model_load_start_ms));
  j.set("model_load_end_ms", Json::number(model_load_end_ms));
  j.set("inference_start_ms", Json::number(inference_start_ms));
  j.set("image_encode_start_ms", Json::number(image_encode_start_ms));
  j.set("image_encode_end_ms", Json::number(image_encode_end_ms));
  j.set("vision_batch_ms", doubles(vision_batch_ms));
  j.set("vision_batch_sizes", ints(vision_batch_sizes));
  j.set("prompt_eval_end_ms", Json::number(prompt_eval_end_ms));
  j.set("first_token_ms", Json::number(first_token_ms));
  j.set("inference_end_ms", Json::number(inference_end_ms));
  j.set("num_prompt_tokens", Json::integer(num_prompt_tokens));
  j.set("num_image_tokens", Json::integer(num_image_tokens));
  j.set("num_tiles", Json::integer(num_tiles));
  j.set("num_generated_tokens", Json::integer(num_generated_tokens));
  j.set("num_cached_tokens", Json::integer(num_cached_tokens));
  j.set("grid", grid ? ints({grid->cols, grid->rows}) : Json());
  j.set("reduced_by_budget", Json::boolean(reduced_by_budget));
  j.set("peak_rss_bytes", Json::integer(peak_rss_bytes));
  j.set("extra", extra);
  // derive_rates (mobile_mllm/runtime/stats.py)
  const double prefill_start = image_encode_end_ms != 0 ? image_encode_end_ms : inference_start_ms;
  const double encode_ms = image_encode_end_ms - image_encode_start_ms;
  const double prefill_ms = prompt_eval_end_ms - prefill_start;
  const double decode_ms = inference_end_ms - prompt_eval_end_ms;
  j.set("model_load_ms", Json::number(model_load_end_ms - model_load_start_ms));
  j.set("image_encode_ms", Json::number(encode_ms));
  j.set("image_encode_ms_per_tile", Json::number(num_tiles ? encode_ms / static_cast<double>(num_tiles) : 0.0));
  j.set("prefill_ms", Json::number(prefill_ms));
  j.set("prefill_tok_s", Json::number(rate(num_prompt_tokens, prefill_ms)));
  j.set("time_to_first_token_ms", Json::number(first_token_ms != 0 ? first_token_ms - inference_start_ms : 0.0));
  j.set("decode_ms", Json::number(decode_ms));
  j.set("decode_tok_s", Json::number(rate(num_generated_tokens, decode_ms)));
  j.set("total_ms", Json::number(inference_end_ms - inference_start_ms));
  return j;
}

Session::Session(const std::string& dir, const SessionOptions& options) {
  load_start_ms_ = now_ms();
  manifest_ = read_manifest(dir);
  const std::string tok_path = dir + "/tokenizer.json";
  {
    std::ifstream probe(tok_path);
    if (!probe) throw ContractError(tok_path + " not found; re-export the model");
  }
  try {
    tokenizer_ = Tokenizer::from_file(tok_path);
  } catch (const std::runtime_error& e) {
    throw ContractError(e.what());
  }
  special_ids_ = special_token_ids(tokenizer_, manifest_.prompt);
  const std::string pte = dir + "/model.pte";
  {
    std::ifstream probe(pte);
    if (!probe) throw ContractError("no model.pte in " + dir + "; push an exported program folder there");
  }
  program_ = std::make_unique<ProgramRunner>(pte, options.tracer);
  for (const char* m : {"vision_encoder", "token_embedding", "text_decoder", "get_max_seq_len"}) {
    if (!program_->has_method(m)) throw ContractError(pte + " lacks method " + m + "; re-export it with mobile-mllm export");
  }
  max_seq_len_ = program_->constant_ints("get_max_seq_len")->at(0);
  auto ctx = program_->constant_ints("get_max_context_len");
  max_context_len_ = ctx ? ctx->at(0) : max_seq_len_;
  tile_batch_ = options.tile_batch > 0 ? std::min(options.tile_batch, manifest_.tile_batch) : manifest_.tile_batch;
  prefill_chunk_ = std::min(max_seq_len_, options.prefill_chunk > 0 ? options.prefill_chunk : manifest_.prefill_chunk);
  temperature_ = options.temperature;
  // load every contract method now, so the load time is in model_load_ms and not in the first answer
  program_->token_embedding({special_ids_.begin()->second});
  load_end_ms_ = now_ms();
}

Session::Plan Session::image_plan(const std::string& question, const TilePlan& tiles, std::optional<int64_t> budget) {
  const std::vector<Segment> block =
      image_block(manifest_.prompt, tiles.grid, tiles.thumbnail_index, manifest_.vision.tokens_per_tile, tokenizer_);
  Plan p;
  p.segments = first_turn(manifest_.prompt, question, tokenizer_, special_ids_, &block);
  p.num_positions = count_positions(p.segments);
  p.tiles = tiles;
  p.token_budget = budget;
  return p;
}

Session::Plan Session::plan(const std::string& raw_question, const std::string& image, int64_t max_new_tokens,
                            bool styled) {
  if (is_blank(raw_question)) {
    throw ConfigError("the question is empty ('" + raw_question +
                      "'); ask something (an image-only prompt is not defined by the model's prompt style)");
  }
  const std::string question = styled ? style_question(manifest_.prompt, raw_question) : raw_question;
  Plan p;
  if (image.empty()) {
    p.segments = started_ ? next_turn(manifest_.prompt, question, tokenizer_, unfed_)
                          : first_turn(manifest_.prompt, question, tokenizer_, special_ids_, nullptr);
    p.num_positions = count_positions(p.segments);
    check_fits(p, pos_);
  } else {
    const Size size = read_image_size(image, manifest_.vision);
    // the image must leave room for the answer: a bigger grid is worth less than an answer
    const int64_t room = max_context_len_ - max_new_tokens;
    p = image_plan(question, plan_tiles(size, manifest_.vision, std::nullopt), std::nullopt);
    while (p.num_positions > room) {
      const int64_t budget = p.tiles->image_tokens - (p.num_positions - room);
      TilePlan smaller;
      try {
        smaller = plan_tiles(size, manifest_.vision, budget);
      } catch (const ContextOverflowError&) {
        break;  // not even the smallest grid: reported below
      }
      if (smaller.image_tokens >= p.tiles->image_tokens) break;
      p = image_plan(question, smaller, budget);
    }
    check_fits(p, 0);
  }
  return p;
}

void Session::check_fits(const Plan& p, int64_t start) const {
  const int64_t free = max_context_len_ - start;
  if (p.num_positions <= free) return;
  const std::string used = start ? " (" + std::to_string(start) + " hold earlier turns)" : "";
  throw ContextOverflowError("the prompt needs " + std::to_string(p.num_positions) + " positions but only " +
                             std::to_string(free) + " of max_context_len " + std::to_string(max_context_len_) +
                             " are free" + used +
                             "; shorten the prompt, use a smaller image grid or raise max_context_len");
}

void Session::reset() {
  pos_ = 0;
  started_ = false;
  unfed_.clear();
  rng_.seed(0);
}

int64_t Session::pick(const std::vector<float>& logits) {
  if (temperature_ <= 0) {  // argmax, the first maximum on ties (torch.argmax's rule)
    return static_cast<int64_t>(std::max_element(logits.begin(), logits.end()) - logits.begin());
  }
  // softmax(logits / T) sampled with this runner's own generator (seed 0): reproducible here, but not
  // the same draws as the host's torch generator
  double mx = -INFINITY;
  for (float l : logits) mx = std::max(mx, static_cast<double>(l) / temperature_);
  std::vector<double> w(logits.size());
  for (size_t i = 0; i < logits.size(); ++i) w[i] = std::exp(static_cast<double>(logits[i]) / temperature_ - mx);
  std::discrete_distribution<int64_t> dist(w.begin(), w.end());
  return dist(rng_);
}

Answer Session::ask(const std::string& question, const std::string& image, int64_t max_new_tokens,
                    const std::function<void(const std::string&)>& on_text, bool styled) {
  Stats st;
  st.inference_start_ms = now_ms();
  st.model_load_start_ms = load_start_ms_;
  st.model_load_end_ms = load_end_ms_;
  const Plan p = plan(question, image, max_new_tokens, styled);  // every check, before any compute
  if (!image.empty()) reset();
  const int64_t start = pos_;
  st.num_cached_tokens = start;
  // image: decode, tile as planned, encode in batches
  FloatTensor image_embeds;
  int64_t tokens_per_row = 0, D = 0;
  if (p.tiles) {
    const RgbImage rgb = load_image(image, manifest_.vision);
    if (rgb.width != p.tiles->original.width || rgb.height != p.tiles->original.height) {
      throw ImageError("decoded image is " + std::to_string(rgb.width) + "x" + std::to_string(rgb.height) +
                       " but its header said otherwise; the file is corrupt");
    }
    const TilePlan tp = plan_tiles(p.tiles->original, manifest_.vision, p.token_budget);
    const int64_t S = manifest_.vision.tile_size;
    last_tiles_ = normalize_tiles(render_tiles(rgb, tp, manifest_.vision), tp.num_tiles, S, manifest_.vision);
    st.image_encode_start_ms = now_ms();
    const int64_t per_tile = 3 * S * S;
    for (int64_t i = 0; i < tp.num_tiles; i += tile_batch_) {
      const int64_t b = std::min(tile_batch_, tp.num_tiles - i);
      const double t0 = now_ms();
      FloatTensor out = program_->vision_encoder(last_tiles_.data() + i * per_tile, b, S);
      st.vision_batch_ms.push_back(now_ms() - t0);
      st.vision_batch_sizes.push_back(b);
      if (out.sizes.size() != 3 || out.sizes[0] != b) throw ContractError("vision_encoder returned an unexpected shape");
      tokens_per_row = out.sizes[1];
      D = out.sizes[2];
      image_embeds.data.insert(image_embeds.data.end(), out.data.begin(), out.data.end());
    }
    st.image_encode_end_ms = now_ms();
    st.num_tiles = tp.num_tiles;
    st.grid = tp.grid;
    st.reduced_by_budget = tp.reduced_by_budget();
  }
  // embeddings of the prompt: token runs through token_embedding (prefill_chunk ids per call), tiles from the image
  std::vector<float> embeds;
  for (const Segment& s : p.segments) {
    if (!s.is_tile) {
      for (size_t i = 0; i < s.ids.size(); i += static_cast<size_t>(prefill_chunk_)) {
        std::vector<int64_t> part(s.ids.begin() + i, s.ids.begin() + std::min(s.ids.size(), i + prefill_chunk_));
        FloatTensor e = program_->token_embedding(part);
        D = e.sizes.back();
        embeds.insert(embeds.end(), e.data.begin(), e.data.end());
      }
    } else {
      if (s.num_tokens != tokens_per_row) {
        throw ContractError("the layout wants " + std::to_string(s.num_tokens) + " tokens per tile but vision_encoder gave " +
                            std::to_string(tokens_per_row) + "; check vision.tokens_per_tile against the model");
      }
      const float* row = image_embeds.data.data() + s.tile * tokens_per_row * D;
      embeds.insert(embeds.end(), row, row + tokens_per_row * D);
      st.num_image_tokens += s.num_tokens;
    }
  }
  const int64_t T = p.num_positions;
  // prefill in chunks
  FloatTensor logits;
  for (int64_t i = 0; i < T; i += prefill_chunk_) {
    const int64_t n = std::min(prefill_chunk_, T - i);
    logits = program_->text_decoder(embeds.data() + i * D, n, D, start + i);
  }
  started_ = true;
  st.prompt_eval_end_ms = now_ms();
  // decode (session.decode_n_tokens), streaming the new text as the host's _streamer does
  Answer a;
  std::string shown;
  int64_t pos = start + T;
  auto answer_text = [&]() {
    std::vector<int64_t> kept;
    for (int64_t t : a.tokens) {
      if (std::find(manifest_.eos_ids.begin(), manifest_.eos_ids.end(), t) == manifest_.eos_ids.end()) kept.push_back(t);
    }
    return tokenizer_.decode(kept, true);
  };
  while (true) {
    const int64_t token = pick(logits.data);
    if (a.tokens.empty()) st.first_token_ms = now_ms();
    a.tokens.push_back(token);
    if (on_text) {
      const std::string text = answer_text();
      if (text.size() > shown.size() && text.compare(0, shown.size(), shown) == 0) {
        on_text(text.substr(shown.size()));
        shown = text;
      }
    }
    if (std::find(manifest_.eos_ids.begin(), manifest_.eos_ids.end(), token) != manifest_.eos_ids.end()) {
      a.stop_reason = "eos";
      break;
    }
    if (static_cast<int64_t>(a.tokens.size()) >= max_new_tokens) {
      a.stop_reason = "max_new_tokens";
      break;
    }
    if (pos >= max_context_len_) {
      a.stop_reason = "context_full";
      break;
    }
    FloatTensor e = program_->token_embedding({token});
    logits = program_->text_decoder(e.data.data(), 1, e.sizes.back(), pos);
    ++pos;
  }
  pos_ = pos;  // every answer token but the last was fed
  unfed_.clear();
  if (a.stop_reason != "eos") unfed_.push_back(a.tokens.back());
  st.inference_end_ms = now_ms();
  st.num_prompt_tokens = T;
  st.num_generated_tokens = static_cast<int64_t>(a.tokens.size());
  st.peak_rss_bytes = peak_rss_bytes();
#if defined(__aarch64__)
  st.extra.set("runner", Json::string("native-arm64"));
#else
  st.extra.set("runner", Json::string("native-x86_64"));
#endif
  a.text = answer_text();
  a.stats = st;
  return a;
}

}  // namespace mobile_mllm

#include "layout.h"

#include "errors.h"

namespace mobile_mllm {

namespace {

std::vector<int64_t> special(const std::string& name, const std::map<std::string, int64_t>& ids) {
  if (name.empty()) return {};
  return {ids.at(name)};
}

Segment run(std::vector<int64_t> ids) {
  Segment s;
  s.ids = std::move(ids);
  return s;
}

Segment tile_ref(int64_t tile, int64_t n) {
  Segment s;
  s.is_tile = true;
  s.tile = tile;
  s.num_tokens = n;
  return s;
}

// Join adjacent token runs, drop empty ones.
std::vector<Segment> merge(const std::vector<Segment>& segs) {
  std::vector<Segment> out;
  for (const Segment& s : segs) {
    if (!s.is_tile) {
      if (s.ids.empty()) continue;
      if (!out.empty() && !out.back().is_tile) {
        out.back().ids.insert(out.back().ids.end(), s.ids.begin(), s.ids.end());
        continue;
      }
    }
    out.push_back(s);
  }
  return out;
}

size_t count_occurrences(const std::string& s, const std::string& sub) {
  if (sub.empty()) return 0;
  size_t n = 0;
  for (size_t p = s.find(sub); p != std::string::npos; p = s.find(sub, p + sub.size())) ++n;
  return n;
}

// Python's str.format(**fields) for a template whose only fields are the given names ({{ and }} escape).
std::string format_fields(const std::string& tmpl, const std::map<std::string, std::string>& fields, const char* key) {
  std::string out;
  for (size_t i = 0; i < tmpl.size(); ++i) {
    if ((tmpl[i] == '{' || tmpl[i] == '}') && i + 1 < tmpl.size() && tmpl[i + 1] == tmpl[i]) {
      out += tmpl[i];
      ++i;
      continue;
    }
    if (tmpl[i] == '{') {
      const size_t close = tmpl.find('}', i);
      const auto field = close == std::string::npos ? fields.end() : fields.find(tmpl.substr(i + 1, close - i - 1));
      if (field == fields.end()) {
        std::string names;
        for (const auto& f : fields) names += (names.empty() ? "{" : ", {") + f.first + "}";
        throw ContractError(std::string("prompt.") + key + " " + tmpl + " has a field other than " + names);
      }
      out += field->second;
      i = close;
    } else if (tmpl[i] == '}') {
      throw ContractError(std::string("prompt.") + key + " " + tmpl + " has a single '}'");
    } else {
      out += tmpl[i];
    }
  }
  return out;
}

std::string format_content(const std::string& tmpl, const std::string& content) {
  return format_fields(tmpl, {{"content", content}}, "user_template");
}

// One item of an image block before tokenization: text (a special token or a text marker) or a tile.
struct Item {
  std::string text;
  bool is_tile = false;
  int64_t tile = 0;
};

// layout._tokenize + _merge: each run of texts between two tiles is joined and tokenized at once
// (special tokens recognised), as the host session does, so a marker gets the family processor's ids.
std::vector<Segment> tokenize_items(const std::vector<Item>& items, const Tokenizer& tok, int64_t tokens_per_tile) {
  std::vector<Segment> segs;
  std::string pending;
  for (const Item& it : items) {
    if (!it.is_tile) {
      pending += it.text;
      continue;
    }
    segs.push_back(run(tok.encode(pending)));
    pending.clear();
    segs.push_back(tile_ref(it.tile, tokens_per_tile));
  }
  segs.push_back(run(tok.encode(pending)));
  return merge(segs);
}

}  // namespace

std::map<std::string, int64_t> special_token_ids(const Tokenizer& tok, const PromptFormat& fmt) {
  std::vector<std::string> names = {fmt.image_start, fmt.image_end, fmt.tile_sep, fmt.row_sep, fmt.thumbnail_marker,
                                    fmt.bos};
  names.insert(names.end(), fmt.eos.begin(), fmt.eos.end());
  std::map<std::string, int64_t> ids;
  for (const auto& name : names) {
    if (name.empty()) continue;
    const int64_t id = tok.token_to_id(name);
    if (id < 0) {
      throw ModelLoadError("special token '" + name +
                           "' of the prompt format is not in the tokenizer; check that tokenizer.json belongs to this model");
    }
    ids[name] = id;
  }
  return ids;
}

std::vector<Segment> image_block(const PromptFormat& fmt, Grid grid, int64_t thumbnail_index, int64_t tokens_per_tile,
                                 const Tokenizer& tok) {
  int64_t n_local = grid.num_tiles();
  if (fmt.single_tile_as_thumbnail && n_local == 1 && thumbnail_index < 0) {
    n_local = 0;  // the lone tile is the global view
    thumbnail_index = 0;
  }
  const int64_t offset = thumbnail_index == 0 ? 1 : 0;
  auto text = [](const std::string& s) { return Item{s, false, 0}; };
  auto tile = [](int64_t i) { return Item{"", true, i}; };
  std::vector<Item> thumb;
  if (thumbnail_index >= 0) thumb = {text(fmt.thumbnail_start), text(fmt.thumbnail_marker), tile(thumbnail_index)};
  std::vector<Item> local;
  for (int64_t i = 0; i < n_local; ++i) {
    const bool last_in_row = (i + 1) % grid.cols == 0;
    const std::string& sep = (last_in_row && !fmt.row_sep.empty()) ? fmt.row_sep : fmt.tile_sep;
    const std::string start = format_fields(
        fmt.tile_start, {{"row", std::to_string(i / grid.cols + 1)}, {"col", std::to_string(i % grid.cols + 1)}},
        "tile_start");
    local.insert(local.end(), {text(start), tile(i + offset), text(sep)});
    if (last_in_row) local.push_back(text(fmt.row_end));
  }
  std::vector<Item> items = {text(fmt.image_start)};
  if (thumbnail_index == 0) {
    items.insert(items.end(), thumb.begin(), thumb.end());
    items.insert(items.end(), local.begin(), local.end());
  } else {
    items.insert(items.end(), local.begin(), local.end());
    if (!thumb.empty()) items.push_back(text(fmt.tiles_end));
    items.insert(items.end(), thumb.begin(), thumb.end());
  }
  items.push_back(text(fmt.image_end));
  return tokenize_items(items, tok, tokens_per_tile);
}

std::vector<Segment> first_turn(const PromptFormat& fmt, const std::string& question, const Tokenizer& tok,
                                const std::map<std::string, int64_t>& ids, const std::vector<Segment>* image) {
  std::string content = question;
  if (image != nullptr) {
    const size_t count = count_occurrences(question, fmt.image_placeholder);
    if (count > 1) {
      throw ConfigError("the prompt holds " + std::to_string(count) + " image placeholders '" + fmt.image_placeholder +
                        "'; a conversation takes one image: keep at most one");
    }
    if (count == 0) content = fmt.image_placeholder + fmt.image_join + question;
  }
  if (image == nullptr || content.compare(0, fmt.image_placeholder.size(), fmt.image_placeholder) != 0) {
    content = fmt.text_lead + content;
  }
  const std::string text = fmt.system + format_content(fmt.user_template, content);
  std::vector<Segment> segs = {run(special(fmt.bos, ids))};
  if (image == nullptr) {
    segs.push_back(run(tok.encode(text)));
  } else {
    const size_t at = text.find(fmt.image_placeholder);
    segs.push_back(run(tok.encode(text.substr(0, at))));
    segs.insert(segs.end(), image->begin(), image->end());
    segs.push_back(run(tok.encode(text.substr(at + fmt.image_placeholder.size()))));
  }
  return merge(segs);
}

std::vector<Segment> next_turn(const PromptFormat& fmt, const std::string& question, const Tokenizer& tok,
                               const std::vector<int64_t>& unfed_answer) {
  const std::string text = fmt.turn_end + format_content(fmt.user_template, fmt.text_lead + question);
  return merge({run(unfed_answer), run(tok.encode(text))});
}

int64_t count_positions(const std::vector<Segment>& segs) {
  int64_t n = 0;
  for (const Segment& s : segs) n += s.is_tile ? s.num_tokens : static_cast<int64_t>(s.ids.size());
  return n;
}

std::string style_question(const PromptFormat& fmt, const std::string& question) {
  std::string out;
  const std::string key = "{question}";
  const std::string& t = fmt.question_template;
  size_t i = 0;
  while (i < t.size()) {
    if (t.compare(i, key.size(), key) == 0) {
      out += question;
      i += key.size();
    } else {
      out += t[i++];
    }
  }
  return out;
}

}  // namespace mobile_mllm

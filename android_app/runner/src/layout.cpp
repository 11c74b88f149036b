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

// Python's str.format(content=...) for a template whose only field is {content}.
std::string format_content(const std::string& tmpl, const std::string& content) {
  std::string out;
  for (size_t i = 0; i < tmpl.size(); ++i) {
    if (tmpl.compare(i, 9, "{content}") == 0) {
      out += content;
      i += 8;
    } else if ((tmpl[i] == '{' || tmpl[i] == '}') && i + 1 < tmpl.size() && tmpl[i + 1] == tmpl[i]) {
      out += tmpl[i];
      ++i;
    } else if (tmpl[i] == '{' || tmpl[i] == '}') {
      throw ContractError("prompt.user_template " + tmpl + " has a field other than {content}");
    } else {
      out += tmpl[i];
    }
  }
  return out;
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
                                 const std::map<std::string, int64_t>& ids) {
  const int64_t n_local = grid.num_tiles();
  const int64_t offset = thumbnail_index == 0 ? 1 : 0;
  std::vector<Segment> thumb;
  if (thumbnail_index >= 0) thumb = {run(special(fmt.thumbnail_marker, ids)), tile_ref(thumbnail_index, tokens_per_tile)};
  std::vector<Segment> local;
  for (int64_t i = 0; i < n_local; ++i) {
    const bool last_in_row = (i + 1) % grid.cols == 0;
    const std::string& sep = (last_in_row && !fmt.row_sep.empty()) ? fmt.row_sep : fmt.tile_sep;
    local.push_back(tile_ref(i + offset, tokens_per_tile));
    local.push_back(run(special(sep, ids)));
  }
  std::vector<Segment> all = {run(special(fmt.image_start, ids))};
  const std::vector<Segment>& first = thumbnail_index == 0 ? thumb : local;
  const std::vector<Segment>& second = thumbnail_index == 0 ? local : thumb;
  all.insert(all.end(), first.begin(), first.end());
  all.insert(all.end(), second.begin(), second.end());
  all.push_back(run(special(fmt.image_end, ids)));
  return merge(all);
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
    if (count == 0) content = fmt.image_placeholder + "\n" + question;
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

#include "tokenizer.h"

#include <algorithm>
#include <fstream>
#include <sstream>
#include <stdexcept>

#include "json.h"
#include "utf8.h"

namespace mobile_mllm {

namespace {

// GPT-2's byte <-> printable character table: printable Latin-1 bytes stand for themselves, the
// other 68 bytes for U+0100 onwards, in byte order.
struct ByteTable {
  uint32_t byte_to_char[256];
  std::unordered_map<uint32_t, uint8_t> char_to_byte;
  ByteTable() {
    uint32_t next = 256;
    for (int b = 0; b < 256; ++b) {
      const bool printable = (b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF);
      byte_to_char[b] = printable ? static_cast<uint32_t>(b) : next++;
      char_to_byte[byte_to_char[b]] = static_cast<uint8_t>(b);
    }
  }
};
const ByteTable& bytes() {
  static const ByteTable t;
  return t;
}

std::string read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw std::runtime_error("cannot read " + path);
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

enum class CharClass { Letter, Number, Space, Other };
CharClass classify(uint32_t cp) {
  if (is_unicode_letter(cp)) return CharClass::Letter;
  if (is_unicode_number(cp)) return CharClass::Number;
  if (is_unicode_whitespace(cp)) return CharClass::Space;
  return CharClass::Other;
}

uint64_t pair_key(int64_t left, int64_t right) {
  return (static_cast<uint64_t>(left) << 32) | static_cast<uint64_t>(right);
}

// Type names of a pre_tokenizer for messages: "Split", "Sequence[Digits, ByteLevel]".
std::string step_names(const Json& pre) {
  if (!pre.is_object()) return pre.dump();
  const Json* type = pre.find("type");
  std::string name = type != nullptr && type->is_string() ? type->as_string() : pre.dump();
  if (const Json* steps = pre.find("pretokenizers"); steps != nullptr && name == "Sequence") {
    name += "[";
    for (size_t i = 0; i < steps->as_array().size(); ++i) name += (i ? ", " : "") + step_names(steps->as_array()[i]);
    name += "]";
  }
  return name;
}

bool is_step(const Json& step, const char* type) {
  const Json* t = step.is_object() ? step.find("type") : nullptr;
  return t != nullptr && t->is_string() && t->as_string() == type;
}

// The ByteLevel step of a pre_tokenizer that is ByteLevel, Sequence[ByteLevel] or Sequence[Digits, ByteLevel],
// and the Digits step's split; anything else is refused, by name.
template <typename Refuse>
const Json& byte_level_step(const Json& pre, DigitSplit& digits, const Refuse& unsupported) {
  const std::string supported = " (supported: ByteLevel, alone or after Digits in a Sequence)";
  if (is_step(pre, "ByteLevel")) return pre;
  if (is_step(pre, "Sequence")) {
    const auto& steps = pre.at("pretokenizers").as_array("pre_tokenizer.pretokenizers");
    if (steps.size() == 1 && is_step(steps[0], "ByteLevel")) return steps[0];
    if (steps.size() == 2 && is_step(steps[0], "Digits") && is_step(steps[1], "ByteLevel")) {
      const Json* individual = steps[0].find("individual_digits");
      digits = individual != nullptr && individual->as_bool() ? DigitSplit::Individual : DigitSplit::Runs;
      return steps[1];
    }
  }
  throw unsupported("pre_tokenizer " + step_names(pre) + supported);
}

}  // namespace

// 's|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+ , leftmost-first, tiled.
std::vector<std::string> gpt2_split(const std::string& text) {
  const std::vector<uint32_t> cp = utf8_to_codepoints(text);
  const size_t n = cp.size();
  std::vector<CharClass> cls(n);
  for (size_t i = 0; i < n; ++i) cls[i] = classify(cp[i]);
  std::vector<std::string> pieces;
  size_t i = 0;
  auto run = [&](size_t from, CharClass c) {
    size_t j = from;
    while (j < n && cls[j] == c) ++j;
    return j;
  };
  while (i < n) {
    size_t end = i;
    if (cp[i] == '\'' && i + 1 < n) {
      const uint32_t a = cp[i + 1], b = i + 2 < n ? cp[i + 2] : 0;
      if (a == 's' || a == 't' || a == 'm' || a == 'd') end = i + 2;
      else if ((a == 'r' && b == 'e') || (a == 'v' && b == 'e') || (a == 'l' && b == 'l')) end = i + 3;
    }
    if (end == i) {
      if (cp[i] == ' ' && i + 1 < n && cls[i + 1] != CharClass::Space) {
        end = run(i + 1, cls[i + 1]);  // " ?\p{L}+", " ?\p{N}+", " ?[^\s\p{L}\p{N}]+" with the space
      } else if (cls[i] != CharClass::Space) {
        end = run(i, cls[i]);  // the same without a leading space
      } else {
        // "\s+(?!\S)": a whitespace run not followed by a non-space, i.e. all of it at the end of the
        // text, else all but its last character (which then leads the next piece); "\s+" when that is empty
        const size_t j = run(i, CharClass::Space);
        end = (j == n || j - i == 1) ? j : j - 1;
      }
    }
    pieces.push_back(codepoints_to_utf8(cp, i, end));
    i = end;
  }
  return pieces;
}

Tokenizer Tokenizer::from_file(const std::string& path) {
  Json root;
  try {
    root = Json::parse(read_file(path));
  } catch (const JsonError& e) {
    throw std::runtime_error(path + ": " + e.what());
  }
  auto unsupported = [&](const std::string& what) {
    return std::runtime_error(path + ": unsupported tokenizer (" + what +
                              "); the native runner reads byte-level BPE tokenizers (GPT-2 style) only");
  };
  Tokenizer t;
  const Json& model = root.at("model");
  if (model.at("type").as_string("model.type") != "BPE") throw unsupported("model.type " + model.at("type").dump());
  if (const Json* d = model.find("dropout"); d != nullptr && !d->is_null()) throw unsupported("BPE dropout");
  for (const char* key : {"continuing_subword_prefix", "end_of_word_suffix"}) {
    if (const Json* v = model.find(key); v != nullptr && !v->is_null() && !v->as_string().empty()) {
      throw unsupported(std::string("model.") + key);
    }
  }
  if (const Json* v = model.find("byte_fallback"); v != nullptr && v->is_bool() && v->as_bool()) {
    throw unsupported("byte_fallback");
  }
  if (const Json* v = model.find("ignore_merges"); v != nullptr && v->is_bool() && v->as_bool()) {
    throw unsupported("ignore_merges");
  }
  if (const Json* n = root.find("normalizer"); n != nullptr && !n->is_null()) throw unsupported("a normalizer");
  const Json& pre = byte_level_step(root.at("pre_tokenizer"), t.digits_, unsupported);
  if (const Json* r = pre.find("use_regex"); r != nullptr && !r->as_bool()) {
    throw unsupported("ByteLevel use_regex false");
  }
  if (const Json* p = pre.find("add_prefix_space")) t.add_prefix_space_ = p->as_bool();
  const Json& dec = root.at("decoder");
  if (dec.is_null() || dec.at("type").as_string() != "ByteLevel") throw unsupported("decoder " + dec.dump());

  int64_t max_id = -1;
  for (const auto& kv : model.at("vocab").as_object("model.vocab")) {
    const int64_t id = kv.second.as_int("vocab id");
    if (id < 0 || id > INT32_MAX) {
      throw unsupported("vocabulary id " + std::to_string(id) + " of '" + kv.first + "'");
    }
    t.vocab_[kv.first] = id;
    max_id = std::max(max_id, id);
  }
  auto vocab_id = [&](const std::string& token, const std::string& what) {
    auto it = t.vocab_.find(token);
    if (it == t.vocab_.end()) {
      throw std::runtime_error(path + ": " + what + " '" + token +
                               "' is not in model.vocab (the tokenizers library refuses this file too)");
    }
    return it->second;
  };
  int rank = 0;
  for (const Json& m : model.at("merges").as_array("model.merges")) {
    std::string left, right;
    if (m.is_string()) {  // "left right" (older files)
      const std::string& s = m.as_string();
      const size_t sp = s.find(' ');
      if (sp == std::string::npos) throw unsupported("merge '" + s + "' without a space");
      left = s.substr(0, sp);
      right = s.substr(sp + 1);
    } else {
      const auto& pair = m.as_array("merge");
      if (pair.size() != 2) throw unsupported("a merge that is not a pair");
      left = pair[0].as_string();
      right = pair[1].as_string();
    }
    // by id, as the library merges: a later duplicate of a pair replaces the earlier one
    t.merges_[pair_key(vocab_id(left, "merge token"), vocab_id(right, "merge token"))] =
        Merge{rank++, vocab_id(left + right, "merge result")};
  }
  if (const Json* u = model.find("unk_token"); u != nullptr && !u->is_null()) {
    t.unk_id_ = vocab_id(u->as_string("model.unk_token"), "model.unk_token");
  }
  if (const Json* f = model.find("fuse_unk"); f != nullptr && !f->is_null()) t.fuse_unk_ = f->as_bool();
  if (const Json* added = root.find("added_tokens")) {
    for (const Json& a : added->as_array("added_tokens")) {
      Added tok{a.at("content").as_string(), a.at("id").as_int(), a.at("special").as_bool(), false, false};
      if (const Json* v = a.find("lstrip")) tok.lstrip = v->as_bool();
      if (const Json* v = a.find("rstrip")) tok.rstrip = v->as_bool();
      if (const Json* v = a.find("single_word"); v != nullptr && v->as_bool()) throw unsupported("single_word added token");
      if (const Json* v = a.find("normalized"); v != nullptr && v->as_bool() && !tok.special) {
        // with no normalizer, a normalized added token matches the same text: nothing differs
      }
      max_id = std::max(max_id, tok.id);
      t.added_.push_back(tok);
    }
  }
  std::stable_sort(t.added_.begin(), t.added_.end(),
                   [](const Added& a, const Added& b) { return a.content.size() > b.content.size(); });
  for (size_t i = 0; i < t.added_.size(); ++i) t.added_by_id_[t.added_[i].id] = i;
  t.id_to_token_.assign(static_cast<size_t>(max_id + 1), std::string());
  for (const auto& kv : t.vocab_) t.id_to_token_[static_cast<size_t>(kv.second)] = kv.first;
  return t;
}

int64_t Tokenizer::token_to_id(const std::string& token) const {
  for (const auto& a : added_) {
    if (a.content == token) return a.id;
  }
  auto it = vocab_.find(token);
  return it == vocab_.end() ? -1 : it->second;
}

void Tokenizer::encode_word(const std::string& word, std::vector<int64_t>& out) const {
  auto cached = cache_.find(word);
  if (cached != cache_.end()) {
    out.insert(out.end(), cached->second.begin(), cached->second.end());
    return;
  }
  // symbols = the ids of the word's characters (each one byte of the original text); a character outside
  // the vocabulary is dropped (no unk_token) or becomes unk_token, one per run of them with fuse_unk
  std::vector<int64_t> sym;
  bool after_unk = false;
  for (uint32_t c : utf8_to_codepoints(word)) {
    std::string s;
    append_utf8(s, c);
    auto it = vocab_.find(s);
    if (it != vocab_.end()) {
      sym.push_back(it->second);
      after_unk = false;
    } else if (unk_id_ >= 0) {
      if (!(fuse_unk_ && after_unk)) sym.push_back(unk_id_);
      after_unk = true;
    }
  }
  // Repeatedly merge the adjacent pair of lowest rank (leftmost first among equal ranks).
  while (sym.size() > 1) {
    const Merge* best = nullptr;
    size_t at = 0;
    for (size_t k = 0; k + 1 < sym.size(); ++k) {
      auto it = merges_.find(pair_key(sym[k], sym[k + 1]));
      if (it != merges_.end() && (best == nullptr || it->second.rank < best->rank)) {
        best = &it->second;
        at = k;
      }
    }
    if (best == nullptr) break;
    sym[at] = best->id;
    sym.erase(sym.begin() + static_cast<long>(at) + 1);
  }
  out.insert(out.end(), sym.begin(), sym.end());
  if (cache_.size() < 100000) cache_.emplace(word, std::move(sym));
}

// One pre-token through ByteLevel: the optional prefix space, GPT-2's split, bytes to characters, BPE.
void Tokenizer::encode_piece(const std::string& text, std::vector<int64_t>& out) const {
  if (text.empty()) return;
  std::string input = text;
  if (add_prefix_space_ && input[0] != ' ') input = " " + input;
  const ByteTable& bt = bytes();
  for (const std::string& piece : gpt2_split(input)) {
    std::string chars;
    for (unsigned char b : piece) append_utf8(chars, bt.byte_to_char[b]);
    encode_word(chars, out);
  }
}

// Text between added tokens: the Digits step's pieces (numeric characters alone, or by runs, between the
// rest), each through ByteLevel.
void Tokenizer::encode_plain(const std::string& text, std::vector<int64_t>& out) const {
  if (digits_ == DigitSplit::None) {
    encode_piece(text, out);
    return;
  }
  const std::vector<uint32_t> cp = utf8_to_codepoints(text);
  size_t start = 0, i = 0;
  while (i < cp.size()) {
    if (!is_unicode_numeric(cp[i])) {
      ++i;
      continue;
    }
    size_t end = i + 1;
    if (digits_ == DigitSplit::Runs) {
      while (end < cp.size() && is_unicode_numeric(cp[end])) ++end;
    }
    encode_piece(codepoints_to_utf8(cp, start, i), out);
    encode_piece(codepoints_to_utf8(cp, i, end), out);
    start = i = end;
  }
  encode_piece(codepoints_to_utf8(cp, start, cp.size()), out);
}

std::vector<int64_t> Tokenizer::encode(const std::string& text) const {
  std::vector<int64_t> out;
  size_t start = 0;  // start of the pending plain text
  size_t i = 0;
  while (i < text.size()) {
    const Added* hit = nullptr;
    for (const auto& a : added_) {  // longest first: leftmost-longest match at i
      if (!a.content.empty() && text.compare(i, a.content.size(), a.content) == 0) {
        hit = &a;
        break;
      }
    }
    if (hit == nullptr) {
      ++i;
      continue;
    }
    size_t plain_end = i;
    if (hit->lstrip) {
      while (plain_end > start && is_unicode_whitespace(static_cast<unsigned char>(text[plain_end - 1]))) --plain_end;
    }
    encode_plain(text.substr(start, plain_end - start), out);
    out.push_back(hit->id);
    i += hit->content.size();
    if (hit->rstrip) {
      while (i < text.size() && is_unicode_whitespace(static_cast<unsigned char>(text[i]))) ++i;
    }
    start = i;
  }
  encode_plain(text.substr(start), out);
  return out;
}

std::string Tokenizer::decode(const std::vector<int64_t>& ids, bool skip_special_tokens) const {
  const ByteTable& bt = bytes();
  std::string raw;
  for (int64_t id : ids) {
    const std::string* tok = nullptr;
    auto a = added_by_id_.find(id);
    if (a != added_by_id_.end()) {
      if (skip_special_tokens && added_[a->second].special) continue;
      tok = &added_[a->second].content;
    } else if (id >= 0 && static_cast<size_t>(id) < id_to_token_.size() && !id_to_token_[id].empty()) {
      tok = &id_to_token_[id];
    } else {
      continue;  // unknown id: tokenizers skips it too
    }
    // each character back to its byte; a token with a character outside the table keeps its UTF-8
    std::string piece;
    bool all_mapped = true;
    for (uint32_t c : utf8_to_codepoints(*tok)) {
      auto it = bt.char_to_byte.find(c);
      if (it == bt.char_to_byte.end()) {
        all_mapped = false;
        break;
      }
      piece += static_cast<char>(it->second);
    }
    raw += all_mapped ? piece : *tok;
  }
  return utf8_lossy(raw);
}

}  // namespace mobile_mllm

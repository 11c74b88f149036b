#include "json.h"

#include "utf8.h"

#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>

namespace mobile_mllm {

Json Json::boolean(bool b) {
  Json j;
  j.type_ = Type::Bool;
  j.bool_ = b;
  return j;
}
Json Json::number(double d) {
  Json j;
  j.type_ = Type::Number;
  j.num_ = d;
  return j;
}
Json Json::integer(int64_t i) {
  Json j;
  j.type_ = Type::Number;
  j.is_int_ = true;
  j.int_ = i;
  j.num_ = static_cast<double>(i);
  return j;
}
Json Json::string(std::string s) {
  Json j;
  j.type_ = Type::String;
  j.str_ = std::move(s);
  return j;
}
Json Json::array(Array a) {
  Json j;
  j.type_ = Type::Array;
  j.arr_ = std::make_shared<Array>(std::move(a));
  return j;
}
Json Json::object(Object o) {
  Json j;
  j.type_ = Type::Object;
  j.obj_ = std::make_shared<Object>(std::move(o));
  return j;
}

namespace {
const char* type_name(Json::Type t) {
  switch (t) {
    case Json::Type::Null: return "null";
    case Json::Type::Bool: return "a boolean";
    case Json::Type::Number: return "a number";
    case Json::Type::String: return "a string";
    case Json::Type::Array: return "an array";
    case Json::Type::Object: return "an object";
  }
  return "?";
}
}  // namespace

#define MOBILE_MLLM_JSON_EXPECT(cond, want) \
  if (!(cond)) throw JsonError(what + " must be " + want + ", got " + type_name(type_))

bool Json::as_bool(const std::string& what) const {
  MOBILE_MLLM_JSON_EXPECT(type_ == Type::Bool, "a boolean");
  return bool_;
}
double Json::as_double(const std::string& what) const {
  MOBILE_MLLM_JSON_EXPECT(type_ == Type::Number, "a number");
  return num_;
}
int64_t Json::as_int(const std::string& what) const {
  MOBILE_MLLM_JSON_EXPECT(type_ == Type::Number, "an integer");
  if (is_int_) return int_;
  if (std::floor(num_) != num_ || std::fabs(num_) > 9.0e15) throw JsonError(what + " must be an integer");
  return static_cast<int64_t>(num_);
}
const std::string& Json::as_string(const std::string& what) const {
  MOBILE_MLLM_JSON_EXPECT(type_ == Type::String, "a string");
  return str_;
}
const Json::Array& Json::as_array(const std::string& what) const {
  MOBILE_MLLM_JSON_EXPECT(type_ == Type::Array, "an array");
  return *arr_;
}
const Json::Object& Json::as_object(const std::string& what) const {
  MOBILE_MLLM_JSON_EXPECT(type_ == Type::Object, "an object");
  return *obj_;
}
#undef MOBILE_MLLM_JSON_EXPECT

const Json* Json::find(const std::string& key) const {
  if (type_ != Type::Object) return nullptr;
  for (const auto& kv : *obj_) {
    if (kv.first == key) return &kv.second;
  }
  return nullptr;
}

const Json& Json::at(const std::string& key) const {
  const Json* v = find(key);
  if (v == nullptr) throw JsonError("missing key \"" + key + "\"");
  return *v;
}

Json& Json::set(const std::string& key, Json value) {
  if (type_ != Type::Object) *this = object();
  for (auto& kv : *obj_) {
    if (kv.first == key) {
      kv.second = std::move(value);
      return kv.second;
    }
  }
  obj_->emplace_back(key, std::move(value));
  return obj_->back().second;
}

Json::Array& Json::items() {
  if (type_ != Type::Array) *this = array();
  return *arr_;
}

// --------------------------------------------------------------------------- parsing

namespace {

class Parser {
 public:
  explicit Parser(const std::string& s) : s_(s) {}

  Json parse_document() {
    skip_ws();
    Json v = parse_value(0);
    skip_ws();
    if (i_ != s_.size()) fail("unexpected text after the JSON value");
    return v;
  }

 private:
  [[noreturn]] void fail(const std::string& msg) const {
    throw JsonError("JSON: " + msg + " at offset " + std::to_string(i_));
  }

  void skip_ws() {
    while (i_ < s_.size() && (s_[i_] == ' ' || s_[i_] == '\t' || s_[i_] == '\n' || s_[i_] == '\r')) ++i_;
  }

  bool consume(const char* word) {
    const size_t n = std::strlen(word);
    if (s_.compare(i_, n, word) == 0) {
      i_ += n;
      return true;
    }
    return false;
  }

  Json parse_value(int depth) {
    if (depth > 512) fail("nesting too deep");
    if (i_ >= s_.size()) fail("unexpected end");
    const char c = s_[i_];
    if (c == '{') return parse_object(depth);
    if (c == '[') return parse_array(depth);
    if (c == '"') return Json::string(parse_string());
    if (consume("true")) return Json::boolean(true);
    if (consume("false")) return Json::boolean(false);
    if (consume("null")) return Json();
    if (consume("NaN")) return Json::number(NAN);  // Python's json.dumps writes these
    if (consume("Infinity")) return Json::number(INFINITY);
    if (consume("-Infinity")) return Json::number(-INFINITY);
    if (c == '-' || (c >= '0' && c <= '9')) return parse_number();
    fail(std::string("unexpected character '") + c + "'");
  }

  Json parse_object(int depth) {
    ++i_;  // {
    Json::Object obj;
    skip_ws();
    if (i_ < s_.size() && s_[i_] == '}') {
      ++i_;
      return Json::object(std::move(obj));
    }
    while (true) {
      skip_ws();
      if (i_ >= s_.size() || s_[i_] != '"') fail("expected a string key");
      std::string key = parse_string();
      skip_ws();
      if (i_ >= s_.size() || s_[i_] != ':') fail("expected ':'");
      ++i_;
      skip_ws();
      obj.emplace_back(std::move(key), parse_value(depth + 1));
      skip_ws();
      if (i_ < s_.size() && s_[i_] == ',') {
        ++i_;
        continue;
      }
      if (i_ < s_.size() && s_[i_] == '}') {
        ++i_;
        return Json::object(std::move(obj));
      }
      fail("expected ',' or '}'");
    }
  }

  Json parse_array(int depth) {
    ++i_;  // [
    Json::Array arr;
    skip_ws();
    if (i_ < s_.size() && s_[i_] == ']') {
      ++i_;
      return Json::array(std::move(arr));
    }
    while (true) {
      skip_ws();
      arr.push_back(parse_value(depth + 1));
      skip_ws();
      if (i_ < s_.size() && s_[i_] == ',') {
        ++i_;
        continue;
      }
      if (i_ < s_.size() && s_[i_] == ']') {
        ++i_;
        return Json::array(std::move(arr));
      }
      fail("expected ',' or ']'");
    }
  }

  unsigned hex4() {
    if (i_ + 4 > s_.size()) fail("short \\u escape");
    unsigned v = 0;
    for (int k = 0; k < 4; ++k) {
      const char c = s_[i_++];
      v <<= 4;
      if (c >= '0' && c <= '9') v |= static_cast<unsigned>(c - '0');
      else if (c >= 'a' && c <= 'f') v |= static_cast<unsigned>(c - 'a' + 10);
      else if (c >= 'A' && c <= 'F') v |= static_cast<unsigned>(c - 'A' + 10);
      else fail("bad hex digit in \\u escape");
    }
    return v;
  }


  std::string parse_string() {
    ++i_;  // opening quote
    std::string out;
    while (true) {
      if (i_ >= s_.size()) fail("unterminated string");
      const char c = s_[i_++];
      if (c == '"') return out;
      if (static_cast<unsigned char>(c) < 0x20) fail("control character in string");
      if (c != '\\') {
        out += c;
        continue;
      }
      if (i_ >= s_.size()) fail("unterminated escape");
      const char e = s_[i_++];
      switch (e) {
        case '"': out += '"'; break;
        case '\\': out += '\\'; break;
        case '/': out += '/'; break;
        case 'b': out += '\b'; break;
        case 'f': out += '\f'; break;
        case 'n': out += '\n'; break;
        case 'r': out += '\r'; break;
        case 't': out += '\t'; break;
        case 'u': {
          uint32_t cp = hex4();
          if (cp >= 0xD800 && cp <= 0xDBFF && s_.compare(i_, 2, "\\u") == 0) {
            const size_t save = i_;
            i_ += 2;
            const uint32_t lo = hex4();
            if (lo >= 0xDC00 && lo <= 0xDFFF) {
              cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
            } else {
              i_ = save;  // a lone high surrogate followed by another escape
            }
          }
          if (cp >= 0xD800 && cp <= 0xDFFF) cp = 0xFFFD;  // lone surrogate: not representable in UTF-8
          append_utf8(out, cp);
          break;
        }
        default: fail(std::string("bad escape \\") + e);
      }
    }
  }

  Json parse_number() {
    const size_t start = i_;
    if (s_[i_] == '-') ++i_;
    bool integral = true;
    while (i_ < s_.size() && s_[i_] >= '0' && s_[i_] <= '9') ++i_;
    if (i_ < s_.size() && s_[i_] == '.') {
      integral = false;
      ++i_;
      while (i_ < s_.size() && s_[i_] >= '0' && s_[i_] <= '9') ++i_;
    }
    if (i_ < s_.size() && (s_[i_] == 'e' || s_[i_] == 'E')) {
      integral = false;
      ++i_;
      if (i_ < s_.size() && (s_[i_] == '+' || s_[i_] == '-')) ++i_;
      while (i_ < s_.size() && s_[i_] >= '0' && s_[i_] <= '9') ++i_;
    }
    const std::string text = s_.substr(start, i_ - start);
    if (text == "-" || text.empty()) fail("bad number");
    if (integral && text.size() < 19) return Json::integer(std::strtoll(text.c_str(), nullptr, 10));
    return Json::number(std::strtod(text.c_str(), nullptr));
  }

  const std::string& s_;
  size_t i_ = 0;
};

std::string format_double(double d) {
  if (std::isnan(d)) return "NaN";
  if (std::isinf(d)) return d > 0 ? "Infinity" : "-Infinity";
  char buf[40];
  for (int prec = 1; prec <= 17; ++prec) {  // shortest text that reads back as the same double
    std::snprintf(buf, sizeof buf, "%.*g", prec, d);
    if (std::strtod(buf, nullptr) == d) break;
  }
  std::string s(buf);
  if (s.find_first_of(".eE") == std::string::npos) s += ".0";  // a float stays a float for the reader
  return s;
}

void dump_to(const Json& j, std::string& out) {
  switch (j.type()) {
    case Json::Type::Null: out += "null"; break;
    case Json::Type::Bool: out += j.as_bool() ? "true" : "false"; break;
    case Json::Type::Number:
      out += j.is_integer() ? std::to_string(j.as_int()) : format_double(j.as_double());
      break;
    case Json::Type::String: out += json_quote(j.as_string()); break;
    case Json::Type::Array: {
      out += '[';
      bool first = true;
      for (const auto& v : j.as_array()) {
        if (!first) out += ',';
        first = false;
        dump_to(v, out);
      }
      out += ']';
      break;
    }
    case Json::Type::Object: {
      out += '{';
      bool first = true;
      for (const auto& kv : j.as_object()) {
        if (!first) out += ',';
        first = false;
        out += json_quote(kv.first);
        out += ':';
        dump_to(kv.second, out);
      }
      out += '}';
      break;
    }
  }
}

}  // namespace

Json Json::parse(const std::string& text) { return Parser(text).parse_document(); }

std::string Json::dump() const {
  std::string out;
  dump_to(*this, out);
  return out;
}

std::string json_quote(const std::string& s) {
  std::string out = "\"";
  size_t i = 0;
  auto escape_u = [&](uint32_t u) {
    char b[8];
    std::snprintf(b, sizeof b, "\\u%04x", u);
    out += b;
  };
  while (i < s.size()) {
    const unsigned char c = static_cast<unsigned char>(s[i]);
    if (c < 0x80) {
      ++i;
      switch (c) {
        case '"': out += "\\\""; break;
        case '\\': out += "\\\\"; break;
        case '\n': out += "\\n"; break;
        case '\r': out += "\\r"; break;
        case '\t': out += "\\t"; break;
        case '\b': out += "\\b"; break;
        case '\f': out += "\\f"; break;
        default:
          if (c < 0x20) escape_u(c);
          else out += static_cast<char>(c);
      }
      continue;
    }
    // decode one UTF-8 sequence; invalid bytes become U+FFFD
    uint32_t cp = 0xFFFD;
    size_t len = 1;
    if ((c & 0xE0) == 0xC0 && i + 1 < s.size()) {
      cp = ((c & 0x1F) << 6) | (s[i + 1] & 0x3F);
      len = 2;
    } else if ((c & 0xF0) == 0xE0 && i + 2 < s.size()) {
      cp = ((c & 0x0F) << 12) | ((s[i + 1] & 0x3F) << 6) | (s[i + 2] & 0x3F);
      len = 3;
    } else if ((c & 0xF8) == 0xF0 && i + 3 < s.size()) {
      cp = ((c & 0x07) << 18) | ((s[i + 1] & 0x3F) << 12) | ((s[i + 2] & 0x3F) << 6) | (s[i + 3] & 0x3F);
      len = 4;
    }
    i += len;
    if (cp >= 0x10000) {
      cp -= 0x10000;
      escape_u(0xD800 + (cp >> 10));
      escape_u(0xDC00 + (cp & 0x3FF));
    } else {
      escape_u(cp);
    }
  }
  out += '"';
  return out;
}

}  // namespace mobile_mllm

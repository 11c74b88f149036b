// A small JSON reader and writer for manifest.json, tokenizer.json, --requests lines and the stats
// line. Written for this runner (no third-party code): RFC 8259 values, \u escapes with surrogate
// pairs, numbers kept as double plus an exact int64 when the text is an integer.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

namespace mobile_mllm {

class JsonError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

class Json {
 public:
  enum class Type { Null, Bool, Number, String, Array, Object };
  using Array = std::vector<Json>;
  // Objects keep their keys' order of appearance (so a writer's output is predictable).
  using Object = std::vector<std::pair<std::string, Json>>;

  Json() = default;
  static Json boolean(bool b);
  static Json number(double d);
  static Json integer(int64_t i);
  static Json string(std::string s);
  static Json array(Array a = {});
  static Json object(Object o = {});

  // Parses one JSON text (whitespace around it allowed); throws JsonError naming the offset.
  static Json parse(const std::string& text);

  Type type() const { return type_; }
  bool is_null() const { return type_ == Type::Null; }
  bool is_number() const { return type_ == Type::Number; }
  bool is_string() const { return type_ == Type::String; }
  bool is_array() const { return type_ == Type::Array; }
  bool is_object() const { return type_ == Type::Object; }
  bool is_bool() const { return type_ == Type::Bool; }
  bool is_integer() const { return type_ == Type::Number && is_int_; }

  // Typed access; throws JsonError naming `what` when the type differs.
  bool as_bool(const std::string& what = "value") const;
  double as_double(const std::string& what = "value") const;
  int64_t as_int(const std::string& what = "value") const;
  const std::string& as_string(const std::string& what = "value") const;
  const Array& as_array(const std::string& what = "value") const;
  const Object& as_object(const std::string& what = "value") const;

  // Object lookup: nullptr when absent (or when this is not an object).
  const Json* find(const std::string& key) const;
  // Object lookup that throws JsonError("missing key ...") when absent.
  const Json& at(const std::string& key) const;

  // Object building (appends, or replaces an existing key).
  Json& set(const std::string& key, Json value);
  Array& items();  // array building

  // Compact one-line text (separators "," and ":" as Python's json.dumps(separators=(",", ":"))).
  std::string dump() const;

 private:
  Type type_ = Type::Null;
  bool bool_ = false;
  bool is_int_ = false;
  double num_ = 0.0;
  int64_t int_ = 0;
  std::string str_;
  std::shared_ptr<Array> arr_;
  std::shared_ptr<Object> obj_;
};

// JSON string literal (quotes included) of UTF-8 text; non-ASCII is written as \uXXXX escapes, as
// Python's json.dumps does by default, so both runners' lines are plain ASCII.
std::string json_quote(const std::string& utf8);

}  // namespace mobile_mllm

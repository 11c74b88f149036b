// The models' tokenizer.json (Hugging Face tokenizers format), byte-level BPE as GPT-2 defines it:
// added tokens matched first (leftmost, longest), then GPT-2's pre-tokenizer regex (implemented by
// hand over Unicode classes), byte -> printable-character mapping, BPE merges by rank; decoding
// maps characters back to bytes and replaces invalid UTF-8 as the tokenizers library does.
// Supported: model BPE (no dropout; unk_token and fuse_unk as the library applies them, a character
// outside the vocabulary dropped when there is no unk_token), normalizer null, decoder ByteLevel,
// pre_tokenizer ByteLevel (use_regex true) alone or in a Sequence after Digits (SmolLM2's, so
// SmolVLM's: numeric characters split off, each alone with individual_digits, else by runs, before
// the regex); anything else is refused with a message naming it.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <unordered_map>
#include <vector>

namespace mobile_mllm {

// How the Digits pre-tokenizer step (if any) splits numeric characters off before ByteLevel's regex.
enum class DigitSplit { None, Individual, Runs };

class Tokenizer {
 public:
  // Throws std::runtime_error naming the file and the unsupported part.
  static Tokenizer from_file(const std::string& path);

  // Token ids of text, added/special tokens recognised, nothing added around it
  // (tokenizer.encode(text, add_special_tokens=False).ids).
  std::vector<int64_t> encode(const std::string& text) const;
  // Text of ids (tokenizer.decode(ids, skip_special_tokens=...)).
  std::string decode(const std::vector<int64_t>& ids, bool skip_special_tokens) const;
  // Id of a token (added tokens first, then the vocabulary); -1 when absent.
  int64_t token_to_id(const std::string& token) const;

 private:
  struct Added {
    std::string content;
    int64_t id;
    bool special, lstrip, rstrip;
  };
  struct Merge {
    int rank;
    int64_t id;  // of the merged token
  };
  void encode_word(const std::string& byte_chars, std::vector<int64_t>& out) const;
  void encode_piece(const std::string& text, std::vector<int64_t>& out) const;
  void encode_plain(const std::string& text, std::vector<int64_t>& out) const;

  std::unordered_map<std::string, int64_t> vocab_;
  std::vector<std::string> id_to_token_;
  std::unordered_map<uint64_t, Merge> merges_;       // (left id << 32 | right id) -> rank, merged id
  std::vector<Added> added_;                          // longest first
  std::map<int64_t, size_t> added_by_id_;
  bool add_prefix_space_ = false;
  DigitSplit digits_ = DigitSplit::None;
  int64_t unk_id_ = -1;  // the model's unk_token; -1: characters outside the vocabulary are dropped
  bool fuse_unk_ = false;
  mutable std::unordered_map<std::string, std::vector<int64_t>> cache_;
};

// GPT-2's pre-tokenizer split of UTF-8 text into pieces (exposed for tests).
std::vector<std::string> gpt2_split(const std::string& text);

}  // namespace mobile_mllm

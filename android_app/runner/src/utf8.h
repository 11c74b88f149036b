// UTF-8 <-> code points, and the lossy decoding the tokenizers library applies to byte-level
// output (each maximal invalid subpart becomes one U+FFFD, as Rust's String::from_utf8_lossy).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace mobile_mllm {

// Code points of UTF-8 text; invalid sequences become U+FFFD (as the lossy decoder does).
std::vector<uint32_t> utf8_to_codepoints(const std::string& s);
void append_utf8(std::string& out, uint32_t cp);
std::string codepoints_to_utf8(const std::vector<uint32_t>& cps, size_t begin, size_t end);
// Bytes -> valid UTF-8, replacing each maximal invalid subpart with U+FFFD.
std::string utf8_lossy(const std::string& bytes);

bool is_unicode_letter(uint32_t cp);      // \p{L}
bool is_unicode_number(uint32_t cp);      // \p{N}
bool is_unicode_numeric(uint32_t cp);     // Rust's char::is_numeric (what the Digits pre-tokenizer splits off)
bool is_unicode_whitespace(uint32_t cp);  // \s (White_Space)

}  // namespace mobile_mllm

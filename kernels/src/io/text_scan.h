// Line and token scanning over an in-memory text buffer, with strict number
// parsing (internal to the io readers).
#pragma once

#include <cstdint>
#include <cstring>
#include <string>
#include <string_view>

namespace sparsed::io::internal {

inline bool IsBlank(char c) { return c == ' ' || c == '\t' || c == '\r' || c == '\v' || c == '\f'; }

// Yields the lines of a buffer ('\n'-terminated; a trailing '\r' stays in the
// line and counts as blank) with 1-based line numbers.
class LineReader {
 public:
  explicit LineReader(std::string_view text) : text_(text) {}

  bool Next(std::string_view* line) {
    if (pos_ >= text_.size()) return false;
    const char* begin = text_.data() + pos_;
    const void* nl = std::memchr(begin, '\n', text_.size() - pos_);
    const size_t len = nl ? static_cast<const char*>(nl) - begin : text_.size() - pos_;
    *line = std::string_view(begin, len);
    pos_ += len + 1;
    ++line_no_;
    return true;
  }
  int64_t line_no() const { return line_no_; }
  // Bytes not yet consumed.
  size_t remaining() const { return pos_ >= text_.size() ? 0 : text_.size() - pos_; }

 private:
  std::string_view text_;
  size_t pos_ = 0;
  int64_t line_no_ = 0;
};

// Splits `line` on blanks into at most `max` tokens. Returns the number of
// tokens, or max + 1 when there are more than `max`.
int Tokenize(std::string_view line, std::string_view* tokens, int max);

// True when `line` holds only blanks.
bool IsBlankLine(std::string_view line);

// Whole-token parses; an optional leading '+' is accepted. False on any
// malformed or out-of-range text.
bool ParseInt64(std::string_view token, int64_t* value);
bool ParseDouble(std::string_view token, double* value);

// `text` cut to at most `max` characters (then "...") for error messages.
std::string Snippet(std::string_view text, size_t max = 80);

}  // namespace sparsed::io::internal

#include "text_scan.h"

#include <charconv>
#include <system_error>

namespace sparsed::io::internal {
namespace {

// Drops one leading '+' (from_chars rejects it) unless a sign follows it.
std::string_view StripPlus(std::string_view t) {
  if (t.size() > 1 && t[0] == '+' && t[1] != '-' && t[1] != '+') t.remove_prefix(1);
  return t;
}

}  // namespace

int Tokenize(std::string_view line, std::string_view* tokens, int max) {
  int n = 0;
  size_t i = 0;
  while (true) {
    while (i < line.size() && IsBlank(line[i])) ++i;
    if (i == line.size()) return n;
    if (n == max) return max + 1;
    const size_t start = i;
    while (i < line.size() && !IsBlank(line[i])) ++i;
    tokens[n++] = line.substr(start, i - start);
  }
}

bool IsBlankLine(std::string_view line) {
  for (char c : line) {
    if (!IsBlank(c)) return false;
  }
  return true;
}

bool ParseInt64(std::string_view token, int64_t* value) {
  token = StripPlus(token);
  const char* end = token.data() + token.size();
  auto [ptr, ec] = std::from_chars(token.data(), end, *value);
  return ec == std::errc() && ptr == end && !token.empty();
}

bool ParseDouble(std::string_view token, double* value) {
  token = StripPlus(token);
  const char* end = token.data() + token.size();
  auto [ptr, ec] = std::from_chars(token.data(), end, *value, std::chars_format::general);
  return ec == std::errc() && ptr == end && !token.empty();
}

std::string Snippet(std::string_view text, size_t max) {
  if (text.size() <= max) return std::string(text);
  return std::string(text.substr(0, max)) + "...";
}

}  // namespace sparsed::io::internal

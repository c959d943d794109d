// sparsed::StrCat: absl::StrCat that also takes std::string_view (Debian's
// abseil is built with its own absl::string_view, distinct from std's).
#pragma once

#include <string>
#include <string_view>

#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"

namespace sparsed {
namespace detail {
inline absl::string_view ToAlphaNum(std::string_view s) { return {s.data(), s.size()}; }
template <class T>
const T& ToAlphaNum(const T& v) {
  return v;
}
}  // namespace detail

template <class... Args>
std::string StrCat(const Args&... args) {
  return absl::StrCat(detail::ToAlphaNum(args)...);
}

}  // namespace sparsed

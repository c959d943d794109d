#include "sparsed/io/npy.h"

#include <algorithm>
#include <bit>
#include <charconv>
#include <cstdint>
#include <cstring>
#include <optional>
#include <type_traits>
#include <vector>

#include "absl/strings/str_join.h"
#include "file_util.h"
#include "sparsed/cast.h"
#include "sparsed/status.h"
#include "sparsed/str_cat.h"
#include "text_scan.h"

namespace sparsed::io {
namespace {

static_assert(std::endian::native == std::endian::little,
              ".npy data is read and written as little-endian host memory");

constexpr std::string_view kMagic("\x93NUMPY", 6);
constexpr int64_t kMaxBytes = int64_t{1} << 62;

enum class Kind { kFloat, kInt, kUInt, kBool };

struct ElementType {
  Kind kind;
  int size;
};

struct NpyHeader {
  std::string descr;
  bool fortran_order = false;
  std::vector<int64_t> shape;
};

template <class... Args>
absl::Status Error(std::string_view source, const Args&... args) {
  return absl::InvalidArgumentError(StrCat(source, ": ", args...));
}

// A tiny parser for the Python dict literal that numpy writes as the header,
// e.g. {'descr': '<f4', 'fortran_order': False, 'shape': (3, 4), }
class HeaderParser {
 public:
  HeaderParser(std::string_view text, int64_t base, std::string_view source)
      : text_(text), base_(base), source_(source) {}

  absl::StatusOr<NpyHeader> Parse() {
    NpyHeader h;
    bool seen_descr = false, seen_order = false, seen_shape = false;
    SkipSpace();
    RETURN_IF_ERROR(Expect('{'));
    while (true) {
      SkipSpace();
      if (Peek() == '}') break;
      const size_t key_pos = pos_;
      ASSIGN_OR_RETURN(const std::string key, String("a key"));
      SkipSpace();
      RETURN_IF_ERROR(Expect(':'));
      SkipSpace();
      if (key == "descr") {
        if (seen_descr) return Fail(key_pos, "duplicate key 'descr'");
        seen_descr = true;
        ASSIGN_OR_RETURN(h.descr, String("a dtype string for 'descr'"));
      } else if (key == "fortran_order") {
        if (seen_order) return Fail(key_pos, "duplicate key 'fortran_order'");
        seen_order = true;
        ASSIGN_OR_RETURN(h.fortran_order, Bool());
      } else if (key == "shape") {
        if (seen_shape) return Fail(key_pos, "duplicate key 'shape'");
        seen_shape = true;
        ASSIGN_OR_RETURN(h.shape, Tuple());
      } else {
        return Fail(key_pos,
                    StrCat("unexpected key '", key, "' (expected descr, fortran_order, shape)"));
      }
      SkipSpace();
      if (Peek() == ',') {
        ++pos_;
        continue;
      }
      if (Peek() != '}') return Fail(pos_, "expected ',' or '}'");
    }
    ++pos_;
    SkipSpace();
    if (pos_ != text_.size()) return Fail(pos_, "unexpected text after the header dict");
    if (!seen_descr || !seen_order || !seen_shape) {
      return Fail(0, StrCat("header dict lacks key '",
                            !seen_descr   ? "descr"
                            : !seen_order ? "fortran_order"
                                          : "shape",
                            "'"));
    }
    return h;
  }

 private:
  char Peek() const { return pos_ < text_.size() ? text_[pos_] : '\0'; }
  void SkipSpace() {
    while (pos_ < text_.size() && (internal::IsBlank(text_[pos_]) || text_[pos_] == '\n')) ++pos_;
  }

  absl::Status Fail(size_t at, std::string_view what) const {
    return Error(source_, "header at byte ", base_ + static_cast<int64_t>(at), ": ", what,
                 ", found '", internal::Snippet(text_.substr(std::min(at, text_.size())), 40), "'");
  }

  absl::Status Expect(char c) {
    if (Peek() != c) return Fail(pos_, StrCat("expected '", std::string(1, c), "'"));
    ++pos_;
    return absl::OkStatus();
  }

  absl::StatusOr<std::string> String(std::string_view what) {
    const char quote = Peek();
    if (quote != '\'' && quote != '"') return Fail(pos_, StrCat("expected ", what));
    const size_t end = text_.find(quote, pos_ + 1);
    if (end == std::string_view::npos) return Fail(pos_, "unterminated string");
    std::string s(text_.substr(pos_ + 1, end - pos_ - 1));
    pos_ = end + 1;
    return s;
  }

  absl::StatusOr<bool> Bool() {
    for (auto [word, value] : {std::pair<std::string_view, bool>{"True", true}, {"False", false}}) {
      if (text_.substr(pos_, word.size()) == word) {
        pos_ += word.size();
        return value;
      }
    }
    return Fail(pos_, "expected True or False for 'fortran_order'");
  }

  absl::StatusOr<std::vector<int64_t>> Tuple() {
    std::vector<int64_t> dims;
    RETURN_IF_ERROR(Expect('('));
    while (true) {
      SkipSpace();
      if (Peek() == ')') break;
      const size_t start = pos_;
      int64_t d = 0;
      const char* first = text_.data() + pos_;
      auto [ptr, ec] = std::from_chars(first, text_.data() + text_.size(), d);
      if (ec != std::errc() || ptr == first || *first == '-') {
        return Fail(start, "expected a non-negative integer dimension in 'shape'");
      }
      pos_ += static_cast<size_t>(ptr - first);
      if (Peek() == 'L') ++pos_;  // Python 2 long literal
      dims.push_back(d);
      SkipSpace();
      if (Peek() == ',') {
        ++pos_;
      } else if (Peek() != ')') {
        return Fail(pos_, "expected ',' or ')' in 'shape'");
      }
    }
    ++pos_;
    return dims;
  }

  std::string_view text_;
  int64_t base_;
  std::string_view source_;
  size_t pos_ = 0;
};

absl::StatusOr<ElementType> ParseDescr(std::string_view descr, std::string_view source) {
  auto unsupported = [&] {
    return Error(source, "dtype '", descr,
                 "' is not supported (expected one of <f2 <f4 <f8 <i4 <i8 |b1 |u1 and the "
                 "other little-endian bool/int/uint/float types)");
  };
  if (descr.size() < 3) return unsupported();
  const char order = descr[0];
  int size = 0;
  {
    std::string_view digits = descr.substr(2);
    auto [ptr, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), size);
    if (ec != std::errc() || ptr != digits.data() + digits.size()) return unsupported();
  }
  ElementType t{Kind::kFloat, size};
  switch (descr[1]) {
    case 'f':
      if (size != 2 && size != 4 && size != 8) return unsupported();
      t.kind = Kind::kFloat;
      break;
    case 'i':
    case 'u':
      if (size != 1 && size != 2 && size != 4 && size != 8) return unsupported();
      t.kind = descr[1] == 'i' ? Kind::kInt : Kind::kUInt;
      break;
    case 'b':
      if (size != 1) return unsupported();
      t.kind = Kind::kBool;
      break;
    default:
      return unsupported();
  }
  if (order == '>' && size > 1) {
    return Error(source, "big-endian dtype '", descr, "' is not supported (use '<", descr.substr(1),
                 "')");
  }
  const bool ok_order = order == '<' || ((order == '|' || order == '>') && size == 1);
  if (!ok_order) return unsupported();
  return t;
}

float HalfToFloat(uint16_t h) {
  const uint32_t sign = static_cast<uint32_t>(h & 0x8000u) << 16;
  const uint32_t exp = (h >> 10) & 0x1Fu;
  uint32_t mant = h & 0x3FFu;
  uint32_t bits;
  if (exp == 0x1F) {
    bits = sign | 0x7F800000u | (mant << 13);  // inf / nan
  } else if (exp != 0) {
    bits = sign | ((exp + 112) << 23) | (mant << 13);
  } else if (mant == 0) {
    bits = sign;
  } else {
    // Subnormal half: normalise into an f32 exponent.
    int e = -1;
    do {
      ++e;
      mant <<= 1;
    } while ((mant & 0x400u) == 0);
    bits = sign | static_cast<uint32_t>(112 - e) << 23 | ((mant & 0x3FFu) << 13);
  }
  return std::bit_cast<float>(bits);
}

struct Half {
  uint16_t bits;
};
struct Bool8 {
  uint8_t byte;
};

template <class T>
float ToFloat(T v) {
  if constexpr (std::is_same_v<T, Half>) {
    return HalfToFloat(v.bits);
  } else if constexpr (std::is_same_v<T, Bool8>) {
    return v.byte != 0 ? 1.0f : 0.0f;
  } else {
    return static_cast<float>(v);
  }
}

// Calls f(T{}) with T the C++ type stored for `t`.
template <class F>
void VisitElementType(ElementType t, F&& f) {
  switch (t.kind) {
    case Kind::kFloat:
      if (t.size == 2) return f(Half{});
      if (t.size == 4) return f(float{});
      return f(double{});
    case Kind::kInt:
      if (t.size == 1) return f(int8_t{});
      if (t.size == 2) return f(int16_t{});
      if (t.size == 4) return f(int32_t{});
      return f(int64_t{});
    case Kind::kUInt:
      if (t.size == 1) return f(uint8_t{});
      if (t.size == 2) return f(uint16_t{});
      if (t.size == 4) return f(uint32_t{});
      return f(uint64_t{});
    case Kind::kBool:
      return f(Bool8{});
  }
}

// Converts `rows` x `cols` elements from `src` (C or Fortran order, possibly
// unaligned) into row-major f32 `dst`.
template <class T>
void Convert(const char* src, float* dst, int64_t rows, int64_t cols, bool fortran) {
  static_assert(std::is_trivially_copyable_v<T>);
  auto load = [src](int64_t k) {
    T v;
    std::memcpy(&v, src + k * static_cast<int64_t>(sizeof(T)), sizeof(T));
    return ToFloat(v);
  };
  if (!fortran || rows <= 1 || cols <= 1) {
    for (int64_t k = 0; k < rows * cols; ++k) dst[k] = load(k);
    return;
  }
  int64_t k = 0;
  for (int64_t j = 0; j < cols; ++j) {
    for (int64_t i = 0; i < rows; ++i) dst[i * cols + j] = load(k++);
  }
}

uint32_t ReadLittle(std::string_view bytes, size_t offset, int width) {
  uint32_t v = 0;
  for (int i = width - 1; i >= 0; --i) {
    v = (v << 8) | static_cast<uint8_t>(bytes[offset + static_cast<size_t>(i)]);
  }
  return v;
}

std::string ShapeText(const std::vector<int64_t>& shape) {
  return StrCat("(", absl::StrJoin(shape, ", "), shape.size() == 1 ? ",)" : ")");
}

}  // namespace

absl::StatusOr<Tensor> ParseNpy(std::string_view bytes, std::string_view source, bool keep_f16) {
  if (bytes.size() < kMagic.size() || bytes.substr(0, kMagic.size()) != kMagic) {
    return Error(source, "not a .npy file: it does not start with \"\\x93NUMPY\"");
  }
  if (bytes.size() < 8) return Error(source, "truncated .npy preamble: ", bytes.size(), " bytes");
  const int major = static_cast<uint8_t>(bytes[6]), minor = static_cast<uint8_t>(bytes[7]);
  if ((major != 1 && major != 2 && major != 3) || minor != 0) {
    return Error(source, "unsupported .npy format version ", major, ".", minor,
                 " (expected 1.0, 2.0 or 3.0)");
  }
  const int len_width = major == 1 ? 2 : 4;
  const size_t header_start = 8 + static_cast<size_t>(len_width);
  if (bytes.size() < header_start) {
    return Error(source, "truncated .npy preamble: ", bytes.size(), " bytes, version ", major,
                 ".0 needs ", header_start);
  }
  const uint32_t header_len = ReadLittle(bytes, 8, len_width);
  if (bytes.size() - header_start < header_len) {
    return Error(source, "truncated header: length ", header_len, " at byte 8 needs ",
                 header_start + header_len, " bytes, the input has ", bytes.size());
  }
  HeaderParser parser(bytes.substr(header_start, header_len), static_cast<int64_t>(header_start),
                      source);
  ASSIGN_OR_RETURN(const NpyHeader h, parser.Parse());
  ASSIGN_OR_RETURN(const ElementType et, ParseDescr(h.descr, source));
  if (h.shape.empty()) return Error(source, "0-d arrays (shape ()) are not supported");
  if (h.shape.size() > 2) {
    return Error(source, "shape ", ShapeText(h.shape), " has ", h.shape.size(),
                 " dimensions; only 1-D and 2-D arrays are supported");
  }
  __int128 need = et.size;
  for (int64_t d : h.shape) {
    need *= d;
    if (need > kMaxBytes) return Error(source, "shape ", ShapeText(h.shape), " is too large");
  }
  const size_t data_start = header_start + header_len;
  const int64_t have = static_cast<int64_t>(bytes.size() - data_start);
  if (have != static_cast<int64_t>(need)) {
    return Error(source, "data of shape ", ShapeText(h.shape), " and dtype '", h.descr, "' needs ",
                 static_cast<int64_t>(need), " bytes after the header at byte ", data_start,
                 ", the input has ", have, have < need ? " (truncated)" : "");
  }
  TensorDesc desc{Format::kDense, DType::kF32, DType::kI32, h.shape, 0};
  ASSIGN_OR_RETURN(Tensor t, Tensor::Allocate(std::move(desc)));
  const int64_t rows = h.shape[0], cols = h.shape.size() == 2 ? h.shape[1] : 1;
  float* dst = t.data<float>("values").data();
  const char* src = bytes.data() + data_start;
  VisitElementType(
      et, [&](auto tag) { Convert<decltype(tag)>(src, dst, rows, cols, h.fortran_order); });
  // Every f16 value is an f32 value, so narrowing back is exact.
  if (keep_f16 && h.descr == "<f2") return CastValues(t, DType::kF16);
  return t;
}

absl::StatusOr<Tensor> ReadNpy(const std::string& path, bool keep_f16) {
  ASSIGN_OR_RETURN(const std::string bytes, internal::ReadFileBytes(path));
  return ParseNpy(bytes, path, keep_f16);
}

absl::StatusOr<std::string> EncodeNpy(const Tensor& t) {
  if (!t.device().is_cpu()) {
    return absl::InvalidArgumentError(
        StrCat("cannot write a tensor on ", t.device().ToString(), " as .npy"));
  }
  RETURN_IF_ERROR(ValidateDesc(t.desc(), "tensor"));
  if (t.format() != Format::kDense) {
    return absl::InvalidArgumentError(
        StrCat("cannot write a ", FormatName(t.format()), " tensor as .npy (only dense)"));
  }
  const DType dtype = t.desc().dtype;
  if (dtype != DType::kF32 && dtype != DType::kF16) {
    return absl::InvalidArgumentError(
        StrCat("cannot write ", DTypeName(dtype),
               " values as .npy (NumPy has f32 and f16; widen bf16 to f32, which is exact)"));
  }
  std::string header =
      StrCat("{'descr': '", dtype == DType::kF16 ? "<f2" : "<f4",
             "', 'fortran_order': False, 'shape': ", ShapeText(t.desc().shape), ", }");
  // Pad with spaces and end with '\n' so the data starts on a 64-byte boundary.
  constexpr size_t kPreamble = 10, kAlign = 64;
  const size_t unpadded = kPreamble + header.size() + 1;
  header.append((kAlign - unpadded % kAlign) % kAlign, ' ');
  header += '\n';
  std::string out(kMagic);
  out += '\x01';
  out += '\x00';
  out += static_cast<char>(header.size() & 0xFF);
  out += static_cast<char>(header.size() >> 8);
  out += header;
  const Buffer* values = t.component("values");
  if (values != nullptr && values->size() > 0) {
    out.append(static_cast<const char*>(values->data()), static_cast<size_t>(values->size()));
  }
  return out;
}

absl::Status WriteNpy(const Tensor& t, const std::string& path) {
  ASSIGN_OR_RETURN(const std::string bytes, EncodeNpy(t));
  return internal::WriteFileBytes(path, bytes);
}

}  // namespace sparsed::io

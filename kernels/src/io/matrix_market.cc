#include "sparsed/io/matrix_market.h"

#include <algorithm>
#include <charconv>
#include <cstdint>
#include <cstdio>
#include <limits>
#include <sstream>
#include <vector>

#include "file_util.h"
#include "sparsed/status.h"
#include "sparsed/str_cat.h"
#include "text_scan.h"

namespace sparsed::io {
namespace {

using internal::IsBlankLine;
using internal::LineReader;
using internal::ParseDouble;
using internal::ParseInt64;
using internal::Snippet;
using internal::Tokenize;

enum class Layout { kCoordinate, kArray };
enum class Field { kReal, kInteger, kPattern };
enum class Symmetry { kGeneral, kSymmetric, kSkew };

struct Banner {
  Layout layout;
  Field field;
  Symmetry symmetry;
};

// Entries of a coordinate file, 0-based.
struct Entry {
  int64_t row;
  int64_t col;
  float value;
};

template <class... Args>
absl::Status LineError(std::string_view source, int64_t line, const Args&... args) {
  return absl::InvalidArgumentError(StrCat(source, ":", line, ": ", args...));
}

std::string Lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) {
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
  }
  return out;
}

bool IsComment(std::string_view line) {
  for (char c : line) {
    if (!internal::IsBlank(c)) return c == '%';
  }
  return false;
}

absl::StatusOr<Banner> ParseBanner(std::string_view line, std::string_view source) {
  std::string_view tok[5];
  const int n = Tokenize(line, tok, 5);
  if (n == 0 || Lower(tok[0]) != "%%matrixmarket") {
    return LineError(source, 1, "missing '%%MatrixMarket' header, found '", Snippet(line), "'");
  }
  if (n != 5) {
    return LineError(source, 1,
                     "header must be '%%MatrixMarket matrix <format> <field> <symmetry>', found '",
                     Snippet(line), "'");
  }
  if (Lower(tok[1]) != "matrix") {
    return LineError(source, 1, "object '", tok[1], "' is not supported (only 'matrix')");
  }
  Banner b;
  const std::string layout = Lower(tok[2]), field = Lower(tok[3]), sym = Lower(tok[4]);
  if (layout == "coordinate") {
    b.layout = Layout::kCoordinate;
  } else if (layout == "array") {
    b.layout = Layout::kArray;
  } else {
    return LineError(source, 1, "format '", tok[2], "' is not one of coordinate, array");
  }
  if (field == "real" || field == "double") {
    b.field = Field::kReal;
  } else if (field == "integer") {
    b.field = Field::kInteger;
  } else if (field == "pattern") {
    b.field = Field::kPattern;
  } else if (field == "complex") {
    return LineError(source, 1, "field 'complex' is not supported (values are real f32)");
  } else {
    return LineError(source, 1, "field '", tok[3], "' is not one of real, integer, pattern");
  }
  if (sym == "general") {
    b.symmetry = Symmetry::kGeneral;
  } else if (sym == "symmetric") {
    b.symmetry = Symmetry::kSymmetric;
  } else if (sym == "skew-symmetric") {
    b.symmetry = Symmetry::kSkew;
  } else if (sym == "hermitian") {
    return LineError(source, 1, "symmetry 'hermitian' is not supported (complex matrices only)");
  } else {
    return LineError(source, 1, "symmetry '", tok[4],
                     "' is not one of general, symmetric, skew-symmetric");
  }
  if (b.layout == Layout::kArray && b.field == Field::kPattern) {
    return LineError(source, 1, "'array' format cannot have field 'pattern'");
  }
  if (b.symmetry == Symmetry::kSkew && b.field == Field::kPattern) {
    return LineError(source, 1, "'pattern' matrices cannot be 'skew-symmetric'");
  }
  return b;
}

// Next line that is neither blank nor a comment; false at end of input.
bool NextContentLine(LineReader& lines, std::string_view* line) {
  while (lines.Next(line)) {
    if (!IsBlankLine(*line) && !IsComment(*line)) return true;
  }
  return false;
}

absl::StatusOr<int64_t> ParseSize(std::string_view token, std::string_view what,
                                  std::string_view source, int64_t line_no, std::string_view line) {
  int64_t v = 0;
  if (!ParseInt64(token, &v)) {
    return LineError(source, line_no, what, " '", token, "' is not an integer in size line '",
                     Snippet(line), "'");
  }
  if (v < 0) {
    return LineError(source, line_no, what, " ", v, " is negative in size line '", Snippet(line),
                     "'");
  }
  return v;
}

// Parses one value token of `field` (not pattern).
absl::StatusOr<float> ParseValue(std::string_view token, Field field, std::string_view source,
                                 int64_t line_no, std::string_view line) {
  if (field == Field::kInteger) {
    int64_t v = 0;
    if (!ParseInt64(token, &v)) {
      return LineError(source, line_no, "value '", token, "' is not an integer in '", Snippet(line),
                       "'");
    }
    return static_cast<float>(v);
  }
  double v = 0;
  if (!ParseDouble(token, &v)) {
    return LineError(source, line_no, "value '", token, "' is not a real number in '",
                     Snippet(line), "'");
  }
  return static_cast<float>(v);
}

absl::StatusOr<int64_t> ParseIndex(std::string_view token, std::string_view what, int64_t extent,
                                   std::string_view source, int64_t line_no,
                                   std::string_view line) {
  int64_t v = 0;
  if (!ParseInt64(token, &v)) {
    return LineError(source, line_no, what, " index '", token, "' is not an integer in '",
                     Snippet(line), "'");
  }
  if (v < 1 || v > extent) {
    return LineError(source, line_no, what, " index ", v, " is outside [1, ", extent, "] in '",
                     Snippet(line), "'");
  }
  return v - 1;
}

// a * b as a 128-bit value, for size checks that must not overflow.
__int128 Mul(int64_t a, int64_t b) { return static_cast<__int128>(a) * b; }

absl::StatusOr<Tensor> ReadCoordinate(LineReader& lines, const Banner& b, int64_t rows,
                                      int64_t cols, int64_t nnz, int64_t size_line,
                                      std::string_view source) {
  const bool mirror = b.symmetry != Symmetry::kGeneral;
  const int want_tokens = b.field == Field::kPattern ? 2 : 3;
  std::vector<Entry> entries;
  // An entry takes at least 4 bytes ("1 1\n"), so a header that promises more
  // than the input can hold cannot make us reserve more than the input's size.
  const int64_t plausible = static_cast<int64_t>(lines.remaining() / 4 + 1);
  entries.reserve(static_cast<size_t>(std::min(nnz, plausible) * (mirror ? 2 : 1)));
  int64_t count = 0;
  std::string_view line;
  std::string_view tok[3];
  while (NextContentLine(lines, &line)) {
    const int64_t ln = lines.line_no();
    if (count == nnz) {
      return LineError(source, ln, "more entries than the ", nnz, " declared on line ", size_line,
                       ": '", Snippet(line), "'");
    }
    const int n = Tokenize(line, tok, want_tokens);
    if (n != want_tokens) {
      return LineError(source, ln, "expected ", want_tokens, " fields (",
                       want_tokens == 2 ? "row col" : "row col value", "), found '", Snippet(line),
                       "'");
    }
    ASSIGN_OR_RETURN(const int64_t r, ParseIndex(tok[0], "row", rows, source, ln, line));
    ASSIGN_OR_RETURN(const int64_t c, ParseIndex(tok[1], "column", cols, source, ln, line));
    float v = 1.0f;
    if (b.field != Field::kPattern) {
      ASSIGN_OR_RETURN(v, ParseValue(tok[2], b.field, source, ln, line));
    }
    if (b.symmetry == Symmetry::kSkew && r == c && v != 0.0f) {
      return LineError(source, ln, "skew-symmetric matrix has non-zero diagonal entry '",
                       Snippet(line), "'");
    }
    entries.push_back({r, c, v});
    // Off-diagonal entries stand for both (r, c) and (c, r), whichever
    // triangle the file stored them in.
    if (mirror && r != c) {
      entries.push_back({c, r, b.symmetry == Symmetry::kSkew ? -v : v});
    }
    ++count;
  }
  if (count < nnz) {
    return LineError(source, lines.line_no(), "expected ", nnz, " entries (declared on line ",
                     size_line, ") but the input ends after ", count);
  }
  const int64_t total = static_cast<int64_t>(entries.size());
  if (Mul(rows, cols) < total) {
    return absl::InvalidArgumentError(StrCat(
        source, ": ", total, " entries after expanding symmetric storage exceed rows*cols = ",
        static_cast<int64_t>(Mul(rows, cols)), " (duplicate entries?)"));
  }
  auto row_major = [](const Entry& a, const Entry& e) {
    return a.row != e.row ? a.row < e.row : a.col < e.col;
  };
  if (!std::is_sorted(entries.begin(), entries.end(), row_major)) {
    std::stable_sort(entries.begin(), entries.end(), row_major);
  }
  constexpr int64_t kMax32 = std::numeric_limits<int32_t>::max();
  const bool narrow = rows <= kMax32 && cols <= kMax32 && total <= kMax32;
  TensorDesc desc{
      Format::kCoo, DType::kF32, narrow ? DType::kI32 : DType::kI64, {rows, cols}, total};
  ASSIGN_OR_RETURN(Tensor t, Tensor::Allocate(std::move(desc)));
  VisitIndexType(t.desc().index_dtype, [&](auto tag) {
    using I = decltype(tag);
    std::span<I> ri = t.data<I>("row_idx"), ci = t.data<I>("col_idx");
    std::span<float> val = t.data<float>("values");
    for (int64_t k = 0; k < total; ++k) {
      ri[k] = static_cast<I>(entries[k].row);
      ci[k] = static_cast<I>(entries[k].col);
      val[k] = entries[k].value;
    }
  });
  return t;
}

absl::StatusOr<Tensor> ReadArray(LineReader& lines, const Banner& b, int64_t rows, int64_t cols,
                                 int64_t size_line, std::string_view source) {
  // Symmetric storage lists the lower triangle column by column: with the
  // diagonal for symmetric, without it for skew-symmetric.
  int64_t expected = 0;
  switch (b.symmetry) {
    case Symmetry::kGeneral:
      expected = rows * cols;
      break;
    case Symmetry::kSymmetric:
      expected = rows * (rows + 1) / 2;
      break;
    case Symmetry::kSkew:
      expected = rows * (rows - 1) / 2;
      break;
  }
  std::vector<float> vals;
  // A value takes at least 2 bytes ("0\n"); see ReadCoordinate.
  vals.reserve(
      static_cast<size_t>(std::min(expected, static_cast<int64_t>(lines.remaining() / 2 + 1))));
  std::string_view line;
  std::string_view tok[1];
  while (NextContentLine(lines, &line)) {
    const int64_t ln = lines.line_no();
    if (static_cast<int64_t>(vals.size()) == expected) {
      return LineError(source, ln, "more values than the ", expected, " that the size line ",
                       size_line, " implies: '", Snippet(line), "'");
    }
    if (Tokenize(line, tok, 1) != 1) {
      return LineError(source, ln, "expected one value per line, found '", Snippet(line), "'");
    }
    ASSIGN_OR_RETURN(const float v, ParseValue(tok[0], b.field, source, ln, line));
    vals.push_back(v);
  }
  if (static_cast<int64_t>(vals.size()) < expected) {
    return LineError(source, lines.line_no(), "expected ", expected, " values (implied by line ",
                     size_line, ") but the input ends after ", vals.size());
  }
  ASSIGN_OR_RETURN(Tensor t,
                   Tensor::Allocate({Format::kDense, DType::kF32, DType::kI32, {rows, cols}, 0}));
  std::span<float> a = t.data<float>("values");
  std::fill(a.begin(), a.end(), 0.0f);
  // An empty matrix has nothing to place; without this, "0 <huge>" would spin
  // through the column loop (found by fuzz_matrix_market).
  if (rows == 0 || cols == 0) return t;
  size_t k = 0;
  if (b.symmetry == Symmetry::kGeneral) {
    for (int64_t j = 0; j < cols; ++j) {
      for (int64_t i = 0; i < rows; ++i) a[i * cols + j] = vals[k++];
    }
  } else {
    const bool skew = b.symmetry == Symmetry::kSkew;
    for (int64_t j = 0; j < cols; ++j) {
      for (int64_t i = skew ? j + 1 : j; i < rows; ++i) {
        const float v = vals[k++];
        a[i * cols + j] = v;
        a[j * cols + i] = skew ? -v : v;
      }
    }
  }
  return t;
}

absl::StatusOr<Tensor> ParseText(std::string_view text, std::string_view source) {
  LineReader lines(text);
  std::string_view line;
  if (!lines.Next(&line)) {
    return LineError(source, 1, "empty input: missing '%%MatrixMarket' header");
  }
  ASSIGN_OR_RETURN(const Banner b, ParseBanner(line, source));
  if (!NextContentLine(lines, &line)) {
    return LineError(source, lines.line_no(), "missing size line after the header");
  }
  const int64_t size_line = lines.line_no();
  const int want = b.layout == Layout::kCoordinate ? 3 : 2;
  std::string_view tok[3];
  if (Tokenize(line, tok, want) != want) {
    return LineError(source, size_line, "size line must be '",
                     want == 3 ? "rows cols entries" : "rows cols", "', found '", Snippet(line),
                     "'");
  }
  ASSIGN_OR_RETURN(const int64_t rows, ParseSize(tok[0], "rows", source, size_line, line));
  ASSIGN_OR_RETURN(const int64_t cols, ParseSize(tok[1], "columns", source, size_line, line));
  if (b.symmetry != Symmetry::kGeneral && rows != cols) {
    return LineError(source, size_line,
                     "a symmetric or skew-symmetric matrix must be square, "
                     "size line says ",
                     rows, " x ", cols);
  }
  // Keeps rows*cols (and everything derived from it) far from overflow.
  constexpr int64_t kMaxElements = int64_t{1} << 60;
  if (Mul(rows, cols) > kMaxElements) {
    return LineError(source, size_line, "size ", rows, " x ", cols, " is too large");
  }
  if (b.layout == Layout::kArray) return ReadArray(lines, b, rows, cols, size_line, source);
  ASSIGN_OR_RETURN(const int64_t nnz, ParseSize(tok[2], "entries", source, size_line, line));
  if (nnz > rows * cols) {
    return LineError(source, size_line, "entries ", nnz, " exceed rows*cols = ", rows * cols);
  }
  return ReadCoordinate(lines, b, rows, cols, nnz, size_line, source);
}

// Appends "%.9g" of v: nine significant digits round-trip every f32.
void AppendFloat(std::string& out, float v) {
  char buf[32];
  const int n = std::snprintf(buf, sizeof(buf), "%.9g", static_cast<double>(v));
  out.append(buf, static_cast<size_t>(n));
}

void AppendEntry(std::string& out, int64_t row, int64_t col, float v) {
  char buf[48];
  char* p = std::to_chars(buf, buf + 20, row + 1).ptr;
  *p++ = ' ';
  p = std::to_chars(p, p + 20, col + 1).ptr;
  *p++ = ' ';
  out.append(buf, static_cast<size_t>(p - buf));
  AppendFloat(out, v);
  out += '\n';
}

template <class I>
absl::Status EncodeCoo(const Tensor& t, std::string& out) {
  const int64_t rows = t.desc().rows(), cols = t.desc().cols(), nnz = t.desc().nnz;
  std::span<const I> ri = t.data<I>("row_idx"), ci = t.data<I>("col_idx");
  std::span<const float> val = t.data<float>("values");
  for (int64_t k = 0; k < nnz; ++k) {
    if (ri[k] < 0 || ri[k] >= rows || ci[k] < 0 || ci[k] >= cols) {
      return absl::InvalidArgumentError(StrCat("cannot write COO entry ", k, ": (", ri[k], ", ",
                                               ci[k], ") is outside the shape ", rows, " x ",
                                               cols));
    }
    AppendEntry(out, ri[k], ci[k], val[k]);
  }
  return absl::OkStatus();
}

template <class I>
absl::Status EncodeCsr(const Tensor& t, std::string& out) {
  const int64_t rows = t.desc().rows(), cols = t.desc().cols(), nnz = t.desc().nnz;
  std::span<const I> rp = t.data<I>("row_ptr"), ci = t.data<I>("col_idx");
  std::span<const float> val = t.data<float>("values");
  if (rp[0] != 0 || rp[rows] != nnz) {
    return absl::InvalidArgumentError(StrCat("cannot write CSR: row_ptr[0] = ", rp[0],
                                             " and row_ptr[", rows, "] = ", rp[rows],
                                             " must be 0 and nnz = ", nnz));
  }
  for (int64_t i = 0; i < rows; ++i) {
    if (rp[i + 1] < rp[i] || rp[i + 1] > nnz) {
      return absl::InvalidArgumentError(StrCat("cannot write CSR: row_ptr[", i + 1,
                                               "] = ", rp[i + 1], " is outside [row_ptr[", i,
                                               "] = ", rp[i], ", nnz = ", nnz, "]"));
    }
    for (int64_t k = rp[i]; k < rp[i + 1]; ++k) {
      if (ci[k] < 0 || ci[k] >= cols) {
        return absl::InvalidArgumentError(
            StrCat("cannot write CSR: col_idx[", k, "] = ", ci[k], " is outside [0, ", cols, ")"));
      }
      AppendEntry(out, i, ci[k], val[k]);
    }
  }
  return absl::OkStatus();
}

absl::StatusOr<std::string> Encode(const Tensor& t) {
  if (!t.device().is_cpu()) {
    return absl::InvalidArgumentError(
        StrCat("cannot write a tensor on ", t.device().ToString(), " as Matrix Market"));
  }
  RETURN_IF_ERROR(ValidateDesc(t.desc(), "tensor"));
  const TensorDesc& d = t.desc();
  std::string out;
  if (d.format == Format::kDense) {
    // A 1-D tensor is a column vector.
    const int64_t rows = d.rows(), cols = d.cols();
    out = StrCat("%%MatrixMarket matrix array real general\n", rows, " ", cols, "\n");
    std::span<const float> a = t.data<float>("values");
    for (int64_t j = 0; rows > 0 && j < cols; ++j) {  // no spin over empty columns
      for (int64_t i = 0; i < rows; ++i) {
        AppendFloat(out, a[i * cols + j]);
        out += '\n';
      }
    }
    return out;
  }
  out = StrCat("%%MatrixMarket matrix coordinate real general\n", d.rows(), " ", d.cols(), " ",
               d.nnz, "\n");
  absl::Status s = VisitIndexType(d.index_dtype, [&](auto tag) {
    using I = decltype(tag);
    return d.format == Format::kCoo ? EncodeCoo<I>(t, out) : EncodeCsr<I>(t, out);
  });
  RETURN_IF_ERROR(s);
  return out;
}

}  // namespace

absl::StatusOr<Tensor> ParseMatrixMarket(std::istream& in, std::string_view source) {
  std::ostringstream buf;
  buf << in.rdbuf();
  if (in.bad()) return absl::InvalidArgumentError(StrCat(source, ": read error"));
  return ParseText(buf.view(), source);
}

absl::StatusOr<Tensor> ReadMatrixMarket(const std::string& path) {
  ASSIGN_OR_RETURN(const std::string text, internal::ReadFileBytes(path));
  return ParseText(text, path);
}

absl::Status WriteMatrixMarket(const Tensor& t, std::ostream& out) {
  ASSIGN_OR_RETURN(const std::string text, Encode(t));
  out.write(text.data(), static_cast<std::streamsize>(text.size()));
  if (!out) return absl::DataLossError("writing Matrix Market text to the stream failed");
  return absl::OkStatus();
}

absl::Status WriteMatrixMarket(const Tensor& t, const std::string& path) {
  ASSIGN_OR_RETURN(const std::string text, Encode(t));
  return internal::WriteFileBytes(path, text);
}

}  // namespace sparsed::io

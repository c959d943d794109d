// NumPy .npy: files written by numpy itself (generated at run time), our own
// files read by numpy, round trips and rejection of malformed input.
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <bit>
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <random>
#include <string>
#include <vector>

#include "sparsed/io/npy.h"
#include "sparsed/tensor.h"

namespace sparsed::io {
namespace {

using ::testing::ElementsAreArray;
using ::testing::HasSubstr;

namespace fs = std::filesystem;

// A fresh directory per test program run; removed at exit.
class TempDir {
 public:
  TempDir() {
    std::string tmpl = (fs::temp_directory_path() / "sparsed_npy_XXXXXX").string();
    if (mkdtemp(tmpl.data()) != nullptr) path_ = tmpl;
  }
  ~TempDir() {
    std::error_code ec;
    if (!path_.empty()) fs::remove_all(path_, ec);
  }
  const fs::path& path() const { return path_; }

 private:
  fs::path path_;
};

// Runs a Python program under /usr/bin/python3 (which has numpy) and returns
// its exit status.
int RunPython(const fs::path& dir, const std::string& program) {
  const fs::path script = dir / "prog.py";
  std::ofstream(script) << program;
  const std::string cmd = "/usr/bin/python3 " + script.string();
  return std::system(cmd.c_str());
}

std::string FileBytes(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

// ---------------------------------------------------------------------------
// Files written by numpy.

struct NumpyCase {
  std::string name;     // file stem
  std::string expr;     // numpy expression for the array
  std::string version;  // "" for np.save, else write_array version tuple
  std::vector<int64_t> shape;
  bool fortran;  // whether numpy must have written fortran_order True
  // Expected value at row-major position (i, j), computed here independently.
  std::function<float(int64_t, int64_t)> at;
};

std::vector<NumpyCase> NumpyCases() {
  return {
      {"f4_c_2d",
       "(np.arange(12, dtype=np.float32) * 0.25 - 1).reshape(3, 4)",
       "",
       {3, 4},
       false,
       [](int64_t i, int64_t j) { return static_cast<float>(i * 4 + j) * 0.25f - 1; }},
      {"f4_f_2d",
       "np.asfortranarray((np.arange(12, dtype=np.float32) * 0.25 - 1).reshape(3, 4))",
       "",
       {3, 4},
       true,
       [](int64_t i, int64_t j) { return static_cast<float>(i * 4 + j) * 0.25f - 1; }},
      {"f8_f_2d",
       "np.asfortranarray((np.arange(15) * 0.1).reshape(3, 5))",
       "",
       {3, 5},
       true,
       [](int64_t i, int64_t j) {
         return static_cast<float>(static_cast<double>(i * 5 + j) * 0.1);
       }},
      {"f8_c_1d",
       "np.arange(7) / 6.0",
       "",
       {7},
       false,
       [](int64_t i, int64_t) { return static_cast<float>(static_cast<double>(i) / 6.0); }},
      {"i4_c_1d",
       "np.arange(-3, 7, dtype=np.int32)",
       "",
       {10},
       false,
       [](int64_t i, int64_t) { return static_cast<float>(i - 3); }},
      {"i4_f_2d",
       "np.asfortranarray(np.arange(-10, 10, dtype=np.int32).reshape(4, 5) * 3)",
       "",
       {4, 5},
       true,
       [](int64_t i, int64_t j) { return static_cast<float>((i * 5 + j - 10) * 3); }},
      // Not representable in f32: rounded as static_cast rounds.
      {"i8_f_2d",
       "np.asfortranarray((np.arange(6, dtype=np.int64) * 1000000007 + (1 << 40) + 1).reshape(2, "
       "3))",
       "",
       {2, 3},
       true,
       [](int64_t i, int64_t j) {
         return static_cast<float>((i * 3 + j) * int64_t{1000000007} + (int64_t{1} << 40) + 1);
       }},
      {"i8_c_2d_neg",
       "-np.arange(8, dtype=np.int64).reshape(2, 4) ** 3",
       "",
       {2, 4},
       false,
       [](int64_t i, int64_t j) {
         const int64_t k = i * 4 + j;
         return static_cast<float>(-k * k * k);
       }},
      {"b1_c_2d",
       "(np.arange(12) % 3 == 0).reshape(4, 3)",
       "",
       {4, 3},
       false,
       [](int64_t i, int64_t j) { return (i * 3 + j) % 3 == 0 ? 1.0f : 0.0f; }},
      {"b1_f_2d",
       "np.asfortranarray((np.arange(12) % 5 == 1).reshape(3, 4))",
       "",
       {3, 4},
       true,
       [](int64_t i, int64_t j) { return (i * 4 + j) % 5 == 1 ? 1.0f : 0.0f; }},
      {"u1_c_1d",
       "np.arange(200, 212, dtype=np.uint8)",
       "",
       {12},
       false,
       [](int64_t i, int64_t) { return static_cast<float>(200 + i); }},
      {"f2_c_1d",
       "(np.arange(-6, 6, dtype=np.float16) / 8).astype(np.float16)",
       "",
       {12},
       false,
       [](int64_t i, int64_t) { return static_cast<float>(i - 6) / 8; }},
      // Half special values: zeros, max, smallest subnormal, a subnormal, infs.
      {"f2_special",
       "np.array([0.0, -0.0, 65504.0, 2.0**-24, 3 * 2.0**-20, -(2.0**-14), np.inf, -np.inf], "
       "dtype=np.float16)",
       "",
       {8},
       false,
       [](int64_t i, int64_t) {
         const float v[] = {0.0f,
                            -0.0f,
                            65504.0f,
                            std::ldexp(1.0f, -24),
                            3 * std::ldexp(1.0f, -20),
                            -std::ldexp(1.0f, -14),
                            INFINITY,
                            -INFINITY};
         return v[i];
       }},
      {"v2_f4_2d",
       "np.arange(6, dtype=np.float32).reshape(2, 3) + 0.5",
       "(2, 0)",
       {2, 3},
       false,
       [](int64_t i, int64_t j) { return static_cast<float>(i * 3 + j) + 0.5f; }},
      {"v3_i8_f_2d",
       "np.asfortranarray(np.arange(6, dtype=np.int64).reshape(3, 2) - 2)",
       "(3, 0)",
       {3, 2},
       true,
       [](int64_t i, int64_t j) { return static_cast<float>(i * 2 + j - 2); }},
      {"f4_empty_2d",
       "np.zeros((0, 3), dtype=np.float32)",
       "",
       {0, 3},
       false,
       [](int64_t, int64_t) { return 0.0f; }},
  };
}

class NumpyFiles : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ = new TempDir();
    std::string prog = "import numpy as np\nd = '" + dir_->path().string() + "'\n";
    for (const NumpyCase& c : NumpyCases()) {
      const std::string path = "d + '/" + c.name + ".npy'";
      if (c.version.empty()) {
        prog += "np.save(" + path + ", " + c.expr + ")\n";
      } else {
        prog += "with open(" + path + ", 'wb') as f: np.lib.format.write_array(f, " + c.expr +
                ", version=" + c.version + ")\n";
      }
    }
    status_ = RunPython(dir_->path(), prog);
  }
  static void TearDownTestSuite() {
    delete dir_;
    dir_ = nullptr;
  }
  static TempDir* dir_;
  static int status_;
};
TempDir* NumpyFiles::dir_ = nullptr;
int NumpyFiles::status_ = -1;

TEST_F(NumpyFiles, ReadsEveryDtypeOrderRankAndVersion) {
  ASSERT_EQ(status_, 0) << "numpy could not write the fixtures";
  for (const NumpyCase& c : NumpyCases()) {
    SCOPED_TRACE(c.name);
    const fs::path path = dir_->path() / (c.name + ".npy");
    // The fixture really exercises the layout this case is about.
    const std::string bytes = FileBytes(path);
    ASSERT_GT(bytes.size(), 10u);
    EXPECT_THAT(bytes, HasSubstr(c.fortran ? "'fortran_order': True" : "'fortran_order': False"));
    if (!c.version.empty()) {
      EXPECT_EQ(static_cast<int>(bytes[6]), c.version[1] - '0');
    }

    absl::StatusOr<Tensor> t = ReadNpy(path.string());
    ASSERT_TRUE(t.ok()) << t.status();
    EXPECT_EQ(t->format(), Format::kDense);
    EXPECT_EQ(t->desc().dtype, DType::kF32);
    EXPECT_EQ(t->desc().shape, c.shape);
    const int64_t rows = c.shape[0], cols = c.shape.size() == 2 ? c.shape[1] : 1;
    auto v = t->data<float>("values");
    ASSERT_EQ(static_cast<int64_t>(v.size()), rows * cols);
    for (int64_t i = 0; i < rows; ++i) {
      for (int64_t j = 0; j < cols; ++j) {
        const float want = c.at(i, j);
        EXPECT_EQ(std::bit_cast<uint32_t>(v[i * cols + j]), std::bit_cast<uint32_t>(want))
            << "(" << i << ", " << j << "): " << v[i * cols + j] << " vs " << want;
      }
    }
  }
}

// ---------------------------------------------------------------------------
// Our files: layout, numpy's reading of them, round trips.

Tensor Dense(std::vector<int64_t> shape, const std::function<float(int64_t)>& f) {
  Tensor t = *Tensor::Allocate({Format::kDense, DType::kF32, DType::kI32, std::move(shape), 0});
  auto v = t.data<float>("values");
  for (size_t k = 0; k < v.size(); ++k) v[k] = f(static_cast<int64_t>(k));
  return t;
}

TEST(EncodeNpy, Version1HeaderAlignedTo64Bytes) {
  for (std::vector<int64_t> shape :
       std::vector<std::vector<int64_t>>{{3, 4}, {5}, {0}, {123456, 7}}) {
    Tensor t = Dense(shape, [](int64_t k) { return static_cast<float>(k); });
    absl::StatusOr<std::string> b = EncodeNpy(t);
    ASSERT_TRUE(b.ok()) << b.status();
    ASSERT_GE(b->size(), 10u);
    EXPECT_EQ(b->substr(0, 8), std::string("\x93NUMPY\x01\x00", 8));
    const size_t hlen = static_cast<uint8_t>((*b)[8]) | static_cast<uint8_t>((*b)[9]) << 8;
    EXPECT_EQ((10 + hlen) % 64, 0u);
    EXPECT_EQ((*b)[10 + hlen - 1], '\n');
    const std::string header = b->substr(10, hlen);
    EXPECT_THAT(header, HasSubstr("'descr': '<f4'"));
    EXPECT_THAT(header, HasSubstr("'fortran_order': False"));
    const std::string want_shape =
        shape.size() == 1 ? "(" + std::to_string(shape[0]) + ",)"
                          : "(" + std::to_string(shape[0]) + ", " + std::to_string(shape[1]) + ")";
    EXPECT_THAT(header, HasSubstr("'shape': " + want_shape));
    EXPECT_EQ(b->size() - 10 - hlen, static_cast<size_t>(t.desc().numel()) * 4);
  }
}

TEST(EncodeNpy, RoundTripIsBitExact) {
  std::mt19937 rng(3);
  for (std::vector<int64_t> shape : std::vector<std::vector<int64_t>>{{17, 9}, {33}, {1, 1}}) {
    Tensor t =
        Dense(shape, [&](int64_t) { return std::bit_cast<float>(static_cast<uint32_t>(rng())); });
    absl::StatusOr<std::string> b = EncodeNpy(t);
    ASSERT_TRUE(b.ok()) << b.status();
    absl::StatusOr<Tensor> back = ParseNpy(*b);
    ASSERT_TRUE(back.ok()) << back.status();
    EXPECT_EQ(back->desc().shape, shape);
    auto a = t.data<float>("values"), c = back->data<float>("values");
    ASSERT_EQ(a.size(), c.size());
    EXPECT_EQ(0, std::memcmp(a.data(), c.data(), a.size() * 4));
  }
}

TEST(WriteNpy, NumpyReadsWhatWeWrite) {
  TempDir dir;
  ASSERT_FALSE(dir.path().empty());
  Tensor m = Dense({3, 4}, [](int64_t k) { return static_cast<float>(k) * 0.5f - 3; });
  Tensor v = Dense({5}, [](int64_t k) { return static_cast<float>(k * k); });
  ASSERT_TRUE(WriteNpy(m, (dir.path() / "m.npy").string()).ok());
  ASSERT_TRUE(WriteNpy(v, (dir.path() / "v.npy").string()).ok());
  const std::string prog =
      "import numpy as np, sys\nd = '" + dir.path().string() +
      "'\n"
      "m = np.load(d + '/m.npy')\n"
      "v = np.load(d + '/v.npy')\n"
      "ok = m.dtype == np.float32 and m.shape == (3, 4) and "
      "m.flags.c_contiguous and "
      "(m == (np.arange(12, dtype=np.float32) * 0.5 - 3).reshape(3, 4)).all()\n"
      "ok = ok and v.dtype == np.float32 and v.shape == (5,) and "
      "(v == np.arange(5) ** 2).all()\n"
      "sys.exit(0 if ok else 1)\n";
  EXPECT_EQ(RunPython(dir.path(), prog), 0);
}

TEST(WriteNpy, HalfStaysHalfAndNumpyReadsIt) {
  TempDir dir;
  ASSERT_FALSE(dir.path().empty());
  // Every f16 bit pattern but NaNs, written as '<f2' and checked by NumPy
  // against its own float16 of the same bits.
  std::vector<uint16_t> bits;
  for (uint32_t b = 0; b < 65536; ++b) {
    if ((b & 0x7C00) != 0x7C00 || (b & 0x3FF) == 0) bits.push_back(static_cast<uint16_t>(b));
  }
  absl::StatusOr<Tensor> h = Tensor::Allocate(
      TensorDesc{Format::kDense, DType::kF16, DType::kI32, {static_cast<int64_t>(bits.size())}, 0});
  ASSERT_TRUE(h.ok());
  std::memcpy(h->component("values")->data(), bits.data(), bits.size() * 2);
  const std::string path = (dir.path() / "h.npy").string();
  ASSERT_TRUE(WriteNpy(*h, path).ok());
  const std::string prog =
      "import numpy as np, sys\n"
      "h = np.load('" +
      path +
      "')\n"
      "b = np.arange(65536, dtype=np.uint32)\n"
      "b = b[((b & 0x7C00) != 0x7C00) | ((b & 0x3FF) == 0)].astype(np.uint16)\n"
      "sys.exit(0 if h.dtype == np.float16 and (h.view(np.uint16) == b).all() else 1)\n";
  EXPECT_EQ(RunPython(dir.path(), prog), 0);
  // Read back: f32 by default (exactly widened), f16 when kept.
  absl::StatusOr<Tensor> wide = ReadNpy(path);
  absl::StatusOr<Tensor> kept = ReadNpy(path, /*keep_f16=*/true);
  ASSERT_TRUE(wide.ok() && kept.ok());
  EXPECT_EQ(wide->desc().dtype, DType::kF32);
  ASSERT_EQ(kept->desc().dtype, DType::kF16);
  EXPECT_EQ(0, std::memcmp(kept->component("values")->data(), bits.data(), bits.size() * 2));
  EXPECT_EQ(wide->data<float>("values")[bits.size() - 2], -65504.0f);  // 0xFBFF, before -inf
  // NumPy has no bfloat16: refused with the way out named.
  absl::StatusOr<Tensor> bf =
      Tensor::Allocate(TensorDesc{Format::kDense, DType::kBF16, DType::kI32, {4}, 0});
  ASSERT_TRUE(bf.ok());
  EXPECT_THAT(EncodeNpy(*bf).status().message(), HasSubstr("widen bf16 to f32"));
}

TEST(WriteNpy, RejectsSparseAndBadPaths) {
  Tensor coo = *Tensor::Allocate({Format::kCoo, DType::kF32, DType::kI32, {2, 2}, 0});
  absl::StatusOr<std::string> b = EncodeNpy(coo);
  EXPECT_EQ(b.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(b.status().message()), HasSubstr("coo"));
  Tensor d = Dense({2}, [](int64_t) { return 1.0f; });
  absl::Status s = WriteNpy(d, "/nonexistent/dir/x.npy");
  EXPECT_FALSE(s.ok());
  EXPECT_THAT(std::string(s.message()), HasSubstr("/nonexistent/dir/x.npy"));
}

// ---------------------------------------------------------------------------
// Rejections.

// A .npy with the given header dict (padded as numpy pads) and data bytes.
std::string MakeNpy(const std::string& dict, const std::string& data, int major = 1) {
  const size_t pre = major == 1 ? 10 : 12;
  std::string header = dict;
  while ((pre + header.size() + 1) % 64 != 0) header += ' ';
  header += '\n';
  std::string out("\x93NUMPY", 6);
  out += static_cast<char>(major);
  out += '\0';
  const size_t n = header.size();
  for (size_t i = 0; i < pre - 8; ++i) out += static_cast<char>((n >> (8 * i)) & 0xFF);
  return out + header + data;
}

std::string Dict(const std::string& descr, const std::string& order, const std::string& shape) {
  return "{'descr': '" + descr + "', 'fortran_order': " + order + ", 'shape': " + shape + ", }";
}

TEST(ParseNpy, HandMadeHeadersAreRead) {
  // Double quotes, other key order, no trailing comma, version 2 length field.
  const float data[] = {1.5f, -2.0f};
  const std::string bytes(reinterpret_cast<const char*>(data), sizeof(data));
  absl::StatusOr<Tensor> t = ParseNpy(
      MakeNpy("{\"shape\": (1, 2), \"fortran_order\": False, \"descr\": \"<f4\"}", bytes, 2));
  ASSERT_TRUE(t.ok()) << t.status();
  EXPECT_THAT(t->desc().shape, ElementsAreArray({1, 2}));
  EXPECT_THAT(t->data<float>("values"), ElementsAreArray({1.5f, -2.0f}));
}

struct BadNpy {
  std::string bytes;
  std::vector<std::string> message_parts;
};

TEST(ParseNpy, RejectsMalformedInput) {
  const std::string f8(8, '\0');  // two f4 or one f8
  const std::string ok = MakeNpy(Dict("<f4", "False", "(2,)"), f8);
  const std::vector<BadNpy> cases = {
      {"", {"x.npy", "not a .npy file"}},
      {"PK\x03\x04 zip", {"x.npy", "not a .npy file"}},
      {std::string("\x93NUMPY", 6), {"x.npy", "truncated"}},
      {std::string("\x93NUMPY\x04\x00\x10\x00", 10), {"version 4.0"}},
      {std::string("\x93NUMPY\x01\x00\xff\x00{}", 12), {"truncated header", "255", "has 12"}},
      {ok.substr(0, ok.size() - 3), {"x.npy", "needs 8 bytes", "has 5", "truncated"}},
      {ok + "xy", {"x.npy", "needs 8 bytes", "has 10"}},
      {MakeNpy(Dict(">f4", "False", "(2,)"), f8), {"big-endian", "'>f4'"}},
      {MakeNpy(Dict("<c8", "False", "(1,)"), f8), {"dtype '<c8' is not supported"}},
      {MakeNpy(Dict("|O", "False", "(1,)"), f8), {"dtype '|O' is not supported"}},
      {MakeNpy(Dict("<U2", "False", "(1,)"), f8), {"dtype '<U2' is not supported"}},
      {MakeNpy("{'descr': [('a', '<f4')], 'fortran_order': False, 'shape': (1,), }", f8),
       {"header at byte", "'descr'", "[('a'"}},
      {MakeNpy(Dict("<f4", "False", "()"), std::string(4, '\0')), {"0-d"}},
      {MakeNpy(Dict("<f4", "False", "(1, 1, 2)"), f8), {"(1, 1, 2)", "3 dimensions"}},
      {MakeNpy(Dict("<f4", "False", "(2, -1)"), f8), {"header at byte", "dimension", "-1)"}},
      {MakeNpy(Dict("<f4", "Maybe", "(2,)"), f8), {"header at byte", "True or False", "Maybe"}},
      {MakeNpy(Dict("<f4", "False", "(2 3)"), f8), {"header at byte", "found '3)"}},
      {MakeNpy("{'descr': '<f4', 'shape': (2,), }", f8), {"lacks key 'fortran_order'"}},
      {MakeNpy("{'descr': '<f4', 'fortran_order': False, 'shape': (2,), 'x': 1}", f8),
       {"unexpected key 'x'"}},
      {MakeNpy("{'descr': '<f4', 'descr': '<f4', 'fortran_order': False, 'shape': (2,)}", f8),
       {"duplicate key 'descr'"}},
      {MakeNpy("{'descr': '<f4', 'fortran_order': False, 'shape': (2,) junk", f8),
       {"header at byte", "expected ',' or '}'", "junk"}},
      {MakeNpy("{'descr': '<f4', 'fortran_order': False, 'shape': (2,)} junk", f8),
       {"unexpected text after"}},
      {MakeNpy("{'descr: '<f4', 'fortran_order': False, 'shape': (2,)}", f8), {"header at byte"}},
      // A shape that would need petabytes, backed by 8 bytes: no allocation.
      {MakeNpy(Dict("<f4", "False", "(1000000000, 1000000000)"), f8),
       {"needs 4000000000000000000 bytes", "has 8"}},
      {MakeNpy(Dict("<f8", "False", "(99999999999999999999,)"), f8), {"dimension"}},
  };
  for (const BadNpy& c : cases) {
    SCOPED_TRACE(testing::PrintToString(c.bytes));
    absl::StatusOr<Tensor> t = ParseNpy(c.bytes, "x.npy");
    ASSERT_FALSE(t.ok());
    EXPECT_EQ(t.status().code(), absl::StatusCode::kInvalidArgument);
    for (const std::string& part : c.message_parts) {
      EXPECT_THAT(std::string(t.status().message()), HasSubstr(part));
    }
  }
}

TEST(ReadNpy, MissingFileIsNotFound) {
  absl::StatusOr<Tensor> t = ReadNpy("/nonexistent/dir/x.npy");
  EXPECT_EQ(t.status().code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(std::string(t.status().message()), HasSubstr("/nonexistent/dir/x.npy"));
}

}  // namespace
}  // namespace sparsed::io

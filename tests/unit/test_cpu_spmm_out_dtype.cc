// SpmmArgs::out_dtype on the CPU backend: the result in f32, f16 or bf16
// against a float64 naive reference rounded to that dtype by an encoder
// written here (frexp/nearbyint), independent of sparsed/half.h.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cfenv>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <random>
#include <vector>

#include "kernels_test_util.h"
#include "sparsed/backend.h"
#include "sparsed/cast.h"
#include "sparsed/spmm.h"
#include "sparsed/str_cat.h"

namespace sparsed {
namespace {

using test::Triplet;
using ::testing::HasSubstr;

// An IEEE-style binary format with `exp_bits` exponent and `man_bits`
// fraction bits: f16 = (5, 10), bf16 = (8, 7).
struct Format16 {
  int exp_bits, man_bits;
};
constexpr Format16 kHalf{5, 10}, kBfloat{8, 7};

Format16 FormatOf(DType t) { return t == DType::kF16 ? kHalf : kBfloat; }

// x rounded to nearest even in `f`, as its 16 bits (overflow -> infinity).
uint16_t Encode(double x, Format16 f) {
  const uint16_t sign = std::signbit(x) ? uint16_t(1u << (f.exp_bits + f.man_bits)) : 0;
  const double a = std::fabs(x);
  const int bias = (1 << (f.exp_bits - 1)) - 1;
  const int emin = 1 - bias, emax = bias;
  const uint16_t inf = uint16_t(((1u << f.exp_bits) - 1) << f.man_bits);
  if (std::isinf(a)) return sign | inf;
  if (a == 0) return sign;
  int ex = 0;
  std::frexp(a, &ex);  // a = fr * 2^ex, fr in [0.5, 1)
  int e = std::max(ex - 1, emin);
  // Integer significand at this exponent, rounded to nearest even.
  const double q0 = std::ldexp(a, f.man_bits - e);
  EXPECT_EQ(std::fegetround(), FE_TONEAREST);
  double q = std::nearbyint(q0);
  if (q >= std::ldexp(1.0, f.man_bits + 1)) {  // rounded up to the next binade
    q /= 2;
    ++e;
  }
  if (e > emax) return sign | inf;
  const uint32_t qi = static_cast<uint32_t>(q);
  if (qi < (1u << f.man_bits)) return sign | uint16_t(qi);  // subnormal (e == emin)
  return sign | uint16_t((uint32_t(e + bias) << f.man_bits) | (qi - (1u << f.man_bits)));
}

// Bits mapped to integers whose order is the order of the values (+0 == -0).
int32_t Ordered(uint16_t bits, Format16 f) {
  const uint16_t sign_bit = uint16_t(1u << (f.exp_bits + f.man_bits));
  const int32_t mag = bits & (sign_bit - 1);
  return (bits & sign_bit) ? -mag : mag;
}

// C = epilogue(alpha * A * B + beta * C) in double from the f32 operands.
std::vector<double> Reference(const Tensor& a, const Tensor& b, float alpha, float beta,
                              const Tensor* c, const Tensor* bias, bool relu) {
  const std::vector<double> da = test::Densify(a), db = test::Densify(b);
  const int64_t m = a.desc().rows(), k = a.desc().cols(), n = b.desc().cols();
  const std::vector<float> cv = c ? test::GetValues(*c) : std::vector<float>();
  const std::vector<float> bv = bias ? test::GetValues(*bias) : std::vector<float>();
  std::vector<double> out(m * n);
  for (int64_t i = 0; i < m; ++i) {
    for (int64_t j = 0; j < n; ++j) {
      double s = 0;
      for (int64_t q = 0; q < k; ++q) s += da[i * k + q] * db[q * n + j];
      double x = double{alpha} * s;
      if (c) x += double{beta} * cv[i * n + j];
      if (bias) x += bv[j];
      if (relu) x = std::max(x, 0.0);
      out[i * n + j] = x;
    }
  }
  return out;
}

struct Case {
  Tensor a, b, c, bias;
  float alpha = 1, beta = 0;
  bool relu = false;
  SpmmArgs Args(DType out) const {
    SpmmArgs args;
    args.a = &a;
    args.b = &b;
    args.alpha = alpha;
    args.beta = beta;
    args.c = beta != 0 ? &c : nullptr;
    args.epilogue.bias = &bias;
    args.epilogue.relu = relu;
    args.out_dtype = out;
    return args;
  }
};

// A [m, k] CSR times a [k, n] dense, with C and a bias; `scale` multiplies
// the dense operand, C and the bias (large values overflow f16, small ones
// are f16 subnormals).
Case MakeCase(int64_t m, int64_t k, int64_t n, float scale, std::mt19937_64& rng) {
  Case p;
  p.a = test::MakeCsrFromTriplets(m, k, test::RandomTriplets(m, k, 0.2, rng), DType::kI32);
  std::vector<float> b = test::RandomFloats(k * n, rng);
  for (float& x : b) x *= scale;
  p.b = test::MakeDense({k, n}, b);
  std::vector<float> c = test::RandomFloats(m * n, rng), bias = test::RandomFloats(n, rng);
  for (float& x : c) x *= scale;
  for (float& x : bias) x *= scale;
  p.c = test::MakeDense({m, n}, c);
  p.bias = test::MakeDense({n}, bias);
  p.alpha = 0.75f;
  p.beta = -0.5f;
  return p;
}

void ExpectWithinOneUlp(const Tensor& got, const std::vector<double>& want, DType dtype) {
  ASSERT_EQ(got.desc().dtype, dtype);
  ASSERT_EQ(got.format(), Format::kDense);
  const Format16 f = FormatOf(dtype);
  std::span<const uint16_t> bits = got.data<uint16_t>("values");
  ASSERT_EQ(bits.size(), want.size());
  for (size_t i = 0; i < want.size(); ++i) {
    const uint16_t ref = Encode(want[i], f);
    EXPECT_LE(std::abs(Ordered(bits[i], f) - Ordered(ref, f)), 1)
        << "at " << i << ": got bits 0x" << std::hex << bits[i] << ", reference 0x" << ref
        << std::dec << " (" << want[i] << ")";
  }
}

TEST(ReferenceEncoder, KnownValues) {
  EXPECT_EQ(Encode(1.0, kHalf), 0x3c00);
  EXPECT_EQ(Encode(-2.0, kHalf), 0xc000);
  EXPECT_EQ(Encode(65504.0, kHalf), 0x7bff);
  EXPECT_EQ(Encode(65520.0, kHalf), 0x7c00);  // ties to even: overflows
  EXPECT_EQ(Encode(65519.99, kHalf), 0x7bff);
  EXPECT_EQ(Encode(std::ldexp(1.0, -24), kHalf), 0x0001);        // smallest subnormal
  EXPECT_EQ(Encode(std::ldexp(1.0, -25), kHalf), 0x0000);        // tie to even: 0
  EXPECT_EQ(Encode(1.0 + std::ldexp(1.0, -11), kHalf), 0x3c00);  // tie to even
  EXPECT_EQ(Encode(1.0 + 3 * std::ldexp(1.0, -11), kHalf), 0x3c02);
  EXPECT_EQ(Encode(1.0, kBfloat), 0x3f80);
  EXPECT_EQ(Encode(1.0 + std::ldexp(1.0, -8), kBfloat), 0x3f80);  // tie to even
  EXPECT_EQ(Encode(-3.0e38, kBfloat), 0xff62);
  EXPECT_EQ(Encode(1e39, kBfloat), 0x7f80);
}

TEST(CpuSpmmOutDType, SixteenBitResultsWithinOneUlpOfTheRoundedReference) {
  std::mt19937_64 rng(7);
  for (float scale : {1.0f, 1e-6f, 3e4f}) {  // normal, f16-subnormal, f16-overflowing results
    Case p = MakeCase(37, 53, 19, scale, rng);
    p.relu = scale == 1.0f;
    const std::vector<double> want = Reference(p.a, p.b, p.alpha, p.beta, &p.c, &p.bias, p.relu);
    // The scales reach the edges of f16 they are meant to.
    int infinite = 0, subnormal = 0;
    for (double x : want) {
      const uint16_t h = Encode(x, kHalf) & 0x7fff;
      infinite += h == 0x7c00;
      subnormal += h != 0 && h < 0x0400;
    }
    if (scale > 1) EXPECT_GT(infinite, 0);
    if (scale < 1) EXPECT_GT(subnormal, 0);
    for (DType dtype : {DType::kF16, DType::kBF16}) {
      SCOPED_TRACE(StrCat(DTypeName(dtype), " scale ", scale));
      for (int threads : {1, 4}) {
        absl::StatusOr<Tensor> out = MakeCpuBackend(threads)->Spmm(p.Args(dtype));
        ASSERT_TRUE(out.ok()) << out.status();
        EXPECT_EQ(out->desc().shape, (std::vector<int64_t>{37, 19}));
        ExpectWithinOneUlp(*out, want, dtype);
      }
    }
  }
}

TEST(CpuSpmmOutDType, SixteenBitInputsAndSparseRightOperand) {
  std::mt19937_64 rng(11);
  // Dense [m, k] times CSR [k, n], both stored as bf16 or f16.
  const int64_t m = 23, k = 41, n = 29;
  Tensor d32 = test::MakeDense({m, k}, test::RandomFloats(m * k, rng));
  Tensor s32 = test::MakeCsrFromTriplets(k, n, test::RandomTriplets(k, n, 0.3, rng), DType::kI64);
  for (DType in : {DType::kF16, DType::kBF16}) {
    absl::StatusOr<Tensor> d16 = CastValues(d32, in), s16 = CastValues(s32, in);
    ASSERT_TRUE(d16.ok() && s16.ok());
    // The reference multiplies the exact values the 16-bit operands hold.
    absl::StatusOr<Tensor> dx = CastValues(*d16, DType::kF32), sx = CastValues(*s16, DType::kF32);
    ASSERT_TRUE(dx.ok() && sx.ok());
    const std::vector<double> want = Reference(*dx, *sx, 1.0f, 0.0f, nullptr, nullptr, false);
    for (DType out_dtype : {DType::kF32, DType::kF16, DType::kBF16}) {
      SCOPED_TRACE(StrCat(DTypeName(in), " in, ", DTypeName(out_dtype), " out"));
      SpmmArgs args;
      args.a = &*d16;
      args.b = &*s16;
      args.out_dtype = out_dtype;
      absl::StatusOr<Tensor> out = MakeCpuBackend(2)->Spmm(args);
      ASSERT_TRUE(out.ok()) << out.status();
      if (out_dtype == DType::kF32) {
        ASSERT_EQ(out->desc().dtype, DType::kF32);
        const std::vector<float> got = test::GetValues(*out);
        for (size_t i = 0; i < got.size(); ++i) {
          EXPECT_NEAR(got[i], want[i], 1e-6 * (1 + std::abs(want[i]))) << i;
        }
      } else {
        ExpectWithinOneUlp(*out, want, out_dtype);
      }
    }
  }
}

TEST(CpuSpmmOutDType, DefaultIsF32AndF32IsUnchanged) {
  std::mt19937_64 rng(3);
  Case p = MakeCase(12, 9, 7, 1.0f, rng);
  SpmmArgs defaults = p.Args(DType::kF32);
  defaults.out_dtype = SpmmArgs{}.out_dtype;
  EXPECT_EQ(defaults.out_dtype, DType::kF32);
  absl::StatusOr<Tensor> out = MakeCpuBackend(1)->Spmm(defaults);
  ASSERT_TRUE(out.ok()) << out.status();
  EXPECT_EQ(out->desc().dtype, DType::kF32);
  // The 16-bit results are exactly the f32 result rounded (nearest even).
  for (DType dtype : {DType::kF16, DType::kBF16}) {
    absl::StatusOr<Tensor> r16 = MakeCpuBackend(1)->Spmm(p.Args(dtype));
    ASSERT_TRUE(r16.ok()) << r16.status();
    std::span<const uint16_t> bits = r16->data<uint16_t>("values");
    const std::vector<float> f32 = test::GetValues(*out);
    for (size_t i = 0; i < f32.size(); ++i) {
      EXPECT_EQ(bits[i], Encode(f32[i], FormatOf(dtype))) << i;
    }
  }
}

TEST(CpuSpmmOutDType, CheckRefusesNonValueTypes) {
  std::mt19937_64 rng(5);
  Case p = MakeCase(4, 5, 3, 1.0f, rng);
  for (DType bad : {DType::kI32, DType::kI64, static_cast<DType>(0), static_cast<DType>(9)}) {
    SpmmArgs args = p.Args(bad);
    absl::StatusOr<std::vector<int64_t>> s = CheckSpmm(args);
    EXPECT_EQ(s.status().code(), absl::StatusCode::kInvalidArgument) << s.status();
    EXPECT_THAT(std::string(s.status().message()), HasSubstr("out_dtype = "));
    const std::string value =
        bad == DType::kI32 ? "i32" : (bad == DType::kI64 ? "i64" : StrCat(static_cast<int>(bad)));
    EXPECT_THAT(std::string(s.status().message()), HasSubstr("out_dtype = " + value));
    absl::StatusOr<Tensor> out = MakeCpuBackend(1)->Spmm(args);
    EXPECT_EQ(out.status().code(), absl::StatusCode::kInvalidArgument) << out.status();
    EXPECT_THAT(std::string(out.status().message()), HasSubstr("out_dtype"));
  }
  for (DType good : {DType::kF32, DType::kF16, DType::kBF16}) {
    EXPECT_TRUE(CheckSpmm(p.Args(good)).ok()) << DTypeName(good);
  }
}

}  // namespace
}  // namespace sparsed

#include "spmm/bsr_tc_generator.h"

#include <charconv>
#include <string_view>

#include "sparsed/status.h"
#include "sparsed/str_cat.h"

namespace sparsed::cuda {

std::string_view BsrTcKernelTemplate();  // generated from bsr_tc_kernel.cuh
std::string_view EpilogueSource();       // generated from epilogue.h
std::string_view PtxCopySource();        // generated from spmm/ptx_copy.cuh

namespace {

constexpr int kMaxSmemBytes = 227 * 1024;

absl::StatusOr<int> IntParam(const KernelSpec& spec, const std::string& key, int lo, int hi) {
  auto it = spec.params.find(key);
  if (it == spec.params.end()) {
    return absl::InvalidArgumentError(StrCat(spec.kernel, " needs parameter ", key));
  }
  int v = 0;
  const std::string& s = it->second;
  auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (ec != std::errc() || end != s.data() + s.size() || v < lo || v > hi) {
    return absl::InvalidArgumentError(StrCat(spec.kernel, " parameter ", key, " = '", s,
                                             "' must be an integer in [", lo, ", ", hi, "]"));
  }
  return v;
}

int PickKt(int kblock) {
  for (int kt : {64, 48, 32, 16}) {
    if (kblock % kt == 0) return kt;
  }
  return 16;
}

absl::Status Invalid(const KernelSpec& spec, std::string_view why) {
  return absl::InvalidArgumentError(StrCat(spec.ToString(), ": ", why));
}

}  // namespace

KernelSpec BsrTcSpec(const BsrTcConfig& c) {
  KernelSpec s;
  s.kernel = kBsrTcKernel;
  auto b = [](bool v) { return std::string(v ? "1" : "0"); };
  auto i = [](int v) { return std::to_string(v); };
  const int kblock = c.a_trans ? c.r : c.c;
  s.params = {{"dtype", c.bf16 ? "bf16" : "f16"},
              {"out", c.out_kind == 0   ? "f32"
                      : c.out_kind == 1 ? "bf16"
                                        : "f16"},
              {"idx", c.idx64 ? "i64" : "i32"},
              {"r", i(c.r)},
              {"c", i(c.c)},
              {"a_trans", b(c.a_trans)},
              {"b_nmajor", b(c.b_nmajor)},
              {"c_trans", b(c.c_trans)},
              {"beta", b(c.beta)},
              {"bias", b(c.bias)},
              {"relu", b(c.relu)},
              {"clamp", b(c.clamp)},
              {"bm", i(c.tile.bm)},
              {"bn", i(c.tile.bn)},
              {"wm", i(c.tile.wm)},
              {"wn", i(c.tile.wn)},
              {"stages", i(c.tile.stages)},
              {"kt", i(c.kt == 0 ? PickKt(kblock) : c.kt)}};
  return s;
}

int BsrTcSmemBytes(const BsrTcConfig& c) {
  const int a = c.a_trans ? c.kt * (c.tile.bm + 8) : c.tile.bm * (c.kt + 8);
  const int b = c.b_nmajor ? c.tile.bn * (c.kt + 8) : c.kt * (c.tile.bn + 8);
  return c.tile.stages * (a + b) * 2;
}

absl::StatusOr<BsrTcConfig> BsrTcConfigOf(const KernelSpec& spec) {
  if (spec.kernel != kBsrTcKernel) return Invalid(spec, "not a bsr_spmm_tc spec");
  auto text = [&](const std::string& key,
                  std::initializer_list<std::string_view> allowed) -> absl::StatusOr<int> {
    auto it = spec.params.find(key);
    if (it == spec.params.end()) {
      return absl::InvalidArgumentError(StrCat(spec.kernel, " needs parameter ", key));
    }
    int index = 0;
    for (std::string_view a : allowed) {
      if (it->second == a) return index;
      ++index;
    }
    return absl::InvalidArgumentError(
        StrCat(spec.kernel, " parameter ", key, " = '", it->second, "' is not allowed"));
  };
  BsrTcConfig c;
  ASSIGN_OR_RETURN(int dtype, text("dtype", {"bf16", "f16"}));
  c.bf16 = dtype == 0;
  ASSIGN_OR_RETURN(c.out_kind, text("out", {"f32", "bf16", "f16"}));
  ASSIGN_OR_RETURN(int idx, text("idx", {"i32", "i64"}));
  c.idx64 = idx == 1;
  ASSIGN_OR_RETURN(c.r, IntParam(spec, "r", 16, 128));
  ASSIGN_OR_RETURN(c.c, IntParam(spec, "c", 16, 128));
  bool* flags[] = {&c.a_trans, &c.b_nmajor, &c.c_trans, &c.beta, &c.bias, &c.relu, &c.clamp};
  const char* names[] = {"a_trans", "b_nmajor", "c_trans", "beta", "bias", "relu", "clamp"};
  for (int f = 0; f < 7; ++f) {
    ASSIGN_OR_RETURN(int v, IntParam(spec, names[f], 0, 1));
    *flags[f] = v == 1;
  }
  ASSIGN_OR_RETURN(c.tile.bm, IntParam(spec, "bm", 16, 128));
  ASSIGN_OR_RETURN(c.tile.bn, IntParam(spec, "bn", 16, 256));
  ASSIGN_OR_RETURN(c.tile.wm, IntParam(spec, "wm", 1, 8));
  ASSIGN_OR_RETURN(c.tile.wn, IntParam(spec, "wn", 1, 8));
  ASSIGN_OR_RETURN(c.tile.stages, IntParam(spec, "stages", 2, 6));
  ASSIGN_OR_RETURN(c.kt, IntParam(spec, "kt", 16, 128));
  if (c.r % 16 != 0 || c.c % 16 != 0) return Invalid(spec, "block sides must be multiples of 16");
  if (c.a_trans && c.idx64) return Invalid(spec, "the transposed block index is int32");
  const int obr = c.a_trans ? c.c : c.r, kblock = c.a_trans ? c.r : c.c;
  if (obr % c.tile.bm != 0) return Invalid(spec, "bm must divide the output block rows");
  if (kblock % c.kt != 0 || c.kt % 16 != 0) {
    return Invalid(spec, "kt must be a multiple of 16 dividing the k-block");
  }
  if (c.tile.wm * c.tile.wn > 8) return Invalid(spec, "at most 8 warps");
  if (c.tile.bm % (16 * c.tile.wm) != 0) return Invalid(spec, "warp rows must be multiples of 16");
  if (c.tile.bn % (16 * c.tile.wn) != 0) {
    return Invalid(spec, "warp columns must be multiples of 16");
  }
  const int warp_tiles = (c.tile.bm / c.tile.wm / 16) * (c.tile.bn / c.tile.wn / 8);
  if (warp_tiles > 32) return Invalid(spec, "warp tile larger than 64x64 (registers)");
  if (BsrTcSmemBytes(c) > kMaxSmemBytes) return Invalid(spec, "tile needs too much shared memory");
  return c;
}

absl::StatusOr<KernelSource> BsrTcSource(const KernelSpec& spec) {
  ASSIGN_OR_RETURN(BsrTcConfig c, BsrTcConfigOf(spec));
  auto def = [](std::string& s, const char* name, auto v) {
    s += StrCat("#define ", name, " ", v, "\n");
  };
  std::string src = StrCat("// ", spec.ToString(), "\n");
  def(src, "VAL_BF16", c.bf16 ? 1 : 0);
  def(src, "OUT_KIND", c.out_kind);
  def(src, "IDX_T", c.idx64 ? "long long" : "int");
  def(src, "R", c.r);
  def(src, "CB", c.c);
  def(src, "A_TRANS", c.a_trans ? 1 : 0);
  def(src, "OBR", c.a_trans ? c.c : c.r);
  def(src, "KBS", c.a_trans ? c.r : c.c);
  def(src, "BM", c.tile.bm);
  def(src, "BN", c.tile.bn);
  def(src, "WM", c.tile.wm);
  def(src, "WN", c.tile.wn);
  def(src, "KT", c.kt);
  def(src, "STAGES", c.tile.stages);
  def(src, "B_NMAJOR", c.b_nmajor ? 1 : 0);
  def(src, "C_TRANS", c.c_trans ? 1 : 0);
  def(src, "HAS_BETA", c.beta ? 1 : 0);
  def(src, "HAS_BIAS", c.bias ? 1 : 0);
  def(src, "HAS_RELU", c.relu ? 1 : 0);
  def(src, "HAS_CLAMP", c.clamp ? 1 : 0);
  src += EpilogueSource();
  src += PtxCopySource();
  src += BsrTcKernelTemplate();
  KernelSource out;
  out.name = kBsrTcKernel;
  out.source = std::move(src);
  out.entry = "bsr_spmm_tc";
  out.options = {"-std=c++17"};
  return out;
}

absl::StatusOr<KernelSource> GenerateKernel(const KernelSpec& spec) {
  if (spec.kernel == kBsrTcKernel) return BsrTcSource(spec);
  return absl::InvalidArgumentError(
      StrCat("no kernel generator is named '", spec.kernel, "' (known: ", kBsrTcKernel, ")"));
}

}  // namespace sparsed::cuda

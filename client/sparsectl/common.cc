#include "common.h"

#include <google/protobuf/util/json_util.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <charconv>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <iterator>
#include <sstream>
#include <utility>

#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "sparsed/cast.h"
#include "sparsed/convert.h"
#include "sparsed/io/matrix_market.h"
#include "sparsed/io/npy.h"
#include "sparsed/status.h"
#include "sparsed/str_cat.h"
#include "sparsed/validate.h"

namespace sparsed::client::cli {
namespace {

std::string LowerExtension(const std::string& path) {
  std::string ext = std::filesystem::path(path).extension().string();
  for (char& c : ext) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return ext;
}

absl::Status UnknownExtension(const std::string& path) {
  return absl::InvalidArgumentError(
      StrCat(path, ": unknown file type (expected a .mtx or .npy file name)"));
}

}  // namespace

absl::StatusOr<Tensor> CanonicalFromFile(Tensor t, std::string_view source) {
  if (!IsSparse(t.format()) || ValidateTensor(t).ok()) return t;
  RETURN_IF_ERROR(ValidateTensor(t, {.allow_unsorted = true}, source));
  const int64_t before = t.desc().nnz;
  ASSIGN_OR_RETURN(Tensor sorted, SortAndSumDuplicates(t));
  std::cerr << "sparsectl: note: summed duplicate entries of " << source << " (nnz " << before
            << " -> " << sorted.desc().nnz << ")" << std::endl;
  return sorted;
}

std::pair<int32_t, int32_t> ParseNmArg(const std::string& text) {
  auto parse = [](std::string_view t, int32_t& v) {
    const auto [end, ec] = std::from_chars(t.data(), t.data() + t.size(), v);
    return ec == std::errc() && end == t.data() + t.size() && !t.empty();
  };
  const size_t colon = text.find(':');
  int32_t n = 0, m = 0;
  if (colon != std::string::npos && parse(std::string_view(text).substr(0, colon), n) &&
      parse(std::string_view(text).substr(colon + 1), m)) {
    return {n, m};
  }
  throw CLI::ValidationError("--nm", StrCat("'", text, "' is not N:M (e.g. 2:4)"));
}

absl::StatusOr<std::unique_ptr<Client>> Context::Connect() const {
  ConnectOptions options;
  options.rpc_timeout_seconds = timeout_seconds;
  options.token = token;
  options.tls = tls;
  options.tls_ca_file = tls_ca;
  options.tls_cert_file = tls_cert;
  options.tls_key_file = tls_key;
  options.tls_server_name = tls_server_name;
  options.ttl_seconds = ttl_seconds;
  return Client::Connect(server, options);
}

namespace {

std::string Env(const char* name, const std::string& fallback = "") {
  const char* v = std::getenv(name);
  return v != nullptr && *v != '\0' ? v : fallback;
}

}  // namespace

absl::Status PrintJson(const google::protobuf::Message& message) {
  std::string out;
  google::protobuf::util::JsonPrintOptions options;
  options.always_print_primitive_fields = true;
  options.preserve_proto_field_names = true;
  const auto status = google::protobuf::util::MessageToJsonString(message, &out, options);
  if (!status.ok()) {
    return absl::InternalError(StrCat("cannot print the response as JSON: ", status.ToString()));
  }
  std::cout << out << std::endl;
  return absl::OkStatus();
}

void AddGlobalOptions(CLI::App& app, Context& ctx) {
  ctx.server = Env("SPARSED_ADDR", "127.0.0.1:50051");
  ctx.tls_ca = Env("SPARSED_TLS_CA");
  ctx.tls_cert = Env("SPARSED_TLS_CERT");
  ctx.tls_key = Env("SPARSED_TLS_KEY");
  ctx.tls_server_name = Env("SPARSED_TLS_SERVER_NAME");
  app.add_option("--server", ctx.server, "Daemon address host:port (default: $SPARSED_ADDR)")
      ->capture_default_str();
  app.add_option("--timeout", ctx.timeout_seconds,
                 "Deadline of each call in seconds (0: none; transfers included)")
      ->check(CLI::NonNegativeNumber)
      ->type_name("SECONDS");
  // No default is captured: the help must not print a token from the environment.
  app.add_option("--token", ctx.token,
                 "Bearer token sent with every call (default: $SPARSED_TOKEN). Prefer the "
                 "variable: a command line is visible to other users of the machine")
      ->always_capture_default(false)
      ->type_name("TOKEN");
  app.add_option("--ttl", ctx.ttl_seconds,
                 "Release what the command creates (uploads, results) this many seconds later")
      ->check(CLI::Range(int64_t{1}, int64_t{366} * 24 * 3600))
      ->type_name("SECONDS");
  app.add_flag("--json", ctx.json,
               "Print listings (ls, layer ls) and status as JSON: the API's message in "
               "protobuf's JSON mapping");
  app.add_flag("--tls", ctx.tls,
               "Use TLS, trusting the system's CAs (implied by the other --tls-* options)");
  app.add_option("--tls-ca", ctx.tls_ca,
                 "PEM CA bundle the daemon's certificate must chain to; turns TLS on "
                 "(default: $SPARSED_TLS_CA)")
      ->type_name("FILE");
  app.add_option("--tls-cert", ctx.tls_cert,
                 "PEM client certificate for mutual TLS, with --tls-key (default: "
                 "$SPARSED_TLS_CERT)")
      ->type_name("FILE");
  app.add_option("--tls-key", ctx.tls_key,
                 "PEM private key of --tls-cert (default: $SPARSED_TLS_KEY)")
      ->type_name("FILE");
  app.add_option("--tls-server-name", ctx.tls_server_name,
                 "Name to check the daemon's certificate against instead of the host of "
                 "--server (default: $SPARSED_TLS_SERVER_NAME)")
      ->type_name("NAME");
}

void ApplyGlobalEnv(Context& ctx) {
  if (ctx.token.empty()) ctx.token = Env("SPARSED_TOKEN");
}

void PrintError(const Context& ctx, const absl::Status& status) {
  std::string message(status.message());
  if (status.code() == absl::StatusCode::kUnavailable) {
    message = StrCat("cannot reach sparsed at ", ctx.server, ": ", message);
  }
  std::cerr << "sparsectl: error: " << absl::StatusCodeToString(status.code()) << ": " << message
            << std::endl;
}

void SetRun(CLI::App* cmd, Context& ctx, std::function<absl::Status(Context&)> fn) {
  cmd->callback([&ctx, fn = std::move(fn)] {
    absl::Status s = fn(ctx);
    if (!s.ok()) {
      PrintError(ctx, s);
      ctx.exit_code = 1;
    }
  });
}

CLI::Option* AddLabelOption(CLI::App* cmd, std::map<std::string, std::string>& labels) {
  return cmd
      ->add_option_function<std::vector<std::string>>(
          "--label",
          [&labels](const std::vector<std::string>& items) {
            for (const std::string& kv : items) {
              const size_t eq = kv.find('=');
              labels[kv.substr(0, eq)] = kv.substr(eq + 1);
            }
          },
          "Label KEY=VALUE (repeatable)")
      ->type_name("KEY=VALUE")
      ->check(
          [](const std::string& kv) -> std::string {
            const size_t eq = kv.find('=');
            if (eq == std::string::npos || eq == 0) return "a label must look like KEY=VALUE";
            return "";
          },
          "");
}

absl::Status CheckTensorFileName(const std::string& path) {
  const std::string ext = LowerExtension(path);
  if (ext == ".mtx" || ext == ".npy") return absl::OkStatus();
  return UnknownExtension(path);
}

bool IsFile(const std::string& path) {
  std::error_code ec;
  return std::filesystem::is_regular_file(path, ec);
}

absl::StatusOr<std::string> ReadTextFile(const std::string& file) {
  if (file == "-") {
    return std::string(std::istreambuf_iterator<char>(std::cin), std::istreambuf_iterator<char>());
  }
  if (!IsFile(file)) return absl::NotFoundError(StrCat("'", file, "' is not a readable file"));
  std::ifstream in(file, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  if (!in) {
    return absl::PermissionDeniedError(StrCat("cannot read '", file, "': ", std::strerror(errno)));
  }
  return ss.str();
}

absl::StatusOr<Tensor> ReadTensorFile(const std::string& path) {
  const std::string ext = LowerExtension(path);
  if (ext == ".mtx") return io::ReadMatrixMarket(path);
  if (ext == ".npy") return io::ReadNpy(path, /*keep_f16=*/true);
  return UnknownExtension(path);
}

absl::Status WriteTensorFile(const Tensor& t, const std::string& path) {
  const std::string ext = LowerExtension(path);
  // .mtx stores f32, .npy f32 or f16 (NumPy has no bfloat16); other values
  // widen to f32 exactly.
  const DType dtype = t.desc().dtype;
  if ((ext == ".mtx" && dtype != DType::kF32) ||
      (ext == ".npy" && dtype != DType::kF32 && dtype != DType::kF16)) {
    ASSIGN_OR_RETURN(Tensor wide, CastValues(t, DType::kF32));
    return WriteTensorFile(wide, path);
  }
  if (ext == ".mtx") return io::WriteMatrixMarket(t, path);
  if (ext == ".npy") {
    if (!IsSparse(t.format())) return io::WriteNpy(t, path);
    ASSIGN_OR_RETURN(Tensor dense, Convert(t, Format::kDense));
    return io::WriteNpy(dense, path);
  }
  return UnknownExtension(path);
}

std::string HumanBytes(int64_t bytes) {
  static constexpr const char* kUnits[] = {"B", "KiB", "MiB", "GiB", "TiB", "PiB"};
  if (bytes < 1024) return StrCat(bytes, " B");
  double v = static_cast<double>(bytes);
  int unit = 0;
  while (v >= 1024 && unit + 1 < static_cast<int>(std::size(kUnits))) {
    v /= 1024;
    ++unit;
  }
  return absl::StrFormat("%.1f %s", v, kUnits[unit]);
}

std::string UtcTime(int64_t unix_ms) {
  const std::time_t secs = static_cast<std::time_t>(unix_ms / 1000);
  std::tm tm{};
  gmtime_r(&secs, &tm);
  char buf[32];
  std::strftime(buf, sizeof(buf), "%Y-%m-%d %H:%M:%S", &tm);
  return StrCat(buf, " UTC");
}

std::string ShapeString(const v1::TensorDesc& d) {
  if (d.shape().empty()) return "scalar";
  return absl::StrJoin(d.shape(), "x");
}

std::string FormatString(const v1::TensorDesc& d) {
  const int f = static_cast<int>(d.format());
  if (f < static_cast<int>(Format::kDense) || f > static_cast<int>(Format::kNm)) {
    return StrCat("format#", f);
  }
  return std::string(FormatName(static_cast<Format>(f)));
}

std::string DTypeString(int dtype) {
  if (dtype < 1 || dtype > 5) return dtype == 0 ? "unspecified" : StrCat("dtype#", dtype);
  return std::string(DTypeName(static_cast<DType>(dtype)));
}

bool IsSparseDesc(const v1::TensorDesc& d) {
  return d.format() != v1::DENSE && d.format() != v1::FORMAT_UNSPECIFIED;
}

std::string FormatParams(const v1::TensorDesc& d) {
  if (d.format() == v1::BSR && d.block_size() == 2) {
    return StrCat("block ", d.block(0), "x", d.block(1));
  }
  if (d.format() == v1::NM) return StrCat(d.n(), ":", d.m());
  return "";
}

std::string Summary(const v1::TensorInfo& info) {
  const v1::TensorDesc& d = info.desc();
  const bool sparse = IsSparseDesc(d);
  std::string s = StrCat(FormatString(d), " ", DTypeString(d.dtype()));
  if (sparse && d.format() != v1::NM) {
    const int idx = d.index_dtype() == v1::DTYPE_UNSPECIFIED ? v1::I32 : d.index_dtype();
    s = StrCat(s, "/", DTypeString(idx));
  }
  s = StrCat(s, " ", ShapeString(d));
  if (const std::string params = FormatParams(d); !params.empty()) s = StrCat(s, " ", params);
  if (sparse) s = StrCat(s, " nnz=", d.nnz());
  s = StrCat(s, " ", HumanBytes(info.bytes()));
  if (!info.device().empty()) s = StrCat(s, " on ", info.device());
  return s;
}

std::string IdAndName(const v1::TensorInfo& info) {
  if (info.name().empty()) return info.id();
  return StrCat(info.id(), " (", info.name(), ")");
}

void PrintHeldResult(const v1::OpResult& r) {
  std::cout << r.tensor().id() << std::endl;
  std::cout << "  " << (r.tensor().name().empty() ? "" : StrCat("name=", r.tensor().name(), " "))
            << Summary(r.tensor()) << absl::StrFormat(" (%.3f ms)", r.elapsed_ms()) << std::endl;
}

void PrintTable(const std::vector<std::vector<std::string>>& rows) {
  std::vector<size_t> width;
  for (const auto& row : rows) {
    width.resize(std::max(width.size(), row.size()));
    for (size_t i = 0; i < row.size(); ++i) width[i] = std::max(width[i], row[i].size());
  }
  for (const auto& row : rows) {
    std::string line;
    for (size_t i = 0; i < row.size(); ++i) {
      line += row[i];
      if (i + 1 < row.size()) line += std::string(width[i] - row[i].size() + 2, ' ');
    }
    std::cout << line << "\n";
  }
  std::cout.flush();
}

absl::StatusOr<v1::Operand> OperandFromArg(const std::string& arg) {
  v1::Operand op;
  if (!IsFile(arg)) {
    *op.mutable_ref() = RefFromArg(arg);
    return op;
  }
  ASSIGN_OR_RETURN(Tensor t, ReadTensorFile(arg));
  if (IsSparse(t.format())) {
    ASSIGN_OR_RETURN(t, Convert(t, Format::kDense));
  }
  ASSIGN_OR_RETURN(*op.mutable_inline_(), ToInline(t));
  return op;
}

}  // namespace sparsed::client::cli

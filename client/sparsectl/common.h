// Shared plumbing of the sparsectl commands: global options, connecting,
// error reporting, tensor files and human-readable formatting.
#pragma once

#include <CLI/CLI.hpp>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "google/protobuf/message.h"
#include "sparsed/client/client.h"
#include "sparsed/tensor.h"

namespace sparsed::client::cli {

// Options shared by every command, and the exit code the command leaves.
struct Context {
  std::string server;
  double timeout_seconds = 0;
  std::string token;  // bearer token; never printed
  bool tls = false;
  std::string tls_ca, tls_cert, tls_key, tls_server_name;
  bool json = false;        // listings and status as JSON (the API message) instead of a table
  int64_t ttl_seconds = 0;  // > 0: what the command creates is released after this long
  int exit_code = 0;

  absl::StatusOr<std::unique_ptr<Client>> Connect() const;
};

// Adds --server, --timeout, --token and the TLS options to `app`, with their
// defaults from SPARSED_ADDR, SPARSED_TOKEN, SPARSED_TLS_* (the token is
// taken from the environment only after parsing, so --help never shows it).
void AddGlobalOptions(CLI::App& app, Context& ctx);
// After parsing: what the environment supplies for options not given.
void ApplyGlobalEnv(Context& ctx);

// A tensor read from a file, canonical: Matrix Market files may hold
// unsorted or duplicate entries, which are sorted and summed (with a note on
// stderr); other invalid data is INVALID_ARGUMENT naming `source`.
absl::StatusOr<Tensor> CanonicalFromFile(Tensor t, std::string_view source);

// "N:M" (e.g. 2:4) as (n, m); CLI::ValidationError naming --nm otherwise.
// The daemon checks the values.
std::pair<int32_t, int32_t> ParseNmArg(const std::string& text);

// Makes `cmd` run `fn` when it is selected: a non-OK status is reported as
// "sparsectl: error: CODE: message" and leaves exit code 1. Usage errors found
// by `fn` itself should be thrown as CLI::ValidationError (exit code 2).
void SetRun(CLI::App* cmd, Context& ctx, std::function<absl::Status(Context&)> fn);

// Prints `message` as one JSON object (protobuf's JSON mapping: the field
// names of the .proto in lowerCamelCase, 64-bit integers as strings).
absl::Status PrintJson(const google::protobuf::Message& message);

// Prints "sparsectl: error: CODE: message" to stderr.
void PrintError(const Context& ctx, const absl::Status& status);

// Adds a repeatable "--label k=v" option collecting into `labels`.
CLI::Option* AddLabelOption(CLI::App* cmd, std::map<std::string, std::string>& labels);

// Reads a .mtx (COO for coordinate files, dense for array files) or a .npy
// (dense) file, by extension.
absl::StatusOr<Tensor> ReadTensorFile(const std::string& path);
// Writes .npy (sparse tensors are densified) or .mtx, by extension; 16-bit
// values are widened to f32 (exactly).
absl::Status WriteTensorFile(const Tensor& t, const std::string& path);
// INVALID_ARGUMENT unless `path` ends in .mtx or .npy.
absl::Status CheckTensorFileName(const std::string& path);
// True when `path` names an existing regular file.
bool IsFile(const std::string& path);
// The whole text of `file` ("-": stdin); NOT_FOUND / PERMISSION_DENIED naming it.
absl::StatusOr<std::string> ReadTextFile(const std::string& file);
// An operand from a command-line argument: a local .npy/.mtx file (sent
// inline, densified) or else a held tensor's id or name.
absl::StatusOr<v1::Operand> OperandFromArg(const std::string& arg);

// Formatting.
// Prints rows as left-aligned columns two spaces apart (the first row is the header).
void PrintTable(const std::vector<std::vector<std::string>>& rows);
std::string HumanBytes(int64_t bytes);              // "58.6 KiB"
std::string UtcTime(int64_t unix_ms);               // "2024-01-31 12:00:00 UTC"
std::string ShapeString(const v1::TensorDesc& d);   // "1000x1000"
std::string FormatString(const v1::TensorDesc& d);  // "csr"
bool IsSparseDesc(const v1::TensorDesc& d);         // any format but dense
// BSR: "block 4x4"; N:M: "2:4"; other formats: "".
std::string FormatParams(const v1::TensorDesc& d);
std::string DTypeString(int dtype);  // "f32"
// "csr f32/i32 1000x1000 nnz=5000 58.6 KiB on cpu"
std::string Summary(const v1::TensorInfo& info);
// The id and, if any, the name: "t-0123... (name)".
std::string IdAndName(const v1::TensorInfo& info);
// For an op that held its result: the new id on one line, then
// "  name=N <summary> (0.123 ms)".
void PrintHeldResult(const v1::OpResult& r);

}  // namespace sparsed::client::cli

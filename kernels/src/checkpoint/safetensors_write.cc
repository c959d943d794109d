// Save: streams the header and every component into a temporary file next to
// the target, then fsync + rename + directory fsync. The header is written
// first with placeholder checksums of the same fixed width and patched once
// the data has streamed through (one pass over device memory).
#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <set>
#include <system_error>
#include <thread>

#include "safetensors_layout.h"
#include "sparsed/checkpoint.h"
#include "sparsed/device_memory.h"
#include "sparsed/status.h"
#include "sparsed/str_cat.h"
#include "src/io/posix_file.h"

namespace sparsed::checkpoint {
namespace {

using internal::ArrayKey;
using nlohmann::json;

// Host staging buffer for device components.
constexpr int64_t kChunkBytes = int64_t{16} << 20;

struct PlannedArray {
  std::string key;
  DType dtype;
  std::vector<int64_t> shape;
  const Buffer* buffer;
  uint64_t begin, end;
};

struct Plan {
  std::vector<PlannedArray> arrays;  // in data order
  std::string tensors_json;
};

absl::StatusOr<Plan> MakePlan(const std::vector<EntryRef>& entries) {
  Plan plan;
  json tensors = json::array();
  std::set<std::string> keys, names, array_keys;
  uint64_t offset = 0;
  for (size_t i = 0; i < entries.size(); ++i) {
    const EntryRef& e = entries[i];
    // Keyed by id: ids are the caller's unique handles, names are user text.
    const std::string& key = e.id;
    const std::string field = StrCat("entries[", i, "] (id '", e.id, "')");
    if (e.tensor == nullptr) return absl::InvalidArgumentError(StrCat(field, ": no tensor"));
    if (key.empty()) return absl::InvalidArgumentError(StrCat(field, ": a tensor needs an id"));
    if (key == internal::kMetadataKey) {
      return absl::InvalidArgumentError(StrCat(field, ": the id '", key, "' is reserved"));
    }
    if (!keys.insert(key).second) {
      return absl::InvalidArgumentError(StrCat(field, ": duplicate id '", key, "'"));
    }
    if (!e.name.empty() && !names.insert(e.name).second) {
      return absl::InvalidArgumentError(StrCat(field, ": duplicate name '", e.name, "'"));
    }
    const TensorDesc& d = e.tensor->desc();
    RETURN_IF_ERROR(ValidateDesc(d, field));
    json comps = json::object();
    for (const ComponentSpec& spec : e.tensor->specs()) {
      const Buffer* b = e.tensor->component(spec.name);
      if (b == nullptr || b->size() != spec.bytes()) {
        return absl::InvalidArgumentError(
            StrCat(field, ": component '", spec.name, "' is missing or has the wrong size"));
      }
      std::string ak = ArrayKey(key, d.format, spec.name);
      if (!array_keys.insert(ak).second) {
        return absl::InvalidArgumentError(
            StrCat(field, ": array key '", ak, "' collides with another tensor's"));
      }
      comps[spec.name] = ak;
      const uint64_t size = static_cast<uint64_t>(spec.bytes());
      plan.arrays.push_back(PlannedArray{
          ak, spec.dtype, IsSparse(d.format) ? std::vector<int64_t>{spec.count} : d.shape, b,
          offset, offset + size});
      offset += size;
    }
    json labels = json::object();
    for (const auto& [k, v] : e.labels) labels[k] = v;
    tensors.push_back({{"key", key},
                       {"id", e.id},
                       {"name", e.name},
                       {"labels", labels},
                       {"format", FormatName(d.format)},
                       {"dtype", DTypeName(d.dtype)},
                       {"index_dtype", DTypeName(d.index_dtype)},
                       {"shape", d.shape},
                       {"nnz", d.nnz},
                       {"block", {d.block_rows, d.block_cols}},
                       {"n", d.nm_n},
                       {"m", d.nm_m},
                       {"components", comps}});
  }
  try {
    plan.tensors_json = tensors.dump();
  } catch (const json::exception&) {
    return absl::InvalidArgumentError(
        "entries: an id, name or label is not valid UTF-8 (safetensors headers are JSON)");
  }
  return plan;
}

// The padded header for the given array checksums (same length for any
// checksums: they are fixed-width hex).
std::string MakeHeader(const Plan& plan, const std::vector<uint32_t>& crcs) {
  json checksums = json::object();
  checksums[internal::kTensorsKey] = internal::CrcHex(Crc32c(plan.tensors_json));
  json root = json::object();
  for (size_t i = 0; i < plan.arrays.size(); ++i) {
    const PlannedArray& a = plan.arrays[i];
    checksums[a.key] = internal::CrcHex(crcs[i]);
    root[a.key] = {{"dtype", internal::SafetensorsDType(a.dtype)},
                   {"shape", a.shape},
                   {"data_offsets", {a.begin, a.end}}};
  }
  root[internal::kMetadataKey] = {{"format", internal::kFormatValue},
                                  {"version", internal::kVersionValue},
                                  {internal::kTensorsKey, plan.tensors_json},
                                  {internal::kChecksumsKey, checksums.dump()}};
  std::string header = root.dump();  // keys were checked to be valid UTF-8
  header.resize((header.size() + 7) / 8 * 8, ' ');
  std::string out(8, '\0');
  for (int i = 0; i < 8; ++i) out[i] = static_cast<char>((header.size() >> (8 * i)) & 0xff);
  return out + header;
}

// Test hook: SPARSED_TEST_CHECKPOINT_SLOW_WRITE_US=N writes arrays in 64 KiB
// pieces with an N microsecond pause after each, so that a crash test's
// SIGKILL lands inside the write rather than between saves. Unset in service.
int64_t SlowWritePauseUs() {
  static const int64_t pause_us = [] {
    const char* v = std::getenv("SPARSED_TEST_CHECKPOINT_SLOW_WRITE_US");
    if (v == nullptr) return int64_t{0};
    char* end = nullptr;
    const long long n = std::strtoll(v, &end, 10);
    return (end != v && *end == '\0' && n > 0) ? static_cast<int64_t>(std::min(n, 1000000LL))
                                               : int64_t{0};
  }();
  return pause_us;
}

absl::Status WriteChunk(int fd, std::string_view chunk, const std::string& tmp) {
  const int64_t pause_us = SlowWritePauseUs();
  if (pause_us == 0) return io::posix::WriteAll(fd, chunk, tmp);
  constexpr size_t kPiece = 64 << 10;
  for (size_t at = 0; at < chunk.size(); at += kPiece) {
    RETURN_IF_ERROR(io::posix::WriteAll(fd, chunk.substr(at, kPiece), tmp));
    std::this_thread::sleep_for(std::chrono::microseconds(pause_us));
  }
  return absl::OkStatus();
}

absl::Status WriteArrays(int fd, const Plan& plan, std::vector<uint32_t>& crcs,
                         const std::string& tmp) {
  std::vector<char> staging;
  for (size_t i = 0; i < plan.arrays.size(); ++i) {
    const Buffer* b = plan.arrays[i].buffer;
    const char* src = static_cast<const char*>(b->data());
    uint32_t crc = 0;
    for (int64_t at = 0; at < b->size(); at += kChunkBytes) {
      const int64_t n = std::min(kChunkBytes, b->size() - at);
      std::string_view chunk(src + at, static_cast<size_t>(n));
      if (!b->device().is_cpu()) {
        if (staging.empty()) staging.resize(kChunkBytes);
        RETURN_IF_ERROR(CopyBytes(staging.data(), Device::Cpu(), src + at, b->device(), n));
        chunk = std::string_view(staging.data(), static_cast<size_t>(n));
      }
      crc = Crc32c(chunk, crc);
      RETURN_IF_ERROR(WriteChunk(fd, chunk, tmp));
    }
    crcs[i] = crc;
  }
  return absl::OkStatus();
}

absl::Status WriteTemp(const std::string& tmp, const Plan& plan) {
  io::posix::Fd fd(::open(tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644));
  if (fd.get() < 0) return io::posix::ErrnoError(errno, "create", tmp);
  std::vector<uint32_t> crcs(plan.arrays.size(), 0);
  const std::string placeholder = MakeHeader(plan, crcs);
  RETURN_IF_ERROR(io::posix::WriteAll(fd.get(), placeholder, tmp));
  RETURN_IF_ERROR(WriteArrays(fd.get(), plan, crcs, tmp));
  const std::string header = MakeHeader(plan, crcs);
  if (header.size() != placeholder.size()) {
    return absl::InternalError(StrCat(tmp, ": header length changed while patching checksums"));
  }
  RETURN_IF_ERROR(io::posix::PWriteAll(fd.get(), header, 0, tmp));
  if (::fsync(fd.get()) != 0) return io::posix::ErrnoError(errno, "fsync", tmp);
  if (fd.Close() != 0) return io::posix::ErrnoError(errno, "close", tmp);
  return absl::OkStatus();
}

}  // namespace

absl::Status Save(const std::string& path, const std::vector<EntryRef>& entries) {
  ASSIGN_OR_RETURN(const Plan plan, MakePlan(entries));
  std::filesystem::path parent = std::filesystem::path(path).parent_path();
  if (parent.empty()) parent = ".";
  std::error_code ec;
  std::filesystem::create_directories(parent, ec);
  if (ec) {
    return absl::Status(absl::ErrnoToStatusCode(ec.value()),
                        StrCat("cannot create directory '", parent.string(), "': ", ec.message()));
  }
  static std::atomic<uint64_t> counter{0};
  const std::string tmp = StrCat(path, ".tmp.", ::getpid(), ".", counter.fetch_add(1));
  absl::Status s = WriteTemp(tmp, plan);
  if (s.ok() && std::rename(tmp.c_str(), path.c_str()) != 0) {
    s = io::posix::ErrnoError(errno, StrCat("rename '", tmp, "' to"), path);
  }
  if (!s.ok()) {
    ::unlink(tmp.c_str());  // the previous file, if any, is untouched
    return s;
  }
  return io::posix::SyncDirectory(parent.string());
}

}  // namespace sparsed::checkpoint

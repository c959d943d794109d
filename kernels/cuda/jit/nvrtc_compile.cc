#include "nvrtc_compile.h"

#include <nvrtc.h>

#include <memory>

#include "sparsed/str_cat.h"

namespace sparsed::cuda::jit {
namespace {

struct ProgramDeleter {
  void operator()(nvrtcProgram p) const { nvrtcDestroyProgram(&p); }
};
// nvrtcProgram is a pointer to an opaque struct, so unique_ptr can hold it.
using Program = std::unique_ptr<std::remove_pointer_t<nvrtcProgram>, ProgramDeleter>;

absl::Status NvrtcError(nvrtcResult r, std::string_view call, std::string_view what) {
  return absl::InternalError(StrCat(call, " for ", what, " failed: ", nvrtcGetErrorString(r)));
}

std::string ProgramLog(nvrtcProgram p) {
  size_t size = 0;
  if (nvrtcGetProgramLogSize(p, &size) != NVRTC_SUCCESS || size <= 1) return "";
  std::string log(size, '\0');
  if (nvrtcGetProgramLog(p, log.data()) != NVRTC_SUCCESS) return "";
  log.resize(log.find('\0') == std::string::npos ? log.size() : log.find('\0'));
  while (!log.empty() && (log.back() == '\n' || log.back() == ' ')) log.pop_back();
  return log;
}

bool StartsWithAny(std::string_view s, std::initializer_list<std::string_view> prefixes) {
  for (std::string_view p : prefixes) {
    if (s.starts_with(p)) return true;
  }
  return false;
}

}  // namespace

std::string NvrtcVersion() {
  int major = 0, minor = 0;
  if (nvrtcVersion(&major, &minor) != NVRTC_SUCCESS) return "unknown";
  return StrCat(major, ".", minor);
}

absl::StatusOr<std::vector<std::string>> NvrtcOptions(const KernelSource& source,
                                                      std::string_view arch) {
  std::vector<std::string> options;
  bool has_std = false;
  for (const std::string& o : source.options) {
    // The cache owns the architecture: it is part of the key and must match the device.
    if (StartsWithAny(o, {"--gpu-architecture", "-arch"})) {
      return absl::InvalidArgumentError(
          StrCat("the options of ", source.name, " must not choose an architecture (", o, ")"));
    }
    has_std = has_std || StartsWithAny(o, {"-std", "--std"});
    options.push_back(o);
  }
  if (!has_std) options.push_back("-std=c++17");
  options.push_back(StrCat("--gpu-architecture=", arch));
  return options;
}

absl::StatusOr<std::string> CompileToCubin(const KernelSource& source,
                                           const std::vector<std::string>& options,
                                           std::string_view what) {
  nvrtcProgram raw = nullptr;
  const std::string file = StrCat(source.name.empty() ? "kernel" : source.name, ".cu");
  if (nvrtcResult r =
          nvrtcCreateProgram(&raw, source.source.c_str(), file.c_str(), 0, nullptr, nullptr);
      r != NVRTC_SUCCESS) {
    return NvrtcError(r, "nvrtcCreateProgram", what);
  }
  Program program(raw);
  std::vector<const char*> argv;
  argv.reserve(options.size());
  for (const std::string& o : options) argv.push_back(o.c_str());
  const nvrtcResult compiled =
      nvrtcCompileProgram(program.get(), static_cast<int>(argv.size()), argv.data());
  if (compiled != NVRTC_SUCCESS) {
    std::string log = ProgramLog(program.get());
    if (log.empty()) log = nvrtcGetErrorString(compiled);
    return absl::InternalError(StrCat("compiling ", what, " failed: ", log));
  }
  size_t size = 0;
  if (nvrtcResult r = nvrtcGetCUBINSize(program.get(), &size); r != NVRTC_SUCCESS) {
    return NvrtcError(r, "nvrtcGetCUBINSize", what);
  }
  if (size == 0) {
    return absl::InternalError(
        StrCat("compiling ", what, " produced no cubin (is the architecture a real sm_XX?)"));
  }
  std::string cubin(size, '\0');
  if (nvrtcResult r = nvrtcGetCUBIN(program.get(), cubin.data()); r != NVRTC_SUCCESS) {
    return NvrtcError(r, "nvrtcGetCUBIN", what);
  }
  return cubin;
}

}  // namespace sparsed::cuda::jit

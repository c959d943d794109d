#include "server/process_stats.h"

#include <unistd.h>

#include <charconv>
#include <cstdint>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "sparsed/status.h"
#include "sparsed/str_cat.h"

namespace sparsed::server {
namespace {

absl::StatusOr<std::string> ReadFile(const char* path) {
  std::ifstream in(path);
  if (!in) return absl::UnavailableError(StrCat("cannot open ", path));
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

std::vector<std::string_view> SplitSpaces(std::string_view s) {
  std::vector<std::string_view> out;
  size_t i = 0;
  while (i < s.size()) {
    while (i < s.size() && (s[i] == ' ' || s[i] == '\n')) ++i;
    size_t j = i;
    while (j < s.size() && s[j] != ' ' && s[j] != '\n') ++j;
    if (j > i) out.push_back(s.substr(i, j - i));
    i = j;
  }
  return out;
}

bool ToU64(std::string_view s, uint64_t& v) {
  auto [ptr, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  return ec == std::errc() && ptr == s.data() + s.size();
}

}  // namespace

absl::Status ParseStatm(std::string_view statm, long page_size, ProcessStats& stats) {
  std::vector<std::string_view> f = SplitSpaces(statm);
  uint64_t size = 0, resident = 0;
  if (f.size() < 2 || !ToU64(f[0], size) || !ToU64(f[1], resident)) {
    return absl::InternalError(StrCat("malformed statm: '", statm, "'"));
  }
  stats.virtual_memory_bytes = static_cast<double>(size) * page_size;
  stats.resident_memory_bytes = static_cast<double>(resident) * page_size;
  return absl::OkStatus();
}

absl::Status ParseStat(std::string_view stat, long clock_ticks, double boot_time,
                       ProcessStats& stats) {
  // The command name (field 2) is in parentheses and may contain spaces or
  // ')' itself, so fields are counted from the last ')'.
  size_t paren = stat.rfind(')');
  if (paren == std::string_view::npos || clock_ticks <= 0) {
    return absl::InternalError("malformed /proc/self/stat");
  }
  std::vector<std::string_view> f = SplitSpaces(stat.substr(paren + 1));
  // f[0] is field 3 (state): utime = field 14, stime = 15, starttime = 22.
  uint64_t utime = 0, stime = 0, start = 0;
  if (f.size() < 20 || !ToU64(f[11], utime) || !ToU64(f[12], stime) || !ToU64(f[19], start)) {
    return absl::InternalError("malformed /proc/self/stat");
  }
  const double ticks = static_cast<double>(clock_ticks);
  stats.cpu_seconds = static_cast<double>(utime + stime) / ticks;
  stats.start_time_seconds = boot_time + static_cast<double>(start) / ticks;
  return absl::OkStatus();
}

absl::StatusOr<double> ParseBootTime(std::string_view proc_stat) {
  constexpr std::string_view kKey = "btime ";
  size_t pos = 0;
  while (pos < proc_stat.size()) {
    size_t eol = proc_stat.find('\n', pos);
    if (eol == std::string_view::npos) eol = proc_stat.size();
    std::string_view line = proc_stat.substr(pos, eol - pos);
    uint64_t v = 0;
    if (line.starts_with(kKey) && ToU64(line.substr(kKey.size()), v)) {
      return static_cast<double>(v);
    }
    pos = eol + 1;
  }
  return absl::InternalError("no btime in /proc/stat");
}

absl::StatusOr<ProcessStats> ReadProcessStats() {
  ProcessStats stats;
  ASSIGN_OR_RETURN(std::string statm, ReadFile("/proc/self/statm"));
  RETURN_IF_ERROR(ParseStatm(statm, sysconf(_SC_PAGESIZE), stats));
  ASSIGN_OR_RETURN(std::string proc_stat, ReadFile("/proc/stat"));
  ASSIGN_OR_RETURN(double boot_time, ParseBootTime(proc_stat));
  ASSIGN_OR_RETURN(std::string stat, ReadFile("/proc/self/stat"));
  RETURN_IF_ERROR(ParseStat(stat, sysconf(_SC_CLK_TCK), boot_time, stats));
  return stats;
}

}  // namespace sparsed::server

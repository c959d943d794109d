// How much memory the host lets this process use: physical memory, capped by
// the control group's limit (containers).
#include <unistd.h>

#include <charconv>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "sparsed/buffer.h"

namespace sparsed {
namespace {

// The first line of `path` as a limit: a decimal byte count, or 0 for "max",
// a missing file, or anything else.
int64_t ReadLimit(const std::string& path) {
  std::ifstream in(path);
  std::string line;
  if (!in || !std::getline(in, line)) return 0;
  while (!line.empty() && (line.back() == '\n' || line.back() == ' ')) line.pop_back();
  int64_t v = 0;
  auto [end, ec] = std::from_chars(line.data(), line.data() + line.size(), v);
  if (ec != std::errc() || end != line.data() + line.size() || v <= 0) return 0;
  // cgroup v1 says "unlimited" as a page-rounded value near 2^63.
  if (v >= (int64_t{1} << 60)) return 0;
  return v;
}

// The lowest positive limit of `paths` (0 when none has one).
int64_t FirstLimit(const std::vector<std::string>& paths) {
  for (const std::string& p : paths) {
    if (const int64_t v = ReadLimit(p); v > 0) return v;
  }
  return 0;
}

}  // namespace

int64_t CgroupMemoryLimitBytes(const std::string& proc_cgroup_text, const std::string& root) {
  std::istringstream lines(proc_cgroup_text);
  for (std::string line; std::getline(lines, line);) {
    // hierarchy-id:controllers:path
    const size_t a = line.find(':');
    const size_t b = a == std::string::npos ? a : line.find(':', a + 1);
    if (b == std::string::npos) continue;
    const std::string id = line.substr(0, a), controllers = line.substr(a + 1, b - a - 1);
    std::string path = line.substr(b + 1);
    if (path == "/") path.clear();
    if (id == "0" && controllers.empty()) {  // v2 unified hierarchy
      if (int64_t v = FirstLimit({root + path + "/memory.max", root + "/memory.max"})) return v;
    }
    std::istringstream names(controllers);
    for (std::string c; std::getline(names, c, ',');) {
      if (c != "memory") continue;
      const std::string base = root + "/memory";
      if (int64_t v = FirstLimit(
              {base + path + "/memory.limit_in_bytes", base + "/memory.limit_in_bytes"})) {
        return v;
      }
    }
  }
  return 0;
}

int64_t HostMemoryBytes() {
  const long pages = ::sysconf(_SC_PHYS_PAGES), page = ::sysconf(_SC_PAGE_SIZE);
  const int64_t physical = pages > 0 && page > 0 ? static_cast<int64_t>(pages) * page : 0;
  std::ifstream in("/proc/self/cgroup");
  std::stringstream text;
  text << in.rdbuf();
  const int64_t limit = CgroupMemoryLimitBytes(text.str(), "/sys/fs/cgroup");
  if (limit > 0 && (physical == 0 || limit < physical)) return limit;
  return physical;
}

}  // namespace sparsed

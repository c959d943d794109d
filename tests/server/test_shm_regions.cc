// Shared-memory regions against real POSIX shared memory: registration
// checks, ownership, transfers through the descriptor, and an object that
// shrinks under a registered region.
#include <fcntl.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <sys/mman.h>
#include <unistd.h>

#include <cstring>
#include <numeric>
#include <string>
#include <vector>

#include "server/shm_regions.h"

namespace sparsed::server {
namespace {

using ::testing::HasSubstr;

// A shared-memory object of `bytes` bytes, unlinked when the test ends.
class ShmObject {
 public:
  explicit ShmObject(int64_t bytes) {
    key_ = "/sparsed-test-" + std::to_string(::getpid()) + "-" + std::to_string(counter_++);
    fd_ = ::shm_open(key_.c_str(), O_CREAT | O_EXCL | O_RDWR, 0600);
    EXPECT_GE(fd_, 0) << std::strerror(errno);
    EXPECT_EQ(::ftruncate(fd_, bytes), 0);
  }
  ~ShmObject() {
    ::close(fd_);
    ::shm_unlink(key_.c_str());
  }
  const std::string& key() const { return key_; }
  int fd() const { return fd_; }

 private:
  static inline int counter_ = 0;
  std::string key_;
  int fd_ = -1;
};

TEST(SharedRegionsTest, RegisterChecksEveryField) {
  ShmObject obj(4096);
  SharedRegions regions;
  auto code = [&](const std::string& name, const std::string& key, int64_t off, int64_t size) {
    return regions.Register("", "", name, key, off, size).status();
  };
  EXPECT_THAT(code("", obj.key(), 0, 16).message(), HasSubstr("name is 0 characters"));
  EXPECT_THAT(code("a/b", obj.key(), 0, 16).message(), HasSubstr("name = 'a/b'"));
  EXPECT_THAT(code("r", "no-slash", 0, 16).message(), HasSubstr("must be a shm_open name"));
  EXPECT_THAT(code("r", "/../etc/passwd", 0, 16).message(), HasSubstr("key = '../etc/passwd'"));
  EXPECT_THAT(code("r", obj.key(), -1, 16).message(), HasSubstr("offset = -1"));
  EXPECT_THAT(code("r", obj.key(), 0, 0).message(), HasSubstr("byte_size = 0"));
  EXPECT_THAT(code("r", obj.key(), 4000, 200).message(), HasSubstr("runs past the end"));
  const absl::Status missing = code("r", "/sparsed-test-no-such-object", 0, 16);
  EXPECT_EQ(missing.code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(missing.message(), HasSubstr("no shared-memory object"));
  EXPECT_EQ(regions.size(), 0);
  ASSERT_TRUE(regions.Register("", "", "r", obj.key(), 96, 1000).ok());
  EXPECT_EQ(code("r", obj.key(), 0, 16).code(), absl::StatusCode::kAlreadyExists);
}

TEST(SharedRegionsTest, OwnersSeeOnlyTheirRegions) {
  ShmObject obj(4096);
  SharedRegions regions;
  ASSERT_TRUE(regions.Register("alice", "", "r", obj.key(), 0, 4096).ok());
  ASSERT_TRUE(regions.Register("alice", "s-1", "mine", obj.key(), 0, 4096).ok());
  EXPECT_TRUE(regions.Find("alice", "", "r").ok());
  EXPECT_TRUE(regions.Find("alice", "s-1", "r").ok());  // a tenant's region, seen in its sessions
  EXPECT_TRUE(regions.Find("alice", "s-1", "mine").ok());
  EXPECT_EQ(regions.Find("alice", "s-2", "mine").status().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(regions.Find("alice", "", "mine").status().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(regions.Find("bob", "", "r").status().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(regions.Unregister("bob", "", "r").status().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(regions.List("alice", "").size(), 1u);
  EXPECT_EQ(regions.List("alice", "s-1").size(), 2u);
  // The session ends: its region goes, the tenant's stays.
  EXPECT_EQ(regions.ReleaseEnded([](const std::string&) { return false; }), 1);
  EXPECT_EQ(regions.Find("alice", "s-1", "mine").status().code(), absl::StatusCode::kNotFound);
  EXPECT_TRUE(regions.Unregister("alice", "", "r").ok());
  EXPECT_EQ(regions.size(), 0);
}

TEST(SharedRegionsTest, ReadAndWriteGoThroughTheDescriptor) {
  ShmObject obj(1 << 16);
  std::vector<uint8_t> pattern(1 << 16);
  std::iota(pattern.begin(), pattern.end(), 0);
  ASSERT_EQ(::pwrite(obj.fd(), pattern.data(), pattern.size(), 0),
            static_cast<ssize_t>(pattern.size()));
  SharedRegions regions;
  absl::StatusOr<RegionPtr> r = regions.Register("", "", "r", obj.key(), 1000, 5000);
  ASSERT_TRUE(r.ok()) << r.status();
  std::vector<uint8_t> got(300);
  ASSERT_TRUE((*r)->Read(7, 300, got.data()).ok());
  EXPECT_TRUE(std::equal(got.begin(), got.end(), pattern.begin() + 1007));
  EXPECT_THAT((*r)->Read(4900, 200, got.data()).message(), HasSubstr("not inside region 'r'"));
  const std::vector<uint8_t> ones(100, 1);
  ASSERT_TRUE((*r)->Write(10, 100, ones.data()).ok());
  std::vector<uint8_t> back(100);
  ASSERT_EQ(::pread(obj.fd(), back.data(), 100, 1010), 100);
  EXPECT_EQ(back, ones);
  // Unregistered while a transfer holds it: the descriptor stays usable.
  RegionPtr held = *r;
  ASSERT_TRUE(regions.Unregister("", "", "r").ok());
  EXPECT_TRUE(held->Read(0, 10, got.data()).ok());
}

TEST(SharedRegionsTest, AnObjectShrunkUnderARegionIsAnErrorNotACrash) {
  ShmObject obj(1 << 16);
  SharedRegions regions;
  absl::StatusOr<RegionPtr> r = regions.Register("", "", "r", obj.key(), 0, 1 << 16);
  ASSERT_TRUE(r.ok());
  ASSERT_EQ(::ftruncate(obj.fd(), 100), 0);
  ::shm_unlink(obj.key().c_str());  // the client may unlink, too
  std::vector<char> buf(1 << 16);
  const absl::Status read = (*r)->Read(0, 1 << 16, buf.data());
  EXPECT_EQ(read.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(read.message(), HasSubstr("is now 100 bytes"));
  EXPECT_EQ((*r)->Write(50, 100, buf.data()).code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_TRUE((*r)->Read(0, 100, buf.data()).ok());
}

}  // namespace
}  // namespace sparsed::server

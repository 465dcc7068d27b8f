#include "base/free_space.h"

#include <sys/statvfs.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include <fmt/format.h>

namespace feed {

result<std::uintmax_t> free_bytes(const std::filesystem::path& dir) {
  struct statvfs s {};
  if (::statvfs(dir.c_str(), &s) != 0)
    return error(errc::unavailable, fmt::format("statvfs {}: {}", dir.string(), std::strerror(errno)));
  const std::uintmax_t blocks = ::geteuid() == 0 ? s.f_bfree : s.f_bavail;
  return blocks * static_cast<std::uintmax_t>(s.f_frsize);
}

result<void> check_free_space(const std::filesystem::path& dir, std::uintmax_t min_bytes) {
  const auto left = free_bytes(dir);
  if (!left || *left >= min_bytes) return {};
  return error(errc::unavailable, fmt::format("the file system of {} has {} KiB free, under the {} KiB writes need",
                                              dir.string(), *left / 1024, min_bytes / 1024));
}

}  // namespace feed

#include "base/file_lock.h"

#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <string>

#include <fmt/format.h>

namespace feed {

file_lock& file_lock::operator=(file_lock&& o) noexcept {
  if (this != &o) {
    if (fd_ >= 0) ::close(fd_);
    fd_ = std::exchange(o.fd_, -1);
  }
  return *this;
}

file_lock::~file_lock() {
  if (fd_ >= 0) ::close(fd_);  // releases the lock
}

result<file_lock> file_lock::take(const std::filesystem::path& path) {
  // Not through a symbolic link: the file is truncated and written, and a
  // link placed there would have that done to whatever it names.
  const int fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0644);
  if (fd < 0) return error(errc::unavailable, fmt::format("cannot open {}: {}", path.string(), std::strerror(errno)));
  file_lock lock(fd);
  if (::flock(fd, LOCK_EX | LOCK_NB) != 0) {
    const int why = errno;
    if (why != EWOULDBLOCK)
      return error(errc::unavailable, fmt::format("cannot lock {}: {}", path.string(), std::strerror(why)));
    char buf[32] = {};
    const ssize_t n = ::pread(fd, buf, sizeof buf - 1, 0);
    std::string holder(buf, n > 0 ? static_cast<std::size_t>(n) : 0);
    while (!holder.empty() && (holder.back() == '\n' || holder.back() == ' ')) holder.pop_back();
    const bool digits = !holder.empty() && holder.find_first_not_of("0123456789") == std::string::npos;
    return error(errc::invalid_input, fmt::format("{} is locked by another process{}", path.string(),
                                                  digits ? fmt::format(" (pid {})", holder) : std::string()));
  }
  const std::string pid = std::to_string(::getpid()) + "\n";
  // Best effort: the pid only makes a refusal's message more useful.
  if (::ftruncate(fd, 0) == 0) (void)!::pwrite(fd, pid.data(), pid.size(), 0);
  return lock;
}

}  // namespace feed

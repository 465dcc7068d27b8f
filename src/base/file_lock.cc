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

namespace {

// Opens `path` (creating it) and locks it without waiting. `lock_file`: the
// file is the lock's own, to be written with the holder's pid, so a refusal
// reads the pid, and no symbolic link is followed (a link placed there would
// have the truncation and the write done to whatever it names). A file that
// is only locked in place, never written, may be reached through a link.
result<int> open_locked(const std::filesystem::path& path, bool lock_file) {
  const int fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC | (lock_file ? O_NOFOLLOW : 0), 0644);
  if (fd < 0) return error(errc::unavailable, fmt::format("cannot open {}: {}", path.string(), std::strerror(errno)));
  if (::flock(fd, LOCK_EX | LOCK_NB) == 0) return fd;
  const int why = errno;
  std::string pid;
  if (why == EWOULDBLOCK && lock_file) {
    char buf[32] = {};
    const ssize_t n = ::pread(fd, buf, sizeof buf - 1, 0);
    pid.assign(buf, n > 0 ? static_cast<std::size_t>(n) : 0);
    while (!pid.empty() && (pid.back() == '\n' || pid.back() == ' ')) pid.pop_back();
    if (pid.empty() || pid.find_first_not_of("0123456789") != std::string::npos) pid.clear();
  }
  ::close(fd);
  if (why != EWOULDBLOCK)
    return error(errc::unavailable, fmt::format("cannot lock {}: {}", path.string(), std::strerror(why)));
  return error(errc::invalid_input, fmt::format("{} is locked by another process{}", path.string(),
                                                pid.empty() ? std::string() : fmt::format(" (pid {})", pid)));
}

}  // namespace

result<file_lock> file_lock::take(const std::filesystem::path& path) {
  auto fd = open_locked(path, true);
  if (!fd) return fd.err();
  const std::string pid = std::to_string(::getpid()) + "\n";
  // Best effort: the pid only makes a refusal's message more useful.
  if (::ftruncate(*fd, 0) == 0) (void)!::pwrite(*fd, pid.data(), pid.size(), 0);
  return file_lock(*fd);
}

result<file_lock> file_lock::take_in_place(const std::filesystem::path& path) {
  auto fd = open_locked(path, false);
  if (!fd) return fd.err();
  return file_lock(*fd);
}

}  // namespace feed

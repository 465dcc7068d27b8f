// An exclusive lock on a file, held for the lock object's life: how a
// process claims something on disk that only one process may use at a time
// (the embedded store's database). flock(2), so the kernel drops it when the
// process dies however it dies, and a stale lock file never blocks a
// restart. The file keeps the pid of its holder, for the refusal's message.
#pragma once

#include <filesystem>
#include <utility>

#include "base/result.h"

namespace feed {

class file_lock {
 public:
  file_lock() = default;
  file_lock(file_lock&& o) noexcept : fd_(std::exchange(o.fd_, -1)) {}
  file_lock& operator=(file_lock&& o) noexcept;
  file_lock(const file_lock&) = delete;
  file_lock& operator=(const file_lock&) = delete;
  ~file_lock();

  // Creates `path` if missing and locks it without waiting.
  // errc::invalid_input when another holder has it (the message names its
  // pid when the file says it), errc::unavailable when the file cannot be
  // opened.
  static result<file_lock> take(const std::filesystem::path& path);
  // The same lock on a file whose contents are not the lock's (a database
  // file, created empty if missing): nothing is written to it, and a refusal
  // names no pid.
  static result<file_lock> take_in_place(const std::filesystem::path& path);

  bool held() const { return fd_ >= 0; }

 private:
  explicit file_lock(int fd) : fd_(fd) {}
  int fd_ = -1;
};

}  // namespace feed

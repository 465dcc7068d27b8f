// Whether the file system holding a directory has room left: how the
// embedded store tells readiness probes that its disk is full before a post
// finds out by failing. A store that only learned it from a failed write
// said ready after a restart onto a full disk until the first post failed.
#pragma once

#include <cstdint>
#include <filesystem>

#include "base/result.h"

namespace feed {

// Bytes this process may still write on the file system holding `dir`
// (statvfs: the blocks left to unprivileged users, or all free blocks for
// root, whom the file system lets use its reserve).
result<std::uintmax_t> free_bytes(const std::filesystem::path& dir);

// errc::unavailable, saying how much is free, when less than `min_bytes`
// is. Nothing when the file system cannot be asked: the writes themselves
// will tell.
result<void> check_free_space(const std::filesystem::path& dir, std::uintmax_t min_bytes);

}  // namespace feed

// Names the calling thread, as top, ps -L, perf and /proc/<pid>/task/*/comm
// show it, so that a profile or a per-thread CPU count says which part of
// the server a thread is (bench/cpu_per_post.sh reads them).
#pragma once

#include <string_view>

namespace feed {

// Linux keeps the first 15 bytes. Best effort: a failure changes nothing.
void name_this_thread(std::string_view name);

}  // namespace feed

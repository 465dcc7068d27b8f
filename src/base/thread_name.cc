#include "base/thread_name.h"

#include <pthread.h>

#include <algorithm>
#include <array>

namespace feed {

void name_this_thread(std::string_view name) {
  std::array<char, 16> buf{};
  const auto n = std::min(name.size(), buf.size() - 1);
  std::copy_n(name.data(), n, buf.data());
  pthread_setname_np(pthread_self(), buf.data());
}

}  // namespace feed

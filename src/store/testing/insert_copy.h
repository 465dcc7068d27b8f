// For tests that keep their batch to compare with: insert_batch on a copy of
// `batch`, answering the copy as stored (every message with its seq, in seq
// order, duplicates included).
#pragma once

#include <vector>

#include "store/store.h"

namespace feed {

inline result<std::vector<message>> insert_copy(store& s, std::vector<message> batch) {
  auto r = s.insert_batch(batch);
  if (!r) return r.err();
  return batch;
}

}  // namespace feed

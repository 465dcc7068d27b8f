#include "broadcast/sequencer.h"

namespace feed {

sequencer::sequencer(seq_t last, std::size_t max_pending) : last_(last), max_pending_(max_pending) {}

std::vector<message> sequencer::push(std::vector<message> batch) {
  for (auto& m : batch) {
    if (m.seq <= last_) continue;  // delivered already
    pending_.try_emplace(m.seq.value(), std::move(m));
  }
  return drain();
}

std::vector<message> sequencer::drain() {
  std::vector<message> out;
  auto it = pending_.begin();
  while (it != pending_.end() && it->first == last_.value() + 1) {
    last_ = seq_t{it->first};
    out.push_back(std::move(it->second));
    it = pending_.erase(it);
  }
  return out;
}

std::optional<sequencer::range> sequencer::hole() const {
  if (pending_.empty()) return std::nullopt;
  return range{seq_t{last_.value() + 1}, seq_t{pending_.begin()->first - 1}};
}

std::vector<message> sequencer::give_up_on_hole() {
  if (pending_.size() <= max_pending_ || pending_.empty()) return {};
  last_ = seq_t{pending_.begin()->first - 1};
  return drain();
}

}  // namespace feed

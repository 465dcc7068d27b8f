#include "broadcast/sequencer.h"

namespace feed {

sequencer::sequencer(seq_t last, std::size_t max_pending) : last_(last), max_pending_(max_pending) {}

namespace {

// Whether batch is exactly the seqs after `last`, in order.
bool continues(const std::vector<message>& batch, seq_t last) {
  for (std::size_t i = 0; i < batch.size(); ++i)
    if (batch[i].seq.value() != last.value() + 1 + static_cast<std::int64_t>(i)) return false;
  return true;
}

}  // namespace

std::vector<message> sequencer::push(std::vector<message> batch) {
  // Almost every batch (always in embedded mode) is the next run of the feed
  // with nothing held back: it goes out as it came, without a trip through
  // the waiting map (a node allocated and freed per message).
  if (pending_.empty() && continues(batch, last_)) {
    if (!batch.empty()) last_ = batch.back().seq;
    return batch;
  }
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

#include "broadcast/broadcaster.h"

#include <algorithm>

#include "base/log.h"
#include "base/thread_name.h"
#include "model/sse_frame.h"

namespace feed {

broadcaster::broadcaster(const std::vector<boost::asio::io_context*>& loops, seq_t last, broadcaster_options opts,
                         gap_filler fill, head_probe probe, page_reader read_page)
    : opts_(opts), fill_(std::move(fill)), probe_(std::move(probe)), seq_(last, opts.max_pending) {
  for (auto* loop : loops) hubs_.push_back(std::make_unique<hub>(*loop, last, opts_.hub, read_page));
  gap_thread_ = std::thread([this] {
    name_this_thread("feed-gaps");
    gap_loop();
  });
}

broadcaster::~broadcaster() { stop(); }

void broadcaster::stop() {
  {
    std::lock_guard lock(mu_);
    stopping_ = true;
  }
  gap_cv_.notify_all();
  if (gap_thread_.joinable()) gap_thread_.join();
}

seq_t broadcaster::last_seq() const {
  std::lock_guard lock(mu_);
  return seq_.last();
}

std::size_t broadcaster::open_streams() const {
  std::size_t n = 0;
  for (const auto& h : hubs_) n += h->open_streams();
  return n;
}

void broadcaster::fan_out(std::vector<message> stored) {
  if (stored.empty()) return;
  spdlog::debug("broadcast: {} stored message(s), seq {}..{}", stored.size(), stored.front().seq.value(),
                stored.back().seq.value());
  std::lock_guard lock(mu_);
  const bool had_hole = seq_.hole().has_value();
  deliver(seq_.push(std::move(stored)));
  if (seq_.hole() && !had_hole) {
    hole_since_ = std::chrono::steady_clock::now();
    gap_cv_.notify_all();
  }
  if (auto run = seq_.give_up_on_hole(); !run.empty()) {
    spdlog::error("broadcast: more than {} messages waited behind a hole; skipping to seq {}", opts_.max_pending,
                  run.front().seq.value());
    deliver(std::move(run));
  }
}

void broadcaster::deliver(std::vector<message> run) {
  if (run.empty()) return;
  // Serialized once here and shared by every subscriber of every loop.
  // Consecutive frames share one allocation (a block of up to
  // kFramesPerBlock), each frame_ptr aliasing its place in it: the block
  // lives until the ring drops its last frame, so a hub holds at most
  // kFramesPerBlock - 1 frames beyond its ring bounds.
  std::vector<frame_ptr> frames;
  frames.reserve(run.size());
  for (std::size_t i = 0; i < run.size(); i += kFramesPerBlock) {
    const std::size_t n = std::min(kFramesPerBlock, run.size() - i);
    const auto block = std::make_shared<frame[]>(n);
    for (std::size_t j = 0; j < n; ++j) {
      auto& m = run[i + j];
      block[j] = frame{sse_event_frame(m), std::move(m.user_id), m.seq};
      frames.emplace_back(block, &block[j]);
    }
  }
  // Posting under mu_ keeps every hub's frames in seq order even when
  // several threads fan out at once.
  for (std::size_t i = 0; i + 1 < hubs_.size(); ++i) hubs_[i]->push(frames);
  hubs_.back()->push(std::move(frames));
}

// The store is ahead of what was delivered and no later event arrived to
// reveal the hole: what was missing at one probe and is still missing
// gap_wait later is fetched from the store. Under steady traffic the store
// is ahead at nearly every probe (each message is stored before its event
// comes back), so the wait is for the seqs a probe found missing, not for
// the store to stop being ahead: seqs stored since are on their way.
void broadcaster::probe_tail(std::unique_lock<std::mutex>& lock) {
  lock.unlock();
  auto head = probe_();
  lock.lock();
  const auto now = std::chrono::steady_clock::now();
  if (!head || *head <= seq_.last()) {
    behind_.reset();
    return;
  }
  if (!behind_ || behind_->head <= seq_.last()) {
    behind_ = behind{now, *head};  // what was missing before has arrived
    return;
  }
  if (now - behind_->since < opts_.gap_wait) return;
  const seq_t first{seq_.last().value() + 1}, last = behind_->head;
  lock.unlock();
  auto filled = fill_(first, last);
  lock.lock();
  if (filled) {
    spdlog::warn("broadcast: seq {}..{} never arrived as events; delivered them from the store", first.value(),
                 last.value());
    deliver(seq_.push(std::move(*filled)));
  }
  behind_.reset();
}

void broadcaster::gap_loop() {
  std::unique_lock lock(mu_);
  while (!stopping_) {
    auto hole = seq_.hole();
    if (!hole) {
      if (!probe_ || opts_.head_probe_interval.count() == 0) {
        gap_cv_.wait(lock);
      } else {
        gap_cv_.wait_for(lock, opts_.head_probe_interval);
        if (!stopping_ && !seq_.hole()) probe_tail(lock);
      }
      continue;
    }
    const auto due = hole_since_ + opts_.gap_wait;
    if (std::chrono::steady_clock::now() < due) {
      gap_cv_.wait_until(lock, due);
      continue;
    }
    lock.unlock();
    auto filled = fill_ ? fill_(hole->first, hole->last)
                        : result<std::vector<message>>(error(errc::unavailable, "no gap filler"));
    lock.lock();
    if (!filled) {
      spdlog::warn("broadcast: cannot fill seq {}..{} from the store: {}", hole->first.value(), hole->last.value(),
                   filled.err().message);
    } else {
      deliver(seq_.push(std::move(*filled)));
    }
    hole_since_ = std::chrono::steady_clock::now();
  }
}

}  // namespace feed

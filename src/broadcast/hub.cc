#include "broadcast/hub.h"

#include <algorithm>

#include <boost/asio/post.hpp>

#include "base/log.h"
#include "model/sse_frame.h"

namespace feed {
namespace asio = boost::asio;

namespace {

// Frames gathered into one sendmsg; Linux allows 1024 iovecs, and 64 frames
// already fill a loopback socket buffer's worth of typical events.
constexpr int kMaxIov = 64;
// Gather writes per subscriber per visit, so one fast reader with a deep
// backlog cannot hold the loop; it is visited again in the next pass.
constexpr int kWritesPerVisit = 4;
// The largest frame an accepted message makes: 280 code points of at most
// 6 bytes each once JSON-escaped, plus id, author, time and framing. Store
// pages are sized with it so that one page never exceeds the client buffer.
constexpr std::size_t kMaxFrameBytes = 2048;
constexpr std::uint64_t kPendingSlot = ~std::uint64_t{0};
// The send buffer asked for each subscriber's socket (Linux doubles it, and
// caps it at net.core.wmem_max, 208 KiB by default, doubled).
constexpr std::size_t kSendBufferCap = 256u << 10;

// A page fits the client buffer and is about what the socket takes at once:
// a larger one would only wait in user space, and a burst of clients that
// ask for the whole history would each be served a page they never read.
std::size_t page_rows_for(const hub_options& o) {
  const std::size_t bytes = std::min(o.client_buffer_bytes, kSendBufferCap);
  return std::clamp<std::size_t>(bytes / kMaxFrameBytes, 1, std::max<std::size_t>(o.page_rows, 1));
}

}  // namespace

hub::hub(asio::io_context& ioc, seq_t last, hub_options opts, page_reader read_page)
    : ioc_(ioc),
      opts_(opts),
      read_page_(std::move(read_page)),
      page_rows_(page_rows_for(opts)),
      last_seq_(last),
      heartbeat_timer_(ioc),
      stall_timer_(ioc) {
  if (opts_.heartbeat.count() > 0) arm_heartbeat();
  if (opts_.stall_timeout.count() > 0) arm_stall_sweep();
}

hub::~hub() {
  for (auto& s : subs_) {
    s->dead_ = true;
    s->close(false);
  }
}

void subscriber::writable(bool ok) {
  if (hub_) hub_->on_writable(*this, ok);
}

void subscriber::hung_up() {
  if (hub_ && !dead_) hub_->on_hung_up(*this);
}

void hub::push(std::vector<frame_ptr> frames) {
  asio::post(ioc_, [this, frames = std::move(frames)]() mutable { append(std::move(frames)); });
}

void hub::append(std::vector<frame_ptr> frames) {
  for (auto& f : frames) {
    const seq_t prev = last_seq_;
    if (f->seq.value() != 0) last_seq_ = f->seq;
    const auto size = f->bytes.size();
    ring_.push_back({std::move(f), total_bytes_, prev});
    total_bytes_ += size;
  }
  while (!ring_.empty() &&
         (ring_.size() > opts_.ring_frames || total_bytes_ - ring_.front().start > opts_.ring_bytes)) {
    ring_.pop_front();
    ++base_;
  }
  if (!subs_.empty()) schedule_flush();
}

std::uint64_t hub::start_of(std::uint64_t index) const {
  return index < ring_end() ? ring_[index - base_].start : total_bytes_;
}

bool hub::covers(seq_t after) const {
  if (ring_.empty()) return after >= last_seq_;
  return after >= ring_.front().prev_seq;
}

std::size_t hub::send_buffer_bytes() const { return std::min(opts_.client_buffer_bytes, kSendBufferCap); }

hub::open_result hub::open(std::shared_ptr<subscriber> s, stream_start start) {
  if (closed_ || s->attached_ || s->dead_) return open_result::closed;
  s->hub_ = this;
  s->pending_ = std::move(start.preamble);
  s->pending_sent_ = 0;
  if (start.user_id) s->user_id_ = std::move(*start.user_id);
  s->position_ = start.after;
  s->min_seq_ = start.after;
  s->last_progress_ = std::chrono::steady_clock::now();
  if (covers(start.after)) {
    const auto it =
        std::partition_point(ring_.begin(), ring_.end(), [&](const entry& e) { return e.prev_seq < start.after; });
    s->cursor_ = base_ + static_cast<std::uint64_t>(it - ring_.begin());
    s->exempt_until_ = total_bytes_;  // the backlog it asked for is not lag
  } else {
    return_to_store(*s);
  }
  s->attached_ = true;
  s->index_ = subs_.size();
  auto& added = *s;
  subs_.push_back(std::move(s));
  ++open_streams_;
  write(added);
  return open_result::opened;
}

void hub::on_writable(subscriber& s, bool ok) {
  s.waiting_write_ = false;
  if (!ok || s.dead_) return;
  write(s);
}

void hub::on_hung_up(subscriber& s) {
  ++stats_.closed_by_peer;
  drop(s, "the client closed the connection");
}

void hub::schedule_flush() {
  if (flush_scheduled_) {
    flush_again_ = true;
    return;
  }
  flush_scheduled_ = true;
  asio::post(ioc_, [this] { flush_from(0); });
}

void hub::flush_from(std::size_t index) {
  const std::size_t end = std::min(index + opts_.flush_slice, subs_.size());
  for (std::size_t i = index; i < end && i < subs_.size(); ++i) write(*subs_[i]);
  if (end < subs_.size()) {
    asio::post(ioc_, [this, end] { flush_from(end); });
    return;
  }
  if (flush_again_) {
    flush_again_ = false;
    asio::post(ioc_, [this] { flush_from(0); });
    return;
  }
  flush_scheduled_ = false;
}

std::uint64_t hub::lag(const subscriber& s) const {
  const std::uint64_t at = std::max(start_of(s.cursor_) + s.offset_, s.exempt_until_);
  return total_bytes_ > at ? total_bytes_ - at : 0;
}

void hub::write(subscriber& s) {
  if (!s.attached_ || s.dead_) return;
  // Checked even while the subscriber waits for writability: a client that
  // stopped reading is exactly the one that must be let go.
  if (!s.from_store_ && s.cursor_ < base_) return_to_store(s);
  // The socket is offered what is new before the lag is judged: what it
  // takes at once was never behind. Only a full socket says the client is
  // not keeping up; its lag is judged on every visit, also while it waits
  // for writability, since a client that stopped reading is exactly the one
  // that must be let go. One event is never too far behind, however large
  // against the client buffer: dropped for it, a subscriber would get it
  // only by resuming, each time (a client that reads nothing of it meets
  // the stall timeout).
  if (!s.waiting_write_) {
    for (int round = 0; round < kWritesPerVisit; ++round) {
      if (!refill(s) || !send_some(s)) break;
    }
  }
  if (s.dead_) return;
  if (s.waiting_write_) {
    if (!s.from_store_ && s.cursor_ + 1 < ring_end() && lag(s) > opts_.client_buffer_bytes)
      drop(s, "it is further behind than the client buffer", true);
    return;
  }
  const bool more = s.pending_sent_ < s.pending_.size() || (s.from_store_ ? !s.reading_ : s.cursor_ < ring_end());
  if (more) schedule_flush();
}

// Whether there is something to send now. Asks the store for the next page
// only once the previous one is gone, which is what bounds a subscriber's
// memory while it catches up.
bool hub::refill(subscriber& s) {
  if (s.pending_sent_ < s.pending_.size()) return true;
  if (!s.pending_.empty()) {
    std::string().swap(s.pending_);  // a caught-up subscriber keeps no page-sized buffer
    s.pending_sent_ = 0;
  }
  while (s.from_store_) {
    if (s.reading_ || closed_) return false;
    if (!s.store_done_ && s.position_ < s.store_up_to_) {
      read_from_store(s);
      return false;
    }
    rejoin_ring(s);
  }
  return s.cursor_ < ring_end();
}

void hub::read_from_store(subscriber& s) {
  if (!read_page_) return drop(s, "there is no store to catch up from");
  s.reading_ = true;
  read_query q{s.position_, s.store_up_to_, page_rows_, false, std::nullopt};
  if (!s.user_id_.empty()) q.user_id = s.user_id_;
  stats_.store_pages.fetch_add(1, std::memory_order_relaxed);
  read_page_(q, [this, self = s.shared_from_this()](result<std::vector<message>> rows) mutable {
    asio::post(ioc_, [this, self = std::move(self), rows = std::move(rows)]() mutable {
      on_page(*self, std::move(rows));
    });
  });
}

void hub::on_page(subscriber& s, result<std::vector<message>> rows) {
  s.reading_ = false;
  if (s.dead_ || closed_) return;
  if (!rows) {
    spdlog::warn("sse: cannot read the store for a catching-up subscriber: {}", rows.err().message);
    return drop(s, "the store could not be read");
  }
  if (rows->size() < page_rows_) s.store_done_ = true;
  for (const auto& m : *rows) {
    s.pending_ += sse_event_frame(m);
    if (m.seq > s.position_) s.position_ = m.seq;
  }
  write(s);
}

// The ring evicted the subscriber's next frame (or it starts before the
// ring): read (position, last_seq_] from the store, then continue from the
// ring's current end.
void hub::return_to_store(subscriber& s) {
  if (s.offset_ > 0 && s.partial_) {
    s.pending_.append(s.partial_->bytes, s.offset_);  // finish the frame the client is in the middle of
    s.passed(*s.partial_);
  }
  s.offset_ = 0;
  s.partial_.reset();
  s.from_store_ = true;
  s.store_done_ = false;
  s.store_up_to_ = last_seq_;
  s.cursor_ = ring_end();
}

void hub::rejoin_ring(subscriber& s) {
  if (s.cursor_ < base_) return return_to_store(s);  // evicted again while reading the store
  s.from_store_ = false;
  s.exempt_until_ = total_bytes_;
}

// One gather write of the unsent part of `pending` and of the ring frames
// that follow the cursor. Returns whether the socket took all of it.
bool hub::send_some(subscriber& s) {
  const std::uint64_t end = ring_end();
  iovec iov[kMaxIov];
  std::uint64_t idx[kMaxIov];
  int n = 0;
  std::size_t total = 0;
  if (s.pending_sent_ < s.pending_.size()) {
    iov[0] = {s.pending_.data() + s.pending_sent_, s.pending_.size() - s.pending_sent_};
    idx[0] = kPendingSlot;
    total += iov[0].iov_len;
    n = 1;
  }
  const int first_frame = n;
  for (std::uint64_t i = s.cursor_; !s.from_store_ && i < end && n < kMaxIov; ++i) {
    const frame& f = *ring_[i - base_].f;
    if (!s.wants(f)) {
      if (n == first_frame) s.cursor_ = i + 1, s.passed(f);
      continue;
    }
    const std::size_t skip = (n == first_frame) ? s.offset_ : 0;
    iov[n] = {const_cast<char*>(f.bytes.data() + skip), f.bytes.size() - skip};
    idx[n] = i;
    total += iov[n].iov_len;
    ++n;
  }
  if (n == 0) return false;

  const auto sent_now = s.send({iov, static_cast<std::size_t>(n)});
  if (sent_now.error) {
    if (sent_now.error == std::errc::operation_would_block ||
        sent_now.error == std::errc::resource_unavailable_try_again) {
      wait_writable(s);
      return false;
    }
    if (sent_now.error == std::errc::interrupted) return true;
    ++stats_.closed_by_peer;
    drop(s, sent_now.error.message());
    return false;
  }
  const std::size_t w = sent_now.bytes;
  stats_.writes.fetch_add(1, std::memory_order_relaxed);
  s.last_progress_ = std::chrono::steady_clock::now();
  auto left = w;
  std::uint64_t sent = 0;
  for (int k = 0; k < n; ++k) {
    const std::size_t take = std::min(left, iov[k].iov_len);
    left -= take;
    if (idx[k] == kPendingSlot) {
      s.pending_sent_ += take;
      if (take < iov[k].iov_len) break;
      continue;
    }
    if (take == iov[k].iov_len) {
      s.passed(*ring_[idx[k] - base_].f);
      s.cursor_ = idx[k] + 1;
      s.offset_ = 0;
      s.partial_.reset();
      ++sent;
      continue;
    }
    s.offset_ = (s.cursor_ == idx[k] ? s.offset_ : 0) + take;
    s.cursor_ = idx[k];
    if (s.offset_ > 0) s.partial_ = ring_[idx[k] - base_].f;
    break;
  }
  stats_.frames_sent.fetch_add(sent, std::memory_order_relaxed);
  if (w < total) {
    wait_writable(s);
    return false;
  }
  return true;
}

void hub::wait_writable(subscriber& s) {
  s.waiting_write_ = true;
  s.await_writable();
}

void hub::drop(subscriber& s, std::string_view why, bool slow) {
  if (s.dead_) return;
  auto keep = s.shared_from_this();
  s.dead_ = true;
  if (slow) {
    ++stats_.dropped_slow;
    spdlog::info("sse: disconnecting a subscriber because {}", why);
  } else {
    spdlog::debug("sse: subscriber gone: {}", why);
  }
  s.close(false);
  std::string().swap(s.pending_);
  s.partial_.reset();
  if (s.attached_) {
    const std::size_t i = s.index_;
    if (i < subs_.size() && subs_[i].get() == &s) {
      subs_[i] = std::move(subs_.back());
      subs_[i]->index_ = i;
      subs_.pop_back();
      --open_streams_;
      if (flush_scheduled_) flush_again_ = true;
    }
  }
}

// The comment goes to each stream between two events, straight into its
// own buffer, ahead of whatever ring frames it has still to read. In the
// ring it took a slot from the events for good and was replayed to every
// stream that started or resumed behind it (a day's idle feed: thousands
// of comments before the first event).
void hub::arm_heartbeat() {
  heartbeat_timer_.expires_after(opts_.heartbeat);
  heartbeat_timer_.async_wait([this](boost::system::error_code ec) {
    if (ec || closed_) return;
    // Backwards, because a failed write drops the subscriber, which moves
    // the last one into its place.
    for (std::size_t i = subs_.size(); i-- > 0;) {
      auto& s = *subs_[i];
      if (!between_events(s)) continue;
      s.pending_.assign(kSseHeartbeat);
      s.pending_sent_ = 0;
      stats_.frames_sent.fetch_add(1, std::memory_order_relaxed);
      write(s);
    }
    arm_heartbeat();
  });
}

// Not in the middle of a ring frame, its own buffer (whole frames: the
// preamble, a store page) all sent, and not waiting for a full socket.
// Frames may still wait in the ring: a stream that reads only one author
// is behind most of the time while others post, yet is sent nothing.
bool hub::between_events(const subscriber& s) const {
  return s.attached_ && !s.dead_ && !s.waiting_write_ && s.offset_ == 0 && s.pending_sent_ >= s.pending_.size();
}

// A full socket that takes nothing is a client that stopped reading: without
// this it would hold its connection (and, while catching up, a page) forever
// in a quiet feed, where falling behind never happens.
void hub::arm_stall_sweep() {
  stall_timer_.expires_after(std::min<std::chrono::milliseconds>(opts_.stall_timeout, std::chrono::seconds(1)));
  stall_timer_.async_wait([this](boost::system::error_code ec) {
    if (ec || closed_) return;
    const auto now = std::chrono::steady_clock::now();
    // Backwards, because drop() moves the last subscriber into the gap.
    for (std::size_t i = subs_.size(); i-- > 0;) {
      auto& s = *subs_[i];
      if (s.waiting_write_ && now - s.last_progress_ > opts_.stall_timeout)
        drop(s, "its connection took nothing for the stall timeout", true);
    }
    arm_stall_sweep();
  });
}

void hub::close_all() {
  closed_ = true;
  heartbeat_timer_.cancel();
  stall_timer_.cancel();
  auto subs = std::move(subs_);
  subs_.clear();
  open_streams_ = 0;
  for (auto& s : subs) {
    write(*s);  // best effort: whatever fits in the socket buffer now
    s->dead_ = true;
    s->close(true);
  }
}

}  // namespace feed

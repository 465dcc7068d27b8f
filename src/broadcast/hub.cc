#include "broadcast/hub.h"

#include <sys/socket.h>
#include <sys/uio.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include <boost/asio/post.hpp>

#include "base/log.h"
#include "broadcast/subscriber.h"
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

bool wants(const subscriber& s, const frame& f) {
  if (f.seq.value() == 0) return true;  // comments go to everyone
  return f.seq > s.min_seq && (s.user_id.empty() || f.user_id == s.user_id);
}

void passed(subscriber& s, const frame& f) {
  if (f.seq > s.position) s.position = f.seq;
}

frame_ptr heartbeat_frame() {
  static const frame_ptr f = std::make_shared<const frame>(frame{std::string(kSseHeartbeat), {}, seq_t{0}});
  return f;
}

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
    s->dead = true;
    boost::system::error_code ec;
    s->socket.close(ec);
  }
}

void hub::post(std::vector<frame_ptr> frames) {
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

hub::open_result hub::open(asio::ip::tcp::socket& socket, stream_start start) {
  if (closed_) return open_result::closed;
  auto s = std::make_shared<subscriber>(ioc_);
  s->socket = std::move(socket);
  boost::system::error_code ec;
  s->socket.non_blocking(true, ec);
  // Left alone, the kernel grows a send buffer to 4 MiB, and a burst of
  // clients asking for the whole history and reading nothing would make the
  // loop copy that much into each (300 of them held posts for seconds).
  // Capped, a client that stops reading pins a bounded amount in all
  // (kernel buffer, one page, its lag), and a reader that keeps up does not
  // notice: loopback drains 256 KiB long before the next pass.
  const auto sndbuf = std::min(opts_.client_buffer_bytes, kSendBufferCap);
  s->socket.set_option(asio::socket_base::send_buffer_size(static_cast<int>(sndbuf)), ec);
  s->pending = std::move(start.preamble);
  if (start.user_id) s->user_id = std::move(*start.user_id);
  s->position = start.after;
  s->min_seq = start.after;
  s->last_progress = std::chrono::steady_clock::now();
  if (covers(start.after)) {
    const auto it =
        std::partition_point(ring_.begin(), ring_.end(), [&](const entry& e) { return e.prev_seq < start.after; });
    s->cursor = base_ + static_cast<std::uint64_t>(it - ring_.begin());
    s->exempt_until = total_bytes_;  // the backlog it asked for is not lag
  } else {
    return_to_store(*s);
  }
  s->attached = true;
  s->index = subs_.size();
  subs_.push_back(s);
  ++open_streams_;
  wait_readable(*s);
  write(*s);
  return open_result::opened;
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
  const std::uint64_t at = std::max(start_of(s.cursor) + s.offset, s.exempt_until);
  return total_bytes_ > at ? total_bytes_ - at : 0;
}

void hub::write(subscriber& s) {
  if (!s.attached || s.dead) return;
  // Checked even while the subscriber waits for writability: a client that
  // stopped reading is exactly the one that must be let go.
  if (!s.from_store && s.cursor < base_) return_to_store(s);
  if (!s.from_store && lag(s) > opts_.client_buffer_bytes)
    return drop(s, "it is further behind than the client buffer", true);
  if (s.waiting_write) return;
  for (int round = 0; round < kWritesPerVisit; ++round) {
    if (!refill(s)) return;
    if (!send_some(s)) return;
  }
  const bool more = s.pending_sent < s.pending.size() || (s.from_store ? !s.reading : s.cursor < ring_end());
  if (more) schedule_flush();
}

// Whether there is something to send now. Asks the store for the next page
// only once the previous one is gone, which is what bounds a subscriber's
// memory while it catches up.
bool hub::refill(subscriber& s) {
  if (s.pending_sent < s.pending.size()) return true;
  if (!s.pending.empty()) {
    std::string().swap(s.pending);  // a caught-up subscriber keeps no page-sized buffer
    s.pending_sent = 0;
  }
  while (s.from_store) {
    if (s.reading || closed_) return false;
    if (!s.store_done && s.position < s.store_up_to) {
      read_from_store(s);
      return false;
    }
    rejoin_ring(s);
  }
  return s.cursor < ring_end();
}

void hub::read_from_store(subscriber& s) {
  if (!read_page_) return drop(s, "there is no store to catch up from");
  s.reading = true;
  read_query q{s.position, s.store_up_to, page_rows_, false, std::nullopt};
  if (!s.user_id.empty()) q.user_id = s.user_id;
  stats_.store_pages.fetch_add(1, std::memory_order_relaxed);
  read_page_(q, [this, self = s.shared_from_this()](result<std::vector<message>> rows) mutable {
    asio::post(ioc_, [this, self = std::move(self), rows = std::move(rows)]() mutable {
      on_page(*self, std::move(rows));
    });
  });
}

void hub::on_page(subscriber& s, result<std::vector<message>> rows) {
  s.reading = false;
  if (s.dead || closed_) return;
  if (!rows) {
    spdlog::warn("sse: cannot read the store for a catching-up subscriber: {}", rows.err().message);
    return drop(s, "the store could not be read");
  }
  if (rows->size() < page_rows_) s.store_done = true;
  for (const auto& m : *rows) {
    s.pending += sse_event_frame(m);
    if (m.seq > s.position) s.position = m.seq;
  }
  write(s);
}

// The ring evicted the subscriber's next frame (or it starts before the
// ring): read (position, last_seq_] from the store, then continue from the
// ring's current end.
void hub::return_to_store(subscriber& s) {
  if (s.offset > 0 && s.partial) {
    s.pending.append(s.partial->bytes, s.offset);  // finish the frame the client is in the middle of
    passed(s, *s.partial);
  }
  s.offset = 0;
  s.partial.reset();
  s.from_store = true;
  s.store_done = false;
  s.store_up_to = last_seq_;
  s.cursor = ring_end();
}

void hub::rejoin_ring(subscriber& s) {
  if (s.cursor < base_) return return_to_store(s);  // evicted again while reading the store
  s.from_store = false;
  s.exempt_until = total_bytes_;
}

// One gather write of the unsent part of `pending` and of the ring frames
// that follow the cursor. Returns whether the socket took all of it.
bool hub::send_some(subscriber& s) {
  const std::uint64_t end = ring_end();
  iovec iov[kMaxIov];
  std::uint64_t idx[kMaxIov];
  int n = 0;
  std::size_t total = 0;
  if (s.pending_sent < s.pending.size()) {
    iov[0] = {s.pending.data() + s.pending_sent, s.pending.size() - s.pending_sent};
    idx[0] = kPendingSlot;
    total += iov[0].iov_len;
    n = 1;
  }
  const int first_frame = n;
  for (std::uint64_t i = s.cursor; !s.from_store && i < end && n < kMaxIov; ++i) {
    const frame& f = *ring_[i - base_].f;
    if (!wants(s, f)) {
      if (n == first_frame) s.cursor = i + 1, passed(s, f);
      continue;
    }
    const std::size_t skip = (n == first_frame) ? s.offset : 0;
    iov[n] = {const_cast<char*>(f.bytes.data() + skip), f.bytes.size() - skip};
    idx[n] = i;
    total += iov[n].iov_len;
    ++n;
  }
  if (n == 0) return false;

  msghdr msg{};
  msg.msg_iov = iov;
  msg.msg_iovlen = static_cast<std::size_t>(n);
  const ssize_t w = ::sendmsg(s.socket.native_handle(), &msg, MSG_NOSIGNAL | MSG_DONTWAIT);
  if (w < 0) {
    if (errno == EAGAIN || errno == EWOULDBLOCK) {
      wait_writable(s);
      return false;
    }
    if (errno == EINTR) return true;
    ++stats_.closed_by_peer;
    drop(s, std::strerror(errno));
    return false;
  }
  stats_.writes.fetch_add(1, std::memory_order_relaxed);
  s.last_progress = std::chrono::steady_clock::now();
  auto left = static_cast<std::size_t>(w);
  std::uint64_t sent = 0;
  for (int k = 0; k < n; ++k) {
    const std::size_t take = std::min(left, iov[k].iov_len);
    left -= take;
    if (idx[k] == kPendingSlot) {
      s.pending_sent += take;
      if (take < iov[k].iov_len) break;
      continue;
    }
    if (take == iov[k].iov_len) {
      passed(s, *ring_[idx[k] - base_].f);
      s.cursor = idx[k] + 1;
      s.offset = 0;
      s.partial.reset();
      ++sent;
      continue;
    }
    s.offset = (s.cursor == idx[k] ? s.offset : 0) + take;
    s.cursor = idx[k];
    if (s.offset > 0) s.partial = ring_[idx[k] - base_].f;
    break;
  }
  stats_.frames_sent.fetch_add(sent, std::memory_order_relaxed);
  if (static_cast<std::size_t>(w) < total) {
    wait_writable(s);
    return false;
  }
  return true;
}

void hub::wait_writable(subscriber& s) {
  s.waiting_write = true;
  s.socket.async_wait(asio::socket_base::wait_write, [this, self = s.shared_from_this()](boost::system::error_code ec) {
    self->waiting_write = false;
    if (ec || self->dead) return;
    write(*self);
  });
}

void hub::wait_readable(subscriber& s) {
  // Clients send nothing after the request; readability means they closed
  // (or sent junk, which is discarded). Without this a silent peer would be
  // noticed only at the next write.
  s.socket.async_wait(asio::socket_base::wait_read, [this, self = s.shared_from_this()](boost::system::error_code ec) {
    if (ec || self->dead) return;
    char buf[256];
    const ssize_t r = ::recv(self->socket.native_handle(), buf, sizeof buf, MSG_DONTWAIT);
    if (r == 0 || (r < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)) {
      ++stats_.closed_by_peer;
      return drop(*self, "the client closed the connection");
    }
    wait_readable(*self);
  });
}

void hub::drop(subscriber& s, const char* why, bool slow) {
  if (s.dead) return;
  auto keep = s.shared_from_this();
  s.dead = true;
  if (slow) {
    ++stats_.dropped_slow;
    spdlog::info("sse: disconnecting a subscriber because {}", why);
  } else {
    spdlog::debug("sse: subscriber gone: {}", why);
  }
  boost::system::error_code ec;
  s.socket.close(ec);
  std::string().swap(s.pending);
  s.partial.reset();
  if (s.attached) {
    const std::size_t i = s.index;
    if (i < subs_.size() && subs_[i].get() == &s) {
      subs_[i] = std::move(subs_.back());
      subs_[i]->index = i;
      subs_.pop_back();
      --open_streams_;
      if (flush_scheduled_) flush_again_ = true;
    }
  }
}

void hub::arm_heartbeat() {
  heartbeat_timer_.expires_after(opts_.heartbeat);
  heartbeat_timer_.async_wait([this](boost::system::error_code ec) {
    if (ec || closed_) return;
    if (!subs_.empty()) append({heartbeat_frame()});
    arm_heartbeat();
  });
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
      if (s.waiting_write && now - s.last_progress > opts_.stall_timeout)
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
    s->dead = true;
    boost::system::error_code ec;
    s->socket.shutdown(asio::socket_base::shutdown_send, ec);
    s->socket.close(ec);
  }
}

}  // namespace feed

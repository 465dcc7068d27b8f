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
// Gather writes per subscriber per pass, so one fast reader with a deep
// backlog cannot hold the loop.
constexpr int kWritesPerVisit = 4;

bool wants(const subscriber& s, const frame& f) {
  if (f.seq.value() == 0) return true;  // comments go to everyone
  return f.seq > s.min_seq && (s.user_id.empty() || f.user_id == s.user_id);
}

frame_ptr heartbeat_frame() {
  static const frame_ptr f = std::make_shared<const frame>(frame{std::string(kSseHeartbeat), {}, seq_t{0}});
  return f;
}

}  // namespace

hub::hub(asio::io_context& ioc, seq_t last, hub_options opts)
    : ioc_(ioc), opts_(opts), last_seq_(last), heartbeat_timer_(ioc) {
  if (opts_.heartbeat.count() > 0) arm_heartbeat();
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
  return index < base_ + ring_.size() ? ring_[index - base_].start : total_bytes_;
}

bool hub::covers(seq_t after) const {
  if (ring_.empty()) return after >= last_seq_;
  return after >= ring_.front().prev_seq;
}

std::shared_ptr<subscriber> hub::reserve(seq_t from, seq_t min_seq, std::optional<std::string> user_id) {
  auto s = std::make_shared<subscriber>(ioc_);
  const auto it = std::partition_point(ring_.begin(), ring_.end(), [&](const entry& e) { return e.prev_seq < from; });
  s->cursor = base_ + static_cast<std::uint64_t>(it - ring_.begin());
  s->min_seq = min_seq;
  if (user_id) s->user_id = std::move(*user_id);
  return s;
}

hub::attach_result hub::attach(const std::shared_ptr<subscriber>& s, asio::ip::tcp::socket& socket) {
  if (closed_) return attach_result::closed;
  if (s->cursor < base_) return attach_result::fell_behind;
  s->socket = std::move(socket);
  boost::system::error_code ec;
  s->socket.non_blocking(true, ec);
  s->attached = true;
  s->index = subs_.size();
  subs_.push_back(s);
  ++open_streams_;
  wait_readable(*s);
  write(*s);
  return attach_result::attached;
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

void hub::write(subscriber& s) {
  if (!s.attached || s.dead) return;
  const std::uint64_t end = base_ + ring_.size();
  // Checked even while the subscriber waits for writability: a client that
  // stopped reading is exactly the one that must be let go.
  if (s.cursor < base_) return drop(s, "its next event left the ring", true);
  if (total_bytes_ - start_of(s.cursor) - s.offset > opts_.client_buffer_bytes)
    return drop(s, "it is further behind than the client buffer", true);
  if (s.waiting_write) return;
  for (int round = 0; round < kWritesPerVisit; ++round) {
    if (s.cursor >= end) return;

    iovec iov[kMaxIov];
    std::uint64_t idx[kMaxIov];
    int n = 0;
    std::size_t total = 0;
    for (std::uint64_t i = s.cursor; i < end && n < kMaxIov; ++i) {
      const frame& f = *ring_[i - base_].f;
      if (!wants(s, f)) {
        if (n == 0) s.cursor = i + 1, s.offset = 0;
        continue;
      }
      const std::size_t skip = (n == 0) ? s.offset : 0;
      iov[n].iov_base = const_cast<char*>(f.bytes.data() + skip);
      iov[n].iov_len = f.bytes.size() - skip;
      idx[n] = i;
      total += iov[n].iov_len;
      ++n;
    }
    if (n == 0) return;

    msghdr msg{};
    msg.msg_iov = iov;
    msg.msg_iovlen = static_cast<std::size_t>(n);
    const ssize_t w = ::sendmsg(s.socket.native_handle(), &msg, MSG_NOSIGNAL | MSG_DONTWAIT);
    if (w < 0) {
      if (errno == EAGAIN || errno == EWOULDBLOCK) return wait_writable(s);
      if (errno == EINTR) continue;
      ++stats_.closed_by_peer;
      return drop(s, std::strerror(errno));
    }
    stats_.writes.fetch_add(1, std::memory_order_relaxed);
    auto left = static_cast<std::size_t>(w);
    std::uint64_t sent = 0;
    for (int k = 0; k < n; ++k) {
      if (left >= iov[k].iov_len) {
        left -= iov[k].iov_len;
        s.cursor = idx[k] + 1;
        s.offset = 0;
        ++sent;
      } else {
        s.offset = (s.cursor == idx[k] ? s.offset : 0) + left;
        s.cursor = idx[k];
        break;
      }
    }
    stats_.frames_sent.fetch_add(sent, std::memory_order_relaxed);
    if (static_cast<std::size_t>(w) < total) return wait_writable(s);
  }
  if (s.cursor < end) flush_again_ = true;
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

void hub::close_all() {
  closed_ = true;
  heartbeat_timer_.cancel();
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

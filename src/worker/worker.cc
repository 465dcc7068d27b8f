#include "worker/worker.h"

#include <unordered_map>

#include "base/log.h"
#include "base/thread_name.h"

namespace feed {

worker::worker(queue_reader& in, store& db, processed_sink& out, worker_options opts)
    : in_(in), db_(db), out_(out), opts_(opts), polled_(opts.pipeline_depth), stored_(opts.pipeline_depth) {}

worker::~worker() {
  if (poll_thread_.joinable()) stop(std::chrono::steady_clock::now());
}

void worker::start() {
  poll_thread_ = std::thread([this] {
    name_this_thread("worker-poll");
    poll_stage();
  });
  store_thread_ = std::thread([this] {
    name_this_thread("worker-store");
    store_stage();
  });
  send_thread_ = std::thread([this] {
    name_this_thread("worker-send");
    send_stage();
  });
}

void worker::stop(std::chrono::steady_clock::time_point deadline) {
  {
    std::lock_guard lock(stop_mu_);
    deadline_ = deadline;
    stopping_ = true;
  }
  stop_cv_.notify_all();
  // A store attempt still waiting for a lock at the deadline gives up then,
  // and so does each one retry() still makes past it; likewise a send still
  // waiting for the broker. What is not stored and sent by then is failed
  // back to the queue (Kafka delivers it again to the next worker).
  db_.stop_waiting_at(deadline);
  out_.stop_waiting_at(deadline);
  in_.stop_waiting_at(deadline);
  for (auto* t : {&poll_thread_, &store_thread_, &send_thread_})
    if (t->joinable()) t->join();
}

template <class F>
bool worker::retry(const char* what, F&& attempt) {
  auto backoff = opts_.retry_initial;
  for (;;) {
    auto r = attempt();
    if (r) return true;
    if (stopping_ && std::chrono::steady_clock::now() >= deadline_.load()) {
      spdlog::error("worker: {} failed and the stop deadline passed: {}", what, r.err().message);
      return false;
    }
    ++stats_.retries;
    spdlog::warn("worker: {} failed, retrying in {} ms: {}", what, backoff.count(), r.err().message);
    back_off(backoff);
    backoff = std::min(backoff * 2, opts_.retry_max);
  }
}

// A back-off that outlasted the stop deadline used to add up to
// retry_max to the stop.
void worker::back_off(std::chrono::milliseconds backoff) {
  const auto until = std::chrono::steady_clock::now() + backoff;
  std::unique_lock lock(stop_mu_);
  for (;;) {
    const auto end = stopping_ ? std::min(until, deadline_.load()) : until;
    if (std::chrono::steady_clock::now() >= end) return;
    stop_cv_.wait_until(lock, end);
  }
}

void worker::poll_stage() {
  for (;;) {
    if (stopping_ && std::chrono::steady_clock::now() >= deadline_.load()) {
      spdlog::warn("worker: stop deadline passed before the queue was drained");
      break;
    }
    // Without poll_ahead the queue is polled when the store stage waits
    // for a batch. Polling ahead took a message or two at a time while a
    // commit ran: a wake-up of this thread (and a futex call on the event
    // loop that enqueued) per post or two. What arrives meanwhile now waits
    // in the queue and comes out as one batch, no later than before, as the
    // store stage took every waiting batch at once anyway.
    if (!opts_.poll_ahead && !polled_.wait_until_wanted(opts_.poll_wait)) continue;
    auto polled = in_.poll(opts_.max_batch, opts_.poll_wait);
    if (!polled) {
      spdlog::warn("worker: poll failed: {}", polled.err().message);
      std::this_thread::sleep_for(opts_.retry_initial);
      continue;
    }
    if (polled->messages.empty()) {
      if (polled->end_of_stream) break;
      continue;
    }
    polled_.push(std::move(*polled));
  }
  polled_.close();
}

namespace {

// Moves every element of `from` to the end of `to`, leaving `from` empty.
template <class T>
void append_moved(std::vector<T>& to, std::vector<T>& from) {
  if (to.empty()) to = std::move(from);
  else to.insert(to.end(), std::make_move_iterator(from.begin()), std::make_move_iterator(from.end()));
  from.clear();
}

// Ids derived from an Idempotency-Key are UUIDv5; random ones are v7 and
// cannot collide, so only the former need comparing.
bool keyed_id(const std::string& id) { return id.size() == 36 && id[14] == '5'; }

}  // namespace

std::vector<std::size_t> worker::find_conflicts(const std::vector<message>& sent, const std::vector<message>& stored) {
  std::vector<std::size_t> dropped;
  std::unordered_map<std::string_view, const message*> keyed;
  for (const auto& m : stored)
    if (keyed_id(m.id)) keyed.emplace(m.id, &m);
  if (keyed.empty()) return dropped;
  for (std::size_t i = 0; i < sent.size(); ++i) {
    const auto& m = sent[i];
    auto it = keyed.find(m.id);
    if (it == keyed.end() || (it->second->content == m.content && it->second->user_id == m.user_id)) continue;
    dropped.push_back(i);
    ++stats_.idempotency_conflicts;
    spdlog::warn("worker: message {} reused an Idempotency-Key with other content; the stored one (seq {}) is kept "
                 "and this one dropped",
                 m.id, it->second->seq.value());
  }
  return dropped;
}

// Hands each batch of `group` the positions of its own messages among
// `dropped`, which counts over the group's messages end to end.
void worker::mark_dropped(std::vector<batch>& group, const std::vector<std::size_t>& sizes,
                          const std::vector<std::size_t>& dropped) {
  std::size_t b = 0, start = 0;
  for (std::size_t i : dropped) {
    while (i >= start + sizes[b]) start += sizes[b++];
    group[b].dropped.push_back(i - start);
  }
}

void worker::fail_all(const std::vector<batch>& batches) {
  for (const auto& b : batches) in_.fail(b, errc::unavailable);
}

// Every batch polled is stored or failed back to the queue, even past the
// stop deadline (retry() then gives up after one failed attempt).
void worker::store_stage() {
  for (;;) {
    auto group = polled_.pop_up_to(opts_.max_batch, [](const batch& b) { return b.messages.size(); });
    if (group.empty()) break;
    // As polled, then (insert_batch works in place) as stored.
    std::vector<message> messages;
    std::vector<std::size_t> sizes;
    for (auto& b : group) {
      sizes.push_back(b.messages.size());
      append_moved(messages, b.messages);
    }
    insert_report report;
    const bool ok = retry("store batch", [&]() -> result<void> {
      auto r = db_.insert_batch(messages);
      if (!r) return r.err();
      report = std::move(*r);
      return {};
    });
    if (!ok) {
      fail_all(group);
      continue;
    }
    // A batch whose messages were all new holds no conflict: each id was
    // stored with the content sent, once.
    if (!report.all_new()) {
      if (auto dropped = find_conflicts(report.as_given, messages); !dropped.empty())
        mark_dropped(group, sizes, dropped);
    }
    stored_.push({std::move(group), std::move(messages), report.inserted});
  }
  stored_.close();
}

void worker::send_stage() {
  for (;;) {
    auto groups = stored_.pop_up_to(opts_.max_batch, [](const stored_batches& g) { return g.stored.size(); });
    if (groups.empty()) break;
    std::vector<message> stored;
    std::vector<batch> batches;
    // Rows added, not messages handled: a post retried while its first copy
    // was in the batch is one row, sent on once per copy.
    std::size_t stored_count = 0;
    for (auto& g : groups) {
      append_moved(stored, g.stored);
      append_moved(batches, g.batches);
      stored_count += g.inserted;
    }
    // `stored` is not used past this point: the sink may take it.
    bool ok = retry("send processed", [&] { return out_.send_owned(stored); });
    // One commit for every batch taken: a Kafka offset commit is a round
    // trip (5 ms here), and at low rates each poll brings a batch of one or
    // two, so committing them one by one held the next send back by tens of
    // milliseconds.
    ok = ok && retry("commit batches", [&] { return in_.commit(batches); });
    if (!ok) {
      for (const auto& b : batches) in_.fail(b, errc::unavailable);
      continue;
    }
    stats_.batches += batches.size();
    stats_.stored += stored_count;
  }
}

}  // namespace feed

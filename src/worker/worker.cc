#include "worker/worker.h"

#include "base/log.h"

namespace feed {

worker::worker(consumer& in, store& db, processed_sink& out, worker_options opts)
    : in_(in), db_(db), out_(out), opts_(opts) {}

worker::~worker() {
  if (store_thread_.joinable() || publish_thread_.joinable()) stop(std::chrono::steady_clock::now());
}

void worker::start() {
  store_thread_ = std::thread([this] { store_stage(); });
  publish_thread_ = std::thread([this] { publish_stage(); });
}

void worker::stop(std::chrono::steady_clock::time_point deadline) {
  deadline_ = deadline;
  stopping_ = true;
  cv_.notify_all();
  if (store_thread_.joinable()) store_thread_.join();
  if (publish_thread_.joinable()) publish_thread_.join();
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
    std::this_thread::sleep_for(backoff);
    backoff = std::min(backoff * 2, opts_.retry_max);
  }
}

void worker::store_stage() {
  auto finish = [this] {
    {
      std::lock_guard lock(mu_);
      store_done_ = true;
    }
    cv_.notify_all();
  };
  for (;;) {
    if (stopping_ && std::chrono::steady_clock::now() >= deadline_.load()) {
      spdlog::warn("worker: stop deadline passed before the queue was drained");
      return finish();
    }
    auto polled = in_.poll(opts_.max_batch, opts_.poll_wait);
    if (!polled) {
      spdlog::warn("worker: poll failed: {}", polled.err().message);
      std::this_thread::sleep_for(opts_.retry_initial);
      continue;
    }
    batch& b = *polled;
    if (b.messages.empty()) {
      if (b.end_of_stream) return finish();
      continue;
    }
    std::vector<message> stored;
    const bool ok = retry("store batch", [&]() -> result<void> {
      auto r = db_.insert_batch(b.messages);
      if (!r) return r.err();
      stored = std::move(*r);
      return {};
    });
    if (!ok) {
      in_.fail(b, errc::unavailable);
      continue;
    }
    std::unique_lock lock(mu_);
    // Bounded hand-off: a slow sink holds the store stage back instead of
    // piling stored batches up in memory.
    cv_.wait(lock, [&] { return handoff_.size() < opts_.pipeline_depth; });
    handoff_.push_back({std::move(b), std::move(stored)});
    lock.unlock();
    cv_.notify_all();
  }
}

void worker::publish_stage() {
  for (;;) {
    std::unique_lock lock(mu_);
    cv_.wait(lock, [&] { return !handoff_.empty() || store_done_; });
    if (handoff_.empty()) return;  // store stage finished and everything is published
    stored_batch next = std::move(handoff_.front());
    handoff_.pop_front();
    lock.unlock();
    cv_.notify_all();

    const bool ok = retry("publish processed", [&] { return out_.publish(next.stored); }) &&
                    retry("commit batch", [&] { return in_.commit(next.b); });
    if (!ok) {
      in_.fail(next.b, errc::unavailable);
      continue;
    }
    ++stats_.batches;
    stats_.stored += next.stored.size();
  }
}

}  // namespace feed

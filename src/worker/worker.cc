#include "worker/worker.h"

#include "base/log.h"

namespace feed {

worker::worker(consumer& in, store& db, processed_sink& out, worker_options opts)
    : in_(in), db_(db), out_(out), opts_(opts), polled_(opts.pipeline_depth), stored_(opts.pipeline_depth) {}

worker::~worker() {
  if (poll_thread_.joinable()) stop(std::chrono::steady_clock::now());
}

void worker::start() {
  poll_thread_ = std::thread([this] { poll_stage(); });
  store_thread_ = std::thread([this] { store_stage(); });
  publish_thread_ = std::thread([this] { publish_stage(); });
}

void worker::stop(std::chrono::steady_clock::time_point deadline) {
  deadline_ = deadline;
  stopping_ = true;
  for (auto* t : {&poll_thread_, &store_thread_, &publish_thread_})
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
    std::this_thread::sleep_for(backoff);
    backoff = std::min(backoff * 2, opts_.retry_max);
  }
}

void worker::poll_stage() {
  for (;;) {
    if (stopping_ && std::chrono::steady_clock::now() >= deadline_.load()) {
      spdlog::warn("worker: stop deadline passed before the queue was drained");
      break;
    }
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

// Every batch polled is stored or failed back to the queue, even past the
// stop deadline (retry() then gives up after one failed attempt).
void worker::store_stage() {
  while (auto b = polled_.pop()) {
    std::vector<message> stored;
    const bool ok = retry("store batch", [&]() -> result<void> {
      auto r = db_.insert_batch(b->messages);
      if (!r) return r.err();
      stored = std::move(*r);
      return {};
    });
    if (!ok) {
      in_.fail(*b, errc::unavailable);
      continue;
    }
    stored_.push({std::move(*b), std::move(stored)});
  }
  stored_.close();
}

void worker::publish_stage() {
  while (auto next = stored_.pop()) {
    const bool ok = retry("publish processed", [&] { return out_.publish(next->stored); }) &&
                    retry("commit batch", [&] { return in_.commit(next->b); });
    if (!ok) {
      in_.fail(next->b, errc::unavailable);
      continue;
    }
    ++stats_.batches;
    stats_.stored += next->stored.size();
  }
}

}  // namespace feed

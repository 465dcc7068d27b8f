#include "worker/worker.h"

#include "base/log.h"

namespace feed {

worker::worker(consumer& in, store& db, processed_sink& out, worker_options opts)
    : in_(in), db_(db), out_(out), opts_(opts) {}

worker::~worker() {
  if (thread_.joinable()) stop(std::chrono::steady_clock::now());
}

void worker::start() { thread_ = std::thread([this] { run(); }); }

void worker::stop(std::chrono::steady_clock::time_point deadline) {
  deadline_ = deadline;
  stopping_ = true;
  if (thread_.joinable()) thread_.join();
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

void worker::run() {
  for (;;) {
    if (stopping_ && std::chrono::steady_clock::now() >= deadline_.load()) {
      spdlog::warn("worker: stop deadline passed before the queue was drained");
      return;
    }
    auto polled = in_.poll(opts_.max_batch, opts_.poll_wait);
    if (!polled) {
      spdlog::warn("worker: poll failed: {}", polled.err().message);
      std::this_thread::sleep_for(opts_.retry_initial);
      continue;
    }
    batch& b = *polled;
    if (b.messages.empty()) {
      if (b.end_of_stream) return;
      continue;
    }
    std::vector<message> stored;
    const bool ok = retry("store batch", [&]() -> result<void> {
                      auto r = db_.insert_batch(b.messages);
                      if (!r) return r.err();
                      stored = std::move(*r);
                      return {};
                    }) &&
                    retry("publish processed", [&] { return out_.publish(stored); }) &&
                    retry("commit batch", [&] { return in_.commit(b); });
    if (!ok) {
      in_.fail(b, errc::unavailable);
      continue;
    }
    ++stats_.batches;
    stats_.stored += stored.size();
  }
}

}  // namespace feed

#include <chrono>
#include <memory>
#include <mutex>
#include <optional>

#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/json.hpp>
#include <fmt/format.h>

#include "http/handlers/handlers.h"
#include "http/response.h"

namespace feed::http {
namespace {

using clock = std::chrono::steady_clock;

// How long a readiness request waits for the checks. A store that hangs
// can hold a check (and the blocking pool's threads, behind reads that
// wait for it) for far longer; a load balancer's probe must still get its
// answer.
constexpr std::chrono::milliseconds kReadyWait{2000};
constexpr std::chrono::milliseconds kLookAgain{10};

// The checks run one at a time on the blocking pool: requests that come
// while one runs wait for that one, so a hung check is never joined by
// more of them.
class probe : public std::enable_shared_from_this<probe> {
 public:
  // Starts a check unless one is running; the number to wait for.
  std::uint64_t start(services& s) {
    std::lock_guard lock(mu_);
    if (!running_) {
      running_ = true;
      started_ = clock::now();
      ++started_count_;
      asio::post(s.blocking, [self = shared_from_this(), &s] {
        auto problems = check(s);
        std::lock_guard lock(self->mu_);
        self->last_ = std::move(problems);
        self->finished_count_ = self->started_count_;
        self->running_ = false;
      });
    }
    return started_count_;
  }

  // The problems found by check `n` (or a later one), once it finished.
  std::optional<boost::json::object> result(std::uint64_t n) {
    std::lock_guard lock(mu_);
    if (finished_count_ < n) return std::nullopt;
    return last_;
  }

  std::chrono::milliseconds running_for() {
    std::lock_guard lock(mu_);
    return std::chrono::duration_cast<std::chrono::milliseconds>(clock::now() - started_);
  }

 private:
  static boost::json::object check(services& s) {
    boost::json::object p;
    // The write first: it needs no round trip, and a store whose write is
    // stuck may not answer a ping soon either.
    if (auto w = s.db.write_status(s.opts.publish_timeout); !w) p["store"] = w.err().message;
    else if (auto r = s.db.ping(); !r) p["store"] = r.err().message;
    if (auto r = s.queue.ready(); !r) p["queue"] = r.err().message;
    return p;
  }

  std::mutex mu_;
  bool running_ = false;                // GUARDED_BY(mu_)
  clock::time_point started_;           // GUARDED_BY(mu_)
  std::uint64_t started_count_ = 0;     // GUARDED_BY(mu_)
  std::uint64_t finished_count_ = 0;    // GUARDED_BY(mu_)
  boost::json::object last_;            // GUARDED_BY(mu_)
};

}  // namespace

// Readiness: 200 only when the store and the queue answer and the store's
// last write did not fail (a full disk still answers reads); otherwise 503
// and which of them is down, so a load balancer can route around this
// instance. Within kReadyWait whatever happens to the store.
handler ready_handler(services& s) {
  auto checks = std::make_shared<probe>();
  return [&s, checks](request_context& ctx) -> asio::awaitable<response> {
    const auto want = checks->start(s);
    const auto until = clock::now() + kReadyWait;
    asio::steady_timer pause(co_await asio::this_coro::executor);
    std::optional<boost::json::object> problems;
    while (!(problems = checks->result(want))) {
      if (clock::now() >= until) {
        problems.emplace();
        (*problems)["store"] = fmt::format("the readiness check has been running for {} ms without an answer",
                                           checks->running_for().count());
        break;
      }
      pause.expires_after(kLookAgain);
      co_await pause.async_wait(asio::use_awaitable);
    }
    if (problems->empty()) co_return json_response(ctx.req, status::ok, boost::json::object{{"status", "ready"}});
    co_return json_response(ctx.req, status::service_unavailable,
                            boost::json::object{{"status", "unavailable"}, {"problems", std::move(*problems)}});
  };
}

}  // namespace feed::http

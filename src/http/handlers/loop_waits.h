// Waiting on an event loop for what another thread settles, with a
// deadline: a post's coroutine for its durability report (delivered by the
// worker or by librdkafka's thread), a keyed post for a store lookup.
//
// - loop_inbox: settlements from any thread are collected and handed to
//   the loop by one handler posted per burst, instead of one asio::post per
//   settlement.
// - loop_waits: the loop's waiting coroutines. The inbox's handler resumes
//   each one right there, inline. A steady_timer per wait cost a timer
//   queue insert and cancel, and the cancel posted the coroutine through the
//   scheduler once more; the deadlines share one timer per loop instead,
//   set at the earliest one. Waits arrive in deadline order nearly always
//   (every post has the same publish timeout), so under steady load that
//   timer fires about once per timeout.
// - complete_before: one wait, as a coroutine step.
//
// The waiting coroutines' handlers are held here, not in asio's queues, so
// loop_waits is a service of the loop's io_context: the context's shutdown
// (application::end_pending) destroys them with everything else it holds.
// A settlement that comes after its wait ended is dropped.
#pragma once

#include <chrono>
#include <memory>
#include <mutex>
#include <optional>
#include <utility>
#include <vector>

#include <boost/asio/any_completion_handler.hpp>
#include <boost/asio/async_result.hpp>
#include <boost/asio/execution_context.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>

namespace feed::http {

namespace asio = boost::asio;

// One wait; shared by the waiting coroutine, the settling thread and, while
// the wait is pending, loop_waits.
class loop_wait : public std::enable_shared_from_this<loop_wait> {
 public:
  using clock = std::chrono::steady_clock;
  virtual ~loop_wait() = default;

  // On the loop, from the inbox: ends the wait with what arrived, unless it
  // ended already.
  virtual void settle() = 0;

 protected:
  friend class loop_waits;
  // Ends the wait: resumes the waiting coroutine with what arrived, or
  // with nothing (deadline) when `in_time` is false.
  virtual void finish(bool in_time) = 0;
  // Destroys the waiting coroutine's handler without resuming it.
  virtual void abandon() = 0;

  clock::time_point deadline_;
  class loop_waits* waits_ = nullptr;  // set while pending
  std::shared_ptr<loop_wait> next_;    // the list owns its waits forward
  loop_wait* prev_ = nullptr;
};

// The pending waits of one io_context, in deadline order, and the one timer
// that ends those past their deadline. Used on the loop's thread only (and
// by the context's shutdown, after its thread has left run()).
class loop_waits final : public asio::execution_context::service {
 public:
  using key_type = loop_waits;
  using clock = loop_wait::clock;
  static inline asio::execution_context::id id;

  explicit loop_waits(asio::execution_context& ctx)
      : asio::execution_context::service(ctx), timer_(static_cast<asio::io_context&>(ctx)) {}

  // Adds a wait, which ends by `w.settle()` or at its deadline.
  void add(std::shared_ptr<loop_wait> w, clock::time_point deadline);

  // Takes `w` off the list; false when it is not on it (ended already).
  bool remove(loop_wait& w);

  // From a stop whose deadline is near: ends every pending wait now, as at
  // its deadline, and every wait added from now on as soon as the loop
  // gets to it, so each waiting request still gets its answer (a post's
  // 503 "not stored" or "outcome unknown") before the loops stop.
  void end_all();

  std::size_t pending() const { return size_; }

 private:
  void shutdown() override;
  void arm();
  void expire();

  asio::steady_timer timer_;
  bool armed_ = false;
  clock::time_point armed_for_;
  std::shared_ptr<loop_wait> head_;
  loop_wait* tail_ = nullptr;
  std::size_t size_ = 0;
  std::optional<clock::time_point> cut_off_;  // set by end_all()
};

// Settlements handed from other threads to one event loop. Shared: a
// settling thread may hold it after the wait and its request are gone.
class loop_inbox : public std::enable_shared_from_this<loop_inbox> {
 public:
  explicit loop_inbox(asio::io_context::executor_type ex)
      : ex_(std::move(ex)), waits_(asio::use_service<loop_waits>(ex_.context())) {}

  // From any thread: `w.settle()` runs on the loop.
  void push(std::shared_ptr<loop_wait> w);

  // The loop's waits, looked up once (use_service locks the context's
  // service registry and searches it: not for every post).
  loop_waits& waits() const { return waits_; }

 private:
  void drain();

  const asio::io_context::executor_type ex_;
  loop_waits& waits_;
  std::mutex mu_;
  std::vector<std::shared_ptr<loop_wait>> pending_;  // GUARDED_BY(mu_)
  bool scheduled_ = false;                            // GUARDED_BY(mu_)
  std::vector<std::shared_ptr<loop_wait>> running_;  // only on the loop
};

namespace detail {

template <class T>
class value_wait final : public loop_wait {
 public:
  using handler_type = asio::any_completion_handler<void(std::optional<T>)>;

  // From the settling thread, once, before the push.
  void arrive(T value) { arrived_.emplace(std::move(value)); }

  void settle() override {
    if (waits_ && waits_->remove(*this)) finish(true);
  }

  // Asio 1.26's move assignment of any_completion_handler wraps the
  // handler in itself without end (its converting constructor takes the
  // lvalue it passes), so it is only ever move-constructed and swapped.
  template <class Handler>
  void hold(Handler&& h) {
    handler_type held(std::forward<Handler>(h));
    handler_.swap(held);
  }

 private:
  void finish(bool in_time) override {
    handler_type h(std::move(handler_));
    std::optional<T> v;
    if (in_time) v = std::move(arrived_);
    // On the loop's thread, inside a handler the loop runs: the coroutine
    // may resume here, inline.
    std::move(h)(std::move(v));
  }
  void abandon() override { handler_type h(std::move(handler_)); }

  handler_type handler_;
  std::optional<T> arrived_;
};

}  // namespace detail

// Starts `op(complete)`, whose `complete(T)` may run on any thread, and
// waits on this coroutine's loop (whose inbox is `inbox`) for it until
// `deadline` at most: nullopt when the deadline came first (a later
// completion is then ignored).
//
// Not a coroutine itself: the awaitable async_initiate makes is returned
// as it is, so the wait costs one frame, not two. The initiation runs when
// that awaitable is awaited, and holds what it needs by value until then.
template <class T, class Op>
asio::awaitable<std::optional<T>> complete_before(loop_inbox& inbox, loop_wait::clock::time_point deadline, Op op) {
  return asio::async_initiate<const asio::use_awaitable_t<>, void(std::optional<T>)>(
      [deadline, op = std::move(op), in = inbox.shared_from_this()](auto handler) mutable {
        auto w = std::make_shared<detail::value_wait<T>>();
        w->hold(std::move(handler));
        in->waits().add(w, deadline);
        op([w, in = std::move(in)](T value) {
          w->arrive(std::move(value));
          in->push(w);
        });
      },
      asio::use_awaitable);
}

}  // namespace feed::http

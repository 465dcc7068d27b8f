// The stop actions of the parts an application has started, run in reverse
// start order.
//
// Each part registers its stop action the moment it has started, so a
// start-up that fails half-way stops exactly what it had started, in the
// same order as a normal shutdown: whatever depends on a part was started
// after it and is therefore stopped before it.
//
// run() pops and runs every action, newest first; each runs once, however
// often run() is called. The destructor calls run(), so an early return
// cannot skip a stop. Actions must not throw: run() is noexcept, and a
// throwing action ends the process rather than leave later parts running.
//
// Not thread-safe: one owning thread pushes and runs.
#pragma once

#include <functional>
#include <utility>
#include <vector>

namespace feed {

class stop_stack {
 public:
  using action = std::function<void()>;

  stop_stack() = default;
  ~stop_stack() { run(); }
  stop_stack(const stop_stack&) = delete;
  stop_stack& operator=(const stop_stack&) = delete;

  void push(action stop) { actions_.push_back(std::move(stop)); }

  void run() noexcept {
    while (!actions_.empty()) {
      // Popped before it runs, so an action that runs run() again (or a
      // later call) never repeats it.
      action stop = std::move(actions_.back());
      actions_.pop_back();
      if (stop) stop();
    }
  }

  bool empty() const { return actions_.empty(); }
  std::size_t size() const { return actions_.size(); }

 private:
  std::vector<action> actions_;
};

}  // namespace feed

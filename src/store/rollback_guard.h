// Ends a database transaction by rolling it back when the guard goes out of
// scope, unless committed() was called first, so every early return leaves
// the connection outside a transaction.
//
// Thread safety: none; it belongs to the thread using the connection.
// Failures: the rollback is best effort and reports nothing. After a failed
// COMMIT, leaving the guard armed rolls back whatever the failure left open;
// call committed() instead where the failure ends the transaction anyway.
#pragma once

#include <functional>
#include <utility>

namespace feed {

class rollback_guard {
 public:
  explicit rollback_guard(std::function<void()> rollback) : rollback_(std::move(rollback)) {}
  ~rollback_guard() {
    if (rollback_) rollback_();
  }
  rollback_guard(const rollback_guard&) = delete;
  rollback_guard& operator=(const rollback_guard&) = delete;

  // The transaction is over by other means: nothing is left to roll back.
  void committed() { rollback_ = nullptr; }

 private:
  std::function<void()> rollback_;
};

}  // namespace feed

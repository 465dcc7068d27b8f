// Starts a coroutine whose failure is never silent: an exception escaping it
// is logged with `what` and counted in `failures` (shown in the summary as
// internal_errors, and failing a verified run, since the account may then
// be incomplete).
//
// The completion handler runs on `ioc`'s thread, so `failures` may be a
// single-writer counter of the thread that runs `ioc`.
#pragma once

#include <exception>
#include <utility>

#include <boost/asio/awaitable.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <spdlog/spdlog.h>

#include "bot/thread_stats.h"

namespace feed::bot {

inline void spawn_logged(boost::asio::io_context& ioc, boost::asio::awaitable<void> work, const char* what,
                         counter& failures) {
  boost::asio::co_spawn(ioc, std::move(work), [what, &failures](std::exception_ptr e) {
    if (!e) return;
    failures.add();
    try {
      std::rethrow_exception(e);
    } catch (const std::exception& x) {
      spdlog::error("{} failed: {}", what, x.what());
    } catch (...) {
      spdlog::error("{} failed with a non-standard exception", what);
    }
  });
}

}  // namespace feed::bot

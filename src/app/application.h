// feed-api's wiring: builds the components in dependency order, runs the
// event loops, and on SIGINT/SIGTERM stops them in reverse order within
// shutdown_timeout:
//   1. stop accepting; close idle keep-alive connections
//   2. wait for in-flight requests (their posts still get committed)
//   3. close the queue; the worker drains it into the store
//   4. end every SSE stream (pending events are flushed first)
//   5. stop the loops; close the store
// Nothing that was answered 202 is lost: the 202 is sent only after commit.
#pragma once

#include "config/options.h"

namespace feed {

// Runs until a stop signal; returns the process exit code.
int run_application(const app_options& opts);

}  // namespace feed

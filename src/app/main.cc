// feed-api entry point: options, logging, then the application.
#include <csignal>

#include "app/application.h"
#include "base/log.h"

int main(int argc, char** argv) {
  // A script's background job inherits SIGINT ignored: start-up (a topic
  // creation may wait 10 s for a broker) could then not be interrupted by it,
  // though the running server can be. Until the server's own handling takes
  // over, both signals end the process, as they do one started from a
  // terminal.
  std::signal(SIGINT, SIG_DFL);
  std::signal(SIGTERM, SIG_DFL);
  // A log pipe whose reader went away (a log shipper restarting, `| tee`
  // ended) must fail the write, not kill the server with every stream and
  // post in flight: the first warning after it did so, and a SIGTERM's
  // "received signal" line turned the clean stop into exit 141.
  std::signal(SIGPIPE, SIG_IGN);
  int exit_code = 0;
  auto opts = feed::parse_options(argc, argv, exit_code);
  if (!opts) return exit_code;
  feed::set_log_level(opts->log_level);
  for (const auto& flag : opts->unused_flags) spdlog::warn("ignored: {}", flag);
  return feed::run_application(*opts);
}

// feed-api entry point: options, logging, then the application.
#include "app/application.h"
#include "base/log.h"

int main(int argc, char** argv) {
  int exit_code = 0;
  auto opts = feed::parse_options(argc, argv, exit_code);
  if (!opts) return exit_code;
  feed::set_log_level(opts->log_level);
  for (const auto& flag : opts->unused_flags) spdlog::warn("ignored: {}", flag);
  return feed::run_application(*opts);
}

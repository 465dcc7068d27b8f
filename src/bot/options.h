// Command-line and environment configuration of feed-bot.
//
// parse_options() owns the whole contract of the CLI: every flag has an
// environment variable (flag wins), values are range-checked, and the
// outcome is either a valid bot_options or an exit code (0 for --help,
// 2 for any bad value, with the reason printed to stderr).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "bot/api_list.h"

namespace feed::bot {

struct bot_options {
  std::string api;  // as given, e.g. "http://localhost:8090" or "http://a:8090,http://b:8090"
  std::vector<api_instance> apis;  // parsed from `api`, in order (at least one)
  std::string host;                // of the first instance
  std::string port;
  unsigned users = 3;
  double rate = 0;       // messages per second overall (resolved, > 0)
  double interval = 10;  // seconds between messages (the reference's SleepInterval)
  double duration = 0;   // seconds, 0 = forever
  std::uint64_t count = 0;
  unsigned concurrency = 4;
  std::size_t content_size = 0;  // 0 = natural sentence lengths
  std::uint64_t seed = 0;
  bool seed_given = false;
  std::string post_path = "/api/messages";
  std::string feed_path = "/api/feed";
  std::string feed_query = "history=0";
  unsigned subscribers = 0;
  bool verify = false;
  double verify_timeout = 10;
  double connect_timeout = 30;
  double request_timeout = 30;
  unsigned max_retries = 3;
  double dial_timeout = 5;     // seconds for one TCP connect (+ stream head for subscribers)
  double stream_timeout = 45;  // seconds without a byte before a stream is reopened, 0 = never
  std::size_t queue_limit = 100000;
  unsigned threads = 1;
  double progress = 1;  // seconds between progress lines, 0 = none
  std::string log_level = "info";
};

// Returns nullopt on success (options filled), else the process exit code.
std::optional<int> parse_options(int argc, char** argv, bot_options& out);

}  // namespace feed::bot

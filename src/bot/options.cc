#include "bot/options.h"

#include <cmath>
#include <cstdlib>
#include <iostream>

#include <CLI/CLI.hpp>
#include <spdlog/common.h>

namespace feed::bot {
namespace {

std::string env_or(const char* name, const char* fallback) {
  const char* v = std::getenv(name);
  return (v != nullptr && *v != '\0') ? v : fallback;
}

// CLI::Range alone lets NaN through, as every comparison with it is false:
// `--rate nan` scheduled nothing and `--request-timeout nan` gave up at
// once, where a bad value is to be refused with its reason.
CLI::Validator real_range(double min, double max) {
  CLI::Validator not_nan(
      [](std::string& value) -> std::string {
        return std::isnan(std::strtod(value.c_str(), nullptr)) ? "not a number: " + value : std::string();
      },
      "");
  return not_nan & CLI::Range(min, max);
}

// Options whose presence matters after parsing.
struct given_flags {
  CLI::Option* rate = nullptr;
  CLI::Option* interval = nullptr;
  CLI::Option* seed = nullptr;
};

void add_target_flags(CLI::App& app, bot_options& o) {
  o.api = "http://" + env_or("API_HOST", "localhost") + ":" + env_or("API_PORT", "8090");
  app.add_option("--api", o.api,
                 "Base URL of feed-api, or a comma-separated list of instances (default from API_HOST/API_PORT)")
      ->envname("BOT_API")
      ->capture_default_str();
  app.add_option("--post-path", o.post_path, "Path to POST messages to")->envname("BOT_POST_PATH")->capture_default_str();
  app.add_option("--feed-path", o.feed_path, "Path of the SSE feed")->envname("BOT_FEED_PATH")->capture_default_str();
  app.add_option("--feed-query", o.feed_query, "Query string for subscribers (without '?'; empty for none)")
      ->envname("BOT_FEED_QUERY")
      ->capture_default_str();
}

void add_load_flags(CLI::App& app, bot_options& o, given_flags& f) {
  app.add_option("--users", o.users, "Simulated users user_1..user_N (messages go round-robin)")
      ->envname("BOT_USERS")
      ->check(CLI::Range(1u, 1000000u))
      ->capture_default_str();
  f.rate = app.add_option("--rate", o.rate, "Messages per second overall, fractional ok (instead of --interval)")
                   ->envname("BOT_RATE")
                   ->check(real_range(1e-6, 1e7));
  f.interval =
      app.add_option("--interval", o.interval,
                     "Seconds between messages, whichever user posts them (rate = 1/interval), as the reference "
                     "bot's SleepInterval")
          ->envname("BOT_INTERVAL")
          ->check(real_range(1e-6, 1e7))
          ->capture_default_str();
  // Not CLI11's excludes(): it counted a variable as if given on the
  // command line, so BOT_RATE in the environment refused --interval.
  app.add_option("--duration", o.duration, "Stop scheduling after this many seconds (0 = forever)")
      ->envname("BOT_DURATION")
      ->check(real_range(0.0, 1e9))
      ->capture_default_str();
  app.add_option("--count", o.count, "Stop after this many messages (0 = unlimited)")
      ->envname("BOT_COUNT")
      ->capture_default_str();
  app.add_option("--concurrency", o.concurrency, "Keep-alive HTTP connections used for posting")
      ->envname("BOT_CONCURRENCY")
      ->check(CLI::Range(1u, 10000u))
      ->capture_default_str();
  app.add_option("--content-size", o.content_size,
                 "Approximate content bytes incl. the token, <= 280 (0 = natural 1-3 sentences)")
      ->envname("BOT_CONTENT_SIZE")
      ->check(CLI::Range(std::size_t{0}, std::size_t{280}))
      ->capture_default_str();
  f.seed = app.add_option("--seed", o.seed, "Seed for message content (default: random; the run id is fresh every run)")->envname("BOT_SEED");
}

void add_verify_flags(CLI::App& app, bot_options& o) {
  app.add_option("--subscribers", o.subscribers, "SSE connections to open before posting starts")
      ->envname("BOT_SUBSCRIBERS")
      ->check(CLI::Range(0u, 1000000u))
      ->capture_default_str();
  app.add_flag("--verify", o.verify,
               "Check every accepted message reaches every subscriber once, in seq order (needs --subscribers)")
      ->envname("BOT_VERIFY");
  app.add_option("--verify-timeout", o.verify_timeout, "Seconds to wait for deliveries after the last answer")
      ->envname("BOT_VERIFY_TIMEOUT")
      ->check(real_range(0.0, 86400.0))
      ->capture_default_str();
  app.add_option("--connect-timeout", o.connect_timeout, "Seconds to wait for all subscribers to connect")
      ->envname("BOT_CONNECT_TIMEOUT")
      ->check(real_range(0.1, 86400.0))
      ->capture_default_str();
}

void add_connection_flags(CLI::App& app, bot_options& o) {
  app.add_option("--request-timeout", o.request_timeout, "Seconds before an unanswered post counts as a transport error")
      ->envname("BOT_REQUEST_TIMEOUT")
      ->check(real_range(0.1, 86400.0))
      ->capture_default_str();
  app.add_option("--max-retries", o.max_retries,
                 "Retries of a message answered 503 (after its Retry-After) or failed in transport after it was sent, "
                 "each on the next instance. A message whose connection cannot be opened was not sent and is no "
                 "retry: it waits while the connection is dialled again, until the API answers, the bot is stopped, or "
                 "the drain after the last due message ends (--request-timeout + 61 s), when it is cancelled (the "
                 "outage is logged)")
      ->envname("BOT_MAX_RETRIES")
      ->check(CLI::Range(0u, 100u))
      ->capture_default_str();
  app.add_option("--dial-timeout", o.dial_timeout,
                 "Seconds for one connect (for subscribers: until the stream's head) before trying again")
      ->envname("BOT_DIAL_TIMEOUT")
      ->check(real_range(0.05, 3600.0))
      ->capture_default_str();
  app.add_option("--stream-timeout", o.stream_timeout,
                 "Seconds without a byte (event or heartbeat) before a subscriber reopens its stream on the next "
                 "instance (0 = never)")
      ->envname("BOT_STREAM_TIMEOUT")
      ->check(real_range(0.0, 86400.0))
      ->capture_default_str();
  app.add_option("--queue", o.queue_limit, "Due messages that may wait for a free connection; beyond: dropped by client")
      ->envname("BOT_QUEUE")
      ->check(CLI::Range(std::size_t{1}, std::size_t{100000000}))
      ->capture_default_str();
}

void add_run_flags(CLI::App& app, bot_options& o) {
  app.add_option("--threads", o.threads, "I/O threads, one io_context each")
      ->envname("BOT_THREADS")
      ->check(CLI::Range(1u, 64u))
      ->capture_default_str();
  app.add_option("--progress", o.progress, "Seconds between progress lines on stderr (0 = none)")
      ->envname("BOT_PROGRESS")
      ->check(real_range(0.0, 3600.0))
      ->capture_default_str();
  app.add_option("--log-level", o.log_level, "trace|debug|info|warn|error|off")
      ->envname("BOT_LOG_LEVEL")
      ->check(CLI::IsMember({"trace", "debug", "info", "warn", "error", "critical", "off"}))
      ->capture_default_str();

}

// Checks what CLI11 cannot and derives the rest; an exit code on failure.
std::optional<int> finish_options(bot_options& o, const given_flags& f, int argc, char** argv) {
  auto fail = [](const std::string& why) {
    std::cerr << "feed-bot: " << why << "\nRun with --help for more information.\n";
    return 2;
  };
  std::string why;
  if (!parse_api_list(o.api, o.apis, why)) return fail("--api " + o.api + ": " + why);
  o.host = o.apis.front().host;
  o.port = o.apis.front().port;
  if (o.post_path.empty() || o.post_path.front() != '/') return fail("--post-path must start with '/'");
  if (o.feed_path.empty() || o.feed_path.front() != '/') return fail("--feed-path must start with '/'");
  if (!o.feed_query.empty() && o.feed_query.front() == '?') o.feed_query.erase(0, 1);
  if (o.verify && o.subscribers == 0) return fail("--verify needs --subscribers N (N >= 1)");
  // --rate or --interval: on the command line, one at most; there it wins
  // over the other's variable; from the environment alone, one at most.
  const auto on_command_line = [&](std::string_view flag) {
    for (int i = 1; i < argc; ++i) {
      const std::string_view a = argv[i];
      if (a == flag || (a.starts_with(flag) && a.size() > flag.size() && a[flag.size()] == '=')) return true;
    }
    return false;
  };
  const bool rate_flag = on_command_line("--rate");
  const bool interval_flag = on_command_line("--interval");
  if (rate_flag && interval_flag) return fail("--rate excludes --interval: give one");
  bool by_rate = f.rate->count() > 0;
  if (by_rate && f.interval->count() > 0) {
    if (!rate_flag && !interval_flag) return fail("BOT_RATE and BOT_INTERVAL are both set: set one");
    by_rate = rate_flag;
  }
  if (!by_rate) o.rate = 1.0 / o.interval;
  o.seed_given = f.seed->count() > 0;
  return std::nullopt;
}

}  // namespace

std::optional<int> parse_options(int argc, char** argv, bot_options& o) {
  CLI::App app{
      "feed-bot: simulated users posting to feed-api, and a load generator that proves delivery.\n"
      "Posts follow an open-loop schedule (message i is due at start + i/rate; latency counts from the\n"
      "due time). With --subscribers N --verify it holds N SSE connections to the feed and checks that\n"
      "every accepted message reaches every subscriber exactly once. Progress goes to stderr each\n"
      "second; the last line on stdout is a JSON summary. Exit: 0 ok, 1 delivery failures (or\n"
      "subscribers that never connected, or posts made and none accepted), 2 bad usage.\n"
      "--api may list several feed-api instances sharing one backend: posting connections and\n"
      "subscribers are spread over them, and a failed post or stream moves on to the next one.",
      "feed-bot"};
  app.get_formatter()->column_width(34);

  given_flags f;
  add_target_flags(app, o);
  add_load_flags(app, o, f);
  add_verify_flags(app, o);
  add_connection_flags(app, o);
  add_run_flags(app, o);

  try {
    app.parse(argc, argv);
  } catch (const CLI::CallForHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForAllHelp& e) {
    return app.exit(e);
  } catch (const CLI::ParseError& e) {
    app.exit(e);
    return 2;
  }

  return finish_options(o, f, argc, argv);
}

}  // namespace feed::bot

#include "config/options.h"

#include <cctype>
#include <charconv>
#include <cstdint>
#include <cstdlib>
#include <cstdio>
#include <cstring>

#include <CLI/CLI.hpp>
#include <fmt/format.h>
#include <fmt/ranges.h>

#include "config/addresses.h"

namespace feed {
namespace {

std::string env_or(const char* name, std::string fallback) {
  const char* v = std::getenv(name);
  return (v && *v) ? std::string(v) : std::move(fallback);
}

// Why `text` is not a decimal whole number in [lo, hi], or "".
std::string whole_number_problem(const std::string& text, std::int64_t lo, std::int64_t hi, std::int64_t& v) {
  const char* end = text.data() + text.size();
  const auto [at, ec] = std::from_chars(text.data(), end, v);
  if (text.empty() || ec == std::errc::invalid_argument || at != end)
    return fmt::format("'{}' is not a whole number (from {} to {})", text, lo, hi);
  if (ec == std::errc::result_out_of_range || v < lo || v > hi)
    return fmt::format("{} is out of range: from {} to {}", text, lo, hi);
  return {};
}

// A whole number in [lo, hi], said so when it is not: CLI11's Range said
// "Value abc not in range" of a word, and of 1e3 against a range holding
// 1000. The value is passed on in plain decimal, as CLI11 reads a leading
// zero as octal (010 was 8 loops). Described as Range describes itself, so
// --help reads the same.
CLI::Validator whole_range(std::int64_t lo, std::int64_t hi) {
  return CLI::Validator(
      [lo, hi](std::string& text) -> std::string {
        std::int64_t v = 0;
        auto problem = whole_number_problem(text, lo, hi, v);
        if (problem.empty()) text = std::to_string(v);
        return problem;
      },
      fmt::format("INT in [{} - {}]", lo, hi));
}

// A duration flag counted in whole `Unit`s. The field keeps its own default
// unless the flag (or its variable) is given, and --help shows that default.
template <class Unit, class Rep, class Period>
CLI::Option* add_duration(CLI::App& app, const std::string& name, std::chrono::duration<Rep, Period>& field,
                          const std::string& help) {
  auto* flag = app.add_option_function<std::int64_t>(name, [&field](std::int64_t n) { field = Unit(n); }, help);
  flag->default_str(std::to_string(std::chrono::duration_cast<Unit>(field).count()));
  return flag;
}

using std::chrono::milliseconds;
using std::chrono::seconds;

void add_listen_flags(CLI::App& app, app_options& o) {
  app.add_option("--host", o.server.host,
                 "Address to listen on: an IP address, or a host name (its first IPv4 address, else its first)")
      ->envname("FEED_HOST")
      ->capture_default_str()
      ->transform(CLI::Validator(
          [](std::string& host) {
            std::string problem;
            host = listen_address(host, problem);
            return problem;
          },
          "ADDRESS"));
  app.add_option("--port", o.server.port, "HTTP port (0 = any free port)")
      ->envname("PORT")->transform(whole_range(0, 65535))->capture_default_str();
  app.add_option("--threads", o.threads, "Event loops serving HTTP and SSE")
      ->envname("FEED_THREADS")->transform(whole_range(1, 64))->capture_default_str();
}

// Returns --data-dir, which check_data_dir() looks at after parsing.
CLI::Option* add_backend_flags(CLI::App& app, app_options& o) {
  auto* data_dir = app.add_option("--data-dir", o.data_dir, "Directory of the embedded SQLite store (not empty)")
                       ->envname("DATA_DIR")->capture_default_str();
  app.add_option("--sqlite-synchronous", o.sqlite_synchronous,
                 "SQLite durability: FULL survives power loss, NORMAL only a process crash")
      ->envname("SQLITE_SYNCHRONOUS")->check(CLI::IsMember({"FULL", "NORMAL"}))->capture_default_str();
  app.add_option("--kafka-brokers", o.kafka_brokers,
                 "Kafka bootstrap servers host:port[,...] (or KAFKA_HOST + KAFKA_PORT); empty = in-process queue")
      ->envname("KAFKA_BROKERS")
      ->check(CLI::Validator(
          [](const std::string& list) { return list.empty() ? std::string() : broker_list_problem(list); }, ""));
  app.add_option("--database-url", o.database_url,
                 "postgresql:// URL of PostgreSQL or CockroachDB (or DB_HOST + DB_PORT); empty = embedded SQLite")
      ->envname("DATABASE_URL")
      ->check(CLI::Validator(
          [](const std::string& url) -> std::string {
            // libpq's two forms; the rest of the URL is libpq's to judge.
            if (url.empty() || url.starts_with("postgresql://") || url.starts_with("postgres://") ||
                url.find('=') != std::string::npos)
              return {};
            return fmt::format("'{}...' is not a postgresql:// or postgres:// URL (nor libpq's key=value form)",
                               url.substr(0, url.find("://") == std::string::npos ? 40 : url.find("://") + 3));
          },
          ""));
  app.add_option("--db-pool-size", o.db_pool_size, "Database connections, at most")
      ->envname("DB_POOL_SIZE")->transform(whole_range(1, 256))->capture_default_str();
  return data_dir;
}

void add_kafka_flags(CLI::App& app, app_options& o) {
  app.add_option("--kafka-group", o.kafka.group_id, "Consumer group of the workers (the reference's: message-group)")
      ->envname("KAFKA_GROUP_ID")->capture_default_str();
  app.add_option("--kafka-instance-id", o.kafka.instance_id,
                 "This instance's own name in the workers' group (static membership: restarted within the "
                 "session it takes its partitions back at once; stopped, it does not leave, so they wait for it "
                 "up to the session). Unique per instance; empty = a new member per start")
      ->envname("KAFKA_INSTANCE_ID")
      ->check(CLI::Validator(
          [](std::string& id) -> std::string {
            // Kafka's rule for group.instance.id, said before the broker refuses it.
            if (id.size() > 249) return "at most 249 characters";
            if (id == "." || id == "..") return "not '.' or '..'";
            for (const char c : id)
              if (!(std::isalnum(static_cast<unsigned char>(c)) || c == '.' || c == '_' || c == '-'))
                return "only letters, digits, '.', '_' and '-'";
            return {};
          },
          "NAME"));
  app.add_option("--kafka-events-topic", o.kafka.events_topic, "Topic of accepted messages")
      ->envname("KAFKA_EVENTS_TOPIC")->capture_default_str();
  app.add_option("--kafka-processed-topic", o.kafka.processed_topic, "Topic of stored messages")
      ->envname("KAFKA_PROCESSED_TOPIC")->capture_default_str();
  app.add_option("--kafka-dead-letter-topic", o.kafka.dead_letter_topic,
                 "Where undecodable events are copied before being skipped (empty = only log and count)")
      ->envname("KAFKA_DEAD_LETTER_TOPIC");
  app.add_option("--kafka-partitions", o.kafka.events_partitions, "Partitions of topics created at start-up")
      ->envname("KAFKA_PARTITIONS")->transform(whole_range(1, 10000))->capture_default_str();
  app.add_option("--kafka-replication", o.kafka.replication_factor,
                 "Replication factor of topics created at start-up (-1 = the cluster's default.replication.factor)")
      ->envname("KAFKA_REPLICATION")
      ->transform(CLI::Validator(
          [](std::string& text) -> std::string {
            std::int64_t v = 0;
            if (whole_number_problem(text, -1, 100, v).empty() && v != 0) {
              text = std::to_string(v);  // decimal, as whole_range passes it on
              return {};
            }
            return fmt::format("'{}' is neither -1 nor from 1 to 100", text);
          },
          "(INT in [1 - 100]) OR ({-1})"))
      ->capture_default_str();
  add_duration<milliseconds>(app, "--kafka-linger-ms", o.kafka.linger,
                             "Linger of the producer of accepted posts: how long to wait to fill a batch (processed "
                             "events are sent at once); below --publish-timeout-ms")
      ->envname("KAFKA_LINGER_MS")->transform(whole_range(0, 10000));
  app.add_option("--kafka-batch-messages", o.kafka.batch_messages, "Producer batch size, in messages, at most")
      ->envname("KAFKA_BATCH_MESSAGES")->transform(whole_range(1, 1000000))->capture_default_str();
}

void add_queue_flags(CLI::App& app, app_options& o) {
  app.add_option("--queue-capacity", o.queue_capacity,
                 "Messages waiting in the queue before 503 (in-process queue; with Kafka, the producer's local queue)")
      ->envname("QUEUE_CAPACITY")->transform(whole_range(1, 10'000'000))->capture_default_str();
  app.add_option("--batch-max", o.worker.max_batch, "Messages stored per transaction, at most")
      ->envname("BATCH_MAX")->transform(whole_range(1, 100'000))->capture_default_str();
  add_duration<milliseconds>(app, "--publish-timeout-ms", o.api.publish_timeout,
                             "Longest wait for the queue to confirm a post before 503")
      ->envname("PUBLISH_TIMEOUT_MS")->transform(whole_range(1, 600'000));
}

void add_connection_flags(CLI::App& app, app_options& o) {
  app.add_option("--max-connections", o.server.max_connections, "Open connections, at most (past it: 503)")
      ->envname("MAX_CONNECTIONS")->transform(whole_range(1, 1'000'000))->capture_default_str();
  app.add_option("--max-body-bytes", o.server.max_body_bytes, "Request body size limit (past it: 413)")
      ->envname("MAX_BODY_BYTES")->transform(whole_range(64, 64 << 20))->capture_default_str();
  add_duration<seconds>(app, "--header-timeout", o.server.header_timeout, "Seconds to receive a request")
      ->envname("HEADER_TIMEOUT")->transform(whole_range(1, 3600));
  add_duration<seconds>(app, "--idle-timeout", o.server.idle_timeout,
                        "Seconds a keep-alive connection may wait for its next request")
      ->envname("IDLE_TIMEOUT")->transform(whole_range(1, 86400));
}

void add_feed_flags(CLI::App& app, app_options& o) {
  auto& hub = o.fanout.hub;
  app.add_option("--history", o.api.history_default, "Events sent on feed connect when ?history= is absent")
      ->envname("FEED_HISTORY")->transform(whole_range(0, 1'000'000))->capture_default_str();
  add_duration<seconds>(app, "--heartbeat-interval", hub.heartbeat,
                        "Seconds between SSE keep-alive comments (0 = off)")
      ->envname("HEARTBEAT_INTERVAL")->transform(whole_range(0, 3600));
  app.add_option("--sse-client-buffer", hub.client_buffer_bytes,
                 "Bytes a caught-up subscriber may fall behind the live feed before it is disconnected (it resumes "
                 "with Last-Event-ID); also bounds the store page a catching-up subscriber holds")
      ->envname("SSE_CLIENT_BUFFER")->transform(whole_range(1024, 1 << 30))->capture_default_str();
  add_duration<seconds>(app, "--sse-stall-timeout", hub.stall_timeout,
                        "Seconds a subscriber's full socket may take nothing before it is disconnected")
      ->envname("SSE_STALL_TIMEOUT")->transform(whole_range(1, 86400));
  app.add_option("--sse-ring-frames", hub.ring_frames,
                 "Recent events kept per event loop for lagging and resuming clients")
      ->envname("SSE_RING_FRAMES")->transform(whole_range(16, 10'000'000))->capture_default_str();
  app.add_option("--max-content-chars", o.api.limits.max_content_code_points, "Content limit in characters")
      ->envname("MAX_CONTENT_CHARS")->transform(whole_range(1, 100'000))->capture_default_str();
}

void add_process_flags(CLI::App& app, app_options& o) {
  add_duration<seconds>(app, "--shutdown-timeout", o.shutdown_timeout,
                        "Seconds a graceful stop may take before it forces")
      ->envname("SHUTDOWN_TIMEOUT")->transform(whole_range(1, 3600));
  app.add_option("--log-level", o.log_level, "trace, debug, info, warn, error or off")
      ->envname("LOG_LEVEL")->check(CLI::IsMember({"trace", "debug", "info", "warn", "error", "off"}))
      ->capture_default_str();
}

// An empty data directory would silently mean the working directory; CLI11
// also ignores an empty environment variable, which would mean the default.
void check_data_dir(const CLI::Option& flag, const std::filesystem::path& dir) {
  const char* env = std::getenv("DATA_DIR");
  if (dir.empty() || (flag.count() == 0 && env && !*env))
    throw CLI::ValidationError("--data-dir (DATA_DIR)", "must not be empty; name the directory of the SQLite store");
}

bool env_set(const char* name) {
  const char* v = std::getenv(name);
  return v && *v;
}

// The reference's variables: KAFKA_HOST/KAFKA_PORT and DB_HOST/DB_PORT
// (user root, database defaultdb, no TLS, as its docker set-up has it).
// Either of a pair selects the backend, the other taking the reference's
// default, as in the reference: a lone DB_PORT used to be ignored, and the
// instance ran on a local SQLite file instead of the shared database.
// --kafka-brokers and --database-url (or their variables) win over a pair;
// unused_flags() names the pair then.
void apply_reference_environment(app_options& o) {
  // A port that is no port is refused, not wrapped or passed on.
  const auto check_port = [](const char* var) {
    std::int64_t port = 0;
    if (!env_set(var)) return;
    if (auto problem = whole_number_problem(std::getenv(var), 1, 65535, port); !problem.empty())
      throw CLI::ValidationError(var, problem);
  };
  // A host with a port of its own ("kafka:9092") would become
  // "kafka:9092:29092"; an IPv6 address needs brackets before ":port".
  const auto host = [](const char* var, const char* port_var, const char* fallback) {
    std::string problem;
    auto h = host_for_port(env_or(var, fallback), problem);
    if (!problem.empty()) throw CLI::ValidationError(var, fmt::format("{} ({} names the host alone, {} its port)", problem, var, port_var));
    return h;
  };
  if (o.kafka_brokers.empty()) check_port("KAFKA_PORT");
  if (o.database_url.empty()) check_port("DB_PORT");
  if (o.kafka_brokers.empty() && (env_set("KAFKA_HOST") || env_set("KAFKA_PORT")))
    o.kafka_brokers = host("KAFKA_HOST", "KAFKA_PORT", "kafka") + ":" + env_or("KAFKA_PORT", "29092");
  if (o.database_url.empty() && (env_set("DB_HOST") || env_set("DB_PORT")))
    o.database_url = fmt::format("postgresql://root@{}:{}/defaultdb?sslmode=disable", host("DB_HOST", "DB_PORT", "roach1"),
                                 env_or("DB_PORT", "26257"));
}

// Every post that finds the Kafka producer idle waits out the linger before
// its record is even sent; a linger as long as the publish timeout made
// nearly every post 503 "outcome unknown", though Kafka then took it.
void check_linger(const app_options& o) {
  if (o.kafka_brokers.empty() || o.kafka.linger < o.api.publish_timeout) return;
  throw CLI::ValidationError(
      "--kafka-linger-ms (KAFKA_LINGER_MS)",
      fmt::format("{} ms is not below --publish-timeout-ms ({} ms): a post that finds the producer idle waits "
                  "the linger before it is sent, so it would time out",
                  o.kafka.linger.count(), o.api.publish_timeout.count()));
}

// Each flag given, by name or variable, that the chosen backends never
// read. Not an error: a deployment's shared environment may carry a
// backend's variables to instances that run another one.
std::vector<std::string> unused_flags(const CLI::App& app, const app_options& o) {
  std::vector<std::string> unused;
  const auto overridden = [&](const char* flag, const char* var, const char* host, const char* port) {
    if (app.get_option(flag)->count() == 0) return;
    std::vector<std::string> set;
    for (const char* v : {host, port})
      if (env_set(v)) set.emplace_back(v);
    if (!set.empty()) unused.push_back(fmt::format("{}: {} ({}) is set and wins", fmt::join(set, ", "), flag, var));
  };
  overridden("--kafka-brokers", "KAFKA_BROKERS", "KAFKA_HOST", "KAFKA_PORT");
  overridden("--database-url", "DATABASE_URL", "DB_HOST", "DB_PORT");
  for (const CLI::Option* opt : app.get_options()) {
    if (opt->count() == 0) continue;
    const std::string name = opt->get_name(false, true);
    const std::string given = opt->get_envname().empty() ? name : name + " (" + opt->get_envname() + ")";
    if (o.kafka_brokers.empty() && name.starts_with("--kafka-") && name != "--kafka-brokers")
      unused.push_back(given + ": Kafka only, and no --kafka-brokers is set");
    else if (o.database_url.empty() && name == "--db-pool-size")
      unused.push_back(given + ": PostgreSQL only, and no --database-url is set");
    // Not --data-dir: start.sh and the image set it for every mode.
    else if (!o.database_url.empty() && name == "--sqlite-synchronous")
      unused.push_back(given + ": embedded SQLite only, and --database-url is set");
  }
  return unused;
}

}  // namespace

result<app_options> parse_options(int argc, char** argv, int& exit_code) {
  app_options o;
  CLI::App app{
      "feed-api: a Twitter-like feed backend. POST /api/messages, live feed over Server-Sent Events at "
      "GET /api/feed.\nWith no backend flags it runs embedded (SQLite in --data-dir, in-process queue); "
      "--kafka-brokers and --database-url switch to Kafka and a PostgreSQL-wire database (PostgreSQL, "
      "CockroachDB).\nEvery flag can also be set by the environment variable shown beside it.",
      "feed-api"};
  app.get_formatter()->column_width(44);

  // --help lists the flags in the order they are added.
  add_listen_flags(app, o);
  const CLI::Option* data_dir = add_backend_flags(app, o);
  add_kafka_flags(app, o);
  add_queue_flags(app, o);
  add_connection_flags(app, o);
  add_feed_flags(app, o);
  add_process_flags(app, o);

  try {
    app.parse(argc, argv);
    check_data_dir(*data_dir, o.data_dir);
    apply_reference_environment(o);
    check_linger(o);
    o.unused_flags = unused_flags(app, o);
  } catch (const CLI::ParseError& e) {
    exit_code = app.exit(e);
    if (exit_code != 0) {
      // A value that came from the environment is named by its variable too.
      for (const CLI::Option* opt : app.get_options()) {
        const std::string& var = opt->get_envname();
        const std::string name = opt->get_name(false, true);
        if (var.empty() || !std::getenv(var.c_str()) || std::strstr(e.what(), name.c_str()) == nullptr) continue;
        bool on_command_line = false;
        for (int i = 1; i < argc; ++i)
          on_command_line = on_command_line || std::string_view(argv[i]).starts_with(name);
        if (!on_command_line) std::fprintf(stderr, "(%s came from the environment variable %s)\n", name.c_str(), var.c_str());
      }
      exit_code = 2;  // a usage error, as feed-bot's
    }
    return error(errc::invalid_input, e.what());
  }
  exit_code = 0;
  return o;
}

}  // namespace feed

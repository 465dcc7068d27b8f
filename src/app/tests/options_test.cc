#include "config/options.h"

#include <cstdlib>
#include <string>
#include <vector>

#include <gtest/gtest.h>

namespace feed {
namespace {

using std::chrono::duration_cast;
using std::chrono::milliseconds;
using std::chrono::seconds;

result<app_options> parse(std::vector<std::string> args, int& exit_code) {
  args.insert(args.begin(), "feed-api");
  std::vector<char*> argv;
  for (auto& a : args) argv.push_back(a.data());
  return parse_options(static_cast<int>(argv.size()), argv.data(), exit_code);
}

std::string help_text() {
  int exit_code = -1;
  testing::internal::CaptureStdout();
  auto r = parse({"--help"}, exit_code);
  std::string out = testing::internal::GetCapturedStdout();
  EXPECT_FALSE(r);
  EXPECT_EQ(exit_code, 0);
  return out;
}

// The --help line of `flag`, from the flag to the end of its line.
std::string help_line(const std::string& help, const std::string& flag) {
  const auto at = help.find("  " + flag + " ");
  if (at == std::string::npos) return {};
  return help.substr(at, help.find('\n', at) - at);
}

template <class Unit, class D>
std::string count_in(D d) {
  return std::to_string(duration_cast<Unit>(d).count());
}

TEST(Options, HelpShowsTheStructDefaults) {
  const app_options d;
  const std::string help = help_text();
  const std::vector<std::pair<std::string, std::string>> shown = {
      {"--host", d.server.host},
      {"--port", std::to_string(d.server.port)},
      {"--threads", std::to_string(d.threads)},
      {"--data-dir", d.data_dir.string()},
      {"--sqlite-synchronous", d.sqlite_synchronous},
      {"--db-pool-size", std::to_string(d.db_pool_size)},
      {"--kafka-group", d.kafka.group_id},
      {"--kafka-events-topic", d.kafka.events_topic},
      {"--kafka-processed-topic", d.kafka.processed_topic},
      {"--kafka-partitions", std::to_string(d.kafka.events_partitions)},
      {"--kafka-replication", std::to_string(d.kafka.replication_factor)},
      {"--kafka-linger-ms", count_in<milliseconds>(d.kafka.linger)},
      {"--kafka-batch-messages", std::to_string(d.kafka.batch_messages)},
      {"--queue-capacity", std::to_string(d.queue_capacity)},
      {"--batch-max", std::to_string(d.worker.max_batch)},
      {"--publish-timeout-ms", count_in<milliseconds>(d.api.publish_timeout)},
      {"--max-connections", std::to_string(d.server.max_connections)},
      {"--max-body-bytes", std::to_string(d.server.max_body_bytes)},
      {"--header-timeout", count_in<seconds>(d.server.header_timeout)},
      {"--idle-timeout", count_in<seconds>(d.server.idle_timeout)},
      {"--history", std::to_string(d.api.history_default)},
      {"--heartbeat-interval", count_in<seconds>(d.fanout.hub.heartbeat)},
      {"--sse-client-buffer", std::to_string(d.fanout.hub.client_buffer_bytes)},
      {"--sse-stall-timeout", count_in<seconds>(d.fanout.hub.stall_timeout)},
      {"--sse-ring-frames", std::to_string(d.fanout.hub.ring_frames)},
      {"--max-content-chars", std::to_string(d.api.limits.max_content_code_points)},
      {"--shutdown-timeout", count_in<seconds>(d.shutdown_timeout)},
      {"--log-level", d.log_level},
  };
  for (const auto& [flag, value] : shown) {
    const std::string line = help_line(help, flag);
    ASSERT_FALSE(line.empty()) << flag << " missing from --help:\n" << help;
    EXPECT_NE(line.find("=" + value + " (Env:"), std::string::npos)
        << flag << " should show =" << value << ": " << line;
  }
}

TEST(Options, WithoutFlagsTheStructDefaultsStand) {
  int exit_code = -1;
  auto r = parse({"--data-dir", "somewhere"}, exit_code);
  ASSERT_TRUE(r) << r.err().message;
  EXPECT_EQ(exit_code, 0);
  const app_options d;
  EXPECT_EQ(r->fanout.hub.heartbeat, d.fanout.hub.heartbeat);
  EXPECT_EQ(r->fanout.hub.stall_timeout, d.fanout.hub.stall_timeout);
  EXPECT_EQ(r->server.idle_timeout, d.server.idle_timeout);
  EXPECT_EQ(r->server.header_timeout, d.server.header_timeout);
  EXPECT_EQ(r->shutdown_timeout, d.shutdown_timeout);
  EXPECT_EQ(r->api.publish_timeout, d.api.publish_timeout);
  EXPECT_EQ(r->kafka.linger, d.kafka.linger);
  EXPECT_EQ(r->kafka.delivery_timeout, d.kafka.delivery_timeout);
  EXPECT_EQ(r->processed_delivery_timeout, d.processed_delivery_timeout);
  EXPECT_EQ(r->fanout.hub.page_rows, d.fanout.hub.page_rows);
  EXPECT_EQ(r->data_dir, "somewhere");
}

TEST(Options, DurationFlagsCountInTheirUnits) {
  int exit_code = -1;
  auto r = parse({"--heartbeat-interval", "7", "--sse-stall-timeout", "5", "--idle-timeout", "30",
                  "--header-timeout", "4", "--shutdown-timeout", "3", "--publish-timeout-ms", "250",
                  "--kafka-linger-ms", "0"},
                 exit_code);
  ASSERT_TRUE(r) << r.err().message;
  EXPECT_EQ(r->fanout.hub.heartbeat, seconds(7));
  EXPECT_EQ(r->fanout.hub.stall_timeout, seconds(5));
  EXPECT_EQ(r->server.idle_timeout, seconds(30));
  EXPECT_EQ(r->server.header_timeout, seconds(4));
  EXPECT_EQ(r->shutdown_timeout, seconds(3));
  EXPECT_EQ(r->api.publish_timeout, milliseconds(250));
  EXPECT_EQ(r->kafka.linger, milliseconds(0));
}

TEST(Options, DurationFlagsReadTheirEnvironmentVariables) {
  ::setenv("HEARTBEAT_INTERVAL", "9", 1);
  int exit_code = -1;
  auto r = parse({}, exit_code);
  ::unsetenv("HEARTBEAT_INTERVAL");
  ASSERT_TRUE(r) << r.err().message;
  EXPECT_EQ(r->fanout.hub.heartbeat, seconds(9));
}

TEST(Options, OutOfRangeDurationIsRefused) {
  int exit_code = 0;
  testing::internal::CaptureStderr();
  auto r = parse({"--shutdown-timeout", "0"}, exit_code);
  const std::string err = testing::internal::GetCapturedStderr();
  EXPECT_FALSE(r);
  EXPECT_NE(exit_code, 0);
  EXPECT_NE(err.find("--shutdown-timeout"), std::string::npos) << err;
}

// A number flag says what is wrong with a value, exits 2 as feed-bot does,
// and names the variable a value came from.
TEST(Options, BadNumbersAreNamedAndExitTwo) {
  const std::vector<std::pair<std::vector<std::string>, std::string>> cases = {
      {{"--history", "abc"}, "--history: 'abc' is not a whole number (from 0 to 1000000)"},
      {{"--heartbeat-interval", "1.5"}, "--heartbeat-interval: '1.5' is not a whole number (from 0 to 3600)"},
      {{"--max-connections", "1e3"}, "--max-connections: '1e3' is not a whole number (from 1 to 1000000)"},
      {{"--threads", "65"}, "--threads: 65 is out of range: from 1 to 64"},
      {{"--threads", "99999999999999999999"}, "--threads: 99999999999999999999 is out of range: from 1 to 64"},
      {{"--port", "x"}, "--port: 'x' is not a whole number (from 0 to 65535)"},
      {{"--kafka-replication", "0"}, "--kafka-replication: '0' is neither -1 nor from 1 to 100"},
      {{"--no-such-flag"}, "--no-such-flag"},
  };
  for (const auto& [args, message] : cases) {
    int exit_code = 0;
    testing::internal::CaptureStderr();
    auto r = parse(args, exit_code);
    const std::string err = testing::internal::GetCapturedStderr();
    EXPECT_FALSE(r) << args[0];
    EXPECT_EQ(exit_code, 2) << args[0];
    EXPECT_NE(err.find(message), std::string::npos) << err;
  }
  int exit_code = -1;
  EXPECT_TRUE(parse({"--max-connections", "1000", "--kafka-replication", "-1", "--port", "0"}, exit_code));
  // Decimal, whatever the zeros in front: CLI11 alone reads 010 as octal 8.
  auto zeros = parse({"--threads", "010", "--max-connections", "09", "--header-timeout", "007"}, exit_code);
  ASSERT_TRUE(zeros) << zeros.err().message;
  EXPECT_EQ(zeros->threads, 10u);
  EXPECT_EQ(zeros->server.max_connections, 9u);
  EXPECT_EQ(zeros->server.header_timeout, seconds(7));
  auto replication = parse({"--kafka-replication", "010"}, exit_code);
  ASSERT_TRUE(replication) << replication.err().message;
  EXPECT_EQ(replication->kafka.replication_factor, 10);
  for (const auto& [var, value] : std::vector<std::pair<const char*, const char*>>{
           {"KAFKA_PORT", "abc"}, {"KAFKA_PORT", "99999"}, {"DB_PORT", "-5"}, {"DB_PORT", "0x10"}}) {
    ::setenv(var, value, 1);
    testing::internal::CaptureStderr();
    auto r = parse({}, exit_code);
    const std::string err = testing::internal::GetCapturedStderr();
    ::unsetenv(var);
    EXPECT_FALSE(r) << var << "=" << value;
    EXPECT_EQ(exit_code, 2);
    EXPECT_NE(err.find(std::string(var) + ": "), std::string::npos) << err;
  }

  ::setenv("PORT", "abc", 1);
  testing::internal::CaptureStderr();
  auto by_env = parse({}, exit_code);
  const std::string err = testing::internal::GetCapturedStderr();
  ::unsetenv("PORT");
  EXPECT_FALSE(by_env);
  EXPECT_EQ(exit_code, 2);
  EXPECT_NE(err.find("(--port came from the environment variable PORT)"), std::string::npos) << err;
}

TEST(Options, AKafkaInstanceIdIsKafkasLegalNameOrRefused) {
  int exit_code = -1;
  auto ok = parse({"--kafka-instance-id", "feed-api_0.eu-1"}, exit_code);
  ASSERT_TRUE(ok) << ok.err().message;
  EXPECT_EQ(ok->kafka.instance_id, "feed-api_0.eu-1");
  EXPECT_TRUE(parse({}, exit_code)->kafka.instance_id.empty()) << "dynamic membership by default";
  const std::vector<std::string> refused{"has space", "slash/no", "ümlaut", std::string(250, 'a'), ".", ".."};
  for (const auto& bad : refused) {
    testing::internal::CaptureStderr();
    auto r = parse({"--kafka-instance-id", bad}, exit_code);
    const std::string err = testing::internal::GetCapturedStderr();
    EXPECT_FALSE(r) << bad;
    EXPECT_NE(err.find("--kafka-instance-id"), std::string::npos) << err;
  }
}

// parse() with `env` set for the call only.
result<app_options> parse_with_env(const std::vector<std::pair<const char*, const char*>>& env,
                                   std::vector<std::string> args = {}) {
  for (const auto& [name, value] : env) ::setenv(name, value, 1);
  int exit_code = -1;
  auto r = parse(std::move(args), exit_code);
  for (const auto& [name, value] : env) ::unsetenv(name);
  return r;
}

// The reference's variables each have a default, so either of a pair
// selects its backend; a lone DB_PORT used to be ignored (embedded SQLite).
TEST(Options, EitherReferenceVariableOfAPairSelectsItsBackend) {
  auto ports = parse_with_env({{"DB_PORT", "26258"}, {"KAFKA_PORT", "9093"}});
  ASSERT_TRUE(ports) << ports.err().message;
  EXPECT_EQ(ports->database_url, "postgresql://root@roach1:26258/defaultdb?sslmode=disable");
  EXPECT_EQ(ports->kafka_brokers, "kafka:9093");

  auto hosts = parse_with_env({{"DB_HOST", "db.internal"}, {"KAFKA_HOST", "k.internal"}});
  ASSERT_TRUE(hosts) << hosts.err().message;
  EXPECT_EQ(hosts->database_url, "postgresql://root@db.internal:26257/defaultdb?sslmode=disable");
  EXPECT_EQ(hosts->kafka_brokers, "k.internal:29092");

  auto empty = parse_with_env({{"DB_PORT", ""}});  // empty is unset, as for every other variable
  ASSERT_TRUE(empty) << empty.err().message;
  EXPECT_EQ(empty->database_url, "");

  auto flag = parse_with_env({{"DB_PORT", "26258"}}, {"--database-url", "postgresql://x@h:1/d"});  // the flag wins
  ASSERT_TRUE(flag) << flag.err().message;
  EXPECT_EQ(flag->database_url, "postgresql://x@h:1/d");
}

// A reference variable's host with a port of its own, or that is no host,
// is refused by name; an IPv6 address gets its brackets.
TEST(Options, AReferenceHostIsCheckedAndBracketed) {
  auto v6 = parse_with_env({{"DB_HOST", "::1"}, {"KAFKA_HOST", "fd00::7"}});
  ASSERT_TRUE(v6) << v6.err().message;
  EXPECT_EQ(v6->database_url, "postgresql://root@[::1]:26257/defaultdb?sslmode=disable");
  EXPECT_EQ(v6->kafka_brokers, "[fd00::7]:29092");
  for (const char* var : {"KAFKA_HOST", "DB_HOST"}) {
    testing::internal::CaptureStderr();
    auto r = parse_with_env({{var, "kafka:9092"}});
    const std::string err = testing::internal::GetCapturedStderr();
    EXPECT_FALSE(r);
    EXPECT_NE(err.find(std::string(var) + ": 'kafka:9092' holds a port"), std::string::npos) << err;
  }
}

// Values that could never work are usage errors, said before anything
// starts: librdkafka dialled host:99999 as host:34463, and a bad --host or
// --database-url used to exit 1 only once the process was starting.
TEST(Options, AddressesThatCannotWorkExitTwo) {
  for (const std::vector<std::string>& args :
       {std::vector<std::string>{"--kafka-brokers", "host:99999"}, {"--kafka-brokers", "a,,b"},
        {"--host", "no-such-host.invalid"}, {"--database-url", "mysql://user:secret@h/d"}}) {
    int exit_code = -1;
    testing::internal::CaptureStderr();
    auto r = parse(args, exit_code);
    const std::string err = testing::internal::GetCapturedStderr();
    EXPECT_FALSE(r) << args[1];
    EXPECT_EQ(exit_code, 2) << args[1];
    EXPECT_NE(err.find(args[0]), std::string::npos) << err;
    EXPECT_EQ(err.find("secret"), std::string::npos) << "a URL's password is not echoed: " << err;
  }
  int exit_code = -1;
  auto named = parse({"--host", "localhost", "--database-url", "host=db dbname=feed"}, exit_code);
  ASSERT_TRUE(named) << named.err().message;
  EXPECT_EQ(named->server.host, "127.0.0.1");
  EXPECT_EQ(named->database_url, "host=db dbname=feed");
}

// A linger at least as long as the publish timeout would time nearly every
// post out while Kafka takes it: refused when Kafka is used.
TEST(Options, ALingerNotBelowThePublishTimeoutIsRefusedWithKafka) {
  for (const auto& linger : {"1000", "5000"}) {
    int exit_code = 0;
    testing::internal::CaptureStderr();
    auto r = parse({"--kafka-brokers", "127.0.0.1:9092", "--kafka-linger-ms", linger, "--publish-timeout-ms", "1000"},
                   exit_code);
    const std::string err = testing::internal::GetCapturedStderr();
    EXPECT_FALSE(r) << linger;
    EXPECT_NE(exit_code, 0);
    EXPECT_NE(err.find("--kafka-linger-ms"), std::string::npos) << err;
    EXPECT_NE(err.find("is not below --publish-timeout-ms (1000 ms)"), std::string::npos) << err;
  }
  testing::internal::CaptureStderr();
  auto by_env = parse_with_env({{"KAFKA_HOST", "k"}}, {"--kafka-linger-ms", "2000"});  // Kafka chosen by the variable
  testing::internal::GetCapturedStderr();
  EXPECT_FALSE(by_env);
  int exit_code = -1;
  auto below = parse({"--kafka-brokers", "127.0.0.1:9092", "--kafka-linger-ms", "999", "--publish-timeout-ms", "1000"},
                     exit_code);
  EXPECT_TRUE(below) << below.err().message;
  auto embedded = parse({"--kafka-linger-ms", "5000", "--publish-timeout-ms", "1000"}, exit_code);
  EXPECT_TRUE(embedded) << embedded.err().message;  // no producer lingers
}

// A flag for a backend that is not running is named, by flag or variable,
// so a --kafka-instance-id without --kafka-brokers does not pass unnoticed.
TEST(Options, FlagsOfABackendNotInUseAreListed) {
  int exit_code = -1;
  auto embedded = parse({"--kafka-instance-id", "a1", "--db-pool-size", "3", "--sqlite-synchronous", "NORMAL"},
                        exit_code);
  ASSERT_TRUE(embedded) << embedded.err().message;
  ASSERT_EQ(embedded->unused_flags.size(), 2u);
  EXPECT_EQ(embedded->unused_flags[0], "--db-pool-size (DB_POOL_SIZE): PostgreSQL only, and no --database-url is set");
  EXPECT_EQ(embedded->unused_flags[1],
            "--kafka-instance-id (KAFKA_INSTANCE_ID): Kafka only, and no --kafka-brokers is set");

  auto by_env = parse_with_env({{"KAFKA_GROUP_ID", "g"}}, {});
  ASSERT_TRUE(by_env);
  ASSERT_EQ(by_env->unused_flags.size(), 1u);
  EXPECT_NE(by_env->unused_flags[0].find("--kafka-group (KAFKA_GROUP_ID)"), std::string::npos);

  auto postgres = parse({"--database-url", "postgresql://x@h:1/d", "--data-dir", "d", "--sqlite-synchronous",
                         "NORMAL", "--db-pool-size", "3"},
                        exit_code);
  ASSERT_TRUE(postgres);
  ASSERT_EQ(postgres->unused_flags.size(), 1u);  // --data-dir: every mode's start-up sets it
  EXPECT_NE(postgres->unused_flags[0].find("--sqlite-synchronous"), std::string::npos);

  // Chosen by the reference's variables, the backends' flags are in use.
  auto kafka = parse_with_env({{"KAFKA_HOST", "k"}, {"DB_PORT", "26257"}},
                              {"--kafka-instance-id", "a1", "--db-pool-size", "3"});
  ASSERT_TRUE(kafka);
  EXPECT_TRUE(kafka->unused_flags.empty());
  EXPECT_TRUE(parse({}, exit_code)->unused_flags.empty());

  // A reference pair beside the flag (or variable) that wins is named.
  auto both = parse_with_env({{"KAFKA_HOST", "k"}, {"KAFKA_PORT", "1"}, {"DB_PORT", "2"}},
                             {"--kafka-brokers", "b:9092", "--database-url", "postgresql://x@h:1/d"});
  ASSERT_TRUE(both) << both.err().message;
  EXPECT_EQ(both->kafka_brokers, "b:9092");
  ASSERT_EQ(both->unused_flags.size(), 2u);
  EXPECT_EQ(both->unused_flags[0], "KAFKA_HOST, KAFKA_PORT: --kafka-brokers (KAFKA_BROKERS) is set and wins");
  EXPECT_EQ(both->unused_flags[1], "DB_PORT: --database-url (DATABASE_URL) is set and wins");
}

}  // namespace
}  // namespace feed

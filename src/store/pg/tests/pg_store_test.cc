// pg_store against a real server: FEED_TEST_DATABASE_URL names it (for
// example the URL scripts/postgres.sh start prints). Every test works in a
// database of its own, created on that server and dropped afterwards.
#include "store/pg/pg_store.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdlib>
#include <future>
#include <random>
#include <set>
#include <thread>

#include <fmt/format.h>
#include <gtest/gtest.h>

#include "base/testing/closed_port.h"
#include "base/testing/freezable_proxy.h"

#include "model/message_id.h"
#include "store/pg/pg_migrate.h"
#include "store/pg/pg_migrations.h"
#include "store/pg/pg_pool.h"
#include "store/testing/insert_copy.h"

namespace feed {
namespace {

using namespace std::chrono_literals;

// The URL with its database name replaced.
std::string with_database(const std::string& url, const std::string& db) {
  const auto scheme = url.find("://");
  const auto authority = scheme == std::string::npos ? 0 : scheme + 3;
  const auto path = url.find_first_of("/?", authority);
  const auto query = url.find('?', authority);
  const std::string head = url.substr(0, path == std::string::npos ? url.size() : path);
  const std::string tail = query == std::string::npos ? "" : url.substr(query);
  return head + "/" + db + tail;
}

// The URL's port, and the URL with another port (host names stay).
std::uint16_t port_of(const std::string& url) {
  const auto authority = url.find("://") + 3;
  const auto end = url.find_first_of("/?", authority);
  const auto colon = url.rfind(':', end);
  return static_cast<std::uint16_t>(std::stoi(url.substr(colon + 1, end - colon - 1)));
}
std::string with_port(const std::string& url, std::uint16_t port) {
  const auto authority = url.find("://") + 3;
  const auto end = url.find_first_of("/?", authority);
  const auto colon = url.rfind(':', end);
  return url.substr(0, colon + 1) + std::to_string(port) + url.substr(end);
}

timestamp micros(std::int64_t us) { return timestamp(std::chrono::microseconds(us)); }

message make_message(std::string user, std::string content, timestamp at = micros(1'700'000'000'123'456)) {
  return message{random_message_id(), std::move(user), std::move(content), at, seq_t{0}};
}

read_query query(std::int64_t after, std::optional<std::int64_t> up_to = {}, std::size_t limit = 100,
                 bool newest_first = false, std::optional<std::string> user_id = {}) {
  read_query q;
  q.after = seq_t{after};
  if (up_to) q.up_to = seq_t{*up_to};
  q.limit = limit;
  q.newest_first = newest_first;
  q.user_id = std::move(user_id);
  return q;
}

// A port on 127.0.0.1 nobody listens on: bound, then released.
using feed::test_support::closed_port;

class pg_store_test : public ::testing::Test {
 protected:
  void SetUp() override {
    const char* url = std::getenv("FEED_TEST_DATABASE_URL");
    if (!url || !*url)
      GTEST_SKIP() << "FEED_TEST_DATABASE_URL is not set; start a server with "
                      "`scripts/postgres.sh start DIR PORT` and export the URL it prints";
    server_url_ = url;
    static std::atomic<int> counter{0};
    std::random_device rd;
    db_name_ = fmt::format("feed_test_{}_{}_{:08x}", ::getpid(), counter++, rd());
    auto admin = pg_connection::connect({server_url_, 5s, 0ms});
    ASSERT_TRUE(admin) << admin.err().message;
    admin_ = std::move(*admin);
    auto created = admin_->exec("create database", "CREATE DATABASE " + db_name_);
    ASSERT_TRUE(created) << created.err().message;
    url_ = with_database(server_url_, db_name_);
  }

  void TearDown() override {
    if (!admin_ || db_name_.empty()) return;
    sql_.reset();
    // WITH (FORCE) is PostgreSQL 13+; CockroachDB spells it CASCADE.
    if (!admin_->exec("drop database", "DROP DATABASE IF EXISTS " + db_name_ + " WITH (FORCE)"))
      (void)admin_->exec("drop database", "DROP DATABASE IF EXISTS " + db_name_ + " CASCADE");
  }

  pg_options options() const {
    pg_options o;
    o.url = url_;
    o.connect_timeout = 5s;
    return o;
  }

  std::unique_ptr<pg_store> open_store() {
    auto s = pg_store::open(options());
    EXPECT_TRUE(s) << s.err().message;
    return s ? std::move(*s) : nullptr;
  }

  // Runs SQL on the test database (text results).
  pg_rows sql(const std::string& q) {
    if (!sql_) {
      auto c = pg_connection::connect({url_, 5s, 0ms});
      EXPECT_TRUE(c) << c.err().message;
      if (!c) return {};
      sql_ = std::move(*c);
    }
    auto r = sql_->exec("test sql", q);
    EXPECT_TRUE(r) << q << ": " << r.err().message;
    return r ? std::move(*r) : pg_rows{};
  }

  std::string sql_value(const std::string& q) {
    auto r = sql(q);
    return r.rows() > 0 ? std::string(r.value(0, 0)) : std::string("<no rows>");
  }

  std::string server_url_, db_name_, url_;
  std::unique_ptr<pg_connection> admin_, sql_;
};

TEST_F(pg_store_test, a_write_waiting_for_the_counter_gives_up_at_the_stop_deadline) {
  auto s = open_store();
  ASSERT_TRUE(s);
  // Another session holds the counter's lock, as a stuck writer would.
  auto holder = pg_connection::connect({url_, 5s, 0ms});
  ASSERT_TRUE(holder) << holder.err().message;
  ASSERT_TRUE((*holder)->exec("lock", "BEGIN; SELECT last_seq FROM feed_sequence WHERE id = 1 FOR UPDATE"));
  std::vector<message> batch{make_message("u", "waits")};
  const auto start = std::chrono::steady_clock::now();
  auto waiting = std::async(std::launch::async, [&] { return s->insert_batch(batch); });
  std::this_thread::sleep_for(300ms);
  ASSERT_EQ(waiting.wait_for(0s), std::future_status::timeout) << "the write did not wait for the lock";
  s->stop_waiting_at(std::chrono::steady_clock::now() + 200ms);
  ASSERT_EQ(waiting.wait_for(10s), std::future_status::ready) << "the write outlived the stop deadline";
  EXPECT_FALSE(waiting.get());
  EXPECT_LT(std::chrono::steady_clock::now() - start, 5s);
  // Later writes fail at once, lock or not.
  ASSERT_TRUE((*holder)->exec("unlock", "ROLLBACK"));
  const auto later = std::chrono::steady_clock::now();
  auto refused = insert_copy(*s, {make_message("u", "after")});
  ASSERT_FALSE(refused);
  EXPECT_TRUE(refused.err().is(errc::shutting_down)) << refused.err().message;
  EXPECT_LT(std::chrono::steady_clock::now() - later, 100ms);
  EXPECT_EQ(sql_value("SELECT count(*) FROM messages"), "0");
}

// A server that hangs (a paused VM, a stopped process) answers neither the
// write nor its cancel request: the write's connection is closed under it.
TEST_F(pg_store_test, a_write_to_a_hung_server_gives_up_at_the_stop_deadline) {
  test_support::freezable_proxy proxy(port_of(url_));
  pg_options o = options();
  o.url = with_port(url_, proxy.port());
  auto opened = pg_store::open(o);
  ASSERT_TRUE(opened) << opened.err().message;
  auto& s = **opened;
  ASSERT_TRUE(insert_copy(s, {make_message("u", "before")}));
  proxy.freeze();
  std::vector<message> batch{make_message("u", "hangs")};
  auto waiting = std::async(std::launch::async, [&] { return s.insert_batch(batch); });
  // As the head probe does; one pooled connection, so at least one of the
  // calls is still opening a connection to the hung server.
  auto reading = std::async(std::launch::async, [&] { return s.max_seq(); });
  struct thaw_first {  // before the futures' destructors wait for the calls
    test_support::freezable_proxy& p;
    ~thaw_first() { p.thaw(); }
  } thaw{proxy};
  std::this_thread::sleep_for(300ms);
  ASSERT_EQ(waiting.wait_for(0s), std::future_status::timeout) << "the write did not wait for the server";
  ASSERT_EQ(reading.wait_for(0s), std::future_status::timeout) << "the read did not wait for the server";
  const auto start = std::chrono::steady_clock::now();
  s.stop_waiting_at(start + 200ms);
  ASSERT_EQ(waiting.wait_for(5s), std::future_status::ready) << "the write outlived the stop deadline";
  ASSERT_EQ(reading.wait_for(1s), std::future_status::ready) << "the read outlived the stop deadline";
  EXPECT_FALSE(waiting.get());
  EXPECT_FALSE(reading.get());
  EXPECT_LT(std::chrono::steady_clock::now() - start, 1s);
  // Later calls fail at once instead of connecting to the hung server.
  const auto later = std::chrono::steady_clock::now();
  auto refused = s.max_seq();
  ASSERT_FALSE(refused);
  EXPECT_TRUE(refused.err().is(errc::shutting_down)) << refused.err().message;
  EXPECT_LT(std::chrono::steady_clock::now() - later, 100ms);
  proxy.thaw();
  EXPECT_EQ(sql_value("SELECT count(*) FROM messages"), "1");
}

// A server that hangs holds no call past the answer bound: a read and a
// write on pooled connections fail with errc::timeout, and the store works
// again on fresh connections once the server answers.
TEST_F(pg_store_test, calls_to_a_hung_server_fail_at_the_answer_bound) {
  test_support::freezable_proxy proxy(port_of(url_));
  pg_options o = options();
  o.url = with_port(url_, proxy.port());
  o.pool_size = 1;
  o.answer_timeout = 400ms;
  // One store per call, each with its one connection opened and its
  // statements prepared while the server answers.
  auto open_warm = [&] {
    auto opened = pg_store::open(o);
    EXPECT_TRUE(opened) << opened.err().message;
    if (!opened) return std::unique_ptr<pg_store>();
    EXPECT_TRUE((*opened)->read({seq_t{0}, std::nullopt, 10, false, {}}));
    EXPECT_TRUE(insert_copy(**opened, {make_message("u", "before")}));
    return std::move(*opened);
  };
  auto reader = open_warm(), writer = open_warm();
  ASSERT_TRUE(reader && writer);
  proxy.freeze();
  struct thaw_first {  // before the futures' destructors wait for the calls
    test_support::freezable_proxy& p;
    ~thaw_first() { p.thaw(); }
  } thaw{proxy};
  std::vector<message> small{make_message("u", "hangs")};
  const auto start = std::chrono::steady_clock::now();
  auto reading = std::async(std::launch::async, [&] { return reader->read({seq_t{0}, std::nullopt, 10, false, {}}); });
  auto writing = std::async(std::launch::async, [&] { return writer->insert_batch(small); });
  ASSERT_EQ(reading.wait_for(5s), std::future_status::ready) << "the read outlived its bound";
  ASSERT_EQ(writing.wait_for(5s), std::future_status::ready) << "the write outlived its bound";
  EXPECT_GE(std::chrono::steady_clock::now() - start, 400ms);
  auto r = reading.get();
  auto w = writing.get();
  ASSERT_FALSE(r);
  ASSERT_FALSE(w);
  for (const auto* e : {&r.err(), &w.err()}) {
    EXPECT_TRUE(e->is(errc::timeout)) << e->message;
    EXPECT_NE(e->message.find("did not answer within 400 ms"), std::string::npos) << e->message;
  }
  proxy.thaw();
  auto again = reader->read({seq_t{0}, std::nullopt, 10, false, {}});
  ASSERT_TRUE(again) << again.err().message;
  EXPECT_EQ(again->size(), 2u);
  std::vector<message> later{make_message("u", "after")};
  auto stored = writer->insert_batch(later);
  ASSERT_TRUE(stored) << stored.err().message;
  EXPECT_EQ(sql_value("SELECT count(*) FROM messages"), "3");
}

// A statement larger than the socket buffers waits in its sending when the
// server stops reading (a batch of large posts to a hung server): the bound
// covers that wait too.
TEST_F(pg_store_test, a_statement_the_hung_server_does_not_read_fails_at_the_answer_bound) {
  test_support::freezable_proxy proxy(port_of(url_), 64 * 1024);
  pg_connect_options o{with_port(url_, proxy.port()), 5s};
  o.answer_timeout = 400ms;
  auto c = pg_connection::connect(o);
  ASSERT_TRUE(c) << c.err().message;
  proxy.freeze();
  struct thaw_first {
    test_support::freezable_proxy& p;
    ~thaw_first() { p.thaw(); }
  } thaw{proxy};
  // 8 MB: more than the proxy's receive buffer and our send buffer (4 MB
  // at most) take.
  const std::string sql = "SELECT length('" + std::string(8 << 20, 'a') + "')";
  const auto start = std::chrono::steady_clock::now();
  auto sending = std::async(std::launch::async, [&] { return (*c)->exec("large", sql); });
  ASSERT_EQ(sending.wait_for(5s), std::future_status::ready) << "the statement outlived its bound";
  EXPECT_GE(std::chrono::steady_clock::now() - start, 400ms);
  auto r = sending.get();
  ASSERT_FALSE(r);
  EXPECT_TRUE(r.err().is(errc::timeout)) << r.err().message;
  EXPECT_NE(r.err().message.find("did not answer within 400 ms"), std::string::npos) << r.err().message;
  EXPECT_FALSE((*c)->healthy());
}

// A readiness probe must say "not ready" while the server hangs, not hang
// with it, and find the server again once it answers.
TEST_F(pg_store_test, a_ping_to_a_hung_server_times_out_and_the_next_one_reconnects) {
  test_support::freezable_proxy proxy(port_of(url_));
  pg_options o = options();
  o.url = with_port(url_, proxy.port());
  o.ping_timeout = 300ms;
  auto opened = pg_store::open(o);
  ASSERT_TRUE(opened) << opened.err().message;
  auto& s = **opened;
  ASSERT_TRUE(s.ping());
  proxy.freeze();
  const auto start = std::chrono::steady_clock::now();
  auto hung = s.ping();
  const auto took = std::chrono::steady_clock::now() - start;
  proxy.thaw();
  ASSERT_FALSE(hung);
  EXPECT_TRUE(hung.err().is(errc::timeout)) << hung.err().message;
  EXPECT_GE(took, 300ms);
  EXPECT_LT(took, 1500ms);
  auto again = s.ping();
  EXPECT_TRUE(again) << again.err().message;
}

// A client that hangs inside a transaction holding the counter's lock (as
// a paused instance would) loses its session to the server after the idle
// limit our connections set, and the other writers go on.
TEST_F(pg_store_test, a_client_hung_holding_the_counter_does_not_hold_the_other_writers) {
  auto s = open_store();
  ASSERT_TRUE(s);
  auto hung = pg_connection::connect({url_, 5s, 0ms, 500ms});
  ASSERT_TRUE(hung) << hung.err().message;
  ASSERT_TRUE((*hung)->exec("lock", "BEGIN; SELECT last_seq FROM feed_sequence WHERE id = 1 FOR UPDATE"));
  const auto start = std::chrono::steady_clock::now();
  auto stored = insert_copy(*s, {make_message("u", "goes on")});
  const auto took = std::chrono::steady_clock::now() - start;
  ASSERT_TRUE(stored) << stored.err().message;
  EXPECT_LT(took, 3s);
  EXPECT_EQ(sql_value("SELECT count(*) FROM messages"), "1");
  // The hung client's transaction is gone: nothing it does next commits.
  EXPECT_FALSE((*hung)->exec("after", "UPDATE feed_sequence SET last_seq = last_seq WHERE id = 1; COMMIT"));
}

TEST_F(pg_store_test, migrates_an_empty_database) {
  auto s = open_store();
  ASSERT_TRUE(s);
  auto v = s->schema_version();
  ASSERT_TRUE(v) << v.err().message;
  EXPECT_EQ(*v, 2);
  EXPECT_EQ(sql_value("SELECT count(*) || ':' || min(version) || ':' || bool_or(dirty) FROM schema_migrations"),
            "1:2:false");
  EXPECT_EQ(sql_value("SELECT last_seq FROM feed_sequence WHERE id = 1"), "0");
  auto m = s->max_seq();
  ASSERT_TRUE(m) << m.err().message;
  EXPECT_EQ(m->value(), 0);
  auto rows = s->read({});
  ASSERT_TRUE(rows) << rows.err().message;
  EXPECT_TRUE(rows->empty());
  EXPECT_TRUE(s->ping());

  // Opening again finds nothing to do.
  s.reset();
  auto again = open_store();
  ASSERT_TRUE(again);
  EXPECT_EQ(*again->schema_version(), 2);
}

TEST_F(pg_store_test, upgrades_a_database_laid_out_by_the_reference) {
  // The reference's migration 1, applied the way golang-migrate does.
  const auto& files = schema::pg_migration_files();
  auto up1 = std::find_if(files.begin(), files.end(),
                          [](const auto& f) { return f.name == "000001_create_messages_table.up.sql"; });
  ASSERT_NE(up1, files.end());
  sql(std::string(up1->sql));
  sql("CREATE TABLE IF NOT EXISTS schema_migrations (version bigint not null primary key, dirty boolean not null)");
  sql("INSERT INTO schema_migrations (version, dirty) VALUES (1, false)");
  // Inserted out of time order; two share a timestamp (then id decides).
  sql("INSERT INTO messages (id, user_id, content, created_at) VALUES "
      "('00000000-0000-4000-8000-000000000003', 'u1', 'third', '2024-01-01T00:00:03.000003Z'), "
      "('00000000-0000-4000-8000-000000000001', 'u2', 'first', '2024-01-01T00:00:01.000001Z'), "
      "('00000000-0000-4000-8000-00000000000b', 'u1', 'second-b', '2024-01-01T00:00:02Z'), "
      "('00000000-0000-4000-8000-00000000000a', 'u2', 'second-a', '2024-01-01T00:00:02Z')");

  auto s = open_store();
  ASSERT_TRUE(s);
  EXPECT_EQ(*s->schema_version(), 2);
  EXPECT_EQ(sql_value("SELECT count(*) || ':' || min(version) || ':' || bool_or(dirty) FROM schema_migrations"),
            "1:2:false");
  auto rows = s->read({});
  ASSERT_TRUE(rows) << rows.err().message;
  ASSERT_EQ(rows->size(), 4u);
  const char* expected[] = {"first", "second-a", "second-b", "third"};
  for (std::size_t i = 0; i < 4; ++i) {
    EXPECT_EQ((*rows)[i].content, expected[i]);
    EXPECT_EQ((*rows)[i].seq.value(), static_cast<std::int64_t>(i + 1));
  }
  EXPECT_EQ((*rows)[0].id, "00000000-0000-4000-8000-000000000001");
  EXPECT_EQ((*rows)[0].created_at, *parse_rfc3339("2024-01-01T00:00:01.000001Z"));
  EXPECT_EQ(s->max_seq()->value(), 4);

  // New messages continue after the numbered ones.
  const std::vector<message> batch{make_message("u3", "fifth")};
  auto stored = insert_copy(*s, batch);
  ASSERT_TRUE(stored) << stored.err().message;
  EXPECT_EQ((*stored)[0].seq.value(), 5);
}

TEST_F(pg_store_test, insert_is_idempotent_by_id) {
  auto s = open_store();
  ASSERT_TRUE(s);
  const auto a = make_message("u1", "a"), b = make_message("u1", "b"), c = make_message("u2", "c");

  auto first = insert_copy(*s, std::vector<message>{a, b});
  ASSERT_TRUE(first) << first.err().message;
  ASSERT_EQ(first->size(), 2u);
  EXPECT_EQ((*first)[0].id, a.id);
  EXPECT_EQ((*first)[0].seq.value(), 1);
  EXPECT_EQ((*first)[1].seq.value(), 2);

  // Across batches: b again (with other content, which is ignored), and c
  // new; within the batch, c twice.
  auto b_again = b;
  b_again.content = "changed";
  auto second = insert_copy(*s, std::vector<message>{c, b_again, c});
  ASSERT_TRUE(second) << second.err().message;
  ASSERT_EQ(second->size(), 3u);
  EXPECT_EQ((*second)[0].id, b.id);
  EXPECT_EQ((*second)[0].content, "b");
  EXPECT_EQ((*second)[0].seq.value(), 2);
  EXPECT_EQ((*second)[1].id, c.id);
  EXPECT_EQ((*second)[1].seq.value(), 3);
  EXPECT_EQ((*second)[2], (*second)[1]);

  // The same id in upper case is the same UUID.
  auto upper = a;
  for (auto& ch : upper.id) ch = static_cast<char>(std::toupper(static_cast<unsigned char>(ch)));
  auto third = insert_copy(*s, std::vector<message>{upper});
  ASSERT_TRUE(third) << third.err().message;
  EXPECT_EQ((*third)[0].id, a.id);
  EXPECT_EQ((*third)[0].seq.value(), 1);

  EXPECT_EQ(s->max_seq()->value(), 3);
  EXPECT_EQ(sql_value("SELECT count(*) FROM messages"), "3");
  EXPECT_EQ(sql_value("SELECT last_seq FROM feed_sequence"), "3");
}

TEST_F(pg_store_test, new_batch_with_repeats_and_upper_case_ids) {
  auto s = open_store();
  ASSERT_TRUE(s);
  const auto a = make_message("u1", "a"), b = make_message("u2", "b"), c = make_message("u3", "c");
  auto upper_b = b;
  for (auto& ch : upper_b.id) ch = static_cast<char>(std::toupper(static_cast<unsigned char>(ch)));

  // Nothing stored yet: an upper-case id comes back canonical.
  auto first = insert_copy(*s, std::vector<message>{upper_b, c});
  ASSERT_TRUE(first) << first.err().message;
  ASSERT_EQ(first->size(), 2u);
  EXPECT_EQ((*first)[0].id, b.id);
  EXPECT_EQ((*first)[0].seq.value(), 1);
  EXPECT_EQ((*first)[1], (message{c.id, c.user_id, c.content, c.created_at, seq_t{2}}));

  // All new, but a twice (the first occurrence wins, in either case).
  auto a_again = a;
  a_again.content = "ignored";
  auto upper_a = a_again;
  for (auto& ch : upper_a.id) ch = static_cast<char>(std::toupper(static_cast<unsigned char>(ch)));
  const auto d = make_message("u4", "d");
  auto second = insert_copy(*s, std::vector<message>{a, d, upper_a, a_again});
  ASSERT_TRUE(second) << second.err().message;
  ASSERT_EQ(second->size(), 4u);
  EXPECT_EQ((*second)[0], (message{a.id, a.user_id, "a", a.created_at, seq_t{3}}));
  for (int i : {1, 2}) EXPECT_EQ((*second)[i], (*second)[0]);
  EXPECT_EQ((*second)[3], (message{d.id, d.user_id, "d", d.created_at, seq_t{4}}));
  EXPECT_EQ(sql_value("SELECT count(*) FROM messages"), "4");
  EXPECT_EQ(sql_value("SELECT last_seq FROM feed_sequence"), "4");
}

// The common batch, every message new, is numbered where it lies: the same
// strings, not copies of them (an upper-case id is replaced by its canonical
// form), and no batch as given to report.
TEST_F(pg_store_test, numbers_a_new_batch_in_place) {
  auto s = open_store();
  ASSERT_TRUE(s);
  const auto a = make_message("u1", std::string(100, 'a')), b = make_message("u2", std::string(200, 'b'));
  auto upper_b = b;
  for (auto& ch : upper_b.id) ch = static_cast<char>(std::toupper(static_cast<unsigned char>(ch)));
  std::vector<message> batch{a, upper_b};
  const char* const content = batch[0].content.data();
  const char* const id = batch[0].id.data();
  auto report = s->insert_batch(batch);
  ASSERT_TRUE(report) << report.err().message;
  EXPECT_TRUE(report->all_new());
  EXPECT_EQ(report->inserted, 2u);
  ASSERT_EQ(batch.size(), 2u);
  EXPECT_EQ(batch[0], (message{a.id, a.user_id, a.content, a.created_at, seq_t{1}}));
  EXPECT_EQ(batch[1], (message{b.id, b.user_id, b.content, b.created_at, seq_t{2}}));
  EXPECT_EQ(batch[0].content.data(), content);
  EXPECT_EQ(batch[0].id.data(), id);
}

// A batch holding a stored id and a repeated one: `batch` becomes the batch
// as stored (each id's first content and seq, in seq order, duplicates
// included), and the report hands back the batch as given, upper-case id
// and other contents included, so that the worker can tell a reused
// Idempotency-Key with other content.
TEST_F(pg_store_test, a_batch_with_stored_or_repeated_ids_reports_the_batch_as_given) {
  auto s = open_store();
  ASSERT_TRUE(s);
  const auto a = make_message("u1", "a");
  ASSERT_TRUE(insert_copy(*s, std::vector<message>{a}));
  auto a_changed = a;
  a_changed.content = "a, other content";
  auto upper_a = a;
  for (auto& ch : upper_a.id) ch = static_cast<char>(std::toupper(static_cast<unsigned char>(ch)));
  const auto c = make_message("u2", "c");
  auto c_changed = c;
  c_changed.content = "c, other content";
  std::vector<message> batch{c, a_changed, c_changed, upper_a};
  const auto given = batch;
  auto report = s->insert_batch(batch);
  ASSERT_TRUE(report) << report.err().message;
  EXPECT_FALSE(report->all_new());
  EXPECT_EQ(report->inserted, 1u) << "c; a was stored before, and c's second copy is a repeat";
  EXPECT_EQ(report->as_given, given);
  const message a1{a.id, a.user_id, "a", a.created_at, seq_t{1}}, c2{c.id, c.user_id, "c", c.created_at, seq_t{2}};
  EXPECT_EQ(batch, (std::vector<message>{a1, a1, c2, c2}));
  EXPECT_EQ(sql_value("SELECT last_seq FROM feed_sequence"), "2");
}

TEST_F(pg_store_test, large_batches_mix_new_and_stored) {
  auto s = open_store();
  ASSERT_TRUE(s);
  std::vector<message> first;
  for (int i = 0; i < 1000; ++i) first.push_back(make_message(fmt::format("u{}", i % 7), fmt::format("m{}", i)));
  const auto start = std::chrono::steady_clock::now();
  auto r1 = insert_copy(*s, first);
  const auto took = std::chrono::steady_clock::now() - start;
  ASSERT_TRUE(r1) << r1.err().message;
  ASSERT_EQ(r1->size(), 1000u);
  for (int i = 0; i < 1000; ++i) EXPECT_EQ((*r1)[i].seq.value(), i + 1);
  // Arrays, not a round trip per row: generous bound for a loaded machine.
  EXPECT_LT(took, 5s);

  // Every other message again, interleaved with new ones.
  std::vector<message> second;
  for (int i = 0; i < 1000; ++i) second.push_back(i % 2 ? make_message("new", fmt::format("n{}", i)) : first[i]);
  auto r2 = insert_copy(*s, second);
  ASSERT_TRUE(r2) << r2.err().message;
  ASSERT_EQ(r2->size(), 1000u);
  for (int i = 0; i < 500; ++i) {
    EXPECT_EQ((*r2)[i].seq.value(), 2 * i + 1);  // the stored ones, oldest first
    EXPECT_EQ((*r2)[i].id, first[2 * i].id);
    EXPECT_EQ((*r2)[500 + i].seq.value(), 1001 + i);  // then the new ones, in batch order
    EXPECT_EQ((*r2)[500 + i].id, second[2 * i + 1].id);
  }
  EXPECT_EQ(s->max_seq()->value(), 1500);
}

TEST_F(pg_store_test, concurrent_batches_get_gapless_seqs) {
  // Two store instances (as two feed-api processes) with two writer threads
  // each: 4 threads x 50 batches x 20 messages.
  constexpr int threads = 4, batches = 50, per_batch = 20;
  auto s1 = open_store(), s2 = open_store();
  ASSERT_TRUE(s1 && s2);
  std::vector<std::vector<message>> results(threads);
  std::atomic<int> failures{0};
  std::vector<std::thread> pool;
  for (int t = 0; t < threads; ++t) {
    pool.emplace_back([&, t] {
      pg_store& s = t % 2 ? *s2 : *s1;
      for (int b = 0; b < batches; ++b) {
        std::vector<message> batch;
        for (int i = 0; i < per_batch; ++i) batch.push_back(make_message(fmt::format("user{}", t), "x"));
        auto r = insert_copy(s, batch);
        if (!r) {
          ++failures;
          ADD_FAILURE() << r.err().message;
          continue;
        }
        // A batch's new messages take consecutive seqs.
        for (int i = 1; i < per_batch; ++i)
          if ((*r)[i].seq.value() != (*r)[0].seq.value() + i) ++failures;
        results[t].insert(results[t].end(), r->begin(), r->end());
      }
    });
  }
  for (auto& th : pool) th.join();
  ASSERT_EQ(failures, 0);

  constexpr int total = threads * batches * per_batch;
  std::set<std::int64_t> seqs;
  std::set<std::string> ids;
  for (const auto& r : results)
    for (const auto& m : r) {
      seqs.insert(m.seq.value());
      ids.insert(m.id);
    }
  ASSERT_EQ(seqs.size(), static_cast<std::size_t>(total));
  EXPECT_EQ(*seqs.begin(), 1);
  EXPECT_EQ(*seqs.rbegin(), total);
  EXPECT_EQ(ids.size(), static_cast<std::size_t>(total));

  read_query all;
  all.limit = total + 10;
  auto rows = s1->read(all);
  ASSERT_TRUE(rows) << rows.err().message;
  ASSERT_EQ(rows->size(), static_cast<std::size_t>(total));
  for (int i = 0; i < total; ++i) EXPECT_EQ((*rows)[i].seq.value(), i + 1);
  EXPECT_EQ(s2->max_seq()->value(), total);
}

TEST_F(pg_store_test, serialization_failures_are_retried) {
  // Under SERIALIZABLE, PostgreSQL behaves like CockroachDB: a writer that
  // waited for the counter row fails with SQLSTATE 40001 and insert_batch
  // must run its transaction again.
  sql("ALTER DATABASE " + db_name_ + " SET default_transaction_isolation = 'serializable'");
  auto o = options();
  o.max_tx_attempts = 100;
  auto opened = pg_store::open(o);
  ASSERT_TRUE(opened) << opened.err().message;
  pg_store& s = **opened;
  constexpr int threads = 4, batches = 10, per_batch = 5;
  std::vector<std::thread> pool;
  for (int t = 0; t < threads; ++t)
    pool.emplace_back([&] {
      for (int b = 0; b < batches; ++b) {
        std::vector<message> batch;
        for (int i = 0; i < per_batch; ++i) batch.push_back(make_message("u", "x"));
        auto r = insert_copy(s, batch);
        EXPECT_TRUE(r) << r.err().message;
      }
    });
  for (auto& th : pool) th.join();
  constexpr int total = threads * batches * per_batch;
  read_query all;
  all.limit = total + 1;
  auto rows = s.read(all);
  ASSERT_TRUE(rows) << rows.err().message;
  ASSERT_EQ(rows->size(), static_cast<std::size_t>(total));
  for (int i = 0; i < total; ++i) EXPECT_EQ((*rows)[i].seq.value(), i + 1);
}

TEST_F(pg_store_test, read_filters_and_orders) {
  auto s = open_store();
  ASSERT_TRUE(s);
  std::vector<message> batch;
  for (int i = 0; i < 10; ++i) batch.push_back(make_message(i % 2 ? "odd" : "even", fmt::format("m{}", i + 1)));
  ASSERT_TRUE(insert_copy(*s, batch));

  auto seqs = [&](const read_query& q) {
    std::vector<std::int64_t> out;
    auto r = s->read(q);
    EXPECT_TRUE(r) << r.err().message;
    if (r)
      for (const auto& m : *r) out.push_back(m.seq.value());
    return out;
  };
  using v = std::vector<std::int64_t>;
  EXPECT_EQ(seqs({}), (v{1, 2, 3, 4, 5, 6, 7, 8, 9, 10}));
  EXPECT_EQ(seqs(query(7)), (v{8, 9, 10}));
  EXPECT_EQ(seqs(query(2, 5)), (v{3, 4, 5}));
  EXPECT_EQ(seqs(query(0, {}, 3)), (v{1, 2, 3}));
  EXPECT_EQ(seqs(query(0, {}, 0)), v{});
  EXPECT_EQ(seqs(query(0, {}, 3, true)), (v{10, 9, 8}));
  EXPECT_EQ(seqs(query(0, 6, 2, true)), (v{6, 5}));
  EXPECT_EQ(seqs(query(0, {}, 100, false, "odd")), (v{2, 4, 6, 8, 10}));
  EXPECT_EQ(seqs(query(2, 8, 2, true, "even")),
            (v{7, 5}));
  EXPECT_EQ(seqs(query(0, {}, 100, false, "nobody")), v{});
  auto r = s->read(query(9));
  ASSERT_TRUE(r);
  ASSERT_EQ(r->size(), 1u);
  EXPECT_EQ((*r)[0].content, "m10");
  EXPECT_EQ((*r)[0].user_id, "odd");
}

TEST_F(pg_store_test, round_trips_microseconds_and_odd_text) {
  auto s = open_store();
  ASSERT_TRUE(s);
  const std::int64_t times[] = {
      1'700'000'000'123'456,  // an ordinary moment, all six digits
      1,                      // one microsecond after the Unix epoch
      -1,                     // one before it
      946'684'800'000'000,    // PostgreSQL's own epoch, 2000-01-01
      946'684'799'999'999,    // just before it
      1'704'067'199'999'999,  // 2023-12-31T23:59:59.999999Z
      253'402'300'799'999'999 // 9999-12-31T23:59:59.999999Z
  };
  const std::string contents[] = {
      "héllo wörld 世界 🎉 e\u0301",
      "quotes ' '' \" \"\" `",
      "backslashes \\ \\\\ \\n \\\" \\'",
      "{braces,commas}",
      "NULL",
      "",
      "tab\tnewline\nreturn\r bell\x07 escape\x1b del\x7f \x01",
      "  leading and trailing spaces  ",
      "$$dollar$$ ; -- not a comment /* nor this */",
  };
  std::vector<message> batch;
  for (auto t : times) batch.push_back(make_message("time-user", "t", micros(t)));
  for (const auto& c : contents) batch.push_back(make_message("ünïcode \"user\" \\", c));
  auto stored = insert_copy(*s, batch);
  ASSERT_TRUE(stored) << stored.err().message;

  read_query all;
  all.limit = 1000;
  auto rows = s->read(all);
  ASSERT_TRUE(rows) << rows.err().message;
  ASSERT_EQ(rows->size(), batch.size());
  for (std::size_t i = 0; i < batch.size(); ++i) {
    auto expected = batch[i];
    expected.seq = seq_t{static_cast<std::int64_t>(i + 1)};
    EXPECT_EQ((*rows)[i], expected) << "message " << i << " content " << expected.content;
    EXPECT_EQ((*stored)[i], expected);
  }
  // The database holds the same instant, not just the same bits.
  EXPECT_EQ(sql_value(fmt::format("SELECT to_char(created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS.US') "
                                  "FROM messages WHERE id = '{}'",
                                  batch[0].id)),
            "2023-11-14 22:13:20.123456");
}

TEST_F(pg_store_test, rejects_bad_ids_and_nul_bytes) {
  auto s = open_store();
  ASSERT_TRUE(s);
  auto bad_id = make_message("u", "x");
  bad_id.id = "not-a-uuid";
  std::vector<message> bad_batch{make_message("u", "y"), bad_id};
  const auto bad_given = bad_batch;
  auto bad_report = s->insert_batch(bad_batch);
  ASSERT_FALSE(bad_report);
  EXPECT_TRUE(bad_report.err().is(errc::invalid_input)) << bad_report.err().message;
  EXPECT_EQ(bad_batch, bad_given) << "a batch whose insert failed is left as it was";
  auto r = insert_copy(*s, std::vector<message>{bad_id});
  ASSERT_FALSE(r);
  EXPECT_TRUE(r.err().is(errc::invalid_input)) << r.err().message;

  // The per-user index takes the longest user_id the model lets through,
  // also of bytes that do not compress; one byte more is refused as input,
  // not as a database error that would come back with every retry.
  std::mt19937 rng(7);
  std::string longest;
  while (longest.size() < max_stored_user_id_bytes) longest += static_cast<char>('!' + rng() % 90);
  auto fits = insert_copy(*s, std::vector<message>{make_message(longest, "x")});
  ASSERT_TRUE(fits) << fits.err().message;
  r = insert_copy(*s, std::vector<message>{make_message(longest + "!", "x")});
  ASSERT_FALSE(r);
  EXPECT_TRUE(r.err().is(errc::invalid_input)) << r.err().message;

  auto nul = make_message("u", std::string("a\0b", 3));
  r = insert_copy(*s, std::vector<message>{nul});
  ASSERT_FALSE(r);
  EXPECT_TRUE(r.err().is(errc::invalid_input)) << r.err().message;
  EXPECT_EQ(s->max_seq()->value(), 1);
}

TEST_F(pg_store_test, closed_port_is_unavailable_quickly) {
  pg_options o;
  o.url = fmt::format("postgresql://root@127.0.0.1:{}/defaultdb?sslmode=disable", closed_port());
  o.connect_timeout = 2s;
  const auto start = std::chrono::steady_clock::now();
  auto s = pg_store::open(o);
  const auto took = std::chrono::steady_clock::now() - start;
  ASSERT_FALSE(s);
  EXPECT_TRUE(s.err().is(errc::unavailable)) << s.err().message;
  EXPECT_LT(took, 3s);
}

TEST_F(pg_store_test, refuses_a_dirty_schema) {
  ASSERT_TRUE(open_store());
  sql("UPDATE schema_migrations SET dirty = true");
  auto s = pg_store::open(options());
  ASSERT_FALSE(s);
  EXPECT_TRUE(s.err().is(errc::storage)) << s.err().message;
  EXPECT_NE(s.err().message.find("dirty"), std::string::npos) << s.err().message;
}

TEST_F(pg_store_test, concurrent_opens_migrate_once) {
  constexpr int n = 4;
  std::vector<std::thread> threads;
  std::atomic<int> ok{0};
  for (int i = 0; i < n; ++i)
    threads.emplace_back([&] {
      auto s = pg_store::open(options());
      if (s)
        ++ok;
      else
        ADD_FAILURE() << s.err().message;
    });
  for (auto& t : threads) t.join();
  EXPECT_EQ(ok, n);
  EXPECT_EQ(sql_value("SELECT count(*) || ':' || min(version) || ':' || bool_or(dirty) FROM schema_migrations"),
            "1:2:false");
  EXPECT_EQ(sql_value("SELECT count(*) FROM feed_sequence"), "1");
}

TEST_F(pg_store_test, survives_the_server_closing_pooled_connections) {
  auto s = open_store();
  ASSERT_TRUE(s);
  // Fill the pool with idle connections.
  std::vector<std::thread> warm;
  for (int i = 0; i < 4; ++i) warm.emplace_back([&] { EXPECT_TRUE(insert_copy(*s, std::vector{make_message("u", "x")})); });
  for (auto& t : warm) t.join();

  auto killed = admin_->exec("terminate", fmt::format("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                                                      "WHERE datname = '{}' AND application_name = 'feed-api'",
                                                      db_name_));
  ASSERT_TRUE(killed) << killed.err().message;
  EXPECT_GE(killed->rows(), 1);

  auto m = s->max_seq();
  ASSERT_TRUE(m) << m.err().message;
  EXPECT_EQ(m->value(), 4);
  auto r = insert_copy(*s, std::vector{make_message("u", "after")});
  ASSERT_TRUE(r) << r.err().message;
  EXPECT_EQ((*r)[0].seq.value(), 5);
  EXPECT_TRUE(s->ping());
}

TEST_F(pg_store_test, pool_wait_is_bounded) {
  pg_pool pool({url_, 5s, 0ms}, 1, 100ms);
  auto first = pool.acquire();
  ASSERT_TRUE(first) << first.err().message;
  const auto start = std::chrono::steady_clock::now();
  auto second = pool.acquire();
  const auto took = std::chrono::steady_clock::now() - start;
  ASSERT_FALSE(second);
  EXPECT_TRUE(second.err().is(errc::unavailable)) << second.err().message;
  EXPECT_GE(took, 90ms);
  EXPECT_LT(took, 2s);
  { auto done = std::move(*first); }
  auto third = pool.acquire();
  ASSERT_TRUE(third) << third.err().message;
  EXPECT_TRUE(third->reused());
}

}  // namespace
}  // namespace feed

namespace feed {
namespace {

TEST_F(pg_store_test, finds_a_message_by_id) {
  auto s = open_store();
  ASSERT_TRUE(s);
  auto m = make_message("u", "findable");
  ASSERT_TRUE(insert_copy(*s, std::vector<message>{m}));
  auto found = s->find(m.id);
  ASSERT_TRUE(found) << found.err().message;
  ASSERT_TRUE(found->has_value());
  EXPECT_EQ(**found, (message{m.id, "u", "findable", m.created_at, seq_t{1}}));
  std::string upper = m.id;
  for (auto& c : upper) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  EXPECT_TRUE(s->find(upper)->has_value()) << "UUIDs compare by value";
  EXPECT_FALSE(s->find(random_message_id())->has_value());
  auto bad = s->find("not a uuid");
  ASSERT_TRUE(bad);
  EXPECT_FALSE(bad->has_value());
}

// A writer that holds the counter row stands in for a database that answers
// reads but takes no writes.
TEST_F(pg_store_test, write_status_keeps_the_last_write_failure_until_a_write_succeeds) {
  auto o = options();
  o.statement_timeout = 300ms;
  auto opened = pg_store::open(o);
  ASSERT_TRUE(opened) << opened.err().message;
  pg_store& s = **opened;
  EXPECT_TRUE(s.write_status(std::chrono::seconds(10)));
  sql("BEGIN");
  sql("SELECT last_seq FROM feed_sequence WHERE id = 1 FOR UPDATE");
  std::vector<message> blocked{make_message("u", "blocked")};
  const auto blocked_given = blocked;
  EXPECT_FALSE(s.insert_batch(blocked));
  EXPECT_EQ(blocked, blocked_given) << "a batch whose insert failed is left as it was";
  EXPECT_TRUE(s.ping());
  EXPECT_FALSE(s.write_status(std::chrono::seconds(10)));
  sql("ROLLBACK");
  ASSERT_TRUE(insert_copy(s, std::vector<message>{make_message("u", "through")}));
  EXPECT_TRUE(s.write_status(std::chrono::seconds(10)));
}

}  // namespace
}  // namespace feed

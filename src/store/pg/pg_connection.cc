#include "store/pg/pg_connection.h"

#include <poll.h>
#include <sys/socket.h>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <cstring>
#include <thread>

#include <fmt/format.h>
#include <libpq-fe.h>

#include "base/log.h"

namespace feed {

namespace {

// libpq messages span lines ("...\n\tThis probably means..."); errors and
// logs want one.
std::string one_line(const char* s) {
  std::string out;
  bool space = false;
  for (const char* p = s ? s : ""; *p; ++p) {
    if (*p == '\n' || *p == '\t' || *p == ' ') {
      space = !out.empty();
      continue;
    }
    if (space) out += ' ';
    space = false;
    out += *p;
  }
  return out;
}

// Server notices ("relation already exists, skipping") are routine here;
// keep them out of stderr.
void log_notice(void*, const char* text) { spdlog::debug("postgres: {}", one_line(text)); }

using steady = std::chrono::steady_clock;

// Waits until `fd` is ready for `events`, until `deadline` at the latest and
// for one `slice` at most: 1 ready, 0 not (yet, or interrupted), -1 failed.
int wait_socket(int fd, short events, steady::time_point deadline, std::chrono::milliseconds slice) {
  const auto left = std::chrono::ceil<std::chrono::milliseconds>(deadline - steady::now());
  if (left.count() <= 0) return 0;
  pollfd p{fd, events, 0};
  const int ready = ::poll(&p, 1, static_cast<int>(std::min(left, slice).count()));
  if (ready < 0 && errno == EINTR) return 0;
  return ready < 0 ? -1 : (ready > 0 ? 1 : 0);
}

// Makes a statement waiting on `fd` fail at once ("server closed the
// connection"), from any thread; the connection is broken from then on.
void sever_socket(int fd) {
  if (fd >= 0) ::shutdown(fd, SHUT_RDWR);
}

}  // namespace

errc classify_sqlstate(std::string_view state) {
  // 08: connection exception; 57P01-57P03: admin/crash shutdown, cannot
  // connect now; 53300: too many connections; 57014: statement timeout (the
  // server is too slow right now). All of these pass with time.
  if (state.starts_with("08") || state.starts_with("57P0") || state == "53300" || state == "57014")
    return errc::unavailable;
  return errc::storage;
}

pg_rows& pg_rows::operator=(pg_rows&& o) noexcept {
  if (this != &o) {
    PQclear(r_);
    r_ = std::exchange(o.r_, nullptr);
  }
  return *this;
}

pg_rows::~pg_rows() { PQclear(r_); }

int pg_rows::rows() const { return r_ ? PQntuples(r_) : 0; }

bool pg_rows::is_null(int row, int col) const { return PQgetisnull(r_, row, col) != 0; }

std::string_view pg_rows::value(int row, int col) const {
  if (is_null(row, col)) return {};
  return {PQgetvalue(r_, row, col), static_cast<std::size_t>(PQgetlength(r_, row, col))};
}

std::int64_t pg_rows::affected() const {
  const char* s = r_ ? PQcmdTuples(r_) : "";
  std::int64_t n = 0;
  std::from_chars(s, s + std::char_traits<char>::length(s), n);
  return n;
}

result<std::unique_ptr<pg_connection>> pg_connection::connect(const pg_connect_options& opts) {
  if (opts.url.empty()) return error(errc::invalid_input, "postgres: the connection URL is empty");
  // Reject a malformed URL as such, instead of as an unreachable server.
  char* parse_error = nullptr;
  if (PQconninfoOption* parsed = PQconninfoParse(opts.url.c_str(), &parse_error)) {
    PQconninfoFree(parsed);
  } else {
    std::string why = one_line(parse_error);
    PQfreemem(parse_error);
    return error(errc::invalid_input, fmt::format("postgres: bad connection URL: {}", why));
  }

  // libpq treats 0 as "wait forever"; never allow that.
  const auto timeout = std::to_string(std::max<std::int64_t>(opts.connect_timeout.count(), 1));
  // Later keywords override earlier ones: the keepalive defaults come first
  // so that the URL may change them, the connect timeout comes after the URL
  // so that the option always bounds the attempt. Keepalives and
  // tcp_user_timeout make a server that vanished without closing the socket
  // show up as a failed statement instead of a hang.
  const char* keys[] = {"keepalives",       "keepalives_idle",           "keepalives_interval",
                        "keepalives_count", "tcp_user_timeout",          "fallback_application_name",
                        "dbname",           "connect_timeout",           nullptr};
  const char* values[] = {"1", "10", "5", "3", "30000", "feed-api", opts.url.c_str(), timeout.c_str(), nullptr};
  PGconn* raw = PQconnectStartParams(keys, values, /*expand_dbname=*/1);
  if (!raw) return error(errc::unavailable, "postgres: out of memory while connecting");
  std::unique_ptr<pg_connection> c(new pg_connection(raw, opts.answer_timeout));
  if (auto opened = c->finish_connecting(opts); !opened) return opened.err();
  PQsetNoticeProcessor(raw, log_notice, nullptr);
  // So that sending a large batch to a server that stopped reading cannot
  // block either: answer() flushes within its bound.
  if (PQsetnonblocking(raw, 1) != 0)
    return error(errc::unavailable, fmt::format("postgres: {}", one_line(PQerrorMessage(raw))));

  if (opts.statement_timeout.count() > 0) {
    // Both PostgreSQL and CockroachDB read an interval string here.
    auto r = c->exec("set statement_timeout",
                     fmt::format("SET statement_timeout = '{}ms'", opts.statement_timeout.count()));
    if (!r) return r.err();
  }
  if (opts.idle_in_transaction_timeout.count() > 0) {
    auto r = c->exec("set idle_in_transaction_session_timeout",
                     fmt::format("SET idle_in_transaction_session_timeout = '{}ms'",
                                 opts.idle_in_transaction_timeout.count()));
    if (!r) return r.err();
  }
  return c;
}

// libpq's own loop (PQconnectdbParams) can be neither abandoned nor, past
// the TCP handshake, bounded: a server that accepted and then hangs held it
// for good. This one polls in slices of at most 50 ms.
result<void> pg_connection::finish_connecting(const pg_connect_options& opts) {
  const auto deadline = steady::now() + std::max(opts.connect_timeout, std::chrono::seconds(1));
  auto cannot = [&](std::string_view why) {
    return error(errc::unavailable, fmt::format("postgres: cannot connect: {}", why));
  };
  // As libpq's documentation says to begin: as if it asked to write.
  PostgresPollingStatusType state = PGRES_POLLING_WRITING;
  if (PQstatus(conn_) == CONNECTION_BAD) return cannot(one_line(PQerrorMessage(conn_)));
  while (state != PGRES_POLLING_OK) {
    if (state == PGRES_POLLING_FAILED) return cannot(one_line(PQerrorMessage(conn_)));
    if (opts.abandon && opts.abandon->load())
      return error(errc::shutting_down, "postgres: connecting abandoned: the stop deadline passed");
    if (steady::now() >= deadline) return cannot(fmt::format("no answer within {} s", opts.connect_timeout.count()));
    const short events = state == PGRES_POLLING_READING ? POLLIN : POLLOUT;
    const int ready = wait_socket(PQsocket(conn_), events, deadline, std::chrono::milliseconds(50));
    if (ready < 0) return cannot(std::strerror(errno));
    if (ready > 0) state = PQconnectPoll(conn_);
  }
  return {};
}

pg_connection::~pg_connection() { PQfinish(conn_); }

pg_canceller::pg_canceller(::pg_cancel* c, int socket) : c_(c, PQfreeCancel), socket_(socket) {}

void pg_canceller::cancel_in_background() {
  std::thread([c = c_] {
    char why[256];
    if (PQcancel(c.get(), why, sizeof why) != 1) spdlog::debug("postgres: cancel request failed: {}", one_line(why));
  }).detach();
}

void pg_canceller::sever() { sever_socket(socket_); }

pg_canceller* pg_connection::canceller() {
  if (!canceller_) {
    ::pg_cancel* c = PQgetCancel(conn_);
    if (!c) return nullptr;
    canceller_ = std::make_unique<pg_canceller>(c, PQsocket(conn_));
  }
  return canceller_.get();
}

bool pg_connection::healthy() const { return PQstatus(conn_) == CONNECTION_OK; }

bool pg_connection::idle() const { return PQtransactionStatus(conn_) == PQTRANS_IDLE; }

error pg_connection::fail(std::string_view what, const PGresult* r) {
  const char* state = r ? PQresultErrorField(r, PG_DIAG_SQLSTATE) : nullptr;
  last_sqlstate_ = state ? state : "";
  const char* primary = r ? PQresultErrorField(r, PG_DIAG_MESSAGE_PRIMARY) : nullptr;
  std::string text = primary ? primary : one_line(PQerrorMessage(conn_));
  if (const char* detail = r ? PQresultErrorField(r, PG_DIAG_MESSAGE_DETAIL) : nullptr)
    text += fmt::format(" ({})", detail);
  if (text.empty()) text = "unknown error";

  errc kind = errc::storage;
  if (!healthy())
    kind = errc::unavailable;
  else if (!last_sqlstate_.empty())
    kind = classify_sqlstate(last_sqlstate_);
  if (last_sqlstate_.empty()) return error(kind, fmt::format("postgres: {}: {}", what, text));
  return error(kind, fmt::format("postgres: {}: {} [SQLSTATE {}]", what, text, last_sqlstate_));
}

result<pg_rows> pg_connection::answer(std::string_view what, int sent, std::chrono::milliseconds bound) {
  if (!sent) return fail(what, nullptr);
  if (bound.count() <= 0) bound = answer_timeout_;
  // No bound: a deadline a day away (one that is never reached in practice
  // and does not overflow the clock's arithmetic).
  const auto deadline = steady::now() + (bound.count() > 0 ? bound : std::chrono::hours(24));
  const int fd = PQsocket(conn_);
  auto give_up = [&] {
    sever_socket(fd);
    while (PGresult* r = PQgetResult(conn_)) PQclear(r);
    last_sqlstate_.clear();
    return error(errc::timeout, fmt::format("postgres: {}: the server did not answer within {} ms; connection closed",
                                            what, bound.count()));
  };
  // What is left of the request first (a large batch to a server that stops
  // reading), then the answer; input is read meanwhile, as libpq asks.
  for (int left; (left = PQflush(conn_)) != 0;) {
    if (left < 0) return fail(what, nullptr);
    if (steady::now() >= deadline) return give_up();
    const int ready = wait_socket(fd, POLLIN | POLLOUT, deadline, std::chrono::seconds(1));
    if (ready < 0 || (ready > 0 && !PQconsumeInput(conn_))) return fail(what, nullptr);
  }
  while (PQisBusy(conn_)) {
    if (steady::now() >= deadline) return give_up();
    const int ready = wait_socket(fd, POLLIN, deadline, std::chrono::seconds(1));
    // Still busy, PQgetResult would wait without a bound: the connection is
    // left mid-statement, so the pool closes it.
    if (ready < 0) return error(errc::unavailable, fmt::format("postgres: {}: {}", what, std::strerror(errno)));
    if (ready > 0 && !PQconsumeInput(conn_)) break;  // the connection failed: the results below say why
  }
  // As PQexec: the last result, unless one failed (later ones are then
  // not run by the server anyway).
  pg_rows last;
  bool failed = false;
  while (PGresult* r = PQgetResult(conn_)) {
    const auto status = PQresultStatus(r);
    if (failed) {
      PQclear(r);
      continue;
    }
    last = pg_rows(r);
    failed = status != PGRES_COMMAND_OK && status != PGRES_TUPLES_OK;
  }
  const auto status = PQresultStatus(last.get());
  if (status != PGRES_COMMAND_OK && status != PGRES_TUPLES_OK) return fail(what, last.get());
  last_sqlstate_.clear();
  return last;
}

result<pg_rows> pg_connection::exec(std::string_view what, const std::string& sql) {
  return answer(what, PQsendQuery(conn_, sql.c_str()));
}

result<void> pg_connection::ping(std::chrono::milliseconds bound) {
  if (answer_timeout_.count() > 0) bound = std::min(bound, answer_timeout_);
  if (auto r = answer("ping", PQsendQuery(conn_, "SELECT 1"), bound); !r) return r.err();
  return {};
}

void pg_connection::rollback() {
  if (!healthy() || idle()) return;
  const std::string kept = last_sqlstate_;
  (void)exec("rollback", "ROLLBACK");
  last_sqlstate_ = kept;
}

result<pg_rows> pg_connection::run(const pg_statement& stmt, const std::vector<std::string>& params,
                                   pg_format results) {
  std::vector<pg_param> typed;
  typed.reserve(params.size());
  for (const auto& p : params) typed.push_back({p, pg_format::text});
  return run_typed(stmt, typed, results);
}

result<pg_rows> pg_connection::run_typed(const pg_statement& stmt, std::span<const pg_param> params,
                                         pg_format results) {
  std::vector<const char*> values;
  std::vector<int> lengths;
  std::vector<int> formats;
  values.reserve(params.size());
  lengths.reserve(params.size());
  formats.reserve(params.size());
  for (const auto& p : params) {
    if (p.format == pg_format::text && p.value.find('\0') != std::string::npos)
      return error(errc::invalid_input, fmt::format("postgres: {}: a parameter contains a NUL byte", stmt.name));
    values.push_back(p.value.c_str());
    lengths.push_back(static_cast<int>(p.value.size()));
    formats.push_back(p.format == pg_format::binary ? 1 : 0);
  }
  if (!prepared_.contains(stmt.name)) {
    auto prepared = answer(fmt::format("prepare {}", stmt.name),
                           PQsendPrepare(conn_, stmt.name.c_str(), stmt.sql.c_str(), 0, nullptr));
    if (!prepared) return prepared.err();
    prepared_.insert(stmt.name);
  }
  return answer(stmt.name, PQsendQueryPrepared(conn_, stmt.name.c_str(), static_cast<int>(values.size()),
                                               values.data(), lengths.data(), formats.data(),
                                               results == pg_format::binary ? 1 : 0));
}

}  // namespace feed

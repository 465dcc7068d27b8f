// One libpq connection to PostgreSQL or CockroachDB, as an RAII object.
//
// Purpose: own a PGconn and the PGresults it produces, prepare named
// statements lazily (once per connection, on first use) and turn libpq
// failures into feed::error values with the SQLSTATE in the message.
//
// Thread safety: none. libpq allows one thread at a time per connection; the
// pool (pg_pool.h) hands each connection to one caller at a time.
//
// Failures: connection-level problems (cannot connect, connection lost,
// SQLSTATE class 08, server shutting down 57P0x, too many connections 53300,
// statement timeout 57014) are errc::unavailable, since waiting and retrying
// is the fix; every other server error is errc::storage. The SQLSTATE of the
// last failure is kept so callers can retry serialization failures (40001).
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <unordered_set>
#include <utility>
#include <vector>

#include "base/result.h"

struct pg_conn;
struct pg_result;
struct pg_cancel;

namespace feed {

struct pg_connect_options {
  std::string url;                                  // libpq URL or key=value string
  std::chrono::seconds connect_timeout{5};          // whole connection setup, per attempt
  std::chrono::milliseconds statement_timeout{0};   // server-side limit per statement; 0 = none
  // Server-side limit on a transaction waiting for its client's next
  // statement (idle_in_transaction_session_timeout); 0 = none. Our
  // transactions send their statements back to back, so only a client
  // that hangs mid-transaction (a paused VM, a stopped process) reaches
  // it: the server then ends its session, and with it the counter's row
  // lock, which otherwise held every other instance's writes.
  std::chrono::milliseconds idle_in_transaction_timeout{2000};
  // Client-side bound on waiting for the server's answer to one call (a
  // statement, a prepare, the session settings); 0 = none. Past it the
  // connection is shut down and the call fails with errc::timeout. The
  // server's own statement_timeout needs a live server; this bounds one
  // that hangs (the kernel answers, the server does not). Keep it above
  // statement_timeout, so that a live server's own limit answers first.
  std::chrono::milliseconds answer_timeout{0};
  // When set and true, a connection still being opened gives up at once
  // (checked every 50 ms): a stop does not wait for a server that hangs.
  const std::atomic<bool>* abandon = nullptr;
};

// A PGresult that is freed when it goes out of scope.
class pg_rows {
 public:
  pg_rows() = default;
  explicit pg_rows(::pg_result* r) : r_(r) {}
  pg_rows(pg_rows&& o) noexcept : r_(std::exchange(o.r_, nullptr)) {}
  pg_rows& operator=(pg_rows&& o) noexcept;
  pg_rows(const pg_rows&) = delete;
  pg_rows& operator=(const pg_rows&) = delete;
  ~pg_rows();

  int rows() const;
  bool is_null(int row, int col) const;
  // The raw value: text, or the binary wire form when binary results were
  // asked for. Empty for NULL.
  std::string_view value(int row, int col) const;
  // Rows touched by INSERT/UPDATE/DELETE.
  std::int64_t affected() const;
  ::pg_result* get() const { return r_; }

 private:
  ::pg_result* r_ = nullptr;
};

// A statement prepared under `name` on every connection that runs it. The
// SQL carries explicit casts on its parameters ($1::BIGINT) so that the
// server infers the types.
struct pg_statement {
  std::string name;
  std::string sql;
};

enum class pg_format { text, binary };

// A statement parameter in text form (no NUL bytes: libpq passes text as a C
// string) or in the binary wire form of its type (see pg_wire.h).
struct pg_param {
  std::string value;
  pg_format format = pg_format::text;
};

// Ends the statement its connection is running, from any thread. Made by
// the thread that uses the connection; the others may be called from
// another, while the connection exists.
class pg_canceller {
 public:
  pg_canceller(::pg_cancel* c, int socket);
  pg_canceller(const pg_canceller&) = delete;
  pg_canceller& operator=(const pg_canceller&) = delete;
  // Asks the server to cancel the statement (libpq's PQcancel, on a
  // connection of its own) from a thread of its own, and returns at once:
  // PQcancel waits for the server's answer without a bound, and a server
  // that hangs never gives one.
  void cancel_in_background();
  // Shuts the connection's socket down, so that a statement waiting for a
  // server that does not answer fails at once ("server closed the
  // connection") instead of waiting for it. The connection is then broken.
  void sever();

 private:
  std::shared_ptr<::pg_cancel> c_;  // shared with a cancel still in flight
  int socket_;
};

class pg_connection {
 public:
  // Connects and applies the session settings. errc::unavailable when the
  // server cannot be reached within connect_timeout.
  static result<std::unique_ptr<pg_connection>> connect(const pg_connect_options& opts);
  ~pg_connection();
  pg_connection(const pg_connection&) = delete;
  pg_connection& operator=(const pg_connection&) = delete;

  // The socket is still up as far as libpq knows. A server that went away
  // while the connection sat idle is only noticed on the next statement.
  bool healthy() const;
  // Not inside a transaction (so it can go back to the pool as is).
  bool idle() const;

  // Runs one or more statements with the simple protocol; text results of
  // the last one.
  result<pg_rows> exec(std::string_view what, const std::string& sql);

  // SELECT 1, waiting at most `bound` (and answer_timeout) for the answer;
  // past it the connection is shut down (it is broken from then on) and the
  // answer is errc::timeout.
  result<void> ping(std::chrono::milliseconds bound);

  // Runs a prepared statement; parameters are sent as text and must not
  // contain NUL bytes (libpq passes them as C strings).
  result<pg_rows> run(const pg_statement& stmt, const std::vector<std::string>& params,
                      pg_format results = pg_format::binary);
  // The same with each parameter's format given, so large batches can go as
  // binary arrays.
  result<pg_rows> run_typed(const pg_statement& stmt, std::span<const pg_param> params,
                            pg_format results = pg_format::binary);

  // For cancelling this connection's statements from another thread; made
  // once and kept with the connection. Null when libpq cannot make one (the
  // connection is down).
  pg_canceller* canceller();

  // Best-effort ROLLBACK that leaves last_sqlstate() alone, so a caller can
  // still see why its transaction failed after cleaning up.
  void rollback();

  // SQLSTATE of the last failed call ("" when it was not a server error).
  const std::string& last_sqlstate() const { return last_sqlstate_; }

 private:
  pg_connection(::pg_conn* c, std::chrono::milliseconds answer_timeout) : conn_(c), answer_timeout_(answer_timeout) {}
  // Drives a connection begun with PQconnectStartParams to its end.
  result<void> finish_connecting(const pg_connect_options& opts);
  // Waits for the answer to what a PQsend* call (`sent`: its return value)
  // sent, at most `bound` (0: answer_timeout_, which may be 0: no bound),
  // and returns its last result, or the first that failed. libpq's blocking
  // calls (PQexec and the like) wait without any bound.
  result<pg_rows> answer(std::string_view what, int sent, std::chrono::milliseconds bound = {});
  // Classifies the failure of `r` (may be null) and remembers its SQLSTATE.
  error fail(std::string_view what, const ::pg_result* r);

  ::pg_conn* conn_;
  const std::chrono::milliseconds answer_timeout_;
  std::unordered_set<std::string> prepared_;
  std::string last_sqlstate_;
  std::unique_ptr<pg_canceller> canceller_;
};

// errc for a SQLSTATE, following the rules in the header comment.
errc classify_sqlstate(std::string_view sqlstate);

}  // namespace feed

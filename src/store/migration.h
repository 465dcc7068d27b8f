// Versioned schema migrations, in the layout of golang-migrate (the
// reference's tool): files NNNNNN_name.up.sql, progress kept in
// schema_migrations(version, dirty), so a database created by the reference
// is recognised and upgraded in place.
//
// Only the .up.sql files are embedded and run. The .down.sql files beside
// them in sql/migrations/ are not read by anything here: they are kept so
// that golang-migrate's `migrate down` still works on the same directory, as
// it does on the reference's.
//
// migrate() is the one loop both stores run; each store implements
// schema_target for its own locking, transactions and SQL dialect.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "base/result.h"

namespace feed::schema {

struct migration_file {
  std::string_view name;  // e.g. "000001_create_messages_table.up.sql"
  std::string_view sql;
};

struct migration {
  std::int64_t version;
  std::string name;  // the file name without ".up.sql"
  std::string up_sql;
};

// Sorts the .up.sql files by version. Fails on a name that does not follow
// the pattern or on two files with one version.
result<std::vector<migration>> collect_migrations(const std::vector<migration_file>& files);

// Files embedded at build time from sql/migrations/<dialect>/.
const std::vector<migration_file>& sqlite_migration_files();

// What schema_migrations records.
struct schema_state {
  std::int64_t version = 0;  // 0: nothing applied yet
  bool dirty = false;        // a migration of `version` started and did not finish
};

// One store's side of migrate(). Not thread safe: migrate() drives it from
// one thread.
//
// read_state() may begin a transaction or take a lock that keeps other
// processes from migrating at the same time; apply() or finish() ends it.
// After an error migrate() stops calling; the target then ends whatever it
// still holds when it is destroyed.
class schema_target {
 public:
  virtual ~schema_target() = default;
  // Prefix of log lines and errors, e.g. "sqlite".
  virtual std::string_view name() const = 0;
  virtual result<schema_state> read_state() = 0;
  // Runs m.up_sql and records m.version as applied and clean.
  virtual result<void> apply(const migration& m) = 0;
  // Nothing is left to apply.
  virtual result<void> finish() = 0;
};

// Applies, one at a time and in order, the migrations newer than the
// recorded version, reading the state again before each. A dirty state is
// refused with errc::storage before anything runs: a migration failed
// half-way, and only a person can tell what it left behind. Returns the
// version the database is at afterwards.
result<std::int64_t> migrate(schema_target& target, const std::vector<migration>& migrations);

}  // namespace feed::schema

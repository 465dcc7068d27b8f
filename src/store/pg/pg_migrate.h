// The migration runner for PostgreSQL and CockroachDB.
//
// Purpose: bring a database to the newest embedded migration, keeping
// progress in golang-migrate's table, schema_migrations(version BIGINT NOT
// NULL PRIMARY KEY, dirty BOOLEAN NOT NULL) with one row, so a database the
// reference laid out is recognised and upgraded in place.
//
// Locking: pg_advisory_lock does not exist on CockroachDB, so the runner
// holds a row lock instead: one connection keeps a transaction open on
// `SELECT ... FROM feed_schema_lock WHERE id = 1 FOR UPDATE` while a second
// connection applies the migrations. Another instance starting at the same
// time waits on that row, then finds nothing left to do. A crashed runner's
// lock goes away with its connection.
//
// Applying: each migration runs statement by statement outside a
// transaction, because CockroachDB cannot write a column added earlier in
// the same transaction. As golang-migrate does, the version is recorded with
// dirty = true before and dirty = false after; a failure leaves it dirty, and
// a dirty database is refused (errc::storage) until someone repairs it and
// clears the flag.
//
// The loop (read the state, refuse a dirty one, apply the next migration)
// is schema::migrate (store/migration.h); this is its PostgreSQL side.
//
// Thread safety: a free function with its own connections; safe to call
// concurrently, also from several processes.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "base/result.h"
#include "store/migration.h"
#include "store/pg/pg_connection.h"

namespace feed {

// Applies the migrations newer than the recorded version; returns the
// version the database is at afterwards.
result<std::int64_t> migrate_pg(const pg_connect_options& opts, const std::vector<schema::migration>& migrations);

// Splits SQL text into statements at top-level semicolons, skipping those in
// quotes ('', "", E'', $tag$), comments (--, /* */). Statements that are only
// comments or blanks are dropped.
std::vector<std::string> split_sql_statements(std::string_view sql);

}  // namespace feed

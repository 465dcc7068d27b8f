// Versioned schema migrations, in the layout of golang-migrate (the
// reference's tool): files NNNNNN_name.up.sql / .down.sql, progress kept in
// schema_migrations(version, dirty), so a database created by the reference
// is recognised and upgraded in place.
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
  std::string name;
  std::string up_sql;
  std::string down_sql;
};

// Pairs up the .up/.down files and sorts them by version. Fails on a name
// that does not follow the pattern, a duplicate or a missing .up file.
result<std::vector<migration>> collect_migrations(const std::vector<migration_file>& files);

// Files embedded at build time from sql/migrations/<dialect>/.
const std::vector<migration_file>& sqlite_migration_files();

}  // namespace feed::schema

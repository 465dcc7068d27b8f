// The PostgreSQL/CockroachDB migrations, embedded at build time from
// sql/migrations/pg/ by feed_embed_migrations (the definition is generated).
#pragma once

#include <vector>

#include "store/migration.h"

namespace feed::schema {

const std::vector<migration_file>& pg_migration_files();

}  // namespace feed::schema

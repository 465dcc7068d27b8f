#include "store/migration.h"

#include <algorithm>
#include <charconv>
#include <map>

#include <fmt/format.h>

namespace feed::schema {

result<std::vector<migration>> collect_migrations(const std::vector<migration_file>& files) {
  std::map<std::int64_t, migration> by_version;
  for (const auto& f : files) {
    const auto underscore = f.name.find('_');
    std::int64_t version = 0;
    const bool numeric = underscore != std::string_view::npos &&
                         std::from_chars(f.name.data(), f.name.data() + underscore, version).ptr ==
                             f.name.data() + underscore;
    const bool up = f.name.ends_with(".up.sql"), down = f.name.ends_with(".down.sql");
    if (!numeric || (!up && !down))
      return error(errc::corrupt, fmt::format("migration file name {} is not NNN_name.up.sql/.down.sql", f.name));
    auto& m = by_version[version];
    m.version = version;
    std::string& slot = up ? m.up_sql : m.down_sql;
    if (!slot.empty()) return error(errc::corrupt, fmt::format("migration {} appears twice", f.name));
    slot.assign(f.sql);
    if (up) m.name = f.name.substr(0, f.name.size() - 7);
  }
  std::vector<migration> out;
  for (auto& [v, m] : by_version) {
    if (m.up_sql.empty()) return error(errc::corrupt, fmt::format("migration {} has no .up.sql file", v));
    out.push_back(std::move(m));
  }
  return out;
}

}  // namespace feed::schema

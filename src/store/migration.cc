#include "store/migration.h"

#include <algorithm>
#include <charconv>
#include <map>
#include <optional>

#include <fmt/format.h>

#include "base/log.h"

namespace feed::schema {

namespace {

constexpr std::string_view kUpSuffix = ".up.sql";

// The NNN of "NNN_name.up.sql", or nothing for any other name.
std::optional<std::int64_t> up_file_version(std::string_view name) {
  const auto underscore = name.find('_');
  if (underscore == std::string_view::npos || !name.ends_with(kUpSuffix)) return std::nullopt;
  std::int64_t version = 0;
  const auto [end, ec] = std::from_chars(name.data(), name.data() + underscore, version);
  if (ec != std::errc{} || end != name.data() + underscore) return std::nullopt;
  return version;
}

}  // namespace

result<std::vector<migration>> collect_migrations(const std::vector<migration_file>& files) {
  std::map<std::int64_t, migration> by_version;
  for (const auto& f : files) {
    const auto version = up_file_version(f.name);
    if (!version) return error(errc::corrupt, fmt::format("migration file name {} is not NNN_name.up.sql", f.name));
    const auto name = f.name.substr(0, f.name.size() - kUpSuffix.size());
    auto [it, fresh] = by_version.try_emplace(*version, migration{*version, std::string(name), std::string(f.sql)});
    if (!fresh)
      return error(errc::corrupt, fmt::format("migrations {} and {} have one version", it->second.name, name));
  }
  std::vector<migration> out;
  out.reserve(by_version.size());
  for (auto& [version, m] : by_version) out.push_back(std::move(m));
  return out;
}

result<std::int64_t> migrate(schema_target& target, const std::vector<migration>& migrations) {
  for (;;) {
    auto state = target.read_state();
    if (!state) return state.err();
    if (state->dirty)
      return error(errc::storage,
                   fmt::format("{}: schema_migrations says version {} is dirty: a migration failed half-way; "
                               "repair the schema, then set dirty = false",
                               target.name(), state->version));
    auto next = std::find_if(migrations.begin(), migrations.end(),
                             [&](const migration& m) { return m.version > state->version; });
    if (next == migrations.end()) {
      if (auto r = target.finish(); !r) return r.err();
      return state->version;
    }
    spdlog::info("{}: applying migration {}", target.name(), next->name);
    if (auto r = target.apply(*next); !r) return r.err();
  }
}

}  // namespace feed::schema

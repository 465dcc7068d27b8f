#include "base/log.h"

#include <spdlog/sinks/stdout_color_sinks.h>

namespace feed {

bool set_log_level(std::string_view name) {
  const auto level = spdlog::level::from_str(std::string(name));
  if (level == spdlog::level::off && name != "off") return false;
  static const bool once = [] {
    auto logger = spdlog::stderr_color_mt("feed");
    spdlog::set_default_logger(logger);
    spdlog::set_pattern("%Y-%m-%dT%H:%M:%S.%fZ %^%l%$ %v", spdlog::pattern_time_type::utc);
    return true;
  }();
  (void)once;
  spdlog::set_level(level);
  return true;
}

}  // namespace feed

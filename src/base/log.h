// Logging goes through spdlog's default logger (stderr, one line per event).
// set_log_level() accepts trace|debug|info|warn|error|off.
#pragma once

#include <string_view>

#include <spdlog/spdlog.h>

namespace feed {

// Returns false when the level name is unknown.
bool set_log_level(std::string_view level);

}  // namespace feed

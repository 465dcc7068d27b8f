#include "queue/kafka/producer_state.h"

namespace feed {

std::optional<std::string_view> idempotence_state(std::string_view json) {
  constexpr std::string_view key = "\"idemp_state\"";
  constexpr std::size_t longest = 32;  // librdkafka's names are under 16
  const auto at = json.rfind(key);
  if (at == std::string_view::npos) return std::nullopt;
  std::size_t i = at + key.size();
  const auto skip_space = [&] {
    while (i < json.size() && (json[i] == ' ' || json[i] == '\t' || json[i] == '\n' || json[i] == '\r')) ++i;
  };
  skip_space();
  if (i >= json.size() || json[i] != ':') return std::nullopt;
  ++i;
  skip_space();
  if (i >= json.size() || json[i] != '"') return std::nullopt;
  const std::size_t begin = ++i;
  while (i < json.size() && i - begin <= longest) {
    const char c = json[i];
    if (c == '"') return i == begin ? std::nullopt : std::optional(json.substr(begin, i - begin));
    const bool plain = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_';
    if (!plain) return std::nullopt;
    ++i;
  }
  return std::nullopt;
}

}  // namespace feed

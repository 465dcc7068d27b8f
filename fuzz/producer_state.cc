// The idempotent producer's state read from librdkafka's statistics
// (feed::idempotence_state), which /api/ready trusts in Kafka mode.
//
// Input: a statistics document. Reading must not crash, and a state it
// returns must be what the document says: a view into the input, 1 to 32
// letters, digits or underscores, closed by a quote, and opened after the
// last "idemp_state" key by only a colon, JSON whitespace and a quote.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "fuzz_check.h"
#include "queue/kafka/producer_state.h"

namespace {

bool json_space(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r'; }

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view doc(reinterpret_cast<const char*>(data), size);
  const auto state = feed::idempotence_state(doc);
  if (!state) return 0;
  FUZZ_CHECK(state->data() >= doc.data() && state->data() + state->size() < doc.data() + doc.size());
  FUZZ_CHECK(!state->empty() && state->size() <= 32);
  for (const char c : *state)
    FUZZ_CHECK((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_');
  const std::size_t begin = static_cast<std::size_t>(state->data() - doc.data());
  FUZZ_CHECK(doc[begin + state->size()] == '"');
  constexpr std::string_view key = "\"idemp_state\"";
  const std::size_t at = doc.rfind(key);
  FUZZ_CHECK(at != std::string_view::npos && at + key.size() < begin);
  std::size_t colons = 0;
  for (std::size_t i = at + key.size(); i + 1 < begin; ++i) {
    FUZZ_CHECK(json_space(doc[i]) || doc[i] == ':');
    colons += doc[i] == ':';
  }
  FUZZ_CHECK(colons == 1 && doc[begin - 1] == '"');
  return 0;
}

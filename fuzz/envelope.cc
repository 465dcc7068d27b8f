// The Kafka envelope decoder (feed::decode_envelope), which reads every
// record of events-to-process and events-processed, including records from
// producers that are not ours.
//
// Input: a record value. Decoding must not crash; an envelope it accepts
// must have what the consumers rely on (non-empty id and user_id, seq >= 0),
// and must come back the same through encode_envelope, which is how the
// worker republishes a message on events-processed.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "fuzz_check.h"
#include "model/envelope.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view record(reinterpret_cast<const char*>(data), size);
  auto e = feed::decode_envelope(record);
  if (!e) {
    FUZZ_CHECK(!e.err().message.empty());
    return 0;
  }
  const feed::message& m = e->msg;
  FUZZ_CHECK(!m.id.empty());
  FUZZ_CHECK(!m.user_id.empty());
  FUZZ_CHECK(m.seq.value() >= 0);

  for (bool with_seq : {true, false}) {
    auto again = feed::decode_envelope(feed::encode_envelope(m, e->event_type, with_seq));
    FUZZ_CHECK(bool(again));
    FUZZ_CHECK(again->event_type == e->event_type);
    FUZZ_CHECK(again->msg.id == m.id && again->msg.user_id == m.user_id && again->msg.content == m.content);
    FUZZ_CHECK(again->msg.created_at == m.created_at);
    FUZZ_CHECK(again->msg.seq.value() == (with_seq ? m.seq.value() : 0));
  }
  return 0;
}

// The Kafka envelope decoder (feed::decode_envelope), which reads every
// record of events-to-process and events-processed, including records from
// producers that are not ours.
//
// Input: a record value. Decoding must not crash; an envelope it accepts
// must have what the consumers rely on (non-empty id and user_id, seq >= 0),
// and must come back the same through encode_envelope, which is how the
// worker republishes a message on events-processed.
//
// decode_envelope reads records of encode_envelope's exact shape with a
// reader of its own and passes the rest to a JSON parser; the reader must
// never decide differently from the parser. So each input, and each record
// encoded from what it decoded (which is that shape, with whatever strings
// the input had), is also read by the parser alone
// (decode_envelope_general) and by decode_envelope_message: all must accept
// or all refuse (with the same error), and what they accept must be equal.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "fuzz_check.h"
#include "model/envelope.h"

namespace {

void check_readers_agree(std::string_view record) {
  const feed::timestamp before = feed::now_utc();
  const auto fast = feed::decode_envelope(record);
  const auto general = feed::decode_envelope_general(record);
  const auto only = feed::decode_envelope_message(record);
  const feed::timestamp after = feed::now_utc();
  FUZZ_CHECK(bool(fast) == bool(general));
  FUZZ_CHECK(bool(only) == bool(general));
  if (!general) {
    FUZZ_CHECK(fast.err().message == general.err().message);
    FUZZ_CHECK(only.err().message == general.err().message);
    return;
  }
  FUZZ_CHECK(fast->id == general->id);
  FUZZ_CHECK(fast->event_type == general->event_type);
  FUZZ_CHECK(fast->version == general->version);
  FUZZ_CHECK(fast->at == general->at);
  const feed::message& want = general->msg;
  for (const feed::message* m : {&fast->msg, &*only}) {
    FUZZ_CHECK(m->id == want.id && m->user_id == want.user_id && m->content == want.content);
    FUZZ_CHECK(m->seq == want.seq);
    // A record without created_at gets each decode's own now.
    FUZZ_CHECK(m->created_at == want.created_at ||
               (m->created_at >= before && m->created_at <= after && want.created_at >= before &&
                want.created_at <= after));
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view record(reinterpret_cast<const char*>(data), size);
  check_readers_agree(record);
  auto e = feed::decode_envelope(record);
  if (!e) {
    FUZZ_CHECK(!e.err().message.empty());
    return 0;
  }
  const feed::message& m = e->msg;
  FUZZ_CHECK(!m.id.empty());
  FUZZ_CHECK(m.seq.value() >= 0);

  for (bool with_seq : {true, false}) {
    const std::string text = feed::encode_envelope(m, e->event_type, with_seq);
    check_readers_agree(text);
    auto again = feed::decode_envelope(text);
    FUZZ_CHECK(bool(again));
    FUZZ_CHECK(again->event_type == e->event_type);
    FUZZ_CHECK(again->msg.id == m.id && again->msg.user_id == m.user_id && again->msg.content == m.content);
    FUZZ_CHECK(again->msg.created_at == m.created_at);
    FUZZ_CHECK(again->msg.seq.value() == (with_seq ? m.seq.value() : 0));
  }
  return 0;
}

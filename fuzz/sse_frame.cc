// SSE framing: what the server writes (feed::sse_event_frame) read back by an
// event-stream parser (the bot's feed::bot::sse_parser, WHATWG rules).
//
// Input: a message's fields (id, user_id, content as valid UTF-8, which is
// all the API stores, plus seq and created_at) and how the stream is split
// into reads. decode(encode(m)) must give back m, as exactly one event whose
// id is m's seq: no content can end an event early or forge another.
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include <boost/json.hpp>
#include <fuzzer/FuzzedDataProvider.h>

#include "bot/sse_parser.h"
#include "fuzz_check.h"
#include "model/message.h"
#include "model/sse_frame.h"
#include "model/utf8.h"

namespace {

struct decoded {
  std::string id, event, data;
};

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  FuzzedDataProvider in(data, size);
  const std::size_t step = in.ConsumeIntegralInRange<std::size_t>(1, 64);
  feed::message m;
  m.seq = feed::seq_t{in.ConsumeIntegralInRange<std::int64_t>(0, INT64_MAX)};
  // 1970 to 9999: RFC 3339 has four-digit years.
  m.created_at = feed::timestamp{std::chrono::microseconds{in.ConsumeIntegralInRange<std::int64_t>(0, 253402300799999999)}};
  m.id = in.ConsumeRandomLengthString(64);
  m.user_id = in.ConsumeRandomLengthString(128);
  m.content = in.ConsumeRemainingBytesAsString();
  for (const std::string* s : {&m.id, &m.user_id, &m.content})
    if (!feed::utf8_code_points(*s)) return 0;

  // As the server's stream goes: the retry hint, events, heartbeats.
  const std::string stream =
      std::string("retry: 2000\n\n") + std::string(feed::kSseHeartbeat) + feed::sse_event_frame(m) +
      std::string(feed::kSseHeartbeat);

  feed::bot::sse_parser parser;
  std::vector<decoded> events;
  for (std::size_t pos = 0; pos < stream.size(); pos += step) {
    parser.feed(std::string_view(stream).substr(pos, step), [&](const feed::bot::sse_event& e) {
      events.push_back({std::string(e.id), std::string(e.event), std::string(e.data)});
    });
  }
  FUZZ_CHECK(events.size() == 1);
  FUZZ_CHECK(parser.comments() == 2);
  const decoded& e = events.front();
  FUZZ_CHECK(e.event.empty());
  FUZZ_CHECK(e.id == std::to_string(m.seq.value()));

  boost::system::error_code ec;
  const auto json = boost::json::parse(e.data, ec);
  FUZZ_CHECK(!ec);
  auto back = feed::message_from_json(json);
  FUZZ_CHECK(bool(back));
  back->seq = feed::seq_t{std::stoll(e.id)};
  FUZZ_CHECK(*back == m);
  return 0;
}

// Micro-benchmarks of the Kafka envelope, with the heap calls per record
// beside the time (this binary counts every malloc-family call it makes):
//   - EncodeCreated/<content bytes>: encode_envelope of an accepted post
//     (what the publisher produces onto events-to-process)
//   - EncodeProcessed/<content bytes>: the same with its seq (what the
//     processed sink produces onto events-processed)
//   - Decode/<content bytes>: decode_envelope of a processed record (the
//     worker's consumer and every subscriber decode each record once)
//   - EncodeInto, DecodeMessage: the calls the Kafka clients make since
//     they reuse one buffer and skip the envelope's own fields (built only
//     with -DFEED_ENVELOPE_INTO=ON, for a build that has them)
// Build: see ../CMakeLists.txt. Run two builds one after the other on an
// idle machine; compare the same rows.
#include <chrono>
#include <string>
#include <string_view>

#define FEED_MICRO_COUNT_ALLOCS  // harness.h counts this binary's heap calls
#include "harness.h"

#include "model/envelope.h"

namespace {

// Like bench/post.lua's bodies: words with some multi-byte UTF-8 and a quote.
feed::message sample(std::size_t content_bytes) {
  std::string content;
  const std::string words = "the feed is \"fast\" café naïve deploy green über résumé queue store 🙂 ";
  while (content.size() < content_bytes) content += words;
  content.resize(content_bytes);
  while (!content.empty() && (static_cast<unsigned char>(content.back()) & 0xC0) == 0x80) content.pop_back();
  if (!content.empty() && static_cast<unsigned char>(content.back()) >= 0xC0) content.pop_back();
  return feed::message{"0196f0a2-5b1c-7d3e-8f4a-1b2c3d4e5f60", "user_417", std::move(content),
                       feed::timestamp{std::chrono::microseconds{1'714'565'520'123'456}}, feed::seq_t{123456}};
}

// Heap calls per record beside the time.
template <class Op>
void per_record(benchmark::State& state, Op op) {
  micro::count_loop(state, "allocs/record", op);
}

void encode(benchmark::State& state, std::string_view type, bool with_seq) {
  const auto m = sample(static_cast<std::size_t>(state.range(0)));
  per_record(state, [&] {
    std::string text = feed::encode_envelope(m, type, with_seq);
    benchmark::DoNotOptimize(text.data());
  });
}

// fn(record) of a processed record, as the worker's consumer and every
// subscriber read it.
template <class Decode>
void decode(benchmark::State& state, Decode fn) {
  const std::string text =
      feed::encode_envelope(sample(static_cast<std::size_t>(state.range(0))), feed::event_message_processed, true);
  per_record(state, [&] {
    auto r = fn(text);
    benchmark::DoNotOptimize(r);
  });
}

void BM_EncodeCreated(benchmark::State& state) { encode(state, feed::event_message_created, false); }
void BM_EncodeProcessed(benchmark::State& state) { encode(state, feed::event_message_processed, true); }

#ifdef FEED_ENVELOPE_INTO
// Into one reused buffer, as the publisher and the processed sink encode.
void BM_EncodeInto(benchmark::State& state) {
  const auto m = sample(static_cast<std::size_t>(state.range(0)));
  std::string text;
  per_record(state, [&] {
    feed::encode_envelope_into(text, m, feed::event_message_created, false);
    benchmark::DoNotOptimize(text.data());
  });
}
BENCHMARK(BM_EncodeInto)->Arg(40)->Arg(200);

// Only the message, as the worker's consumer and the subscriber decode.
void BM_DecodeMessage(benchmark::State& state) {
  decode(state, [](std::string_view text) { return feed::decode_envelope_message(text); });
}
BENCHMARK(BM_DecodeMessage)->Arg(40)->Arg(200);
#endif

void BM_Decode(benchmark::State& state) {
  decode(state, [](std::string_view text) { return feed::decode_envelope(text); });
}

BENCHMARK(BM_EncodeCreated)->Arg(40)->Arg(200);
BENCHMARK(BM_EncodeProcessed)->Arg(40)->Arg(200);
BENCHMARK(BM_Decode)->Arg(40)->Arg(200);

}  // namespace

BENCHMARK_MAIN();

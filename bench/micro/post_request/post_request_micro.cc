// Micro-benchmarks of decoding a POST /api/messages body
// (feed::parse_post_request), with the heap calls per parse beside the time
// (this binary counts every malloc-family call it makes):
//   - Typical: the body of a usual post, kTypical below
//   - Content/<bytes>: a post whose content has about that many bytes of
//     words with some multi-byte UTF-8
// `post_request_micro --calls=N` instead parses kTypical N times and prints
// the heap calls per parse, for an instruction count that timing noise
// cannot blur:
//   valgrind --tool=callgrind --toggle-collect='feed::parse_post_request*' \
//     post_request_micro --calls=10000
// counts only inside parse_post_request: its total Ir / N is the
// instructions per parse.
// Build: see ../CMakeLists.txt. Build it against two builds (before and
// after a change) and compare the same rows.
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>

#include <fmt/format.h>

#define FEED_MICRO_COUNT_ALLOCS  // harness.h counts this binary's heap calls
#include "harness.h"

#include "model/post_request.h"

namespace {

constexpr std::string_view kTypical =
    R"({"user_id":"user_42","content":"the feed is fast café 🙂 deploy green #w17"})";

std::string post_body(std::size_t content_bytes) {
  const std::string words = "the feed is fast café naïve deploy green über résumé queue store 🙂 ";
  std::string content;
  while (content.size() < content_bytes) content += words;
  content.resize(content_bytes);
  // Cut back to a whole character.
  while (!content.empty() && (static_cast<unsigned char>(content.back()) & 0xC0) == 0x80) content.pop_back();
  if (!content.empty() && static_cast<unsigned char>(content.back()) >= 0xC0) content.pop_back();
  return fmt::format(R"({{"user_id":"user_42","content":"{}"}})", content);
}

void parse(benchmark::State& state, const std::string& body) {
  if (!feed::parse_post_request(body)) {
    state.SkipWithError("the body is refused");
    return;
  }
  micro::count_loop(state, "allocs/parse", [&] {
    auto r = feed::parse_post_request(body);
    benchmark::DoNotOptimize(r);
  });
  state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations() * body.size()));
  state.SetLabel(fmt::format("body {} B", body.size()));
}

void BM_Typical(benchmark::State& state) { parse(state, std::string(kTypical)); }
BENCHMARK(BM_Typical);

void BM_Content(benchmark::State& state) { parse(state, post_body(static_cast<std::size_t>(state.range(0)))); }
BENCHMARK(BM_Content)->Arg(40)->Arg(120)->Arg(280);

}  // namespace

int main(int argc, char** argv) {
  if (argc == 2 && std::string_view(argv[1]).starts_with("--calls=")) {
    const long n = std::atol(argv[1] + 8);
    if (n <= 0) return 2;
    const auto before = micro::allocs();
    for (long i = 0; i < n; ++i) {
      auto r = feed::parse_post_request(kTypical);
      if (!r) return 1;
      benchmark::DoNotOptimize(r);
    }
    std::printf("%ld parses of a %zu-byte body, %.2f heap calls per parse\n", n, kTypical.size(),
                double(micro::allocs() - before) / double(n));
    return 0;
  }
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}

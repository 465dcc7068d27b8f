#include "bot/chunked_decoder.h"

#include <string>

#include <gtest/gtest.h>

namespace feed::bot {
namespace {

TEST(ChunkedDecoder, DecodesWhateverTheSplit) {
  const std::string body = "5\r\nhello\r\n7;ext=1\r\n, world\r\n0\r\nTrailer: x\r\n\r\n";
  for (std::size_t piece = 1; piece <= body.size(); ++piece) {
    chunked_decoder d;
    std::string out;
    chunked_decoder::step last = chunked_decoder::step::need_more;
    for (std::size_t at = 0; at < body.size(); at += piece) {
      last = d.feed(std::string_view(body).substr(at, piece), [&](std::string_view s) { out.append(s); });
      ASSERT_NE(last, chunked_decoder::step::error) << piece;
    }
    EXPECT_EQ(out, "hello, world") << piece;
    EXPECT_EQ(last, chunked_decoder::step::done) << piece;
    EXPECT_TRUE(d.done());
  }
}

TEST(ChunkedDecoder, HexSizesAndOpenStream) {
  chunked_decoder d;
  std::string out;
  const std::string payload(26, 'x');
  EXPECT_EQ(d.feed("1A\r\n" + payload + "\r\n1", [&](std::string_view s) { out.append(s); }),
            chunked_decoder::step::need_more);
  EXPECT_EQ(out, payload);
  EXPECT_FALSE(d.done());
}

TEST(ChunkedDecoder, RejectsGarbage) {
  chunked_decoder d;
  EXPECT_EQ(d.feed("zz\r\n", [](std::string_view) {}), chunked_decoder::step::error);
  chunked_decoder e;
  EXPECT_EQ(e.feed("3\r\nabcX", [](std::string_view) {}), chunked_decoder::step::error);
}

}  // namespace
}  // namespace feed::bot

#include "metrics/metrics.h"

#include <atomic>

#include <gtest/gtest.h>

namespace feed {
namespace {

TEST(Metrics, RendersCurrentValuesInPrometheusTextFormat) {
  std::atomic<int> posts{0};
  metrics m;
  m.counter("feed_posts_total", "Posts answered, by status", [&] { return posts.load(); }, {{"status", "202"}});
  m.counter("feed_posts_total", "Posts answered, by status", [] { return 3.0; }, {{"status", "400"}});
  m.gauge("feed_sse_subscribers", "Open SSE streams", [] { return 7.0; });
  posts = 5;
  const auto text = m.render();
  EXPECT_NE(text.find("# TYPE feed_posts_total counter"), std::string::npos) << text;
  EXPECT_NE(text.find("feed_posts_total{status=\"202\"} 5"), std::string::npos) << text;
  EXPECT_NE(text.find("feed_posts_total{status=\"400\"} 3"), std::string::npos) << text;
  EXPECT_NE(text.find("# TYPE feed_sse_subscribers gauge"), std::string::npos) << text;
  EXPECT_NE(text.find("feed_sse_subscribers 7"), std::string::npos) << text;
  // One HELP/TYPE block per family.
  EXPECT_EQ(text.find("# TYPE feed_posts_total"), text.rfind("# TYPE feed_posts_total"));
}

}  // namespace
}  // namespace feed

#include "app/application.h"

#include <csignal>
#include <filesystem>
#include <fstream>
#include <thread>

#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/write.hpp>
#include <gtest/gtest.h>

namespace feed {
namespace {

namespace fs = std::filesystem;
using clock = std::chrono::steady_clock;

app_options embedded_options(const std::string& name) {
  app_options o;
  o.server.port = 0;
  o.data_dir = fs::path(testing::TempDir()) / ("feed-app-test-" + name);
  fs::remove_all(o.data_dir);
  o.shutdown_timeout = std::chrono::seconds(5);
  return o;
}

TEST(Application, StartsAndStopsOnSigtermWithinTheBound) {
  const app_options o = embedded_options("sigterm");
  application app(o);
  auto started = app.start();
  ASSERT_TRUE(started) << started.err().message;
  // The signal_set is installed by start(): this is delivered to run().
  const auto t0 = clock::now();
  std::raise(SIGTERM);
  EXPECT_EQ(app.run(), 0);
  EXPECT_LT(clock::now() - t0, o.shutdown_timeout);
  EXPECT_TRUE(fs::exists(o.data_dir / "feed.db"));
}

// A request whose body never comes holds the in-flight wait to its bound;
// the steps after it must still fit in --shutdown-timeout. The loop may be
// stopped with that request's coroutine still suspended: its frame is
// destroyed before the parts it refers to (AddressSanitizer tells).
TEST(Application, AStalledUploadDoesNotStretchTheStopPastTheBound) {
  app_options o = embedded_options("stalled");
  o.shutdown_timeout = std::chrono::seconds(2);
  application app(o);
  auto started = app.start();
  ASSERT_TRUE(started) << started.err().message;
  boost::asio::io_context ioc;
  boost::asio::ip::tcp::socket upload(ioc);
  upload.connect({boost::asio::ip::make_address("127.0.0.1"), app.port()});
  const std::string partial =
      "POST /api/messages HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
      "Content-Length: 40\r\n\r\n{\"u";
  boost::asio::write(upload, boost::asio::buffer(partial));
  std::this_thread::sleep_for(std::chrono::milliseconds(200));  // the server has read the head
  const auto t0 = clock::now();
  std::raise(SIGTERM);
  EXPECT_EQ(app.run(), 0);
  EXPECT_LT(clock::now() - t0, o.shutdown_timeout);
}

TEST(Application, FailedStartStopsWhatHadStarted) {
  app_options o = embedded_options("failed");
  // A regular file where the data directory's parent should be: the store
  // cannot be opened, after the listener and the loops were set up.
  fs::create_directories(o.data_dir);
  std::ofstream(o.data_dir / "file") << "x";
  o.data_dir = o.data_dir / "file" / "data";
  const auto t0 = clock::now();
  {
    application app(o);
    auto started = app.start();
    ASSERT_FALSE(started);
    EXPECT_EQ(started.err().message.rfind("cannot start: embedded store", 0), 0u) << started.err().message;
  }
  // Nothing waited for loops that never ran.
  EXPECT_LT(clock::now() - t0, std::chrono::seconds(2));
}

}  // namespace
}  // namespace feed

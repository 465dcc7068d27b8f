#include "app/report_pump.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <utility>

#include <boost/asio/post.hpp>
#include <boost/asio/posix/stream_descriptor.hpp>
#include <fmt/format.h>

#include "queue/kafka/kafka_publisher.h"

namespace feed {

namespace asio = boost::asio;

struct report_pump::state : std::enable_shared_from_this<state> {
  state(asio::io_context& loop, int fd, kafka_publisher& p) : signal(loop, fd), publisher(p) {}

  void wait() {
    signal.async_wait(asio::posix::descriptor_base::wait_read,
                      [self = shared_from_this()](boost::system::error_code ec) {
                        if (ec || self->stopped) return;
                        self->publisher.serve_reports();
                        self->wait();
                      });
  }

  // A duplicate of the publisher's eventfd: each side closes its own.
  asio::posix::stream_descriptor signal;
  kafka_publisher& publisher;
  bool stopped = false;  // on the loop
};

result<std::unique_ptr<report_pump>> report_pump::start(asio::io_context& loop, kafka_publisher& publisher) {
  auto fd = publisher.hand_over_reports();
  if (!fd) return fd.err();
  const int own = ::fcntl(*fd, F_DUPFD_CLOEXEC, 0);
  if (own < 0) return error(errc::unavailable, fmt::format("dup of the report eventfd: {}", std::strerror(errno)));
  auto s = std::make_shared<state>(loop, own, publisher);
  // What came before the hand-over was not signalled.
  asio::post(loop, [s] {
    if (s->stopped) return;
    s->publisher.serve_reports();
    s->wait();
  });
  return std::unique_ptr<report_pump>(new report_pump(std::move(s)));
}

// Nothing is posted from here: after the loop's shutdown a posted handler
// would outlive the reactor its descriptor belongs to. stop() has closed the
// descriptor on the loop, or the loop never ran and its shutdown destroyed
// the handlers that shared the state, and the descriptor goes with this.
report_pump::~report_pump() = default;

void report_pump::stop() {
  if (std::exchange(stop_posted_, true)) return;
  asio::post(state_->signal.get_executor(), [s = state_] {
    s->stopped = true;
    boost::system::error_code ignored;
    s->signal.close(ignored);
  });
}

}  // namespace feed

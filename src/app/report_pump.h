// Serves the Kafka publisher's delivery reports on an event loop.
//
// Each accepted post waits on its loop for Kafka's acknowledgement
// (http/handlers/loop_waits.h). librdkafka's broker thread queues the
// acknowledgements for rd_kafka_poll(); a thread of the publisher's own used
// to serve that queue, woken once per burst, and then woke the loop with
// what it had settled. Here the loop serves the queue itself when
// librdkafka signals an eventfd: under load the signal is one more ready
// descriptor in the loop's next epoll_wait, and no thread wakes for it.
//
// Lifecycle: built before the loop runs; stop() (one thread: the one that
// built it) ends the wait on the loop, so the loop can run out of work. Call
// it while the loop runs, after the publisher's stop(), which serves the last
// reports itself. The publisher must outlive this object and every handler
// of the loop; this object must be destroyed before the loop's io_context.
#pragma once

#include <memory>

#include <boost/asio/io_context.hpp>

#include "base/result.h"

namespace feed {

class kafka_publisher;

class report_pump {
 public:
  // Takes the reports over from the publisher's poll thread.
  static result<std::unique_ptr<report_pump>> start(boost::asio::io_context& loop, kafka_publisher& publisher);
  ~report_pump();
  report_pump(const report_pump&) = delete;
  report_pump& operator=(const report_pump&) = delete;

  void stop();

 private:
  struct state;
  explicit report_pump(std::shared_ptr<state> s) : state_(std::move(s)) {}
  std::shared_ptr<state> state_;
  bool stop_posted_ = false;
};

}  // namespace feed

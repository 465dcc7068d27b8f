// Test helper: a connected loopback TCP pair on one io_context, so a test
// drives real kernel buffers (send-buffer limits, EAGAIN, FIN) instead of a
// stand-in. `server` goes to the code under test; the test reads `client`.
#pragma once

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>

namespace feed::test_support {

struct loopback_pair {
  boost::asio::ip::tcp::socket server, client;
};

inline loopback_pair connect_loopback(boost::asio::io_context& ioc) {
  using boost::asio::ip::tcp;
  tcp::acceptor acc(ioc, tcp::endpoint(boost::asio::ip::make_address("127.0.0.1"), 0));
  tcp::socket client(ioc), server(ioc);
  client.connect(acc.local_endpoint());
  acc.accept(server);
  return {std::move(server), std::move(client)};
}

}  // namespace feed::test_support

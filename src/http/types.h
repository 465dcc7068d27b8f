// Request, response and handler types shared by the server and handlers.
#pragma once

#include <functional>

#include <boost/asio/awaitable.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/http/message.hpp>
#include <boost/beast/http/string_body.hpp>

#include "http/field_allocator.h"
#include "http/request_target.h"

namespace feed::http {

namespace beast = boost::beast;
namespace asio = boost::asio;
// Header fields take their memory from an allocator the server points at a
// per-connection arena, reset between requests: a request's fields and its
// response's cost no heap allocation (they were about a fifth of the heap
// calls per accepted post). Default-constructed, or copied, they use the
// heap, so a copy may outlive the request (field_allocator.h).
using fields = beast::http::basic_fields<field_allocator>;
using request = beast::http::request<beast::http::string_body, fields>;
using response = beast::http::response<beast::http::string_body, fields>;
using status = beast::http::status;
using verb = beast::http::verb;

struct request_context {
  const request& req;
  request_target url;             // parsed request target (a url_view where one is needed)
  asio::ip::tcp::socket& socket;  // a streaming handler may take it
  std::size_t loop = 0;           // index of the event loop running this request
  bool keep_alive = true;         // the client's Connection options allow another request (RFC 9112 §9.3)
  bool stream_taken = false;      // set by a handler that took the socket
};

using handler = std::function<asio::awaitable<response>(request_context&)>;

}  // namespace feed::http

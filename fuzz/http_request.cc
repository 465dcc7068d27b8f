// The HTTP request path, as server::serve_one reads a connection: raw bytes
// through Beast's request_parser with the server's header and body limits,
// the head checks (http/request_checks.h), then the request target
// (boost::urls) and the query and header values the handlers parse
// (http/query.h).
//
// Input: what a client sends on one connection, pipelined requests and all.
// It is read twice, whole and in small pieces, as sockets deliver it; both
// reads must see the same requests. A request that is accepted must have the
// body its framing announces, within the limit.
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <string>
#include <string_view>
#include <vector>

#include <boost/beast/http/parser.hpp>
#include <boost/beast/http/string_body.hpp>
#include <fmt/format.h>

#include "error_body.h"
#include "fuzz_check.h"
#include "http/query.h"
#include "http/request_checks.h"
#include "http/server.h"

namespace {

namespace bhttp = boost::beast::http;
// The server's parser: header fields with its allocator (the heap when default-made).
using parser_t = bhttp::request_parser<bhttp::string_body, feed::http::field_allocator>;

// serve_one answers at most this many requests of one input; more adds
// nothing but time.
constexpr int kMaxRequests = 8;

// Feeds the parser from in[used, avail), growing avail by `step` bytes per
// "read" as a socket would, until the head (or the whole message) is parsed.
boost::beast::error_code drive(parser_t& p, std::string_view in, std::size_t& used, std::size_t& avail,
                               std::size_t step, bool head_only) {
  for (;;) {
    if (head_only ? p.is_header_done() : p.is_done()) return {};
    boost::beast::error_code ec;
    if (avail > used) {
      const std::size_t n = p.put(boost::asio::buffer(in.data() + used, avail - used), ec);
      used += n;
      if (ec && ec != bhttp::error::need_more) return ec;
      if (!ec && n > 0) continue;
    }
    if (avail == in.size()) {  // the client has sent everything and closed
      if (!p.got_some()) return bhttp::error::end_of_stream;
      p.put_eof(ec);
      if (ec) return ec;
      return (head_only ? p.is_header_done() : p.is_done()) ? boost::beast::error_code{}
                                                            : bhttp::error::partial_message;
    }
    avail = std::min(in.size(), avail + step);
  }
}

// What the handlers would read from an accepted request.
void use_request(const feed::http::request& req) {
  const std::int64_t max = std::numeric_limits<std::int64_t>::max();
  if (auto h = req["Last-Event-ID"]; !h.empty()) {
    auto v = feed::http::parse_integer(h, "Last-Event-ID", 0, max);
    if (!v) check_error_body(v.err().message);
  }
  const auto url = feed::http::parse_request_target(req.target());
  FUZZ_CHECK(url.has_value());
  (void)url->path();
  for (std::string_view name : {"since", "history", "user_id", "limit", "before"}) {
    if (auto v = feed::http::query_param(*url, name)) {
      auto n = feed::http::parse_integer(*v, name, 0, max);
      if (!n) check_error_body(n.err().message);
    }
  }
}

// One connection's worth of requests, summarised for comparing two reads.
std::vector<std::string> serve(std::string_view in, std::size_t step) {
  const feed::http::server_options opts;
  std::vector<std::string> seen;
  std::size_t used = 0, avail = std::min(in.size(), step);
  for (int i = 0; i < kMaxRequests; ++i) {
    parser_t p;
    p.header_limit(static_cast<std::uint32_t>(opts.max_header_bytes));
    p.body_limit(opts.max_body_bytes);

    auto ec = drive(p, in, used, avail, step, true);
    if (ec) {
      // Which error Beast names can depend on how much it has seen; that it
      // refuses may not.
      if (ec != bhttp::error::end_of_stream) seen.push_back("refused");
      break;
    }
    const auto& head = p.get();

    if (auto bad = feed::http::check_request_head(head)) {
      check_error_body(bad->message);
      seen.push_back("refused");
      break;
    }
    // What the checks accept, the parser must frame as they mean it: a
    // Transfer-Encoding it does not read as chunked would leave the body to
    // be read as the next request (server.cc refuses that too, as a backstop).
    if (head.count(bhttp::field::transfer_encoding) != 0) FUZZ_CHECK(p.chunked());
    // serve_one dereferences this for every accepted head.
    FUZZ_CHECK(feed::http::parse_request_target(head.target()).has_value());

    if (const auto cl = p.content_length(); cl && *cl > opts.max_body_bytes) {
      seen.push_back("refused");
      break;
    }
    ec = drive(p, in, used, avail, step, false);
    if (ec) {
      seen.push_back("refused");
      break;
    }
    const auto& req = p.get();
    FUZZ_CHECK(req.body().size() <= opts.max_body_bytes);
    if (!p.chunked()) {
      if (const auto cl = p.content_length()) FUZZ_CHECK(req.body().size() == *cl);
      else FUZZ_CHECK(req.body().empty());
    }
    FUZZ_CHECK(used <= in.size());
    use_request(req);
    seen.push_back(fmt::format("{} {} {} {}", std::string_view(head.method_string()), std::string_view(req.target()),
                               req.body().size(), req.keep_alive()));
    if (!req.keep_alive()) break;
  }
  return seen;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view in(reinterpret_cast<const char*>(data), size);
  const auto whole = serve(in, std::max<std::size_t>(size, 1));
  const auto pieces = serve(in, size % 7 + 1);
  FUZZ_CHECK(whole == pieces);
  return 0;
}

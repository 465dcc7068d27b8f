// The HTTP request path, as server::serve_one reads a connection: raw bytes
// through Beast's request_parser with the server's header and body limits,
// the head checks (http/request_checks.h), then the request target
// (boost::urls) and the query and header values the handlers parse
// (http/query.h). The fast paths for the target and Host must agree with
// boost::urls on every target, Host value and raw input.
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

#include <boost/beast/core/string.hpp>
#include <boost/beast/http/parser.hpp>
#include <boost/beast/http/string_body.hpp>
#include <boost/url/parse.hpp>
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

// The request-target and Host fast paths (http/request_target.h) give what
// boost::urls gives, whatever the bytes.
void check_fast_paths(std::string_view input) {
  const auto reference = feed::http::parse_request_target(input);
  const auto target = feed::http::request_target::parse(input);
  FUZZ_CHECK(target.has_value() == reference.has_value());
  if (const auto plain = feed::http::plain_origin_path(input)) {
    FUZZ_CHECK(reference.has_value());
    FUZZ_CHECK(reference->path() == *plain);
    FUZZ_CHECK(reference->encoded_path() == *plain);
    const auto q = input.find('?');
    FUZZ_CHECK(reference->has_query() == (q != std::string_view::npos));
    if (q != std::string_view::npos) FUZZ_CHECK(reference->encoded_query() == input.substr(q + 1));
  }
  if (target) {
    std::string path = reference->path();
    if (path.empty() && input != "*") path = "/";
    // An escaped '/' keeps the path as sent (request_target.h).
    std::string lowered(reference->encoded_path());
    for (auto& c : lowered) c = static_cast<char>(c >= 'A' && c <= 'Z' ? c + 32 : c);
    if (lowered.find("%2f") != std::string::npos) path = reference->encoded_path();
    FUZZ_CHECK(target->path() == path);
    const boost::urls::url_view url = *target;
    FUZZ_CHECK(url.buffer() == reference->buffer());
  }
  bool valid = true;
  if (!input.empty()) {
    auto authority = boost::urls::parse_authority(input);
    valid = authority && !authority->has_userinfo();
  }
  FUZZ_CHECK(feed::http::valid_host(input) == valid);
  if (feed::http::plain_host(input)) FUZZ_CHECK(valid);
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
    check_fast_paths(head.target());
    for (const auto& f : head)
      if (f.name() == bhttp::field::host) check_fast_paths(f.value());

    feed::http::accepted_head accepted;
    if (auto bad = feed::http::check_request_head(head, accepted)) {
      check_error_body(bad->message);
      seen.push_back("refused");
      break;
    }
    // What the checks tell the server of the head, as a lookup finds it.
    FUZZ_CHECK(accepted.transfer_encoding == (head.count(bhttp::field::transfer_encoding) != 0));
    FUZZ_CHECK(accepted.expect_continue ==
               (head.version() >= 11 && boost::beast::iequals(head[bhttp::field::expect], "100-continue")));
    // What the checks accept, the parser must frame as they mean it: a
    // Transfer-Encoding it does not read as chunked would leave the body to
    // be read as the next request (server.cc refuses that too, as a backstop).
    if (accepted.transfer_encoding) FUZZ_CHECK(p.chunked());
    // serve_one dereferences this for every accepted head.
    FUZZ_CHECK(feed::http::parse_request_target(head.target()).has_value());
    FUZZ_CHECK(accepted.target.text() == head.target());

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
  // The raw bytes too, as a target and as a Host value: the parser lets
  // through only what a request line and a field value may hold.
  check_fast_paths(in);
  check_fast_paths(std::string("/").append(in));
  const auto whole = serve(in, std::max<std::size_t>(size, 1));
  const auto pieces = serve(in, size % 7 + 1);
  FUZZ_CHECK(whole == pieces);
  return 0;
}

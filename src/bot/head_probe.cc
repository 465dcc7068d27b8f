#include "bot/head_probe.h"

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/connect.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <boost/json/parse.hpp>
#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include "bot/chunked_decoder.h"
#include "bot/http_response.h"

namespace feed::bot {

namespace asio = boost::asio;
using asio::ip::tcp;
using boost::system::error_code;

namespace {

constexpr std::size_t kMaxResponse = 1 << 20;

// The body of a complete 200 response at the start of `raw`; nullopt while
// it is incomplete or when it is not a 200. `eof`: nothing more will come
// (a body delimited by the connection's close is then complete).
std::optional<std::string> body_of(std::string_view raw, bool eof) {
  response_head head;
  if (parse_response_head(raw, head) != head_parse::ok || head.status != 200) return std::nullopt;
  const auto rest = raw.substr(head.head_bytes);
  if (head.content_length) {
    if (rest.size() < *head.content_length) return std::nullopt;
    return std::string(rest.substr(0, static_cast<std::size_t>(*head.content_length)));
  }
  if (!head.chunked) return eof ? std::optional<std::string>(std::string(rest)) : std::nullopt;
  std::string body;
  chunked_decoder chunks;
  const auto s = chunks.feed(rest, [&body](std::string_view piece) { body.append(piece); });
  if (s != chunked_decoder::step::done) return std::nullopt;
  return body;
}

// One request; the body of its 200 answer, or nullopt. Stops at the end of
// the response: a server may keep the connection open despite "close".
asio::awaitable<std::optional<std::string>> fetch(tcp::socket& sock, const instance_target& t, std::string target) {
  error_code ec;
  co_await asio::async_connect(sock, t.endpoints, asio::redirect_error(asio::use_awaitable, ec));
  if (ec) co_return std::nullopt;
  const auto req = fmt::format("GET {} HTTP/1.1\r\nHost: {}\r\nAccept: application/json\r\nConnection: close\r\n\r\n",
                               target, t.host_header);
  co_await asio::async_write(sock, asio::buffer(req), asio::redirect_error(asio::use_awaitable, ec));
  if (ec) co_return std::nullopt;
  std::string raw;
  char buf[4096];
  while (raw.size() < kMaxResponse) {
    const auto n = co_await sock.async_read_some(asio::buffer(buf), asio::redirect_error(asio::use_awaitable, ec));
    raw.append(buf, n);
    if (ec && ec != asio::error::eof) co_return std::nullopt;
    if (auto body = body_of(raw, ec == asio::error::eof)) co_return body;
    if (ec) co_return std::nullopt;
  }
  co_return std::nullopt;
}

std::optional<std::int64_t> probe_one(const instance_target& t, const std::string& target,
                                      std::chrono::milliseconds timeout) {
  asio::io_context ioc{1};
  tcp::socket sock(ioc);
  std::optional<std::string> body;
  bool done = false;
  asio::co_spawn(ioc, fetch(sock, t, target),
                 [&](std::exception_ptr e, std::optional<std::string> r) {
                   done = true;
                   if (!e) {
                     body = std::move(r);
                     return;
                   }
                   try {
                     std::rethrow_exception(e);
                   } catch (const std::exception& x) {
                     spdlog::warn("asking {} for the newest seq failed: {}", t.url, x.what());
                   }
                 });
  ioc.run_for(timeout);
  if (!done) {
    error_code ignored;
    sock.close(ignored);  // the coroutine then ends at once
    ioc.restart();
    ioc.run();
  }
  return body ? newest_seq_in_page(*body) : std::nullopt;
}

}  // namespace

std::optional<std::int64_t> newest_seq_in_page(std::string_view body) {
  error_code ec;
  const auto v = boost::json::parse(body, ec);
  if (ec || !v.is_object()) return std::nullopt;
  const auto* messages = v.as_object().if_contains("messages");
  if (messages == nullptr || !messages->is_array()) return std::nullopt;
  const auto& list = messages->as_array();
  if (list.empty()) return 0;
  const auto* first = list.front().if_object();
  const auto* seq = first ? first->if_contains("seq") : nullptr;
  if (seq == nullptr) return std::nullopt;
  if (const auto* i = seq->if_int64(); i && *i >= 0) return *i;
  if (const auto* u = seq->if_uint64(); u && *u <= static_cast<std::uint64_t>(INT64_MAX)) return static_cast<std::int64_t>(*u);
  return std::nullopt;
}

std::optional<std::int64_t> probe_newest_seq(const run_context& ctx, std::chrono::milliseconds timeout) {
  const std::string target = ctx.opts.post_path + "?limit=1";
  for (const auto& t : ctx.instances) {
    if (auto seq = probe_one(t, target, timeout)) return seq;
  }
  return std::nullopt;
}

}  // namespace feed::bot

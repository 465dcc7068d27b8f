#include <memory>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/beast/http/field.hpp>
#include <boost/json.hpp>

#include "http/handlers/handlers.h"
#include "http/response.h"
#include "model/message_id.h"

namespace feed::http {
namespace {

// Waits for the queue's durability callback, which may fire on any thread,
// but no longer than `timeout`.
asio::awaitable<std::error_code> publish_and_wait(publisher& q, message m, std::chrono::milliseconds timeout) {
  struct state {
    explicit state(const asio::any_io_executor& ex) : timer(ex) {}
    asio::steady_timer timer;
    std::error_code result;
    bool done = false;
  };
  auto ex = co_await asio::this_coro::executor;
  auto st = std::make_shared<state>(ex);
  st->timer.expires_after(timeout);
  q.publish(std::move(m), [st, ex](std::error_code ec) {
    asio::post(ex, [st, ec] {
      if (st->done) return;
      st->done = true;
      st->result = ec;
      // Expiring (not cancel) also ends a wait that has not started yet.
      st->timer.expires_at(asio::steady_timer::time_point::min());
    });
  });
  co_await st->timer.async_wait(asio::as_tuple(asio::use_awaitable));
  if (!st->done) {
    st->done = true;
    co_return make_error_code(errc::timeout);
  }
  co_return st->result;
}

bool is_json_media_type(std::string_view ct) {
  const auto semi = ct.find(';');
  auto type = ct.substr(0, semi);
  while (!type.empty() && type.back() == ' ') type.remove_suffix(1);
  return beast::iequals(type, "application/json") ||
         (type.size() > 5 && beast::iequals(type.substr(type.size() - 5), "+json"));
}

std::string check_idempotency_key(std::string_view key) {
  if (key.empty() || key.size() > 128) return "Idempotency-Key must be 1 to 128 characters";
  for (char c : key)
    if (c < 0x21 || c > 0x7e) return "Idempotency-Key may contain only visible ASCII characters";
  return {};
}

}  // namespace

handler post_message_handler(services& s) {
  return [&s](request_context& ctx) -> asio::awaitable<response> {
    const auto& req = ctx.req;
    if (auto ct = req[beast::http::field::content_type]; !ct.empty() && !is_json_media_type(ct))
      co_return error_response(req, status::unsupported_media_type,
                               "Content-Type must be application/json, got " + std::string(ct));
    auto parsed = parse_post_request(req.body(), s.opts.limits);
    if (!parsed) co_return error_response(req, status::bad_request, parsed.err().message);

    message m;
    if (auto key = req["Idempotency-Key"]; !key.empty()) {
      if (auto problem = check_idempotency_key(key); !problem.empty())
        co_return error_response(req, status::bad_request, problem);
      m.id = message_id_for_key(parsed->user_id, key);
    } else {
      m.id = random_message_id();
    }
    m.user_id = std::move(parsed->user_id);
    m.content = std::move(parsed->content);
    m.created_at = now_utc();
    const std::string id = m.id;

    const auto ec = co_await publish_and_wait(s.queue, std::move(m), s.opts.publish_timeout);
    if (!ec)
      co_return json_response(req, status::accepted, boost::json::object{{"id", id}, {"status", "accepted"}});

    std::string why;
    if (ec == errc::queue_full) why = "the queue is full; retry later";
    else if (ec == errc::timeout) why = "the queue did not confirm in time; retry later with the same Idempotency-Key to avoid a duplicate";
    else if (ec == errc::shutting_down) why = "the server is shutting down; retry on another instance";
    else why = "the queue is unavailable: " + ec.message() + "; retry later";
    auto res = error_response(req, status::service_unavailable, why);
    res.set(beast::http::field::retry_after, std::to_string(s.opts.retry_after_seconds));
    co_return res;
  };
}

}  // namespace feed::http
